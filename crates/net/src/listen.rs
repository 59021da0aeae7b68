//! `portolan listen`: stand in for the appliance's services. Opens a listener for every
//! inbound flow, answers with a protocol-appropriate greeting (TCP) or a reply (UDP), and logs
//! each arrival with the peer address as one JSON line, so source NAT shows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portolan_core::model::Protocol;
use portolan_core::plan::{Direction, Plan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::probe::{app_for, App};

/// Ports bound per range at most (a range like 5000-5050 is bound whole).
pub const MAX_PORTS_PER_RANGE: u32 = 1024;

/// One thing to listen on.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub flows: Vec<String>,
    pub protocol: Protocol,
    pub port: u16,
    pub app: App,
}

/// The listeners an inbound plan needs (TCP and UDP; one per protocol and port).
pub fn endpoints(plan: &Plan) -> Vec<Endpoint> {
    let mut map: std::collections::BTreeMap<(u8, u16), Endpoint> = Default::default();
    for f in plan
        .flows
        .iter()
        .filter(|f| f.direction == Direction::Inbound)
    {
        if f.protocol == Protocol::Icmp {
            continue;
        }
        for r in &f.ports {
            let hi = u32::from(r.high).min(u32::from(r.low) + MAX_PORTS_PER_RANGE - 1);
            for p in u32::from(r.low)..=hi {
                let port = p as u16;
                let key = (if f.protocol == Protocol::Tcp { 0 } else { 1 }, port);
                let e = map.entry(key).or_insert_with(|| Endpoint {
                    flows: vec![],
                    protocol: f.protocol,
                    port,
                    app: app_for(f.app.as_deref(), f.protocol, port).0,
                });
                if !e.flows.contains(&f.id) {
                    e.flows.push(f.id.clone());
                }
            }
        }
    }
    map.into_values().collect()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Where log lines go.
pub type Log = Arc<dyn Fn(serde_json::Value) + Send + Sync>;

fn greeting(app: App) -> &'static [u8] {
    match app {
        App::Smtp => b"220 portolan-listen ESMTP\r\n",
        App::Ssh => b"SSH-2.0-portolan_listen\r\n",
        App::Ftp => b"220 portolan-listen FTP\r\n",
        App::Pop3 => b"+OK portolan-listen\r\n",
        App::Imap => b"* OK portolan-listen\r\n",
        App::Razor => b"sn=portolan-listen&srl=0\r\n",
        _ => b"",
    }
}

fn bind_reason(e: &std::io::Error, port: u16) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("port {port} is taken (a real service already listens there)"),
        std::io::ErrorKind::PermissionDenied => format!("port {port} is below 1024 and this process lacks the privilege (run as root or grant CAP_NET_BIND_SERVICE)"),
        _ => e.to_string(),
    }
}

/// Bind everything; report failures through `log` and go on. Returns when `stop` resolves.
pub async fn run(
    endpoints: Vec<Endpoint>,
    log: Log,
    stop: impl std::future::Future<Output = ()>,
) -> (usize, usize) {
    let mut bound = 0;
    let mut failed = 0;
    let mut tasks = tokio::task::JoinSet::new();
    for e in endpoints {
        for ip in [
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ] {
            let sa = SocketAddr::new(ip, e.port);
            let log = log.clone();
            let e2 = e.clone();
            let proto = if e.protocol == Protocol::Tcp {
                "tcp"
            } else {
                "udp"
            };
            let result = match e.protocol {
                Protocol::Tcp => bind_tcp(sa).map(|l| {
                    tasks.spawn(serve_tcp(l, e2, log.clone()));
                }),
                _ => bind_udp(sa).map(|s| {
                    tasks.spawn(serve_udp(s, e2, log.clone()));
                }),
            };
            match result {
                Ok(()) => bound += 1,
                // IPv6 sockets are v6-only, so a failure on the IPv4 side is a real conflict.
                Err(err) => {
                    failed += 1;
                    log(serde_json::json!({
                        "event": "bind-failed", "protocol": proto, "port": e.port,
                        "address": ip.to_string(), "flows": e.flows, "reason": bind_reason(&err, e.port),
                    }));
                }
            }
        }
    }
    log(serde_json::json!({"event": "listening", "sockets": bound, "failed": failed}));
    stop.await;
    tasks.abort_all();
    (bound, failed)
}

fn bind_tcp(sa: SocketAddr) -> std::io::Result<TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(sa),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    if sa.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&sa.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

fn bind_udp(sa: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(sa), socket2::Type::DGRAM, None)?;
    if sa.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&sa.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

async fn serve_tcp(l: TcpListener, e: Endpoint, log: Log) {
    loop {
        let Ok((mut c, peer)) = l.accept().await else {
            continue;
        };
        log(serde_json::json!({
            "event": "arrival", "time_ms": now_ms() as u64, "protocol": "tcp", "port": e.port,
            "peer": peer.to_string(), "flows": e.flows,
        }));
        let app = e.app;
        tokio::spawn(async move {
            let _ = c.write_all(greeting(app)).await;
            if app == App::Http {
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await;
                let _ = c
                    .write_all(b"HTTP/1.0 204 No Content\r\nServer: portolan-listen\r\n\r\n")
                    .await;
            }
            if app == App::Smtp {
                smtp_session(&mut c).await;
            }
            let _ = c.shutdown().await;
        });
    }
}

/// A minimal SMTP dialogue after the greeting: EHLO/HELO get a 250, QUIT a 221 and the
/// end, anything else a 502; at most 16 commands of at most 512 bytes, 2 s each (a stand-in
/// that lets an inbound SMTP probe see a real exchange, and nothing more).
async fn smtp_session(c: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncBufReadExt;
    let (r, mut w) = c.split();
    let mut lines = tokio::io::BufReader::new(r.take(16 * 512)).lines();
    for _ in 0..16 {
        let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await
        else {
            return;
        };
        let cmd = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match cmd.as_str() {
            "EHLO" | "HELO" => b"250 portolan-listen\r\n",
            "QUIT" => {
                let _ = w.write_all(b"221 portolan-listen closing\r\n").await;
                return;
            }
            _ => b"502 portolan-listen only answers EHLO and QUIT\r\n",
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn serve_udp(s: UdpSocket, e: Endpoint, log: Log) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, peer)) = s.recv_from(&mut buf).await else {
            continue;
        };
        log(serde_json::json!({
            "event": "arrival", "time_ms": now_ms() as u64, "protocol": "udp", "port": e.port,
            "peer": peer.to_string(), "flows": e.flows, "bytes": n,
        }));
        let reply: Vec<u8> = match e.app {
            App::Ntp => {
                let mut r = [0u8; 48];
                r[0] = 0x24; // version 4, mode 4 (server)
                r[1] = 2; // stratum
                let secs = (SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    + 2_208_988_800) as u32;
                r[40..44].copy_from_slice(&secs.to_be_bytes());
                r.to_vec()
            }
            App::Syslog => continue,
            _ => buf[..n].to_vec(),
        };
        let _ = s.send_to(&reply, peer).await;
    }
}
