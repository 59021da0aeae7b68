//! `portolan audit`: evaluate an existing ruleset against the plan.

use portolan_core::audit::{self, Report, RulesetFormat, Verdict};
use portolan_core::load;

use crate::args::{AuditArgs, Format, RulesetFormatArg};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_WARNINGS};

pub fn run(args: &AuditArgs, rep: &mut Reporter) -> i32 {
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let src = match load::read_ruleset(&args.ruleset) {
        Ok(s) => s,
        Err(e) => {
            rep.emit_all(&e.0);
            return EXIT_ERROR;
        }
    };
    let ipsets = match args.ipset.as_deref().map(load::read_ruleset).transpose() {
        Ok(s) => s,
        Err(e) => {
            rep.emit_all(&e.0);
            return EXIT_ERROR;
        }
    };
    let format = args.ruleset_format.map(|f| match f {
        RulesetFormatArg::NftJson => RulesetFormat::NftJson,
        RulesetFormatArg::IptablesSave => RulesetFormat::IptablesSave,
    });
    let spinner = crate::progress::spinner("reading the ruleset");
    let rs = match audit::parse_ruleset(&src, format, ipsets.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            spinner.finish_and_clear();
            rep.emit_all(&e.0);
            return EXIT_ERROR;
        }
    };
    spinner.set_message(format!(
        "evaluating {} rules",
        rs.chains.iter().map(|c| c.rules.len()).sum::<usize>()
    ));
    let report = audit::audit(&loaded.plan, &rs);
    spinner.finish_and_clear();
    let text = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        ),
        Format::Table => table(&report),
    };
    if let Err(d) = crate::output::write(None, &text) {
        rep.emit(&d);
        return EXIT_ERROR;
    }
    if report.all_allowed() {
        EXIT_OK
    } else {
        EXIT_WARNINGS
    }
}

fn table(r: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "VERDICT".into(),
        "ID".into(),
        "PROTO".into(),
        "PORTS".into(),
        "FROM".into(),
        "TO".into(),
    ]];
    for f in &r.flows {
        rows.push([
            f.verdict.name().to_string(),
            f.id.clone(),
            f.protocol.to_string(),
            f.ports.clone(),
            f.from.clone(),
            f.to.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = format!(
        "Audit of the {} ruleset, placement {}.\n\n",
        r.format, r.placement
    );
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let problems: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.verdict != Verdict::Allowed)
        .collect();
    if !problems.is_empty() {
        out.push_str("\nNot allowed:\n");
        for f in problems {
            out.push_str(&format!(
                "  {} ({} {}) is {}\n",
                f.id,
                f.protocol,
                f.ports,
                f.verdict.name()
            ));
            if let Some((p, rule)) = &f.example {
                out.push_str(&format!("    dropped: {p}\n      by {}", rule.loc));
                if !rule.text.is_empty() {
                    out.push_str(&format!(": {}", rule.text));
                }
                out.push('\n');
            }
            for (rule, what) in &f.unknown {
                out.push_str(&format!(
                    "    unknown: {} at {} decides part of it\n",
                    what.join(", "),
                    rule.loc
                ));
            }
            for n in &f.notes {
                out.push_str(&format!("    note: {n}\n"));
            }
        }
    }
    out.push('\n');
    if r.excess.is_empty() {
        out.push_str(
            "Excess: nothing beyond the planned flows is accepted to or from the appliance.\n",
        );
    } else {
        out.push_str("Excess: accepted to or from the appliance, needed by no planned flow (largest first):\n");
        for e in &r.excess {
            out.push_str(&excess_line(e));
        }
        if r.excess_more > 0 {
            out.push_str(&format!(
                "  ... and {} more (see --format json)\n",
                r.excess_more
            ));
        }
    }
    if !r.maybe_excess.is_empty() {
        out.push_str(
            "\nMaybe accepted beyond the plan (rules with matches the audit does not model):\n",
        );
        for e in &r.maybe_excess {
            out.push_str(&excess_line(e));
        }
    }
    out.push_str("\nNotes:\n");
    for n in &r.notes {
        out.push_str(&format!("  - {n}\n"));
    }
    out
}

fn excess_line(e: &audit::Excess) -> String {
    let mut what = vec![e.protocol.clone()];
    if !e.ports.is_empty() {
        what.push(e.ports.clone());
    }
    let mut s = format!(
        "  {} {} -> {}: {}",
        e.family.label(),
        e.source,
        e.destination,
        what.join(" ")
    );
    if !e.interfaces.is_empty() {
        s.push_str(&format!(" ({})", e.interfaces));
    }
    let rules: Vec<&str> = e.rules.iter().map(|r| r.loc.as_str()).collect();
    s.push_str(&format!("\n      by {}\n", rules.join("; ")));
    s
}
