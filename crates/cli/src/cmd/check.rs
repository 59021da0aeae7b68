//! `portolan check FILE...`: validate profiles and sites, report everything at once.
//!
//! A site is checked together with its profile and the plan they make, so warnings such as
//! "role X has no addresses" show here before anything is rendered.

use std::path::Path;

use portolan_core::diag::{Diagnostic, Errors, Source};
use portolan_core::{catalog, load, plan, profile, render};

use crate::args::{CheckArgs, Format};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_WARNINGS};

enum Kind {
    Profile,
    Site,
}

fn kind_of(src: &Source) -> Result<Kind, Errors> {
    let table: toml::Table = profile::from_toml(src, "profile or site")?;
    if table.contains_key("profile") {
        Ok(Kind::Site)
    } else if table.contains_key("flows")
        || table.contains_key("vendor")
        || table.contains_key("id")
    {
        Ok(Kind::Profile)
    } else {
        Err(Diagnostic::error("cannot tell whether this is a profile or a site file")
            .in_file(src)
            .with_help("a site file has `profile = \"...\"`; a profile has `id`, `vendor` and [[flows]]")
            .into())
    }
}

fn check_one(path: &Path) -> Vec<Diagnostic> {
    let name = path.to_string_lossy();
    if !path.exists() {
        if let Some(r) = catalog::load(&name) {
            return match r {
                Ok(p) => profile::caveat_diagnostics(&p),
                Err(e) => e.0,
            };
        }
    }
    let src = match load::read_source(path) {
        Ok(s) => s,
        Err(e) => return e.0,
    };
    let kind = match kind_of(&src) {
        Ok(k) => k,
        Err(e) => return e.0,
    };
    match kind {
        Kind::Profile => match profile::parse(&src) {
            Ok((p, mut warnings)) => {
                warnings.extend(profile::caveat_diagnostics(&p));
                warnings
            }
            Err(e) => e.0,
        },
        Kind::Site => {
            let (s, p, mut diags) = match load::site_and_profile(path) {
                Ok(x) => x,
                Err(e) => return e.0,
            };
            match plan::build(&p, &s, None) {
                Ok(plan) => {
                    diags.extend(plan.warnings.iter().cloned());
                    diags.extend(render::lower(&plan).1);
                    diags
                }
                Err(e) => e.0,
            }
        }
    }
}

pub fn run(args: &CheckArgs, rep: &mut Reporter) -> i32 {
    let mut all = Vec::new();
    for path in &args.files {
        let diags = check_one(path);
        all.push((path.display().to_string(), diags));
    }
    let errors: usize = all
        .iter()
        .flat_map(|(_, d)| d)
        .filter(|d| d.is_error())
        .count();
    let warnings: usize = all
        .iter()
        .flat_map(|(_, d)| d)
        .filter(|d| d.severity == portolan_core::Severity::Warning)
        .count();
    match args.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = all
                .iter()
                .map(|(f, d)| serde_json::json!({"file": f, "ok": !d.iter().any(Diagnostic::is_error), "diagnostics": d}))
                .collect();
            let doc = serde_json::json!({"files": v, "errors": errors, "warnings": warnings});
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Table => {
            for (f, d) in &all {
                rep.emit_all(d);
                let e = d.iter().filter(|d| d.is_error()).count();
                let w = d
                    .iter()
                    .filter(|d| d.severity == portolan_core::Severity::Warning)
                    .count();
                if e == 0 {
                    eprintln!("{f}: ok ({w} warning(s))");
                } else {
                    eprintln!("{f}: {e} error(s), {w} warning(s)");
                }
            }
        }
    }
    if errors > 0 {
        EXIT_ERROR
    } else if args.strict && warnings > 0 {
        EXIT_WARNINGS
    } else {
        EXIT_OK
    }
}
