//! Probing: try every planned flow for real, from this host, and say what is wrong.
//!
//! [`targets`] turns a plan into concrete probe targets (flow, host name, address, port,
//! application protocol); [`run`] probes them all concurrently, with a cap per destination
//! address (so an intrusion prevention system does not block us mid-run) and an overall cap,
//! so the total time is about that of the slowest probe. Each probe ends in one [`Verdict`].
//! Nothing here sends application data beyond what identifies the protocol (a greeting read,
//! an EHLO, a HEAD request, a DNS/NTP/SNMP/LDAP query); TLS probes never send application data.

pub mod app;
pub mod icmp;
pub mod tls;
pub mod transport;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portolan_core::model::{Flag, Protocol};
use portolan_core::plan::{Direction, Plan, SetKind};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::dns::{ResolveError, Resolver};

/// Default time a probe waits for an answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default number of probes in flight.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// Default number of probes in flight toward one address (an IPS may block a host that opens
/// many connections at once).
pub const DEFAULT_PER_DESTINATION: usize = 32;
/// Names resolved at once before probing.
pub const RESOLVE_CONCURRENCY: usize = 64;

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The port answered (and the expected protocol, where one is checked).
    Open,
    /// TCP reset or ICMP port unreachable.
    Refused,
    /// No answer within the timeout: no connection (SYN dropped, or no UDP reply where one
    /// is expected).
    Filtered,
    /// Connected, but the application said nothing within the timeout (a silent service, or
    /// a proxy or IPS that holds the connection): the path is open, the service is not.
    NoAnswer,
    /// ICMP host, network or administratively-prohibited unreachable.
    Unreachable,
    /// The name has no address (NXDOMAIN, no data, or the resolver did not answer).
    DnsFailure,
    /// TLS completed, but the chain does not lead to the expected roots.
    TlsIntercepted,
    /// TLS completed with a trusted chain for another name.
    TlsNameMismatch,
    /// TLS completed, but the certificate is expired or not yet valid.
    TlsExpired,
    /// The port is open but the expected protocol did not answer.
    ProtocolMismatch,
    /// UDP with no reply where silence is normal (e.g. syslog).
    OpenOrFiltered,
    /// This host may not send the probe (e.g. ICMP without the privilege).
    NotPermitted,
    /// The target cannot be probed from its description (a network, or a wildcard with no
    /// concrete name); never counts as a failure, always listed.
    NotProbeable,
    /// Anything else; the detail says what.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Refused => "refused",
            Verdict::Filtered => "filtered",
            Verdict::NoAnswer => "no-answer",
            Verdict::Unreachable => "unreachable",
            Verdict::DnsFailure => "dns-failure",
            Verdict::TlsIntercepted => "tls-intercepted",
            Verdict::TlsNameMismatch => "tls-name-mismatch",
            Verdict::TlsExpired => "tls-expired",
            Verdict::ProtocolMismatch => "protocol-mismatch",
            Verdict::OpenOrFiltered => "open-or-filtered",
            Verdict::NotPermitted => "not-permitted",
            Verdict::NotProbeable => "not-probeable",
            Verdict::Error => "error",
        }
    }
}

/// What to speak once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum App {
    Tcp,
    Udp,
    Tls,
    Http,
    Smtp,
    Ssh,
    Ftp,
    Pop3,
    Imap,
    Razor,
    Dns,
    Ntp,
    Ldap,
    Ldaps,
    Snmp,
    Syslog,
    Icmp,
}

