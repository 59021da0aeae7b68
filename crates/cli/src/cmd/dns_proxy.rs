//! `portolan dns-proxy`: forwarder that fills wildcard sets before answering.

use std::net::SocketAddr;
use std::sync::Arc;

use portolan_core::diag::Diagnostic;
use portolan_net::dns;
use portolan_net::dns_proxy::{self, Config, Handled};

use crate::args::DnsProxyArgs;
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
    let wilds = dns_proxy::wildcards(&loaded.plan);
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
                eprintln!("error: cannot listen on {listen} (UDP): {e}");
                return EXIT_ERROR;
            }
        };
        let tcp = match tokio::net::TcpListener::bind(listen).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {listen} (TCP): {e}");
                return EXIT_ERROR;
            }
        };
        eprintln!(
            "dns-proxy: answering {} and loopback on {listen}, forwarding to {upstream}; wildcards: {}",
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
        );
        let log: Arc<dyn Fn(&Handled) + Send + Sync> = Arc::new(|h: &Handled| match &h.error {
            Some(e) if h.name.is_empty() => eprintln!("dns-proxy: {e}"),
            Some(e) => eprintln!(
                "dns-proxy: {} ({}): SERVFAIL: {e}",
                h.name,
                h.wildcard.as_deref().unwrap_or("-")
            ),
            None => eprintln!(
                "dns-proxy: {} ({}): added {}",
                h.name,
                h.wildcard.as_deref().unwrap_or("-"),
                h.added
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
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
