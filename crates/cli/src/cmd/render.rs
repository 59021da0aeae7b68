//! `portolan render`: a plan to firewall configuration.

use portolan_core::diag::Diagnostic;
use portolan_core::render;

use crate::args::{RenderArgs, TextFormat};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_WARNINGS};

pub fn run(args: &RenderArgs, rep: &mut Reporter) -> i32 {
    let Some(target) = crate::inputs::target(&args.target, rep) else {
        return EXIT_ERROR;
    };
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    rep.emit_all(&loaded.plan.warnings);
    let opts = render::Options {
        lang: match args.lang {
            crate::args::SheetLang::En => render::Lang::En,
            crate::args::SheetLang::De => render::Lang::De,
        },
    };
    let out = render::render_with(&loaded.plan, target, &opts);
    rep.emit_all(&out.warnings);
    if out
        .warnings
        .iter()
        .any(|d| d.severity == portolan_core::Severity::Error)
    {
        return EXIT_ERROR;
    }
    if args.format == TextFormat::Json && args.part.is_none() {
        let diagnostics: Vec<_> = loaded
            .warnings
            .iter()
            .chain(&loaded.plan.warnings)
            .chain(&out.warnings)
            .collect();
        let parts: serde_json::Map<String, serde_json::Value> = out
            .parts
            .iter()
            .map(|(n, t)| (n.clone(), serde_json::Value::String(t.clone())))
            .collect();
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "target": target.name(),
                "profile": loaded.plan.profile,
                "text": out.text,
                "parts": parts,
                "diagnostics": diagnostics,
            }))
            .unwrap_or_default()
        );
        return match crate::output::write(args.output.as_deref(), &text) {
            Ok(()) if args.strict && rep.warnings > 0 => EXIT_WARNINGS,
            Ok(()) => EXIT_OK,
            Err(d) => {
                rep.emit(&d);
                EXIT_ERROR
            }
        };
    }
    let text = match &args.part {
        None => out.text,
        Some(p) => match out.parts.iter().find(|(n, _)| n == p) {
            Some((_, t)) => t.clone(),
            None => {
                let names: Vec<&str> = out.parts.iter().map(|(n, _)| n.as_str()).collect();
                rep.emit(
                    &Diagnostic::error(format!(
                        "target {} has no part `{}`",
                        target.name(),
                        p.escape_debug()
                    ))
                    .with_help(format!("parts: {}", names.join(", "))),
                );
                return EXIT_ERROR;
            }
        },
    };
    match crate::output::write(args.output.as_deref(), &text) {
        Ok(()) if args.strict && rep.warnings > 0 => EXIT_WARNINGS,
        Ok(()) => EXIT_OK,
        Err(d) => {
            rep.emit(&d);
            EXIT_ERROR
        }
    }
}