/// The application protocol for a flow's `app`, or chosen by well-known port.
pub fn app_for(app: Option<&str>, protocol: Protocol, port: u16) -> (App, bool) {
    let by_name = |a: &str| -> Option<App> {
        Some(match a {
            "https" | "tls" | "activesync" | "imaps" | "pop3s" | "syslog-tls" | "ftps" | "ksn"
            | "cockpit" => App::Tls,
            "http" | "hkp" => App::Http,
            "smtp" | "submission" => App::Smtp,
            "ssh" | "sftp" => App::Ssh,
            "ftp" => App::Ftp,
            "pop3" => App::Pop3,
            "imap" => App::Imap,
            "razor" => App::Razor,
            "dns" => App::Dns,
            "ntp" => App::Ntp,
            "ldap" => App::Ldap,
            "ldaps" => App::Ldaps,
            "snmp" => App::Snmp,
            "syslog" | "snmp-trap" => App::Syslog,
            "icmp" => App::Icmp,
            "tcp" => App::Tcp,
            "udp" => App::Udp,
            _ => return None,
        })
    };
    if protocol == Protocol::Icmp {
        return (App::Icmp, false);
    }
    if let Some(a) = app.and_then(by_name) {
        // An application protocol only applies over the transport it runs on.
        let fits = match a {
            App::Dns => true,
            App::Ntp | App::Snmp | App::Syslog | App::Udp => protocol == Protocol::Udp,
            App::Icmp => false,
            _ => protocol == Protocol::Tcp,
        };
        if fits {
            return (a, false);
        }
    }
    let guess = match (protocol, port) {
        (Protocol::Tcp, 443 | 465 | 636 | 853 | 990 | 993 | 995 | 6514 | 8443 | 8445) => App::Tls,
        (Protocol::Tcp, 80 | 8080 | 11371) => App::Http,
        (Protocol::Tcp, 25 | 587) => App::Smtp,
        (Protocol::Tcp, 22) => App::Ssh,
        (Protocol::Tcp, 21) => App::Ftp,
        (Protocol::Tcp, 110) => App::Pop3,
        (Protocol::Tcp, 143) => App::Imap,
        (Protocol::Tcp, 2703) => App::Razor,
        (Protocol::Tcp, 389 | 3268) => App::Ldap,
        (_, 53) => App::Dns,
        (Protocol::Udp, 123) => App::Ntp,
        (Protocol::Udp, 161) => App::Snmp,
        (Protocol::Udp, 514 | 162) => App::Syslog,
        (Protocol::Tcp, _) => App::Tcp,
        _ => App::Udp,
    };
    (guess, guess != App::Tcp && guess != App::Udp)
}

/// One thing to probe.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub flow: String,
    pub protocol: Protocol,
    pub app: App,
    /// The app was chosen by port, not given by the profile.
    pub app_guessed: bool,
    pub host: Option<String>,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub required: bool,
    pub no_tls_interception: bool,
    /// Set when the target is known not to be probeable, or its name did not resolve.
    #[serde(skip)]
    pub preset: Option<(Verdict, String)>,
}

/// The result of one probe.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub flow: String,
    pub protocol: Protocol,
    pub app: App,
    pub host: Option<String>,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub verdict: Verdict,
    pub detail: String,
    pub elapsed_ms: u64,
    pub required: bool,
    /// Whether this result is acceptable for the flow.
    pub ok: bool,
}

impl ProbeResult {
    /// The result of probing `t`; `ok` follows from the verdict and the flow's flags.
    pub fn new(t: &Target, verdict: Verdict, detail: String, elapsed: Duration) -> Self {
        ProbeResult {
            flow: t.flow.clone(),
            protocol: t.protocol,
            app: t.app,
            host: t.host.clone(),
            address: t.address,
            port: t.port,
            verdict,
            detail,
            elapsed_ms: elapsed.as_millis() as u64,
            required: t.required,
            ok: acceptable(t, verdict),
        }
    }
}

/// Does this verdict mean the flow works?
pub fn acceptable(t: &Target, v: Verdict) -> bool {
    match v {
        Verdict::Open | Verdict::OpenOrFiltered | Verdict::NotProbeable => true,
        Verdict::TlsIntercepted => !t.no_tls_interception,
        _ => false,
    }
}

/// Options for a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub timeout: Duration,
    pub concurrency: usize,
    /// Probes in flight toward one address at most.
    pub per_destination: usize,
    /// Trusted roots for TLS (PEM file); the webpki roots when empty.
    pub ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Probe inbound flows toward this address instead of outbound ones.
    pub inbound_target: Option<IpAddr>,
    /// Only these flow ids, when not empty.
    pub flows: Vec<String>,
    /// Probe every port of a range (up to [`MAX_PORTS_PER_RANGE`]), not just its ends.
    pub all_ports: bool,
    /// Round-trip times of this run, for the adaptive handshake timeout.
    pub rtt: Arc<transport::Rtt>,
}

