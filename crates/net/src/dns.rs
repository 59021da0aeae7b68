//! A DNS stub resolver on hickory-proto messages, so that failures can be told apart
//! exactly: NXDOMAIN, no data, SERVFAIL/REFUSED, or no answer at all.
//!
//! Its answers end up in firewall allow sets, so it must never accept an answer it did not
//! ask for:
//! - every query has a random 16-bit id and goes out from a fresh socket on a random
//!   ephemeral port (the kernel picks it), connected to the server, so the kernel drops
//!   datagrams from any other address or port;
//! - a reply counts only if it carries the query's id, the response bit, the same opcode and
//!   exactly the question asked; anything else is ignored and the wait goes on until the
//!   deadline (an off-path attacker must guess id and port within one round trip);
//! - truncated answers are asked again over TCP, with the same checks and a deadline for
//!   connect, write and read together;
//! - every `nameserver` of /etc/resolv.conf (or every `--resolver`) is tried in turn, for
//!   `attempts` rounds; EDNS(0) is offered with a 1232-byte UDP size (the DNS flag day value).
//!
//! DNS-over-TCP framing (a two-byte length before each message) lives here once, in
//! [`write_framed`] and [`read_framed`], for the resolver, the DNS proxy and the probe.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The EDNS(0) UDP payload size offered (DNS flag day 2020).
pub const EDNS_UDP_SIZE: u16 = 1232;
/// Largest UDP datagram read.
const MAX_UDP: usize = 65_535;
/// Rounds over all servers.
pub const DEFAULT_ATTEMPTS: u32 = 2;

/// Why a name has no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN).
    NxDomain(String),
    /// The name exists but has no A or AAAA record.
    NoData(String),
    /// The server answered with an error code.
    ServerError(String, String),
    /// No server answered within the timeout (the servers asked, as text).
    Timeout(String, String),
    /// Anything else (bad name, socket error, no resolver configured).
    Other(String),
}

impl ResolveError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ResolveError::Timeout(..))
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NxDomain(n) => write!(f, "{n}: NXDOMAIN (the name does not exist)"),
            ResolveError::NoData(n) => {
                write!(f, "{n}: the name exists but has no A or AAAA record")
            }
            ResolveError::ServerError(n, c) => write!(f, "{n}: the resolver answered {c}"),
            ResolveError::Timeout(n, s) if s.contains(',') => {
                write!(f, "{n}: the resolvers {s} did not answer (timeout)")
            }
            ResolveError::Timeout(n, s) => {
                write!(f, "{n}: the resolver {s} did not answer (timeout)")
            }
            ResolveError::Other(m) => f.write_str(m),
        }
    }
}

/// Where and how to resolve.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Tried in order, `attempts` rounds.
    pub servers: Vec<SocketAddr>,
    /// How long to wait for each server's answer.
    pub timeout: Duration,
    pub attempts: u32,
}

impl Resolver {
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Resolver {
        Resolver {
            servers,
            timeout,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

/// Parse `ADDR` or `ADDR:PORT` (IPv6 as `[ADDR]:PORT`).
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    s.parse::<IpAddr>().ok().map(|a| SocketAddr::new(a, 53))
}

/// Every nameserver of /etc/resolv.conf, in order.
pub fn system_servers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| resolv_conf_servers(&t))
        .unwrap_or_default()
}

/// The `nameserver` lines of a resolv.conf text (zone ids such as `%eth0` dropped).
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

/// A random query id (from the operating system's generator, via `rand`).
pub fn random_id() -> u16 {
    rand::random()
}

fn query(name: &Name, rtype: RecordType, id: u16) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_UDP_SIZE);
    m.set_edns(edns);
    m
}

/// A query for the root NS set: every resolver answers it, so it checks a DNS server.
pub fn root_ns_query(id: u16) -> Vec<u8> {
    query(&Name::root(), RecordType::NS, id)
        .to_vec()
        .unwrap_or_default()
}

/// Is `reply` the answer to `asked`: same id, a response, same opcode, same question?
pub fn answers(asked: &Message, reply: &Message) -> bool {
    reply.metadata.id == asked.metadata.id
        && reply.metadata.message_type == MessageType::Response
        && reply.metadata.op_code == asked.metadata.op_code
        && reply.queries == asked.queries
}

/// Addresses for `qname` in an answer: A/AAAA records on the CNAME chain that starts at it,
/// with the smallest TTL along the way.
pub fn chain_addresses(answer: &Message, qname: &Name) -> (Vec<IpAddr>, u32) {
    let mut chain: BTreeSet<Name> = BTreeSet::new();
    chain.insert(qname.to_lowercase());
    let mut ttl = u32::MAX;
    // CNAMEs may come in any order: extend the chain until it stops growing.
    loop {
        let before = chain.len();
        for r in &answer.answers {
            if let RData::CNAME(c) = &r.data {
                if chain.contains(&r.name.to_lowercase()) && chain.insert(c.0.to_lowercase()) {
                    ttl = ttl.min(r.ttl);
                }
            }
        }
        if chain.len() == before {
            break;
        }
    }
    let mut addrs = Vec::new();
    for r in &answer.answers {
        if !chain.contains(&r.name.to_lowercase()) {
            continue;
        }
        match &r.data {
            RData::A(a) => addrs.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => addrs.push(IpAddr::V6(a.0)),
            _ => continue,
        }
        ttl = ttl.min(r.ttl);
    }
    addrs.sort();
    addrs.dedup();
    (addrs, if ttl == u32::MAX { 0 } else { ttl })
}

