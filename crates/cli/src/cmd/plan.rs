//! `portolan plan`: print the plan as a table or as JSON.

use portolan_core::plan::{FlowEnd, Plan};

use crate::args::{Format, PlanArgs};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

pub fn run(args: &PlanArgs, rep: &mut Reporter) -> i32 {
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    rep.emit_all(&loaded.plan.warnings);
    let text = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&loaded.plan.to_json()).unwrap_or_default()
        ),
        Format::Table => table(&loaded.plan),
    };
    match crate::output::write(None, &text) {
        Ok(()) => EXIT_OK,
        Err(d) => {
            rep.emit(&d);
            EXIT_ERROR
        }
    }
}

fn end_text(plan: &Plan, end: &FlowEnd) -> String {
    end.peers
        .iter()
        .map(|p| {
            let n = plan.set(&p.set).map_or(0, |s| s.v4.len() + s.v6.len());
            match p.kind {
                portolan_core::plan::SetKind::Appliance => "appliance".to_string(),
                portolan_core::plan::SetKind::Role => format!("{} ({n} nets)", p.name),
                _ if plan.set(&p.set).is_some_and(|s| s.dynamic && !s.pinned) => {
                    format!("{} (dns)", p.name)
                }
                _ => p.name.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(plan: &Plan) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "ID".into(),
        "DIRECTION".into(),
        "PROTO".into(),
        "PORTS".into(),
        "FROM".into(),
        "TO".into(),
        "WHEN".into(),
    ]];
    for f in &plan.flows {
        let ports = match f.icmp_type {
            Some(t) => t.name().to_string(),
            None => f
                .ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        };
        rows.push([
            f.id.clone(),
            format!("{:?}", f.direction).to_lowercase(),
            f.protocol.to_string(),
            ports,
            end_text(plan, &f.source),
            end_text(plan, &f.destination),
            f.feature
                .clone()
                .map_or("required".into(), |x| format!("feature {x}")),
        ]);
    }
    let mut width = [0usize; 7];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = format!(
        "profile {} ({}), placement {}, features: {}\n\n",
        plan.profile,
        plan.profile_name,
        match plan.placement.mode() {
            portolan_core::site::PlacementMode::Host => "host",
            portolan_core::site::PlacementMode::Gateway => "gateway",
        },
        if plan.features.is_empty() {
            "none".to_string()
        } else {
            plan.features.join(", ")
        }
    );
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} planned flow(s); {} profile flow(s) off (features or alternatives not chosen)\n",
        plan.flows.len(),
        plan.inactive.len()
    ));
    out
}
