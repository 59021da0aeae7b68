//! `portolan dns-proxy`: a DNS forwarder that makes wildcard names work in the firewall.
//!
//! A query whose name falls under a wildcard of the plan (`*.avcloud.intra2net.com`) is
//! forwarded upstream; the A/AAAA addresses of the answer (following the CNAME chain that
//! starts at the question name) are added to that wildcard's nft set, and the answer goes to
//! the client only after that update is committed, so the appliance's first packet is never
//! dropped. If the update fails, the client gets SERVFAIL. TTLs in the reply are capped below
//! the element timeout. Other queries are forwarded unchanged. Only answers from the
//! configured upstream are accepted: each forward uses a fresh socket on a random port
//! connected to the upstream, with a random query id of the proxy's own (the client's id is
//! restored in the reply), and the answer must carry that id and the question.
//!
//! It is not an open resolver, and a client cannot make it do unbounded work:
//! - only clients in [`Config::allow`] (the appliance's addresses and loopback by default)
//!   are served; everyone else gets REFUSED, and nothing they ask is forwarded or enters a set;
//! - each client has a token bucket ([`Config::rate`] queries per second, twice that as
//!   burst); queries over it are dropped without an answer;
//! - at most [`Config::max_inflight`] queries are worked on at once (UDP and TCP together);
//!   the receive loop waits for a free slot, so a flood fills the kernel's socket buffer, not
//!   memory; at most [`Config::max_tcp`] TCP connections, each closed after
//!   [`Config::tcp_idle`] without a complete query;
//! - UDP answers larger than the client's advertised size (512 bytes without EDNS) are sent
//!   truncated (TC set, question only), so the client asks again over TCP.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use ipnet::IpNet;
use portolan_core::model::wildcard_matches;
use portolan_core::plan::{Plan, SetKind};
use portolan_core::render::{self, Family};
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::dns::{answers, chain_addresses, read_framed, write_framed};
use crate::sets::{Service, Sets, RECENT};
use crate::sync::SetUpdate;

/// Element timeouts are at least this long, whatever the TTL (`--min-timeout`): clients
/// cache addresses beyond the TTL (browsers, JVMs, connection pools), and an address must
/// not leave the set while the appliance may still connect to it.
pub const MIN_ELEMENT_TIMEOUT: Duration = Duration::from_secs(600);
/// Added to the TTL for the element timeout; reply TTLs stay below the timeout by this much.
pub const GRACE: Duration = Duration::from_secs(30);
/// Largest DNS message read over UDP (from a client or the upstream).
const MAX_UDP: usize = 65_535;
/// Queries worked on at once, UDP and TCP together.
pub const MAX_INFLIGHT: usize = 256;
/// TCP connections at once.
pub const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP connection is closed after this long without a complete query.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries per second per client (the burst is twice this).
pub const CLIENT_RATE: u32 = 200;
/// Clients whose rate is tracked at once; past this, idle ones are forgotten.
const MAX_TRACKED_CLIENTS: usize = 4096;

/// A wildcard and the sets it fills: its own, or the groups of wildcards that share a match.
#[derive(Debug, Clone)]
pub struct Wildcard {
    pub pattern: String,
    pub sets_v4: Vec<String>,
    pub sets_v6: Vec<String>,
}

/// The wildcards the rendered rules use (unpinned ones; pinned sets are static), with the
/// names the target (`sets`) gives their sets.
pub fn wildcards(plan: &Plan, sets: Sets) -> Vec<Wildcard> {
    let (rules, _) = render::lower(plan);
    let mut out: Vec<Wildcard> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for (sref, fed) in render::dynamic_feeds(plan, &rules) {
        let Some(kernel) = render::set_of(plan, sref) else {
            continue;
        };
        let Some(n) = sets.target().set_name(&kernel, sref.family) else {
            continue;
        };
        for set in fed.into_iter().filter(|s| s.kind == SetKind::Wildcard) {
            let idx = *index.entry(set.name.clone()).or_insert_with(|| {
                out.push(Wildcard {
                    pattern: set.name.clone(),
                    sets_v4: Vec::new(),
                    sets_v6: Vec::new(),
                });
                out.len() - 1
            });
            let v = match sref.family {
                Family::V4 => &mut out[idx].sets_v4,
                Family::V6 => &mut out[idx].sets_v6,
            };
            if !v.contains(&n) {
                v.push(n.clone());
            }
        }
    }
    out
}

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub upstream: SocketAddr,
    pub timeout: Duration,
    /// Clients that are answered (loopback always is); everyone else gets REFUSED.
    pub allow: Vec<IpNet>,
    /// Queries per second per client; the burst is twice this.
    pub rate: u32,
    pub max_inflight: usize,
    pub max_tcp: usize,
    pub tcp_idle: Duration,
    /// Which kernel sets the addresses go into.
    pub sets: Sets,
    /// Element timeouts are at least this long (see [`MIN_ELEMENT_TIMEOUT`]).
    pub min_timeout: Duration,
}

