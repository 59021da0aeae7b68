//! TCP and UDP with the kernel's answers turned into verdicts.
//!
//! TCP: a reset or ICMP port unreachable ends `connect` with ECONNREFUSED; ICMP
//! administratively prohibited (and other "hard" unreachables) with EHOSTUNREACH or
//! ENETUNREACH; a silent drop runs into our timeout. UDP: the socket is connected, so Linux
//! reports ICMP port unreachable (ECONNREFUSED) and administratively prohibited
//! (EHOSTUNREACH) on the next receive; silence is `open-or-filtered` unless the protocol
//! always answers. A local firewall drop answers EPERM at once; an ICMPv6 administratively
//! prohibited comes back as EACCES.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};

use super::Verdict;

/// Map an I/O error from connect/send/recv to a verdict and a one-line detail.
pub fn classify(e: &std::io::Error) -> (Verdict, String) {
    match e.kind() {
        ErrorKind::ConnectionRefused => (
            Verdict::Refused,
            "connection refused (TCP reset or ICMP port unreachable)".into(),
        ),
        ErrorKind::HostUnreachable => (
            Verdict::Unreachable,
            "ICMP host unreachable or administratively prohibited".into(),
        ),
        ErrorKind::NetworkUnreachable => (
            Verdict::Unreachable,
            "network unreachable (no route, or ICMP network unreachable)".into(),
        ),
        // Linux reports an ICMPv6 "administratively prohibited" as EACCES; a local firewall
        // drop is EPERM (both read as PermissionDenied).
        ErrorKind::PermissionDenied if e.raw_os_error() == Some(libc::EACCES) => (
            Verdict::Unreachable,
            "ICMPv6 administratively prohibited (a router or firewall on the way refused it)"
                .into(),
        ),
        ErrorKind::PermissionDenied => (
            Verdict::NotPermitted,
            "this host's own firewall or policy refused to send (EPERM)".into(),
        ),
        ErrorKind::TimedOut => (Verdict::Filtered, "no answer (timed out)".into()),
        _ => (Verdict::Error, e.to_string()),
    }
}

/// Connect, or say why not.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, (Verdict, String)> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err((
            Verdict::Filtered,
            format!(
                "no answer to the TCP handshake within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// Send one datagram and wait for one reply.
pub enum UdpOutcome {
    Reply(Vec<u8>),
    Silence,
    Failed(Verdict, String),
}

pub async fn exchange(addr: SocketAddr, payload: &[u8], timeout: Duration) -> UdpOutcome {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(addr)
    } else {
        "[::]:0".parse().unwrap_or(addr)
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            return UdpOutcome::Failed(Verdict::Error, format!("cannot open a UDP socket: {e}"))
        }
    };
    if let Err(e) = sock.connect(addr).await {
        let (v, d) = classify(&e);
        return UdpOutcome::Failed(v, d);
    }
    if let Err(e) = sock.send(payload).await {
        let (v, d) = classify(&e);
        return UdpOutcome::Failed(v, d);
    }
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => {
            buf.truncate(n);
            UdpOutcome::Reply(buf)
        }
        Ok(Err(e)) => {
            let (v, d) = classify(&e);
            UdpOutcome::Failed(v, d)
        }
        Err(_) => UdpOutcome::Silence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eacces_is_a_prohibition_on_the_way_eperm_one_here() {
        let (v, d) = classify(&std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(v, Verdict::Unreachable, "{d}");
        let (v, _) = classify(&std::io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(v, Verdict::NotPermitted);
    }
}
