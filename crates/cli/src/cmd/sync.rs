//! `portolan sync`: one pass (`--once`) or a daemon keeping DNS sets current.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portolan_core::diag::Diagnostic;
use portolan_net::dns::Resolver;
use portolan_net::sync::{self, Config, Outcome, Syncer};

use crate::args::{Format, SetTarget, SyncArgs};
use crate::log::Log;
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_WARNINGS};

use super::probe::parse_duration;

fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        let addrs: Vec<String> = o.asserted.iter().map(ToString::to_string).collect();
        s.push_str(&format!(
            "{:<40} {:<9} {}{}  [{}]\n",
            o.name,
            o.result,
            if o.stale && !o.asserted.is_empty() {
                "(last known good) "
            } else {
                ""
            },
            addrs.join(" "),
            o.detail
        ));
    }
    s
}

pub fn run(args: &SyncArgs, rep: &mut Reporter) -> i32 {
    let fail = |rep: &mut Reporter, d: Diagnostic| {
        rep.emit(&d);
        EXIT_ERROR
    };
    let durations = [
        &args.min_refresh,
        &args.max_refresh,
        &args.max_stale,
        &args.timeout,
    ]
    .map(|s| parse_duration(s));
    let mut parsed = Vec::new();
    for d in durations {
        match d {
            Ok(d) => parsed.push(d),
            Err(e) => return fail(rep, e),
        }
    }
    let (min_refresh, max_refresh, max_stale, timeout) =
        (parsed[0], parsed[1], parsed[2], parsed[3]);
    if min_refresh > max_refresh {
        return fail(
            rep,
            Diagnostic::error("--min-refresh is longer than --max-refresh"),
        );
    }
    let server = match crate::inputs::resolver_addresses(&args.resolver) {
        Ok(s) => s,
        Err(d) => return fail(rep, d),
    };
    let metrics_addr: Option<SocketAddr> = match &args.metrics {
        Some(m) => match m.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                return fail(
                    rep,
                    Diagnostic::error(format!("`{}` is not ADDR:PORT", m.escape_debug())),
                )
            }
        },
        None => None,
    };
    // The metrics file's directory must exist now, not at the first pass.
    if let Some(f) = &args.metrics_file {
        let dir = f.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = dir.filter(|d| !d.is_dir()) {
            return fail(
                rep,
                Diagnostic::error(format!(
                    "--metrics-file {}: the directory {} does not exist",
                    f.display(),
                    d.display()
                ))
                .with_help("create it, or give a file in an existing directory"),
            );
        }
    }
    let log = Log {
        format: args.log_format,
        program: "sync",
    };
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let sets = args.target.sets();
    let targets = sync::targets(&loaded.plan, sets);
    if targets.is_empty() {
        rep.emit(&Diagnostic::warning(
            "the plan has no DNS name to keep current (all pinned, or none used)",
        ));
        return EXIT_OK;
    }
    let config = Config {
        min_refresh,
        max_refresh,
        max_stale,
        ..Config::default()
    };
    let mut syncer = match Syncer::new(
        config,
        Resolver::new(server, timeout),
        targets,
        args.state_dir.clone(),
        portolan_net::sets::Service::start(sets, Box::new(move |m: &str| log.warn(m, &[]))),
    ) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                rep,
                Diagnostic::error(e).with_help("move the damaged state file away; it is rebuilt"),
            )
        }
    };
    let runtime = match crate::inputs::runtime() {
        Ok(r) => r,
        Err(d) => {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    };
    let metrics_text = Arc::new(Mutex::new(String::new()));
    let write_metrics = |syncer: &Syncer, text: &Arc<Mutex<String>>| {
        let m = syncer.metrics.render(&syncer.state);
        if let Some(f) = &args.metrics_file {
            let _ = crate::output::write(Some(f), &m);
        }
        if let Ok(mut t) = text.lock() {
            *t = m;
        }
    };
    runtime.block_on(async {
        if let Err(e) = syncer.restore().await {
            log.warn(
                &format!("could not apply the last known good addresses: {e}"),
                &[],
            );
        }
        if args.once {
            let (outcomes, committed) = syncer.pass(None).await;
            write_metrics(&syncer, &metrics_text);
            let text = match args.format {
                Format::Json => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&serde_json::json!({"names": outcomes}))
                        .unwrap_or_default()
                ),
                Format::Table => table(&outcomes),
            };
            let _ = crate::output::write(None, &text);
            if let Err(e) = committed {
                let target = match args.target {
                    SetTarget::Nftables => "nftables",
                    SetTarget::Iptables => "iptables",
                };
                eprintln!("error: writing the sets failed: {e}");
                eprintln!(
                    "  help: load the rendered ruleset first: portolan load --target {target} ..."
                );
                return EXIT_WARNINGS;
            }
            if outcomes.iter().any(|o| o.asserted.is_empty()) {
                return EXIT_WARNINGS;
            }
            return EXIT_OK;
        }
        if let Some(addr) = metrics_addr {
            let text = metrics_text.clone();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    tokio::spawn(serve_metrics(l, text));
                }
                Err(e) => log.warn(&format!("cannot serve metrics on {addr}: {e}"), &[]),
            }
        }
        let mut due: std::collections::BTreeMap<String, tokio::time::Instant> = syncer
            .targets
            .iter()
            .map(|t| (t.name.clone(), tokio::time::Instant::now()))
            .collect();
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            let now = tokio::time::Instant::now();
            let names: Vec<String> = due
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(n, _)| n.clone())
                .collect();
            if !names.is_empty() {
                let (outcomes, committed) = syncer.pass(Some(&names)).await;
                for o in &outcomes {
                    let level = if o.result == "ok" { "info" } else { "warning" };
                    log.line(
                        level,
                        &format!("{} {}: {}", o.name, o.result, o.detail),
                        &[
                            ("name", o.name.clone().into()),
                            ("result", o.result.into()),
                            (
                                "addresses",
                                o.asserted
                                    .iter()
                                    .map(|a| a.to_string().into())
                                    .collect::<Vec<serde_json::Value>>()
                                    .into(),
                            ),
                            ("stale", o.stale.into()),
                            ("next_in", o.next_in.into()),
                        ],
                    );
                    due.insert(o.name.clone(), now + Duration::from_secs(o.next_in.max(1)));
                }
                if let Err(e) = committed {
                    log.error(&format!("writing the sets failed: {e}"), &[]);
                }
                write_metrics(&syncer, &metrics_text);
            }
            let next = due
                .values()
                .min()
                .copied()
                .unwrap_or(now + Duration::from_secs(60));
            let stop = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = stop => break,
            }
        }
        log.info("stopping", &[]);
        EXIT_OK
    })
}

async fn serve_metrics(l: tokio::net::TcpListener, text: Arc<Mutex<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut c, _)) = l.accept().await else {
            continue;
        };
        let body = text.lock().map(|t| t.clone()).unwrap_or_default();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await;
            let resp = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = c.write_all(resp.as_bytes()).await;
        });
    }
}
