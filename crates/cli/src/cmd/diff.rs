//! `portolan diff OLD NEW`: what changes between two profile versions, for flows and for the
//! rules of a site.

use portolan_core::diag::Diagnostic;
use portolan_core::diff::{self, ProfileDiff, RulesDiff};
use portolan_core::model::Profile;
use portolan_core::{load, plan, render, site};

use crate::args::{DiffArgs, DiffFormat};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_WARNINGS};

/// Markdown: flows, then rules.
fn markdown(old: &Profile, new: &Profile, d: &ProfileDiff, r: &RulesDiff, scope: &str) -> String {
    let mut s = format!("# portolan diff: {} -> {}\n\n## Flows\n\n", old.id, new.id);
    if d.is_empty() {
        s.push_str("No flow added, removed or changed.\n");
    }
    for f in &d.added {
        s.push_str(&format!(
            "- added `{}`: {} ({})\n",
            f.id, f.summary, f.function
        ));
    }
    for f in &d.removed {
        s.push_str(&format!(
            "- removed `{}`: {} ({})\n",
            f.id, f.summary, f.function
        ));
    }
    for f in &d.changed {
        s.push_str(&format!("- changed `{}`:\n", f.id));
        for c in &f.changes {
            s.push_str(&format!("  - {}: `{}` -> `{}`\n", c.field, c.old, c.new));
        }
    }
    s.push_str(&format!("\n## Rules ({scope})\n\n"));
    if r.added.is_empty() && r.removed.is_empty() {
        s.push_str("No rule changes.\n");
    } else {
        s.push_str("```diff\n");
        for l in &r.removed {
            s.push_str(&format!("- {l}\n"));
        }
        for l in &r.added {
            s.push_str(&format!("+ {l}\n"));
        }
        s.push_str("```\n");
    }
    s
}

pub fn run(args: &DiffArgs, rep: &mut Reporter) -> i32 {
    let Some(target) = crate::inputs::target(&args.target, rep) else {
        return EXIT_ERROR;
    };
    let (old, new) = match (
        load::profile(&args.old, None),
        load::profile(&args.new, None),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            for e in [a.err(), b.err()].into_iter().flatten() {
                rep.emit_all(&e.0);
            }
            return EXIT_ERROR;
        }
    };
    let site = match &args.site {
        Some(path) => match load::read_source(path).and_then(|src| site::parse(&src)) {
            Ok((s, warnings)) => {
                rep.emit_all(&warnings);
                Some(s)
            }
            Err(e) => {
                rep.emit_all(&e.0);
                return EXIT_ERROR;
            }
        },
        None => None,
    };
    let features = args.features.as_deref().map(crate::inputs::parse_features);
    let mut rendered = Vec::new();
    for p in [&old, &new] {
        let s = site.clone().unwrap_or_else(|| site::demo(p));
        match plan::build(p, &s, features.as_ref()) {
            Ok(plan) => {
                let out = render::render(&plan, target);
                if out
                    .warnings
                    .iter()
                    .any(|d| d.severity == portolan_core::Severity::Error)
                {
                    rep.emit_all(&out.warnings);
                    return EXIT_ERROR;
                }
                rendered.push(out.text);
            }
            Err(e) => {
                rep.emit(&Diagnostic::error(format!(
                    "profile `{}` cannot be bound to the site",
                    p.id
                )));
                rep.emit_all(&e.0);
                return EXIT_ERROR;
            }
        }
    }
    let flows = diff::profiles(&old, &new);
    let rules = diff::rules(&rendered[0], &rendered[1]);
    let scope = format!(
        "{}, target {}",
        args.site
            .as_ref()
            .map_or("each profile's demo site".to_string(), |p| format!(
                "site {}",
                p.display()
            )),
        target.name()
    );
    let text = match args.format {
        DiffFormat::Markdown => markdown(&old, &new, &flows, &rules, &scope),
        DiffFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "old": old.id,
                "new": new.id,
                "flows": flows,
                "rules": { "scope": scope, "added": rules.added, "removed": rules.removed },
            }))
            .unwrap_or_default()
        ),
    };
    if let Err(d) = crate::output::write(None, &text) {
        rep.emit(&d);
        return EXIT_ERROR;
    }
    if flows.is_empty() && rules.added.is_empty() && rules.removed.is_empty() {
        EXIT_OK
    } else {
        EXIT_WARNINGS
    }
}
