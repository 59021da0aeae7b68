//! `portolan catalog list|show`.

use portolan_core::catalog;
use portolan_core::diag::Diagnostic;
use portolan_core::model::Condition;

use crate::args::{CatalogCmd, Format};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

pub fn run(cmd: &CatalogCmd, rep: &mut Reporter) -> i32 {
    match cmd {
        CatalogCmd::List { format } => list(*format, rep),
        CatalogCmd::Show { id } => match catalog::entry(id) {
            Some(e) => match crate::output::write(None, e.text) {
                Ok(()) => EXIT_OK,
                Err(d) => {
                    rep.emit(&d);
                    EXIT_ERROR
                }
            },
            None => {
                rep.emit(
                    &Diagnostic::error(format!("no catalog entry `{}`", id.escape_debug()))
                        .with_help(format!("known ids: {}", catalog::ids().join(", "))),
                );
                EXIT_ERROR
            }
        },
    }
}

fn list(format: Format, rep: &mut Reporter) -> i32 {
    let mut rows = Vec::new();
    for id in catalog::ids() {
        match catalog::load(id) {
            Some(Ok(p)) => rows.push(p),
            Some(Err(e)) => {
                rep.emit_all(&e.0);
                return EXIT_ERROR;
            }
            None => {}
        }
    }
    let text = match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "id": p.id,
                        "name": p.name,
                        "vendor": p.vendor,
                        "flows": p.flows.len(),
                        "required_flows": p.flows.iter().filter(|f| f.condition == Condition::Required).count(),
                        "features": p.features.keys().collect::<Vec<_>>(),
                        "alternatives": p.alternatives.keys().collect::<Vec<_>>(),
                        "caveats": p.caveats.len(),
                        "sources": p.sources,
                    })
                })
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        Format::Table => {
            let mut s = format!(
                "{:<12} {:<34} {:>5} {:>8} {:>8} {:>7}  {}\n",
                "ID", "NAME", "FLOWS", "REQUIRED", "FEATURES", "CAVEATS", "SOURCE"
            );
            for p in &rows {
                let docs: Vec<String> = p
                    .sources
                    .iter()
                    .map(|d| d.document.clone().unwrap_or_else(|| d.title.clone()))
                    .collect();
                s.push_str(&format!(
                    "{:<12} {:<34} {:>5} {:>8} {:>8} {:>7}  {}\n",
                    p.id,
                    p.name,
                    p.flows.len(),
                    p.flows
                        .iter()
                        .filter(|f| f.condition == Condition::Required)
                        .count(),
                    p.features.len(),
                    p.caveats.len(),
                    docs.join(", ")
                ));
            }
            s
        }
    };
    match crate::output::write(None, &text) {
        Ok(()) => EXIT_OK,
        Err(d) => {
            rep.emit(&d);
            EXIT_ERROR
        }
    }
}
