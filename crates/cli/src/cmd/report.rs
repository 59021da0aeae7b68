//! `portolan report`: the plan as one self-contained HTML file with a diagram (or the
//! diagram alone as SVG), with probe and audit results when given.

use portolan_core::load;
use portolan_core::report::i18n::{civil_from_days, Lang};
use portolan_core::report::{self, Inputs};

use crate::args::{ReportArgs, ReportFormat, ReportLang};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

/// Today, or `$SOURCE_DATE_EPOCH` (reproducible reports).
fn today() -> (i64, u32, u32) {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    civil_from_days(secs.div_euclid(86_400))
}

pub fn run(args: &ReportArgs, rep: &mut Reporter) -> i32 {
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let probe = match args
        .probe
        .as_deref()
        .map(|p| load::read_result(p).and_then(|src| report::parse_probe(&src)))
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            rep.emit_all(&e.0);
            return EXIT_ERROR;
        }
    };
    let audit = match args
        .audit
        .as_deref()
        .map(|p| load::read_result(p).and_then(|src| report::parse_audit(&src)))
    {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            rep.emit_all(&e.0);
            return EXIT_ERROR;
        }
    };
    let Some(target) = crate::inputs::target(&args.target, rep) else {
        return EXIT_ERROR;
    };
    let inputs = Inputs {
        plan: &loaded.plan,
        profile: &loaded.profile,
        site_name: loaded.site_name.clone(),
        probe,
        audit,
        lang: match args.lang {
            ReportLang::En => Lang::En,
            ReportLang::De => Lang::De,
        },
        date: today(),
        rules: report::rule_count(&loaded.plan, target.name())
            .map(|n| (target.name().to_string(), n)),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let text = match args.format {
        ReportFormat::Html => report::html(&inputs),
        ReportFormat::Svg => report::svg(&inputs) + "\n",
    };
    match crate::output::write(args.output.as_deref(), &text) {
        Ok(()) => EXIT_OK,
        Err(d) => {
            rep.emit(&d);
            EXIT_ERROR
        }
    }
}
