//! `portolan probe`: plan -> targets -> concurrent probes -> report.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portolan_core::diag::Diagnostic;
use portolan_net::dns::Resolver;
use portolan_net::probe::{self, Options};
use portolan_net::report;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::args::{ProbeArgs, ProbeFormat};
use crate::report::{Reporter, EXIT_ERROR};

/// `3s`, `500ms`, `1.5s`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, Diagnostic> {
    let t = s.trim();
    // humantime reads `3s`, `500ms`, `2m`, `1h 30m`, ...; a bare number is seconds.
    let d = match humantime::parse_duration(t) {
        Ok(d) => d,
        Err(_) => match t.parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Duration::from_secs_f64(n),
            _ => return Err(bad_duration(s)),
        },
    };
    if d.is_zero() || d > Duration::from_secs(86_400) {
        return Err(bad_duration(s));
    }
    Ok(d)
}

fn bad_duration(s: &str) -> Diagnostic {
    Diagnostic::error(format!("`{}` is not a duration", s.escape_debug()))
        .with_help("write e.g. 3s, 500ms, 2m or 1h 30m (more than 0, at most 24h)")
}

fn load_ca(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, Diagnostic> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Diagnostic::error(format!("cannot read CA file {}: {e}", path.display())))?
        .collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(
            Diagnostic::error(format!("{} holds no PEM certificate", path.display()))
                .with_help("give a file with -----BEGIN CERTIFICATE----- blocks"),
        ),
        Err(e) => Err(Diagnostic::error(format!(
            "{}: bad PEM: {e}",
            path.display()
        ))),
    }
}

pub fn run(args: &ProbeArgs, rep: &mut Reporter) -> i32 {
    let fail = |rep: &mut Reporter, d: Diagnostic| {
        rep.emit(&d);
        EXIT_ERROR
    };
    let timeout = match parse_duration(&args.timeout) {
        Ok(t) => t,
        Err(d) => return fail(rep, d),
    };
    let server = match crate::inputs::resolver_addresses(&args.resolver) {
        Ok(s) => s,
        Err(d) => return fail(rep, d),
    };
    let inbound_target = match (&args.target, args.inbound) {
        (Some(t), true) => match t.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                return fail(
                    rep,
                    Diagnostic::error(format!("`{}` is not an IP address", t.escape_debug()))
                        .with_help(
                            "--target takes the appliance's address as this host reaches it",
                        ),
                )
            }
        },
        (Some(_), false) => {
            return fail(rep, Diagnostic::error("--target only goes with --inbound"))
        }
        _ => None,
    };
    if args.concurrency == 0 || args.per_destination == 0 {
        return fail(
            rep,
            Diagnostic::error("--concurrency and --per-destination must be at least 1"),
        );
    }
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let ca = match args.ca.as_ref().or(loaded.tls_ca.as_ref()) {
        Some(p) => match load_ca(p) {
            Ok(c) => c,
            Err(d) => return fail(rep, d),
        },
        None => vec![],
    };
    let flows: Vec<String> = args
        .flows
        .as_deref()
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for f in &flows {
        if !loaded.plan.flows.iter().any(|p| &p.id == f) {
            return fail(
                rep,
                Diagnostic::error(format!(
                    "--flows names `{}`, which is not a planned flow",
                    f.escape_debug()
                ))
                .with_help("`portolan plan` lists the planned flow ids"),
            );
        }
    }
    let opts = Arc::new(Options {
        timeout,
        concurrency: args.concurrency,
        per_destination: args.per_destination,
        ca,
        inbound_target,
        flows,
        all_ports: args.all_ports,
        rtt: Arc::default(),
    });
    let resolver = Resolver::new(server, timeout);
    let runtime = match crate::inputs::runtime() {
        Ok(r) => r,
        Err(d) => {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    };
    let start = Instant::now();
    let results = runtime.block_on(async {
        let names = indicatif::ProgressBar::new(0);
        names.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} names resolved {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let n2 = names.clone();
        let on_name: probe::ResolveProgress = Arc::new(move |done, all| {
            n2.set_length(all as u64);
            n2.set_position(done as u64);
        });
        let mut targets =
            probe::targets_with_progress(&loaded.plan, &opts, &resolver, on_name).await;
        names.finish_and_clear();
        if inbound_target.is_some() {
            // Inbound probes check the path to the appliance (or `portolan listen`), not the
            // certificates of its services.
            for t in &mut targets {
                if t.app == probe::App::Tls || t.app == probe::App::Ldaps {
                    t.app = probe::App::Tcp;
                }
            }
        }
        let bar = indicatif::ProgressBar::new(targets.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} probes {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let b2 = bar.clone();
        let progress: probe::Progress = Arc::new(move |_| b2.inc(1));
        let mut results = probe::run(&targets, &opts, progress).await;
        bar.finish_and_clear();
        if args.retry_failed {
            probe::retry_failed(&targets, &mut results, &opts).await;
        }
        results
    });
    let elapsed = start.elapsed().as_millis() as u64;
    let direction = if inbound_target.is_some() {
        "inbound"
    } else {
        "outbound"
    };
    let text = match args.format {
        ProbeFormat::Table => report::table(&results, elapsed),
        ProbeFormat::Json => report::json(&loaded.plan.profile, direction, &results, elapsed),
        ProbeFormat::Junit => report::junit(&loaded.plan.profile, &results, elapsed),
    };
    if let Err(d) = crate::output::write(args.output.as_deref(), &text) {
        return fail(rep, d);
    }
    report::exit_code(&results)
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_are_read_by_humantime_and_bounded() {
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("1h 30m").ok(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_duration(" 3 ").ok(), Some(Duration::from_secs(3)));
        for bad in ["0s", "25h", "soon", "", "-1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
