//! TCP and UDP with the kernel's answers turned into verdicts.
//!
//! Every socket asks for the kernel's ICMP error queue (IP_RECVERR, IPV6_RECVERR), so an
//! unreachable names the ICMP type and code and the router or firewall that sent it, and a
//! UDP "host unreachable" is reported instead of passing as silence.
//!
//! TCP: a reset or ICMP port unreachable ends `connect` with ECONNREFUSED; ICMP
//! administratively prohibited (and other "hard" unreachables) with EHOSTUNREACH or
//! ENETUNREACH; a silent drop runs into our timeout. UDP: the socket is connected, so Linux
//! reports ICMP port unreachable (ECONNREFUSED) and administratively prohibited
//! (EHOSTUNREACH) on the next receive; silence is `open-or-filtered` unless the protocol
//! always answers. A local firewall drop answers EPERM at once; an ICMPv6 administratively
//! prohibited comes back as EACCES.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::Verdict;

/// An ICMP error the kernel kept for a socket (IP_RECVERR / IPV6_RECVERR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpError {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The router or firewall that sent it.
    pub from: Option<IpAddr>,
}

impl IcmpError {
    /// `port unreachable` is a refusal by the host itself; everything else stopped the
    /// packet on the way.
    pub fn verdict(&self) -> Verdict {
        match (self.v6, self.icmp_type, self.code) {
            (false, 3, 3) | (true, 1, 4) => Verdict::Refused,
            _ => Verdict::Unreachable,
        }
    }

    pub fn describe(&self) -> String {
        let (what, code) = match (self.v6, self.icmp_type) {
            (false, 3) => (
                "ICMP destination unreachable",
                match self.code {
                    0 => "network unreachable",
                    1 => "host unreachable",
                    2 => "protocol unreachable",
                    3 => "port unreachable",
                    4 => "fragmentation needed",
                    5 => "source route failed",
                    6 => "destination network unknown",
                    7 => "destination host unknown",
                    9 => "network administratively prohibited",
                    10 => "host administratively prohibited",
                    11 => "network unreachable for the type of service",
                    12 => "host unreachable for the type of service",
                    13 => "communication administratively prohibited",
                    14 => "host precedence violation",
                    15 => "precedence cutoff",
                    _ => "unknown code",
                },
            ),
            (false, 11) => ("ICMP time exceeded", "TTL expired in transit"),
            (true, 1) => (
                "ICMPv6 destination unreachable",
                match self.code {
                    0 => "no route to destination",
                    1 => "communication administratively prohibited",
                    2 => "beyond the scope of the source address",
                    3 => "address unreachable",
                    4 => "port unreachable",
                    5 => "source address failed ingress/egress policy",
                    6 => "reject route to destination",
                    _ => "unknown code",
                },
            ),
            (true, 3) => ("ICMPv6 time exceeded", "hop limit exceeded in transit"),
            (v6, _) => (
                if v6 { "ICMPv6 error" } else { "ICMP error" },
                "unknown type",
            ),
        };
        let from = self.from.map(|a| format!(" from {a}")).unwrap_or_default();
        format!(
            "{what} (type {}, code {}: {code}){from}",
            self.icmp_type, self.code
        )
    }
}

/// Ask the kernel to keep the ICMP errors for this socket (type, code, sender).
fn want_icmp_errors(fd: BorrowedFd<'_>, v6: bool) {
    let _ = if v6 {
        setsockopt(&fd, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(&fd, sockopt::Ipv4RecvErr, &true)
    };
}

/// The ICMP error the kernel queued for this socket, if any (never blocks).
pub fn queued_icmp_error(fd: BorrowedFd<'_>) -> Option<IcmpError> {
    let mut buf = [0u8; 512];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    for c in msg.cmsgs().ok()? {
        match c {
            ControlMessageOwned::Ipv4RecvErr(e, from) if e.ee_origin == 2 => {
                return Some(IcmpError {
                    v6: false,
                    icmp_type: e.ee_type,
                    code: e.ee_code,
                    from: from.map(|s| IpAddr::V4(Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)))),
                })
            }
            ControlMessageOwned::Ipv6RecvErr(e, from) if e.ee_origin == 3 => {
                return Some(IcmpError {
                    v6: true,
                    icmp_type: e.ee_type,
                    code: e.ee_code,
                    from: from.map(|s| IpAddr::V6(Ipv6Addr::from(s.sin6_addr.s6_addr))),
                })
            }
            _ => {}
        }
    }
    None
}

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

/// Round-trip times seen in a run (TCP handshakes answered with SYN-ACK or RST), for the
/// adaptive handshake timeout: a probe that gets no answer waits four times the slowest
/// answer seen so far, at least [`Rtt::FLOOR`], at most `--timeout`; until
/// [`Rtt::MIN_SAMPLES`] answers are in, the full `--timeout`. Like nmap's RTT-based timeouts,
/// so a run over dropped ports costs about a second, not the whole timeout, while a slow
/// path (it raises the slowest answer) keeps its time. Shared by all probes of a run.
#[derive(Debug, Default)]
pub struct Rtt {
    samples: std::sync::atomic::AtomicU64,
    slowest_us: std::sync::atomic::AtomicU64,
}

impl Rtt {
    pub const FLOOR: Duration = Duration::from_secs(1);
    pub const MIN_SAMPLES: u64 = 4;

