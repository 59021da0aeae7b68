//! `portolan dns-proxy`: forwarder that fills wildcard sets before answering.

use std::net::SocketAddr;
use std::sync::Arc;

use portolan_core::diag::Diagnostic;
use portolan_net::dns;
use portolan_net::dns_proxy::{self, Config, Handled};

use crate::args::DnsProxyArgs;
use crate::log::Log;
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

pub fn run(args: &DnsProxyArgs, rep: &mut Reporter) -> i32 {
    let fail = |rep: &mut Reporter, d: Diagnostic| {
        rep.emit(&d);
        EXIT_ERROR
    };
    let timeout = match super::probe::parse_duration(&args.timeout) {
        Ok(t) => t,
        Err(d) => return fail(rep, d),
    };
    let min_timeout = match super::probe::parse_duration(&args.min_timeout) {
        Ok(t) => t,
        Err(d) => return fail(rep, d),
    };
    let log = Log {
        format: args.log_format,
        program: "dns-proxy",
    };
    let Ok(listen) = args.listen.parse::<SocketAddr>() else {
        return fail(
            rep,
            Diagnostic::error(format!("`{}` is not ADDR:PORT", args.listen.escape_debug()))
                .with_help("e.g. --listen 127.0.0.1:53 or --listen [::1]:53"),
        );
    };
    let Some(upstream) = dns::parse_server(&args.upstream) else {
        return fail(
            rep,
            Diagnostic::error(format!(
                "`{}` is not a resolver address",
                args.upstream.escape_debug()
            ))
            .with_help("write ADDR or ADDR:PORT"),
        );
    };
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let mut allow = dns_proxy::default_allow(&loaded.plan);
    for a in &args.allow {
        match portolan_core::site::parse_net(a) {
            Ok(n) => allow.push(n),
            Err(m) => {
                return fail(
                    rep,
                    Diagnostic::error(format!("--allow {}: {m}", a.escape_debug()))
                        .with_help("give a network or address, e.g. --allow 192.0.2.0/24"),
                )
            }
        }
    }
    let mut config = Config::new(upstream, timeout, allow);
    config.rate = args.rate.max(1);
    config.sets = args.target.sets();
    config.min_timeout = min_timeout;
    let wilds = dns_proxy::wildcards(&loaded.plan, config.sets);
    if wilds.is_empty() {
        rep.emit(&Diagnostic::warning(
            "the plan has no unpinned wildcard name: the proxy only forwards",
        ));
    }
    let runtime = match crate::inputs::runtime() {
        Ok(r) => r,
        Err(d) => {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    };
    runtime.block_on(async move {
        let sock = match tokio::net::UdpSocket::bind(listen).await {
            Ok(s) => s,
            Err(e) => {
                log.error(&format!("cannot listen on {listen} (UDP): {e}"), &[]);
                return EXIT_ERROR;
            }
        };
        let tcp = match tokio::net::TcpListener::bind(listen).await {
            Ok(s) => s,
            Err(e) => {
                log.error(&format!("cannot listen on {listen} (TCP): {e}"), &[]);
                return EXIT_ERROR;
            }
        };
        log.info(
            &format!(
                "answering {} and loopback on {listen}, forwarding to {upstream}; wildcards: {}",
                config
                    .allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                wilds
                    .iter()
                    .map(|w| w.pattern.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &[],
        );
        let log: Arc<dyn Fn(&Handled) + Send + Sync> = Arc::new(move |h: &Handled| {
            let fields = |extra: Vec<(&'static str, serde_json::Value)>| {
                let mut f: Vec<(&str, serde_json::Value)> = vec![
                    ("name", h.name.clone().into()),
                    ("wildcard", h.wildcard.clone().into()),
                ];
                f.extend(extra);
                f
            };
            match &h.error {
                // Messages of the proxy itself (refusals, the writer's warnings).
                Some(e) if h.name.is_empty() => match e.strip_prefix("warning: ") {
                    Some(w) => log.warn(w, &[]),
                    None => log.info(e, &[]),
                },
                Some(e) => log.error(
                    &format!("{}: SERVFAIL: {e}", h.name),
                    &fields(vec![("error", e.clone().into())]),
                ),
                // An answer without addresses changed nothing: not worth a line.
                None if h.added.is_empty() => {}
                None => log.info(
                    &format!(
                        "{} ({}): in the set: {}",
                        h.name,
                        h.wildcard.as_deref().unwrap_or("-"),
                        h.added
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    &fields(vec![(
                        "addresses",
                        h.added
                            .iter()
                            .map(|a| a.to_string().into())
                            .collect::<Vec<serde_json::Value>>()
                            .into(),
                    )]),
                ),
            }
        });
        let stop = async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
        };
        dns_proxy::serve(sock, tcp, config, wilds, log, stop).await;
        EXIT_OK
    })
}
