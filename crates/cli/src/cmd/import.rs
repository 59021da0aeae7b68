//! `portolan import`: a vendor's port table to a draft profile.

use portolan_core::diag::Diagnostic;
use portolan_core::import::{self, Lang, Options, REVIEW_BELOW};
use portolan_core::load;

use crate::args::{ImportArgs, LangArg, TextFormat};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

pub fn run(args: &ImportArgs, rep: &mut Reporter) -> i32 {
    let src = match load::read_document(&args.file) {
        Ok(s) => s,
        Err(e) => {
            rep.emit_all(&e.0);
            return EXIT_ERROR;
        }
    };
    if src.text.trim().is_empty() {
        rep.emit(
            &Diagnostic::error(format!("{} is empty", args.file.display()))
                .with_help("give the vendor's port table as text, copied from the manual"),
        );
        return EXIT_ERROR;
    }
    if let Some(id) = &args.id {
        if let Err(e) = portolan_core::model::check_id(id, "profile") {
            rep.emit(&Diagnostic::error(e).with_help("for example --id acme-gateway"));
            return EXIT_ERROR;
        }
    }
    let opts = Options {
        lang: match args.lang {
            LangArg::Auto => None,
            LangArg::En => Some(Lang::En),
            LangArg::De => Some(Lang::De),
        },
        id: args.id.clone(),
        name: args.name.clone(),
    };
    let spinner = crate::progress::spinner("reading the document");
    let draft = import::import(&src, &opts);
    spinner.finish_and_clear();
    // The draft must be a valid profile; if not, that is a bug here, said plainly.
    if let Err(e) = draft.check() {
        rep.emit(&Diagnostic::error(
            "the draft does not pass the profile check (a bug in the importer; please report it with the document)",
        ));
        rep.emit_all(&e.0);
        return EXIT_ERROR;
    }
    if let Some(path) = &args.report {
        let text = import::report_text(&draft, &args.file.display().to_string());
        if let Err(d) = crate::output::write(Some(path), &text) {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    }
    if draft.flows.is_empty() {
        let rejected: Vec<String> = draft
            .report
            .rejected_rows
            .iter()
            .map(|(l, w)| format!("line {l}: {w}"))
            .collect();
        let d = Diagnostic::error(format!(
            "no port table found in {}: no line gives a port that can be read",
            args.file.display()
        ))
        .with_help(
            "portolan reads tables (pipes, tabs, one cell per line, glued PDF text, wiki markup), \
             lists and sentences that give ports as `443/tcp`, `TCP 443`, `port 443` or in a port \
             column; --report lists every line and why it was not read",
        );
        rep.emit(&d);
        if !rejected.is_empty() {
            rep.emit(&Diagnostic::note(format!(
                "rows that gave no flow: {}",
                rejected.join("; ")
            )));
        }
        return EXIT_ERROR;
    }
    let text = match args.format {
        TextFormat::Text => draft.toml.clone(),
        TextFormat::Json => {
            let r = &draft.report;
            let flows: Vec<serde_json::Value> = draft
                .flows
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "id": f.id,
                        "line": f.line,
                        "confidence": f.confidence,
                        "review": f.confidence < REVIEW_BELOW,
                        "why": f.why,
                        "doubts": f.doubts,
                    })
                })
                .collect();
            let pairs = |v: &[(usize, String)]| -> Vec<serde_json::Value> {
                v.iter()
                    .map(|(l, w)| serde_json::json!({"line": l, "what": w}))
                    .collect()
            };
            format!(
                "{}\n",
                serde_json::to_string_pretty(&serde_json::json!({
                    "profile": draft.toml,
                    "flows": flows,
                    "report": {
                        "lang": r.lang,
                        "lang_reason": r.lang_reason,
                        "layouts": r.layouts.iter().map(|(l, n, at)| serde_json::json!({"layout": l, "rows": n, "first_line": at})).collect::<Vec<_>>(),
                        "unplaced": r.unplaced.iter().map(|(l, t, w)| serde_json::json!({"line": l, "text": t, "why": w})).collect::<Vec<_>>(),
                        "corrections": pairs(&r.corrections),
                        "rejected_rows": pairs(&r.rejected_rows),
                    },
                }))
                .unwrap_or_default()
            )
        }
    };
    if let Err(d) = crate::output::write(args.output.as_deref(), &text) {
        rep.emit(&d);
        return EXIT_ERROR;
    }
    let review = draft
        .flows
        .iter()
        .filter(|f| f.confidence < REVIEW_BELOW)
        .count();
    eprintln!(
        "imported {} flow(s) from {} ({}), {} marked REVIEW; {} line(s) not placed{}",
        draft.flows.len(),
        args.file.display(),
        draft.report.lang,
        review,
        draft.report.unplaced.len(),
        if args.report.is_some() {
            " (listed in the report)"
        } else {
            " (see --report)"
        }
    );
    EXIT_OK
}