/// Is this a DNS response to query `id`? Says the response code.
pub fn check_response(bytes: &[u8], id: u16) -> Result<String, String> {
    let m = Message::from_vec(bytes).map_err(|e| format!("UDP reply that is not DNS: {e}"))?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return Err("a DNS message, but not the answer to our query".into());
    }
    Ok(format!(
        "DNS server answered ({})",
        m.metadata.response_code
    ))
}

/// Write one DNS message with its two-byte length (DNS over TCP, RFC 1035 4.2.2).
pub async fn write_framed<S: AsyncWrite + Unpin>(s: &mut S, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "DNS message over 65535 bytes",
        )
    })?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    s.write_all(&framed).await?;
    s.flush().await
}

/// Read one length-prefixed DNS message. `Ok(None)` when the peer closed cleanly before a
/// new message began. The caller puts a deadline around it.
pub async fn read_framed<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await?;
    Ok(Some(body))
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout")
}

/// One query over TCP: connect, write and read within `timeout` altogether.
pub async fn exchange_tcp(
    server: SocketAddr,
    q: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let io = async {
        let mut s = TcpStream::connect(server).await?;
        write_framed(&mut s, q).await?;
        read_framed(&mut s).await?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed without an answer",
            )
        })
    };
    tokio::time::timeout(timeout, io)
        .await
        .map_err(|_| timed_out())?
}

/// What one server said.
enum Reply {
    Answer(Message),
    /// Nothing usable before the deadline.
    Silent,
    Failed(std::io::Error),
}

/// Send `query` (the encoding of `asked`) to `server` over UDP and wait, up to `timeout`,
/// for the datagram that answers it (see [`answers`]); anything else is ignored. A fresh
/// socket on a random port, connected to the server, so the kernel drops datagrams from
/// any other address or port. Silence is an error of kind `TimedOut`. Used by the resolver
/// and the DNS proxy.
pub async fn exchange_udp(
    server: SocketAddr,
    query: &[u8],
    asked: &Message,
    timeout: Duration,
) -> std::io::Result<(Vec<u8>, Message)> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    sock.send(query).await?;
    let deadline = Instant::now() + timeout;
    // Whole datagrams (a reply may be larger than what was offered).
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, sock.recv(&mut buf))
            .await
            .map_err(|_| timed_out())??;
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if answers(asked, &reply) {
            buf.truncate(n);
            return Ok((buf, reply));
        }
        // Forged or stale: not ours. Keep waiting for the real one.
    }
}

/// Ask one server; only an authentic answer (see the module doc) is returned.
async fn ask(server: SocketAddr, asked: &Message, timeout: Duration) -> Reply {
    let Ok(q) = asked.to_vec() else {
        return Reply::Failed(std::io::Error::other("cannot encode the query"));
    };
    let deadline = Instant::now() + timeout;
    let reply = match exchange_udp(server, &q, asked, timeout).await {
        Ok((_, reply)) => reply,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Reply::Silent,
        Err(e) => return Reply::Failed(e),
    };
    if !reply.metadata.truncation {
        return Reply::Answer(reply);
    }
    // Truncated: ask again over TCP (a new id, the same checks).
    let mut again = asked.clone();
    again.metadata.id = random_id();
    let Ok(q) = again.to_vec() else {
        return Reply::Failed(std::io::Error::other("cannot encode the query"));
    };
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(timeout / 2);
    match exchange_tcp(server, &q, left).await {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Reply::Silent,
        Err(e) => Reply::Failed(e),
        Ok(body) => match Message::from_vec(&body) {
            Ok(m) if answers(&again, &m) => Reply::Answer(m),
            _ => Reply::Failed(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the TCP answer does not match the question",
            )),
        },
    }
}

/// The outcome of one record type over all servers.
enum TypeOutcome {
    Answer(Message),
    Error(ResolveError),
}

