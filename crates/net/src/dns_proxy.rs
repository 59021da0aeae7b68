//! `portolan dns-proxy`: a DNS forwarder that makes wildcard names work in the firewall.
//!
//! A query whose name falls under a wildcard of the plan (`*.avcloud.intra2net.com`) is
//! forwarded upstream; the A/AAAA addresses of the answer (following the CNAME chain that
//! starts at the question name) are added to that wildcard's nft set, and the answer goes to
//! the client only after that update is committed, so the appliance's first packet is never
//! dropped. If the update fails, the client gets SERVFAIL. TTLs in the reply are capped below
//! the element timeout. Other queries are forwarded unchanged. Only answers from the
//! configured upstream are accepted: each forward uses a socket connected to the upstream,
//! and the answer must carry the query's id and question.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use portolan_core::model::wildcard_matches;
use portolan_core::plan::{Plan, SetKind};
use portolan_core::render::{self, nftables::nft_set_name, Family};
use tokio::net::UdpSocket;

use crate::dns::chain_addresses;
use crate::sync::{apply, SetUpdate};

/// Element timeouts are at least this long, whatever the TTL.
pub const MIN_ELEMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Added to the TTL for the element timeout; reply TTLs stay below the timeout by this much.
pub const GRACE: Duration = Duration::from_secs(30);
/// Largest DNS message handled over UDP.
const MAX_UDP: usize = 4096;

/// A wildcard and the nft sets it fills.
#[derive(Debug, Clone)]
pub struct Wildcard {
    pub pattern: String,
    pub set_v4: Option<String>,
    pub set_v6: Option<String>,
}

/// The wildcards the rendered rules use (unpinned ones; pinned sets are static).
pub fn wildcards(plan: &Plan) -> Vec<Wildcard> {
    let (rules, _) = render::lower(plan);
    let mut out: Vec<Wildcard> = Vec::new();
    for sref in rules.iter().flat_map(|r| [&r.saddr, &r.daddr]).flatten() {
        let Some(set) = plan.set(&sref.set) else {
            continue;
        };
        if set.kind != SetKind::Wildcard || set.pinned {
            continue;
        }
        let idx = match out.iter().position(|w| w.pattern == set.name) {
            Some(i) => i,
            None => {
                out.push(Wildcard {
                    pattern: set.name.clone(),
                    set_v4: None,
                    set_v6: None,
                });
                out.len() - 1
            }
        };
        let n = nft_set_name(set, sref.family);
        match sref.family {
            Family::V4 => out[idx].set_v4 = Some(n),
            Family::V6 => out[idx].set_v6 = Some(n),
        }
    }
    out
}

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub upstream: SocketAddr,
    pub timeout: Duration,
}

/// Forward over TCP (for clients that asked over TCP, e.g. after a truncated answer).
async fn forward_tcp(
    cfg: &Config,
    query: &[u8],
    q: &Message,
) -> Result<(Vec<u8>, Message), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(cfg.upstream).await?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        s.write_all(&framed).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let body = tokio::time::timeout(cfg.timeout, io)
        .await
        .map_err(|_| "upstream timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let m = Message::from_vec(&body).map_err(|e| e.to_string())?;
    if m.metadata.id != q.metadata.id || m.queries != q.queries {
        return Err("the upstream's answer does not match the question".into());
    }
    Ok((body, m))
}

/// Forward `query` to the upstream and return its answer, checked to be the answer to it.
async fn forward(cfg: &Config, query: &[u8], q: &Message) -> Result<(Vec<u8>, Message), String> {
    let bind: SocketAddr = if cfg.upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    // Connected: the kernel drops datagrams from anyone but the upstream.
    sock.connect(cfg.upstream)
        .await
        .map_err(|e| e.to_string())?;
    sock.send(query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = tokio::time::timeout(cfg.timeout, sock.recv(&mut buf))
            .await
            .map_err(|_| "upstream timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let Ok(m) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if m.metadata.id == q.metadata.id
            && m.metadata.message_type == MessageType::Response
            && m.queries == q.queries
        {
            return Ok((buf[..n].to_vec(), m));
        }
    }
}

fn servfail(q: &Message) -> Vec<u8> {
    let mut m = Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::ServFail);
    m.queries = q.queries.clone();
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.to_vec().unwrap_or_default()
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
    let forwarded = if tcp {
        forward_tcp(cfg, query, &q).await
    } else {
        forward(cfg, query, &q).await
    };
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
    let timeout = Duration::from_secs(u64::from(ttl)).max(MIN_ELEMENT_TIMEOUT) + GRACE;
    let mut updates = Vec::new();
    for (set, v4) in [(&w.set_v4, true), (&w.set_v6, false)] {
        if let Some(set) = set {
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
    if let Err(e) = apply(updates).await {
        handled.error = Some(e);
        return (Some(servfail(&q)), Some(handled));
    }
    // Cap TTLs so the client asks again before the elements expire.
    let cap = (timeout - GRACE).as_secs() as u32;
    for r in answer.answers.iter_mut() {
        r.ttl = r.ttl.min(cap);
    }
    match answer.to_vec() {
        Ok(b) => (Some(b), Some(handled)),
        Err(_) => (Some(bytes), Some(handled)),
    }
}

/// Serve on `sock` (UDP) and `tcp` until `stop` resolves. `log` is told about each wildcard
/// query.
pub async fn serve(
    sock: UdpSocket,
    tcp: tokio::net::TcpListener,
    cfg: Config,
    wilds: Vec<Wildcard>,
    log: Arc<dyn Fn(&Handled) + Send + Sync>,
    stop: impl std::future::Future<Output = ()>,
) {
    let sock = Arc::new(sock);
    let cfg = Arc::new(cfg);
    let wilds = Arc::new(wilds);
    let serve = async {
        let mut buf = vec![0u8; MAX_UDP];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let query = buf[..n].to_vec();
            let (sock, cfg, wilds, log) = (sock.clone(), cfg.clone(), wilds.clone(), log.clone());
            tokio::spawn(async move {
                let (reply, handled) = handle(&cfg, &wilds, &query, false).await;
                if let Some(h) = &handled {
                    log(h);
                }
                if let Some(r) = reply {
                    let _ = sock.send_to(&r, peer).await;
                }
            });
        }
    };
    let (cfg2, wilds2, log2) = (cfg.clone(), wilds.clone(), log.clone());
    let serve_tcp = async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut c, _)) = tcp.accept().await else {
                continue;
            };
            let (cfg, wilds, log) = (cfg2.clone(), wilds2.clone(), log2.clone());
            tokio::spawn(async move {
                // One or more length-prefixed queries per connection.
                loop {
                    let mut len = [0u8; 2];
                    let read =
                        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut len)).await;
                    if !matches!(read, Ok(Ok(_))) {
                        return;
                    }
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if c.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let (reply, handled) = handle(&cfg, &wilds, &q, true).await;
                    if let Some(h) = &handled {
                        log(h);
                    }
                    let Some(r) = reply else { return };
                    let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                    framed.extend(r);
                    if c.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = serve_tcp => {}
        _ = stop => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, Query};
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
}