impl Config {
    /// The defaults above, answering `allow` (and loopback).
    pub fn new(upstream: SocketAddr, timeout: Duration, allow: Vec<IpNet>) -> Config {
        Config {
            upstream,
            timeout,
            allow,
            rate: CLIENT_RATE,
            max_inflight: MAX_INFLIGHT,
            max_tcp: MAX_TCP_CONNECTIONS,
            tcp_idle: TCP_IDLE,
            sets: Sets::Nftables,
            min_timeout: MIN_ELEMENT_TIMEOUT,
        }
    }

    /// May `client` use the proxy?
    pub fn allows(&self, client: IpAddr) -> bool {
        let ip = client.to_canonical();
        ip.is_loopback() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// The appliance's own addresses from the plan: the clients served by default.
pub fn default_allow(plan: &Plan) -> Vec<IpNet> {
    let a = plan.appliance();
    a.v4.iter()
        .map(|n| IpNet::V4(*n))
        .chain(a.v6.iter().map(|n| IpNet::V6(*n)))
        .collect()
}

/// Per-client token buckets, bounded in size.
struct Limiter {
    rate: f64,
    burst: f64,
    clients: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Limiter {
    fn new(rate: u32) -> Limiter {
        let rate = f64::from(rate.max(1));
        Limiter {
            rate,
            burst: 2.0 * rate,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `ip`; false when its bucket is empty.
    fn admit(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let Ok(mut map) = self.clients.lock() else {
            return false;
        };
        if map.len() >= MAX_TRACKED_CLIENTS && !map.contains_key(&ip) {
            // Forget clients whose bucket has refilled: they lose nothing by it.
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if map.len() >= MAX_TRACKED_CLIENTS {
                return false;
            }
        }
        let (tokens, at) = map.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Forward over TCP (for clients that asked over TCP, e.g. after a truncated answer).
async fn forward_tcp(
    cfg: &Config,
    query: &[u8],
    q: &Message,
) -> Result<(Vec<u8>, Message), String> {
    let body = crate::dns::exchange_tcp(cfg.upstream, query, cfg.timeout)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => "upstream timeout".to_string(),
            _ => e.to_string(),
        })?;
    let m = Message::from_vec(&body).map_err(|e| e.to_string())?;
    if !answers(q, &m) {
        return Err("the upstream's answer does not match the question".into());
    }
    Ok((body, m))
}

/// Forward `query` to the upstream and return its answer, checked to be the answer to it.
async fn forward(cfg: &Config, query: &[u8], q: &Message) -> Result<(Vec<u8>, Message), String> {
    crate::dns::exchange_udp(cfg.upstream, query, q, cfg.timeout)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => "upstream timeout".to_string(),
            _ => e.to_string(),
        })
}

fn error_reply(q: &Message, code: ResponseCode) -> Vec<u8> {
    let mut m = Message::error_msg(q.metadata.id, q.metadata.op_code, code);
    m.queries = q.queries.clone();
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.to_vec().unwrap_or_default()
}

fn servfail(q: &Message) -> Vec<u8> {
    error_reply(q, ResponseCode::ServFail)
}

/// REFUSED for a query from a client that is not allowed (None if it is not DNS at all).
pub fn refused(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    (q.metadata.message_type == hickory_proto::op::MessageType::Query)
        .then(|| error_reply(&q, ResponseCode::Refused))
}

/// Make a UDP reply fit the size the client offered (512 bytes without EDNS): if it does
/// not, the header and question only, with TC set, so the client retries over TCP.
pub fn fit_udp(query: &[u8], reply: Vec<u8>) -> Vec<u8> {
    let max = Message::from_vec(query)
        .map(|q| usize::from(q.max_payload()))
        .unwrap_or(512);
    if reply.len() <= max {
        return reply;
    }
    match Message::from_vec(&reply) {
        Ok(m) => m.truncate().to_vec().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// What happened to one query (for the log).
#[derive(Debug, Clone)]
pub struct Handled {
    pub name: String,
    pub wildcard: Option<String>,
    pub added: Vec<IpAddr>,
    pub error: Option<String>,
}

/// Answer one client query (`tcp`: it came over TCP, so ask the upstream over TCP too).
pub async fn handle(
    cfg: &Config,
    wilds: &[Wildcard],
    writer: &Service,
    query: &[u8],
    tcp: bool,
) -> (Option<Vec<u8>>, Option<Handled>) {
    let Ok(q) = Message::from_vec(query) else {
        return (None, None);
    };
    let Some(question) = q.queries.first().cloned() else {
        return (None, None);
    };
    let qname = question.name().to_lowercase();
    let text = qname.to_ascii().trim_end_matches('.').to_string();
    let wild = matches!(
        question.query_type(),
        RecordType::A | RecordType::AAAA | RecordType::ANY
    )
    .then(|| wilds.iter().find(|w| wildcard_matches(&w.pattern, &text)))
    .flatten();
    // The upstream sees an id of our own choosing, not the client's: the answer's
    // authenticity must not depend on how well the client picks its ids.
    let mut upstream_query = query.to_vec();
    let mut asked = q.clone();
    asked.metadata.id = crate::dns::random_id();
    if upstream_query.len() >= 2 {
        upstream_query[..2].copy_from_slice(&asked.metadata.id.to_be_bytes());
    }
    let forwarded = if tcp {
        forward_tcp(cfg, &upstream_query, &asked).await
    } else {
        forward(cfg, &upstream_query, &asked).await
    };
    // Back to the client's id.
    let forwarded = forwarded.map(|(mut bytes, mut answer)| {
        if bytes.len() >= 2 {
            bytes[..2].copy_from_slice(&q.metadata.id.to_be_bytes());
        }
        answer.metadata.id = q.metadata.id;
        (bytes, answer)
    });
    let (bytes, mut answer) = match forwarded {
        Ok(x) => x,
        Err(e) => {
            let h = Handled {
                name: text,
                wildcard: wild.map(|w| w.pattern.clone()),
                added: vec![],
                error: Some(e),
            };
            return (Some(servfail(&q)), Some(h));
        }
    };
    let Some(w) = wild else {
        // Not ours: unchanged.
        return (Some(bytes), None);
    };
    let (addrs, ttl) = chain_addresses(&answer, &qname);
    let mut handled = Handled {
        name: text,
        wildcard: Some(w.pattern.clone()),
        added: addrs.clone(),
        error: None,
    };
    if addrs.is_empty() {
        return (Some(bytes), Some(handled));
    }
    let timeout = Duration::from_secs(u64::from(ttl)).max(cfg.min_timeout) + GRACE;
    let mut updates = Vec::new();
    for (sets, v4) in [(&w.sets_v4, true), (&w.sets_v6, false)] {
        for set in sets {
            let a: Vec<IpAddr> = addrs
                .iter()
                .filter(|a| a.is_ipv4() == v4)
                .copied()
                .collect();
            if !a.is_empty() {
                updates.push(SetUpdate {
                    set: set.clone(),
                    addresses: a,
                    timeout,
                });
            }
        }
    }
    // Addresses written within RECENT are in the set with at least `timeout - RECENT` to
    // live; the others are written now. The answer goes out only after the kernel has them.
    if let Err(e) = writer.commit(updates, true).await {
        handled.error = Some(e);
        return (Some(servfail(&q)), Some(handled));
    }
    // Cap TTLs so the client asks again before the elements expire.
    let cap = timeout.saturating_sub(GRACE + RECENT).as_secs().max(1) as u32;
    for r in answer.answers.iter_mut() {
        r.ttl = r.ttl.min(cap);
    }
    match answer.to_vec() {
        Ok(b) => (Some(b), Some(handled)),
        Err(_) => (Some(bytes), Some(handled)),
    }
}

/// What the proxy shares between its UDP loop and its TCP connections.
struct Server {
    cfg: Config,
    wilds: Vec<Wildcard>,
    writer: Service,
    log: Arc<dyn Fn(&Handled) + Send + Sync>,
    limiter: Limiter,
    /// Queries worked on at once, UDP and TCP together.
    inflight: Arc<Semaphore>,
    /// Clients whose first refusal was logged (bounded).
    refused_logged: Mutex<HashSet<IpAddr>>,
}

/// What to do with a client's query before any work is done for it.
enum Admission {
    Serve,
    /// Over its rate: no answer at all.
    Drop,
    /// Not an allowed client: REFUSED (if the query is DNS at all).
    Refuse(Option<Vec<u8>>),
}

impl Server {
    fn admit(&self, ip: IpAddr, query: &[u8]) -> Admission {
        if !self.limiter.admit(ip) {
            return Admission::Drop;
        }
        if self.cfg.allows(ip) {
            return Admission::Serve;
        }
        let first = self
            .refused_logged
            .lock()
            .map(|mut s| s.len() < MAX_TRACKED_CLIENTS && s.insert(ip))
            .unwrap_or(false);
        if first {
            (self.log)(&Handled {
                name: String::new(),
                wildcard: None,
                added: vec![],
                error: Some(format!(
                    "REFUSED: client {ip} is not allowed (give --allow to serve it); further refusals of it are not logged"
                )),
            });
        }
        Admission::Refuse(refused(query))
    }

    /// A slot of the in-flight bound; waits until one is free.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.inflight.clone().acquire_owned().await.ok()
    }

    /// Answer one admitted query, holding `slot` (of the in-flight bound) while working.
    async fn answer(&self, slot: OwnedSemaphorePermit, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let _slot = slot;
        let (reply, handled) = handle(&self.cfg, &self.wilds, &self.writer, query, tcp).await;
        if let Some(h) = &handled {
            (self.log)(h);
        }
        reply
    }
}

/// Serve on `sock` (UDP) and `tcp` until `stop` resolves. `log` is told about each wildcard
/// query, and about the first refused query of each client.
pub async fn serve(
    sock: UdpSocket,
    tcp: tokio::net::TcpListener,
    cfg: Config,
    wilds: Vec<Wildcard>,
    log: Arc<dyn Fn(&Handled) + Send + Sync>,
    stop: impl std::future::Future<Output = ()>,
) {
    let sock = Arc::new(sock);
    let connections = Arc::new(Semaphore::new(cfg.max_tcp.max(1)));
    let warn_log = log.clone();
    let writer = Service::start(
        cfg.sets,
        Box::new(move |msg: &str| {
            warn_log(&Handled {
                name: String::new(),
                wildcard: None,
                added: vec![],
                error: Some(format!("warning: {msg}")),
            })
        }),
    );
    let server = Arc::new(Server {
        writer,
        inflight: Arc::new(Semaphore::new(cfg.max_inflight.max(1))),
        limiter: Limiter::new(cfg.rate),
        refused_logged: Mutex::new(HashSet::new()),
        cfg,
        wilds,
        log,
    });
    let serve_udp = {
        let server = server.clone();
        async move {
            let mut buf = vec![0u8; MAX_UDP];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                match server.admit(peer.ip().to_canonical(), &buf[..n]) {
                    Admission::Serve => {}
                    Admission::Drop | Admission::Refuse(None) => continue,
                    Admission::Refuse(Some(r)) => {
                        let _ = sock.send_to(&r, peer).await;
                        continue;
                    }
                }
                // Wait for a free slot before taking the next datagram: bounded work, and
                // the kernel queues the rest.
                let Some(slot) = server.slot().await else {
                    return;
                };
                let query = buf[..n].to_vec();
                let (sock, server) = (sock.clone(), server.clone());
                tokio::spawn(async move {
                    if let Some(r) = server.answer(slot, &query, false).await {
                        let _ = sock.send_to(&fit_udp(&query, r), peer).await;
                    }
                });
            }
        }
    };
    let serve_tcp = async move {
        loop {
            let Ok((mut c, peer)) = tcp.accept().await else {
                continue;
            };
            let Ok(conn) = connections.clone().try_acquire_owned() else {
                // Too many connections: close this one at once.
                continue;
            };
            let ip = peer.ip().to_canonical();
            let server = server.clone();
            tokio::spawn(async move {
                let _conn = conn;
                // One or more length-prefixed queries per connection, each within the idle
                // timeout.
                let idle = server.cfg.tcp_idle;
                loop {
                    let q = match tokio::time::timeout(idle, read_framed(&mut c)).await {
                        Ok(Ok(Some(q))) => q,
                        _ => return,
                    };
                    match server.admit(ip, &q) {
                        Admission::Serve => {}
                        Admission::Drop | Admission::Refuse(None) => return,
                        Admission::Refuse(Some(r)) => {
                            let _ = tokio::time::timeout(idle, write_framed(&mut c, &r)).await;
                            return;
                        }
                    }
                    let Some(slot) = server.slot().await else {
                        return;
                    };
                    let Some(r) = server.answer(slot, &q, true).await else {
                        return;
                    };
                    let write = tokio::time::timeout(idle, write_framed(&mut c, &r));
                    if !matches!(write.await, Ok(Ok(()))) {
                        return;
                    }
                }
            });
        }
    };
    tokio::select! {
        _ = serve_udp => {}
        _ = serve_tcp => {}
        _ = stop => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, RData, Record};

    #[test]
    fn the_cname_chain_is_followed_from_the_question_only() {
        let q = Name::from_ascii("x.avcloud.intra2net.com.").expect("name");
        let mid = Name::from_ascii("edge.cdn.example.").expect("name");
        let other = Name::from_ascii("unrelated.example.").expect("name");
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.clone(), RecordType::A));
        m.answers.push(Record::from_rdata(
            mid.clone(),
            50,
            RData::A(A("203.0.113.7".parse().expect("a"))),
        ));
        m.answers
            .push(Record::from_rdata(q.clone(), 300, RData::CNAME(CNAME(mid))));
        m.answers.push(Record::from_rdata(
            other,
            10,
            RData::A(A("198.51.100.66".parse().expect("a"))),
        ));
        let (addrs, ttl) = chain_addresses(&m, &q);
        assert_eq!(addrs, vec!["203.0.113.7".parse::<IpAddr>().expect("a")]);
        assert_eq!(ttl, 50);
    }

    #[test]
    fn only_allowed_clients_and_loopback_are_served() {
        let cfg = Config::new(
            "192.0.2.53:53".parse().expect("sa"),
            Duration::from_secs(1),
            vec!["192.0.2.10/32".parse().expect("net")],
        );
        assert!(cfg.allows("192.0.2.10".parse().expect("a")));
        assert!(cfg.allows("127.0.0.1".parse().expect("a")));
        assert!(cfg.allows("::1".parse().expect("a")));
        assert!(cfg.allows("::ffff:192.0.2.10".parse().expect("a")));
        assert!(!cfg.allows("192.0.2.11".parse().expect("a")));
        assert!(!cfg.allows("2001:db8::1".parse().expect("a")));
    }

    #[test]
    fn the_rate_limit_holds_per_client_and_the_table_stays_bounded() {
        let l = Limiter::new(10);
        let a: IpAddr = "192.0.2.10".parse().expect("a");
        let admitted = (0..100).filter(|_| l.admit(a)).count();
        assert!((20..=21).contains(&admitted), "{admitted}");
        let b: IpAddr = "192.0.2.11".parse().expect("a");
        assert!(l.admit(b), "one client's flood must not starve another");
        for i in 0..(3 * MAX_TRACKED_CLIENTS as u32) {
            l.admit(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(l.clients.lock().expect("lock").len() <= MAX_TRACKED_CLIENTS);
    }

    #[test]
    fn large_udp_answers_are_truncated_to_the_client_size() {
        let q = Name::from_ascii("big.example.").expect("name");
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(q.clone(), RecordType::A));
        let qbytes = query.to_vec().expect("q");
        let mut answer = query.clone();
        answer.metadata.message_type = MessageType::Response;
        for i in 0..100u32 {
            answer.answers.push(Record::from_rdata(
                q.clone(),
                60,
                RData::A(A(std::net::Ipv4Addr::from(0xc633_6400 + i))),
            ));
        }
        let big = answer.to_vec().expect("a");
        assert!(big.len() > 512);
        let fitted = fit_udp(&qbytes, big.clone());
        let m = Message::from_vec(&fitted).expect("fitted");
        assert!(fitted.len() <= 512);
        assert!(m.metadata.truncation);
        assert_eq!(m.metadata.id, 7);
        assert_eq!(m.queries, query.queries);
        assert!(m.answers.is_empty());
        // With EDNS offering 4096, it goes through whole.
        let mut edns = hickory_proto::op::Edns::new();
        edns.set_max_payload(4096);
        query.set_edns(edns);
        let fitted = fit_udp(&query.to_vec().expect("q"), big.clone());
        assert_eq!(fitted, big);
    }

    #[test]
    fn refused_echoes_id_and_question() {
        let mut query = Message::new(99, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(
            Name::from_ascii("x.avcloud.intra2net.com.").expect("n"),
            RecordType::A,
        ));
        let r = refused(&query.to_vec().expect("q")).expect("refused");
        let m = Message::from_vec(&r).expect("m");
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert_eq!(m.metadata.id, 99);
        assert_eq!(m.queries, query.queries);
        assert!(refused(b"not dns").is_none());
    }
}