/// With `all_ports`, ports probed per range at most.
pub const MAX_PORTS_PER_RANGE: u32 = 4096;

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            per_destination: DEFAULT_PER_DESTINATION,
            ca: vec![],
            inbound_target: None,
            flows: vec![],
            all_ports: false,
            rtt: Arc::default(),
        }
    }
}

/// The ports probed for a flow: each range's ends, or every port with `all`.
fn probe_ports(ports: &[portolan_core::model::PortRange], all: bool) -> Vec<u16> {
    let mut v = Vec::new();
    for r in ports {
        if all {
            let hi = u32::from(r.high).min(u32::from(r.low) + MAX_PORTS_PER_RANGE - 1);
            v.extend((u32::from(r.low)..=hi).map(|p| p as u16));
        } else {
            v.push(r.low);
            if r.high != r.low {
                v.push(r.high);
            }
        }
    }
    v
}

/// A peer's addresses, or the verdict that stands in for probing it.
type Addresses = Result<Vec<IpAddr>, (Verdict, String)>;

/// Turn a plan into targets. DNS names are resolved here (pins first, then `resolver`).
pub async fn targets(plan: &Plan, opts: &Options, resolver: &Resolver) -> Vec<Target> {
    targets_with_progress(plan, opts, resolver, Arc::new(|_, _| {})).await
}

/// Called after each name is resolved, with (names done, names in all).
pub type ResolveProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// The names a plan's targets need resolved (unpinned DNS names, wildcards' probe names).
fn names_to_resolve(plan: &Plan, opts: &Options) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &plan.flows {
        if !opts.flows.is_empty() && !opts.flows.contains(&f.id) {
            continue;
        }
        if opts.inbound_target.is_some() || f.direction != Direction::Outbound {
            continue;
        }
        for peer in &f.destination.peers {
            let Some(set) = plan.set(&peer.set) else {
                continue;
            };
            let name = match peer.kind {
                _ if set.pinned => None,
                SetKind::Dns => Some(peer.name.clone()),
                SetKind::Wildcard => set.probe_name.clone(),
                _ => None,
            };
            if let Some(n) = name {
                if seen.insert(n.clone()) {
                    names.push(n);
                }
            }
        }
    }
    names
}