    pub fn record(&self, rtt: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.slowest_us
            .fetch_max(rtt.as_micros().min(u64::MAX as u128) as u64, Relaxed);
        self.samples.fetch_add(1, Relaxed);
    }

    /// The handshake timeout now, never above `max`.
    pub fn timeout(&self, max: Duration) -> Duration {
        use std::sync::atomic::Ordering::Relaxed;
        if self.samples.load(Relaxed) < Self::MIN_SAMPLES {
            return max;
        }
        let four = Duration::from_micros(self.slowest_us.load(Relaxed).saturating_mul(4));
        four.max(Self::FLOOR).min(max)
    }
}

/// Connect, or say why not (with the ICMP error's type, code and sender when one came back).
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, (Verdict, String)> {
    connect_adaptive(addr, timeout, None).await
}

/// [`connect`] with the run's [`Rtt`]: the wait for an answer shrinks as answers come in.
pub async fn connect_adaptive(
    addr: SocketAddr,
    timeout: Duration,
    rtt: Option<&Rtt>,
) -> Result<TcpStream, (Verdict, String)> {
    let started = std::time::Instant::now();
    let limit = || rtt.map_or(timeout, |r| r.timeout(timeout));
    let sock = match if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    } {
        Ok(s) => s,
        Err(e) => return Err((Verdict::Error, format!("cannot open a TCP socket: {e}"))),
    };
    want_icmp_errors(sock.as_fd(), addr.is_ipv6());
    let errors = sock.as_fd().try_clone_to_owned().ok();
    let connecting = sock.connect(addr);
    tokio::pin!(connecting);
    let result = loop {
        let waited = started.elapsed();
        let now_limit = limit();
        if waited >= now_limit {
            break None;
        }
        // Wake at the deadline, or sooner to see a shorter one.
        let nap = (now_limit - waited).min(Duration::from_millis(50));
        tokio::select! {
            r = &mut connecting => break Some(r),
            _ = tokio::time::sleep(nap) => {}
        }
    };
    match result {
        Some(Ok(s)) => {
            if let Some(r) = rtt {
                r.record(started.elapsed());
            }
            Ok(s)
        }
        Some(Err(e)) => {
            if let (Some(r), ErrorKind::ConnectionRefused) = (rtt, e.kind()) {
                r.record(started.elapsed());
            }
            Err(
                match errors.as_ref().and_then(|fd| queued_icmp_error(fd.as_fd())) {
                    Some(icmp) => (icmp.verdict(), icmp.describe()),
                    None => classify(&e),
                },
            )
        }
        None => {
            let waited = started.elapsed();
            Err((
                Verdict::Filtered,
                if waited + Duration::from_millis(60) < timeout {
                    format!(
                        "no answer to the TCP handshake within {} ms (adaptive: 4x the slowest answer of this run, at least {} ms; --timeout {} ms)",
                        waited.as_millis(),
                        Rtt::FLOOR.as_millis(),
                        timeout.as_millis()
                    )
                } else {
                    format!(
                        "no answer to the TCP handshake within {} ms",
                        timeout.as_millis()
                    )
                },
            ))
        }
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
    want_icmp_errors(sock.as_fd(), addr.is_ipv6());
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
            // With IP_RECVERR every ICMP error ends the receive, host unreachable too (a
            // "soft" error Linux keeps quiet otherwise); the queue says which and from whom.
            let (v, d) = match queued_icmp_error(sock.as_fd()) {
                Some(icmp) => (icmp.verdict(), icmp.describe()),
                None => classify(&e),
            };
            UdpOutcome::Failed(v, d)
        }
        Err(_) => UdpOutcome::Silence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_timeout_follows_the_slowest_answer() {
        let r = Rtt::default();
        let max = Duration::from_secs(3);
        assert_eq!(r.timeout(max), max, "no answers yet: the whole timeout");
        for ms in [1, 2, 1] {
            r.record(Duration::from_millis(ms));
        }
        assert_eq!(r.timeout(max), max, "three answers are not enough");
        r.record(Duration::from_millis(1));
        assert_eq!(r.timeout(max), Rtt::FLOOR, "fast answers: the floor");
        r.record(Duration::from_millis(400));
        assert_eq!(
            r.timeout(max),
            Duration::from_millis(1600),
            "4x the slowest"
        );
        r.record(Duration::from_secs(2));
        assert_eq!(r.timeout(max), max, "never above --timeout");
    }

    #[test]
    fn icmp_errors_in_words() {
        let e = IcmpError {
            v6: false,
            icmp_type: 3,
            code: 13,
            from: Some("192.0.2.1".parse().expect("address")),
        };
        assert_eq!(e.verdict(), Verdict::Unreachable);
        assert_eq!(
            e.describe(),
            "ICMP destination unreachable (type 3, code 13: communication administratively prohibited) from 192.0.2.1"
        );
        let port = IcmpError {
            v6: true,
            icmp_type: 1,
            code: 4,
            from: None,
        };
        assert_eq!(port.verdict(), Verdict::Refused);
        assert!(port.describe().contains("port unreachable"));
    }

    #[test]
    fn eacces_is_a_prohibition_on_the_way_eperm_one_here() {
        let (v, d) = classify(&std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(v, Verdict::Unreachable, "{d}");
        let (v, _) = classify(&std::io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(v, Verdict::NotPermitted);
    }
}
