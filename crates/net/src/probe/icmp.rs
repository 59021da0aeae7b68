//! ICMP echo. Uses an unprivileged ping socket where the system allows it
//! (`net.ipv4.ping_group_range`), a raw socket otherwise (root); `not-permitted` when neither
//! can be opened. Runs on a blocking thread: one send, one wait.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Verdict;

const ECHO_ID: u16 = 0x5054; // "PT"

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn open(addr: IpAddr) -> Result<(Socket, bool), std::io::Error> {
    let (domain, proto) = match addr {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, false)),
        Err(_) => Socket::new(domain, Type::RAW, Some(proto)).map(|s| (s, true)),
    }
}

fn echo_blocking(addr: IpAddr, timeout: Duration) -> (Verdict, String) {
    let (sock, raw) = match open(addr) {
        Ok(s) => s,
        Err(e) => {
            return (
                Verdict::NotPermitted,
                format!("cannot open an ICMP socket ({e}); run as root or allow ping sockets (sysctl net.ipv4.ping_group_range)"),
            )
        }
    };
    let v6 = addr.is_ipv6();
    let seq: u16 = (std::process::id() & 0xffff) as u16;
    let mut pkt = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    pkt.extend_from_slice(&ECHO_ID.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"portolan-probe");
    if !v6 {
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    // Connected, a ping or raw socket only receives from that address, and plain `read`
    // can be used.
    let dest = SockAddr::from(SocketAddr::new(addr, 0));
    if let Err(e) = sock.connect(&dest) {
        return super::transport::classify(&e);
    }
    if let Err(e) = sock.send(&pkt) {
        return super::transport::classify(&e);
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (Verdict::Filtered, "no echo reply".into());
        }
        let _ = sock.set_read_timeout(Some(left));
        match (&sock).read(&mut buf) {
            Ok(n) => {
                let data = &buf[..n];
                let icmp = if raw && !v6 {
                    let ihl = usize::from(data.first().copied().unwrap_or(0x45) & 0x0f) * 4;
                    data.get(ihl..).unwrap_or(&[])
                } else {
                    data
                };
                match icmp.first() {
                    Some(0) | Some(129) => return (Verdict::Open, "echo reply".into()),
                    Some(3) | Some(1) => {
                        return (Verdict::Unreachable, "ICMP destination unreachable".into())
                    }
                    _ => continue,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (Verdict::Filtered, "no echo reply".into())
            }
            Err(e) => return super::transport::classify(&e),
        }
    }
}

/// Send one echo request and wait for the reply.
pub async fn echo(addr: IpAddr, timeout: Duration) -> (Verdict, String) {
    tokio::task::spawn_blocking(move || echo_blocking(addr, timeout))
        .await
        .unwrap_or((Verdict::Error, "the ICMP probe failed".into()))
}
