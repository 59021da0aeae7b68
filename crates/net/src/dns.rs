//! A small DNS stub resolver on hickory-proto messages, so that failures can be told apart
//! exactly: NXDOMAIN, no data, SERVFAIL/REFUSED, or no answer at all. Queries go to one
//! server: `--resolver`, or the first `nameserver` of /etc/resolv.conf.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why a name has no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN).
    NxDomain(String),
    /// The name exists but has no A or AAAA record.
    NoData(String),
    /// The server answered with an error code.
    ServerError(String, String),
    /// The server did not answer within the timeout.
    Timeout(String, SocketAddr),
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
    pub server: Option<SocketAddr>,
    pub timeout: Duration,
}

/// Parse `ADDR` or `ADDR:PORT` (IPv6 as `[ADDR]:PORT`).
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    s.parse::<IpAddr>().ok().map(|a| SocketAddr::new(a, 53))
}

/// The first nameserver of /etc/resolv.conf.
pub fn system_server() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .next()
}

fn query_message(name: &str, rtype: RecordType, id: u16) -> Result<Vec<u8>, String> {
    let n =
        Name::from_ascii(format!("{name}.")).map_err(|e| format!("{name}: not a DNS name: {e}"))?;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(n, rtype));
    m.to_vec().map_err(|e| e.to_string())
}

/// A query for the root NS set: every resolver answers it, so it checks a DNS server.
pub fn root_ns_query(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::root(), RecordType::NS));
    m.to_vec().unwrap_or_default()
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

async fn exchange(
    server: SocketAddr,
    q: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, std::io::Error> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    sock.send(q).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(timeout, sock.recv(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))??;
    buf.truncate(n);
    // Truncated: ask again over TCP.
    if buf.len() > 2 && buf[2] & 0x02 != 0 {
        let mut s = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))??;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(q);
        s.write_all(&framed).await?;
        let mut len = [0u8; 2];
        tokio::time::timeout(timeout, s.read_exact(&mut len))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))??;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).await?;
        return Ok(body);
    }
    Ok(buf)
}

impl Resolver {
    /// A and AAAA addresses of `name` (the CNAME chain is followed by the recursive server;
    /// every address record in the answer counts).
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        self.lookup_ttl(name).await.map(|(a, _)| a)
    }

    /// Like [`Resolver::lookup`], with the smallest TTL of the records that led to the
    /// addresses (CNAMEs included).
    pub async fn lookup_ttl(&self, name: &str) -> Result<(Vec<IpAddr>, u32), ResolveError> {
        let Some(server) = self.server else {
            return Err(ResolveError::Other(format!(
                "{name}: no DNS resolver configured (none in /etc/resolv.conf; give --resolver)"
            )));
        };
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        let mut nx = false;
        let mut last_err = None;
        for (i, rtype) in [RecordType::A, RecordType::AAAA].into_iter().enumerate() {
            let id = 0x5000 + i as u16;
            let q = query_message(name, rtype, id).map_err(ResolveError::Other)?;
            let qname = Name::from_ascii(format!("{name}."))
                .map_err(|e| ResolveError::Other(e.to_string()))?;
            let bytes = match exchange(server, &q, self.timeout).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    last_err = Some(ResolveError::Timeout(name.to_string(), server));
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    last_err = Some(ResolveError::Other(format!(
                        "{name}: this host's firewall refused to send to the resolver {server} (EPERM); the plan needs a DNS flow to it"
                    )));
                    continue;
                }
                Err(e) => {
                    last_err = Some(ResolveError::Other(format!("{name}: asking {server}: {e}")));
                    continue;
                }
            };
            let m = Message::from_vec(&bytes).map_err(|e| {
                ResolveError::Other(format!("{name}: bad answer from {server}: {e}"))
            })?;
            match m.metadata.response_code {
                ResponseCode::NoError => {}
                ResponseCode::NXDomain => nx = true,
                other => {
                    last_err = Some(ResolveError::ServerError(
                        name.to_string(),
                        other.to_string(),
                    ))
                }
            }
            // Only addresses on the CNAME chain that starts at the name asked for count.
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