/// [`targets`], resolving every name at once (at most [`RESOLVE_CONCURRENCY`] in flight, each
/// under the resolver's own deadline), so a silent resolver costs one timeout, not one per
/// name; `progress` follows the lookups.
pub async fn targets_with_progress(
    plan: &Plan,
    opts: &Options,
    resolver: &Resolver,
    progress: ResolveProgress,
) -> Vec<Target> {
    let names = names_to_resolve(plan, opts);
    let total = names.len();
    let limit = Arc::new(Semaphore::new(RESOLVE_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for n in names {
        let (r, limit) = (resolver.clone(), limit.clone());
        set.spawn(async move {
            let _g = limit.acquire_owned().await.ok();
            let res = r.lookup(&n).await;
            (n, res)
        });
    }
    let mut cache: HashMap<String, Result<Vec<IpAddr>, ResolveError>> = HashMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((n, res)) = joined {
            cache.insert(n, res);
            progress(cache.len(), total);
        }
    }
    let mut out = Vec::new();
    for f in &plan.flows {
        if !opts.flows.is_empty() && !opts.flows.contains(&f.id) {
            continue;
        }
        let wanted = match opts.inbound_target {
            None => f.direction == Direction::Outbound,
            Some(_) => f.direction == Direction::Inbound,
        };
        if !wanted {
            continue;
        }
        let ports: Vec<Option<u16>> = if f.protocol == Protocol::Icmp {
            vec![None]
        } else {
            probe_ports(&f.ports, opts.all_ports)
                .into_iter()
                .map(Some)
                .collect()
        };
        let no_tls = f.flags.contains(&Flag::NoTlsInterception);
        let base = |host: Option<String>, address: Option<IpAddr>, port: Option<u16>| {
            let (app, guessed) = app_for(f.app.as_deref(), f.protocol, port.unwrap_or(0));
            Target {
                flow: f.id.clone(),
                protocol: f.protocol,
                app,
                app_guessed: guessed,
                host,
                address,
                port,
                required: f.required,
                no_tls_interception: no_tls,
                preset: None,
            }
        };
        if let Some(addr) = opts.inbound_target {
            for p in &ports {
                out.push(base(None, Some(addr), *p));
            }
            continue;
        }
        for peer in &f.destination.peers {
            let Some(set) = plan.set(&peer.set) else {
                continue;
            };
            let (addrs, host): (Addresses, Option<String>) = match peer.kind {
                // A pinned wildcard is still verified (and sent as SNI) by its concrete name.
                SetKind::Dns | SetKind::Wildcard if set.pinned => (
                    Ok(set.hosts.clone()),
                    Some(set.probe_name.clone().unwrap_or_else(|| peer.name.clone())),
                ),
                SetKind::Wildcard => match &set.probe_name {
                    Some(concrete) => {
                        let r = match cache.get(concrete) {
                            Some(r) => r.clone(),
                            None => resolver.lookup(concrete).await,
                        };
                        (r.map_err(|e| (Verdict::DnsFailure, e.to_string())), Some(concrete.clone()))
                    }
                    None => (
                        Err((
                            Verdict::NotProbeable,
                            format!(
                                "wildcard {} has no concrete name to probe; give one under [probe_names] in the site, or pin it under [hosts]",
                                peer.name
                            ),
                        )),
                        Some(peer.name.clone()),
                    ),
                },
                SetKind::Dns => {
                    let r = match cache.get(&peer.name) {
                        Some(r) => r.clone(),
                        None => {
                            let r = resolver.lookup(&peer.name).await;
                            cache.insert(peer.name.clone(), r.clone());
                            r
                        }
                    };
                    (
                        r.map_err(|e| (Verdict::DnsFailure, e.to_string())),
                        Some(peer.name.clone()),
                    )
                }
                SetKind::Role | SetKind::Network | SetKind::Appliance => {
                    let hosts = set.hosts.clone();
                    if hosts.is_empty() {
                        (
                            Err((
                                Verdict::NotProbeable,
                                format!(
                                    "{} `{}` is a network, not a host; bind it to host addresses to probe it",
                                    if peer.kind == SetKind::Role { "role" } else { "network" },
                                    peer.name
                                ),
                            )),
                            None,
                        )
                    } else {
                        // `[probe_names]` may name the role's certificate name.
                        (Ok(hosts), set.probe_name.clone())
                    }
                }
            };
            match addrs {
                Ok(list) if !list.is_empty() => {
                    for a in list {
                        for p in &ports {
                            out.push(base(host.clone(), Some(a), *p));
                        }
                    }
                }
                Ok(_) => {
                    let mut t = base(host, None, ports[0]);
                    t.preset = Some((Verdict::DnsFailure, "the name has no addresses".into()));
                    out.push(t);
                }
                Err(preset) => {
                    let mut t = base(host, None, ports[0]);
                    t.preset = Some(preset);
                    out.push(t);
                }
            }
        }
    }
    out
}

/// Probe one target.
pub async fn probe_one(t: &Target, opts: &Options) -> (Verdict, String) {
    if let Some((v, d)) = &t.preset {
        return (*v, d.clone());
    }
    let Some(addr) = t.address else {
        return (Verdict::Error, "no address".into());
    };
    let (v, mut detail) = match t.app {
        App::Icmp => icmp::echo(addr, opts.timeout).await,
        _ => {
            let Some(port) = t.port else {
                return (Verdict::Error, "no port".into());
            };
            let sa = SocketAddr::new(addr, port);
            app::probe(t, sa, opts).await
        }
    };
    if t.app_guessed {
        detail.push_str(&format!(" (expected {:?} chosen by port)", t.app).to_lowercase());
    }
    (v, detail)
}

/// Called after each probe (for a progress bar).
pub type Progress = Arc<dyn Fn(&ProbeResult) + Send + Sync>;

/// Probe all targets concurrently; results in target order.
pub async fn run(targets: &[Target], opts: &Arc<Options>, progress: Progress) -> Vec<ProbeResult> {
    let overall = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut per_dest: HashMap<IpAddr, Arc<Semaphore>> = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let dest = t.address.map(|a| {
            per_dest
                .entry(a)
                .or_insert_with(|| Arc::new(Semaphore::new(opts.per_destination.max(1))))
                .clone()
        });
        let (overall, opts, progress, t) =
            (overall.clone(), opts.clone(), progress.clone(), t.clone());
        set.spawn(async move {
            let _d = match dest {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            };
            let _g = overall.acquire_owned().await.ok();
            let start = Instant::now();
            let (verdict, detail) = probe_one(&t, &opts).await;
            let r = ProbeResult::new(&t, verdict, detail, start.elapsed());
            progress(&r);
            (i, r)
        });
    }
    let mut results: Vec<Option<ProbeResult>> = vec![None; targets.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .zip(targets)
        .map(|(r, t)| {
            r.unwrap_or_else(|| {
                ProbeResult::new(
                    t,
                    Verdict::Error,
                    "the probe task failed".into(),
                    Duration::ZERO,
                )
            })
        })
        .collect()
}

/// Probe the failed targets once more, all at once under the same limits as the first run,
/// and mark the results as retried.
pub async fn retry_failed(targets: &[Target], results: &mut [ProbeResult], opts: &Arc<Options>) {
    let again: Vec<usize> = (0..targets.len().min(results.len()))
        .filter(|&i| !results[i].ok && targets[i].preset.is_none())
        .collect();
    if again.is_empty() {
        return;
    }
    let subset: Vec<Target> = again.iter().map(|&i| targets[i].clone()).collect();
    // A retry waits the whole --timeout: it is there to catch the slow answer.
    let full = Arc::new(Options {
        rtt: Arc::default(),
        ..(**opts).clone()
    });
    let fresh = run(&subset, &full, Arc::new(|_: &ProbeResult| {})).await;
    for (i, r) in again.into_iter().zip(fresh) {
        results[i].verdict = r.verdict;
        results[i].detail = format!("{} (retried)", r.detail);
        results[i].elapsed_ms = r.elapsed_ms;
        results[i].ok = r.ok;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_comes_from_the_profile_then_the_port() {
        assert_eq!(
            app_for(Some("smtp"), Protocol::Tcp, 2525),
            (App::Smtp, false)
        );
        assert_eq!(app_for(Some("ksn"), Protocol::Tcp, 443), (App::Tls, false));
        // An app that does not fit the transport falls back to the port.
        assert_eq!(app_for(Some("ntp"), Protocol::Tcp, 123), (App::Tcp, false));
        assert_eq!(app_for(None, Protocol::Tcp, 443), (App::Tls, true));
        assert_eq!(app_for(None, Protocol::Udp, 123), (App::Ntp, true));
        assert_eq!(app_for(None, Protocol::Tcp, 5001), (App::Tcp, false));
        // Regression: `app = "tcp"` on port 443 means a plain connect, not TLS.
        assert_eq!(app_for(Some("tcp"), Protocol::Tcp, 443), (App::Tcp, false));
        assert_eq!(app_for(None, Protocol::Icmp, 0), (App::Icmp, false));
    }

    #[test]
    fn interception_fails_only_flows_that_forbid_it() {
        let mut t = Target {
            flow: "x".into(),
            protocol: Protocol::Tcp,
            app: App::Tls,
            app_guessed: false,
            host: None,
            address: None,
            port: Some(443),
            required: true,
            no_tls_interception: false,
            preset: None,
        };
        assert!(acceptable(&t, Verdict::TlsIntercepted));
        t.no_tls_interception = true;
        assert!(!acceptable(&t, Verdict::TlsIntercepted));
        assert!(acceptable(&t, Verdict::OpenOrFiltered));
        assert!(!acceptable(&t, Verdict::Filtered));
    }
}