impl Resolver {
    fn servers_text(&self) -> String {
        self.servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Ask the servers in turn until one gives a usable answer (NOERROR or NXDOMAIN).
    async fn resolve_type(&self, name: &str, qname: &Name, rtype: RecordType) -> TypeOutcome {
        let mut last: Option<ResolveError> = None;
        for _ in 0..self.attempts.max(1) {
            for &server in &self.servers {
                let asked = query(qname, rtype, random_id());
                match ask(server, &asked, self.timeout).await {
                    Reply::Answer(m) => match m.metadata.response_code {
                        ResponseCode::NoError | ResponseCode::NXDomain => {
                            return TypeOutcome::Answer(m)
                        }
                        other => {
                            last = Some(ResolveError::ServerError(
                                name.to_string(),
                                format!("{other} ({server})"),
                            ))
                        }
                    },
                    Reply::Silent => {
                        if !matches!(last, Some(ResolveError::ServerError(..))) {
                            last =
                                Some(ResolveError::Timeout(name.to_string(), self.servers_text()))
                        }
                    }
                    Reply::Failed(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        last = Some(ResolveError::Other(format!(
                            "{name}: this host's firewall refused to send to the resolver {server} (EPERM); the plan needs a DNS flow to it"
                        )))
                    }
                    Reply::Failed(e) => {
                        last = Some(ResolveError::Other(format!("{name}: asking {server}: {e}")))
                    }
                }
            }
        }
        TypeOutcome::Error(last.unwrap_or_else(|| {
            ResolveError::Other(format!(
                "{name}: no DNS resolver configured (none in /etc/resolv.conf; give --resolver)"
            ))
        }))
    }

    /// A and AAAA addresses of `name` (the CNAME chain is followed by the recursive server;
    /// only addresses on the chain that starts at `name` count).
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        self.lookup_ttl(name).await.map(|(a, _)| a)
    }

    /// Like [`Resolver::lookup`], with the smallest TTL of the records that led to the
    /// addresses (CNAMEs included).
    pub async fn lookup_ttl(&self, name: &str) -> Result<(Vec<IpAddr>, u32), ResolveError> {
        if self.servers.is_empty() {
            return Err(ResolveError::Other(format!(
                "{name}: no DNS resolver configured (none in /etc/resolv.conf; give --resolver)"
            )));
        }
        let qname = Name::from_ascii(format!("{name}."))
            .map_err(|e| ResolveError::Other(format!("{name}: not a DNS name: {e}")))?;
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        let mut nx = false;
        let mut last_err = None;
        for rtype in [RecordType::A, RecordType::AAAA] {
            let m = match self.resolve_type(name, &qname, rtype).await {
                TypeOutcome::Answer(m) => m,
                TypeOutcome::Error(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            if m.metadata.response_code == ResponseCode::NXDomain {
                nx = true;
            }
            let (found, t) = chain_addresses(&m, &qname);
            if !found.is_empty() {
                ttl = ttl.min(t);
                addrs.extend(found);
            }
        }
        if !addrs.is_empty() {
            addrs.sort();
            addrs.dedup();
            return Ok((addrs, ttl));
        }
        if nx {
            return Err(ResolveError::NxDomain(name.to_string()));
        }
        Err(last_err.unwrap_or_else(|| ResolveError::NoData(name.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nameserver_of_resolv_conf_counts() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\noptions ndots:2\nnameserver   2001:db8::53\nnameserverX 192.0.2.9\n";
        let s = resolv_conf_servers(text);
        assert_eq!(
            s,
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().expect("sa"),
                "[fe80::1]:53".parse().expect("sa"),
                "[2001:db8::53]:53".parse().expect("sa"),
            ]
        );
    }

    #[test]
    fn a_reply_must_carry_id_response_bit_and_question() {
        let n = Name::from_ascii("update.example.").expect("name");
        let asked = query(&n, RecordType::A, 4242);
        let mut good = asked.clone();
        good.metadata.message_type = MessageType::Response;
        assert!(answers(&asked, &good));
        let mut wrong_id = good.clone();
        wrong_id.metadata.id = 4243;
        assert!(!answers(&asked, &wrong_id));
        let mut not_response = good.clone();
        not_response.metadata.message_type = MessageType::Query;
        assert!(!answers(&asked, &not_response));
        let mut wrong_q = good.clone();
        wrong_q.queries = vec![Query::query(
            Name::from_ascii("evil.example.").expect("name"),
            RecordType::A,
        )];
        assert!(!answers(&asked, &wrong_q));
        let mut wrong_type = good;
        wrong_type.queries = vec![Query::query(n, RecordType::AAAA)];
        assert!(!answers(&asked, &wrong_type));
    }

    #[test]
    fn queries_carry_random_ids_and_edns() {
        let n = Name::from_ascii("update.example.").expect("name");
        let ids: BTreeSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 50, "ids are not random: {ids:?}");
        let q = query(&n, RecordType::A, 1);
        let bytes = q.to_vec().expect("encode");
        let back = Message::from_vec(&bytes).expect("decode");
        assert_eq!(
            back.edns.as_ref().map(|e| e.max_payload()),
            Some(EDNS_UDP_SIZE)
        );
    }

    #[tokio::test]
    async fn framing_round_trips_and_tells_a_clean_close() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_framed(&mut a, b"hello").await.expect("write");
        drop(a);
        assert_eq!(
            read_framed(&mut b).await.expect("read"),
            Some(b"hello".to_vec())
        );
        assert_eq!(read_framed(&mut b).await.expect("eof"), None);
    }
}
