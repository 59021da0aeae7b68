//! An authoritative DNS server for tests, run inside a test namespace: answers A and AAAA
//! from a table that the test may change while it runs, NXDOMAIN for unknown names, nothing
//! for names marked silent, and nothing at all while `down`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// Maps a name under a wildcard to its address.
pub type AddressOf = fn(&str) -> Option<IpAddr>;

#[derive(Debug, Default)]
pub struct Zone {
    pub records: BTreeMap<String, Vec<IpAddr>>,
    pub silent: BTreeSet<String>,
    pub ttl: u32,
    pub down: bool,
    pub queries: u64,
    /// Names under a suffix (`avcloud.intra2net.com`) answered by a function of the name.
    pub wildcard: Option<(String, AddressOf)>,
}

/// Shared, mutable zone data.
pub type Shared = Arc<Mutex<Zone>>;

pub fn zone(ttl: u32, records: &[(&str, &str)]) -> Shared {
    let mut z = Zone {
        ttl,
        ..Zone::default()
    };
    for (n, a) in records {
        z.records
            .entry(n.to_string())
            .or_default()
            .push(a.parse().expect("test address"));
    }
    Arc::new(Mutex::new(z))
}

pub fn answer(zone: &Shared, query: &[u8]) -> Option<Vec<u8>> {
    let mut z = zone.lock().ok()?;
    z.queries += 1;
    if z.down {
        return None;
    }
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let name = question.name().to_ascii().trim_end_matches('.').to_string();
    if z.silent.contains(&name) {
        return None;
    }
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.authoritative = true;
    m.add_query(question.clone());
    let from_wildcard: Option<Vec<IpAddr>> = z.wildcard.as_ref().and_then(|(suffix, f)| {
        name.strip_suffix(suffix.as_str())
            .filter(|p| p.ends_with('.'))
            .and_then(|_| f(&name))
            .map(|a| vec![a])
    });
    match z.records.get(&name).cloned().or(from_wildcard).as_ref() {
        Some(addrs) => {
            for a in addrs {
                let rdata = match (a, question.query_type()) {
                    (IpAddr::V4(v), RecordType::A) => RData::A(A(*v)),
                    (IpAddr::V6(v), RecordType::AAAA) => RData::AAAA(AAAA(*v)),
                    _ => continue,
                };
                m.answers
                    .push(Record::from_rdata(question.name().clone(), z.ttl, rdata));
            }
        }
        None if name.is_empty() => {}
        None => m.metadata.response_code = ResponseCode::NXDomain,
    }
    m.to_vec().ok()
}

/// Serve `zone` on a UDP socket and a TCP listener (made in the right namespace by the caller).
pub fn serve(zone: Shared, udp: UdpSocket, tcp: TcpListener) {
    let z = zone.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = udp.recv_from(&mut buf) {
            if let Some(a) = answer(&z, &buf[..n]) {
                let _ = udp.send_to(&a, peer);
            }
        }
    });
    std::thread::spawn(move || {
        for mut s in tcp.incoming().flatten() {
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if s.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(a) = answer(&zone, &q) {
                let mut framed = (a.len() as u16).to_be_bytes().to_vec();
                framed.extend(a);
                let _ = s.write_all(&framed);
            }
        }
    });
}
