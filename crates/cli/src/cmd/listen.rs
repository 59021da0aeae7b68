//! `portolan listen`: listeners for every inbound flow, one JSON line per event.

use std::io::Write;
use std::sync::Arc;

use portolan_core::diag::Diagnostic;
use portolan_net::listen;

use crate::args::ListenArgs;
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

pub fn run(args: &ListenArgs, rep: &mut Reporter) -> i32 {
    let duration = match args
        .duration
        .as_deref()
        .map(super::probe::parse_duration)
        .transpose()
    {
        Ok(d) => d,
        Err(d) => {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    };
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let endpoints = listen::endpoints(&loaded.plan);
    if endpoints.is_empty() {
        rep.emit(
            &Diagnostic::error("no inbound TCP or UDP flow is planned: nothing to listen for")
                .with_help("enable the features of the inbound flows with --features"),
        );
        return EXIT_ERROR;
    }
    let runtime = match crate::inputs::runtime() {
        Ok(r) => r,
        Err(d) => {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    };
    let log: listen::Log = Arc::new(|v: serde_json::Value| {
        let failed = v.get("event").and_then(|e| e.as_str()) == Some("bind-failed");
        if failed {
            if let Some(r) = v.get("reason").and_then(|r| r.as_str()) {
                eprintln!("warning: cannot listen: {r}");
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    });
    runtime.block_on(async move {
        let stop = async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            let timer = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
                _ = timer => {}
            }
        };
        listen::run(endpoints, log, stop).await;
    });
    EXIT_OK
}
