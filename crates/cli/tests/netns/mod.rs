//! Test hosts in network namespaces: a small network of appliance, firewall, internet,
//! internal LAN and admin, joined by veth pairs; listeners at chosen addresses; probes that
//! open real connections from inside a namespace.
//!
//! Traffic only ever goes to addresses inside namespaces made here. Namespaces are deleted
//! when the [`Topology`] is dropped, which also happens when a test panics.
#![allow(dead_code)]

pub mod dns;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol as SockProto, SockAddr, Socket, Type};

/// How long a probe waits before calling a connection blocked. Answers inside namespaces
/// take microseconds; this is generous so a loaded CI machine does not flake.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Probes running at once.
pub const PROBE_PARALLELISM: usize = 48;

/// Where a test host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    App,
    Fw,
    Wan,
    Lan,
    Adm,
}

pub const LEAF_ZONES: [Zone; 4] = [Zone::App, Zone::Wan, Zone::Lan, Zone::Adm];

impl Zone {
    pub fn tag(self) -> &'static str {
        match self {
            Zone::App => "app",
            Zone::Fw => "fw",
            Zone::Wan => "wan",
            Zone::Lan => "lan",
            Zone::Adm => "adm",
        }
    }
    /// (IPv4 link network prefix, firewall address, IPv6 prefix, firewall address)
    fn link(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Zone::App => (
                "192.0.2.0/24",
                "192.0.2.1",
                "2001:db8:a::/64",
                "2001:db8:a::1",
            ),
            Zone::Lan => (
                "198.51.100.0/25",
                "198.51.100.1",
                "2001:db8:b::/64",
                "2001:db8:b::1",
            ),
            Zone::Adm => (
                "198.51.100.128/25",
                "198.51.100.129",
                "2001:db8:c::/64",
                "2001:db8:c::1",
            ),
            Zone::Wan => (
                "203.0.113.0/24",
                "203.0.113.1",
                "2001:db8:d::/64",
                "2001:db8:d::1",
            ),
            Zone::Fw => ("", "", "", ""),
        }
    }
}

/// Fail loudly, or skip loudly when the caller has asked for it, if namespaces cannot be made.
pub fn require_root_tools() -> bool {
    let root = euid_is_root();
    let tools = [
        "ip",
        "nft",
        "iptables-restore",
        "ip6tables-restore",
        "ipset",
        "ping",
    ]
    .iter()
    .all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return true;
    }
    skip_loudly(
        "PORTOLAN_SKIP_KERNEL_TESTS",
        &format!(
            "KERNEL TESTS CANNOT RUN: root={root}, tools present={tools}. They need root and ip, nft, iptables-restore, ip6tables-restore, ipset, ping (the README's test command installs them)."
        ),
    )
}

/// A test that cannot run: with `env` set, say so loudly, record it for the README's test
/// command (which counts it as skipped, not passed) and return `false`; else fail.
pub fn skip_loudly(env: &str, msg: &str) -> bool {
    if std::env::var_os(env).is_some() {
        eprintln!("\n!!!!! SKIPPED: {msg}\n");
        // The test harness counts this test as passed; the README's test command reads this
        // log and reports it as skipped instead.
        if let Some(log) = std::env::var_os("PORTOLAN_SKIPPED_LOG") {
            use std::io::Write;
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_default();
            let name = format!(
                "{exe}::{}",
                std::thread::current().name().unwrap_or("unnamed test")
            );
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
            {
                let _ = writeln!(f, "{name}");
            }
        }
        false
    } else {
        panic!("{msg} Set {env}=1 to skip explicitly.");
    }
}

pub fn euid_is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

pub fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

pub fn must(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A set of namespaces; deleted on drop.
pub struct Topology {
    pub id: String,
    /// Addresses configured on each leaf, in order of preference for picking samples.
    pub addrs: Vec<(IpAddr, Zone)>,
}

impl Topology {
    pub fn ns(&self, z: Zone) -> String {
        format!("{}{}", self.id, z.tag())
    }
    /// The firewall's interface toward a zone.
    pub fn fw_if(&self, z: Zone) -> String {
        format!("{}f{}", self.id, z.tag())
    }

    /// Build the five namespaces. `extra` are further addresses per leaf zone.
    pub fn build(extra: &[(IpAddr, Zone)]) -> Topology {
        remove_stale();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("pk{}x{n}", std::process::id() % 100_000);
        let mut t = Topology {
            id,
            addrs: Vec::new(),
        };
        for z in [Zone::Fw, Zone::App, Zone::Wan, Zone::Lan, Zone::Adm] {
            must(&["ip", "netns", "add", &t.ns(z)]);
            must(&["ip", "-n", &t.ns(z), "link", "set", "lo", "up"]);
        }
        let fw = t.ns(Zone::Fw);
        must(&[
            "ip",
            "netns",
            "exec",
            &fw,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        must(&[
            "ip",
            "netns",
            "exec",
            &fw,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        for z in LEAF_ZONES {
            let leaf = t.ns(z);
            let fwif = t.fw_if(z);
            let leafif = format!("{}l{}", t.id, z.tag());
            must(&[
                "ip", "link", "add", &fwif, "netns", &fw, "type", "veth", "peer", "name", &leafif,
                "netns", &leaf,
            ]);
            let (net4, gw4, net6, gw6) = z.link();
            let p4 = net4.split('/').nth(1).unwrap_or("24");
            must(&[
                "ip",
                "-n",
                &fw,
                "addr",
                "add",
                &format!("{gw4}/{p4}"),
                "dev",
                &fwif,
            ]);
            must(&[
                "ip",
                "-n",
                &fw,
                "addr",
                "add",
                &format!("{gw6}/64"),
                "dev",
                &fwif,
                "nodad",
            ]);
            must(&["ip", "-n", &fw, "link", "set", &fwif, "up"]);
            must(&["ip", "-n", &leaf, "link", "set", &leafif, "up"]);
            must(&[
                "ip", "-n", &leaf, "route", "add", "default", "via", gw4, "dev", &leafif, "onlink",
            ]);
            let _ = net6;
            must(&[
                "ip", "-n", &leaf, "-6", "route", "add", "default", "via", gw6, "dev", &leafif,
                "onlink",
            ]);
        }
        for (a, z) in extra {
            t.add_addr(*a, *z);
        }
        t
    }

    pub fn add_addr(&mut self, a: IpAddr, z: Zone) {
        if self.addrs.iter().any(|(x, _)| *x == a) {
            return;
        }
        let leaf = self.ns(z);
        let leafif = format!("{}l{}", self.id, z.tag());
        let (net4, _, _, _) = z.link();
        let p4 = net4.split('/').nth(1).unwrap_or("24");
        match a {
            IpAddr::V4(_) => must(&[
                "ip",
                "-n",
                &leaf,
                "addr",
                "add",
                &format!("{a}/{p4}"),
                "dev",
                &leafif,
            ]),
            IpAddr::V6(_) => must(&[
                "ip",
                "-n",
                &leaf,
                "addr",
                "add",
                &format!("{a}/64"),
                "dev",
                &leafif,
                "nodad",
            ]),
        }
        self.addrs.push((a, z));
    }

    pub fn zone_of(&self, a: IpAddr) -> Option<Zone> {
        self.addrs.iter().find(|(x, _)| *x == a).map(|(_, z)| *z)
    }

    /// Run a command inside a namespace.
    pub fn exec(&self, z: Zone, args: &[&str]) -> std::process::Output {
        let ns = self.ns(z);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        sh(&full)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for z in [Zone::Fw, Zone::App, Zone::Wan, Zone::Lan, Zone::Adm] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(z)])
                .output();
        }
    }
}

/// Delete namespaces left behind by a test process that no longer runs (killed mid-test).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("pk") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let mine = (std::process::id() % 100_000).to_string();
        if pid != mine && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Run `f` on a fresh thread that has entered namespace `ns`. Sockets made there stay there.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    let shown = path.clone();
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        enter_netns(&file);
        f()
    })
    .join()
    .unwrap_or_else(|_| panic!("thread in {shown} panicked"))
}

#[allow(unsafe_code)]
fn enter_netns(file: &File) {
    // SAFETY: setns only changes the calling thread's network namespace; the fd is valid for
    // the duration of the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns failed: {}", std::io::Error::last_os_error());
}

/// Transport of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// Listeners for TCP and UDP at many addresses, served by one background thread.
pub struct Listeners {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Listeners {
    /// `targets`: (namespace, address, protocol, port) for TCP and UDP.
    pub fn start(targets: &BTreeSet<(String, IpAddr, Proto, u16)>) -> Listeners {
        let mut tcp: Vec<TcpListener> = Vec::new();
        let mut udp: Vec<UdpSocket> = Vec::new();
        let mut by_ns: std::collections::BTreeMap<String, Vec<(IpAddr, Proto, u16)>> =
            Default::default();
        for (ns, a, p, port) in targets {
            by_ns.entry(ns.clone()).or_default().push((*a, *p, *port));
        }
        for (ns, list) in by_ns {
            let (t, u) = in_ns(&ns, move || {
                let mut t = Vec::new();
                let mut u = Vec::new();
                for (a, p, port) in list {
                    let sa = SocketAddr::new(a, port);
                    match p {
                        Proto::Tcp => {
                            let s = Socket::new(
                                Domain::for_address(sa),
                                Type::STREAM,
                                Some(SockProto::TCP),
                            )
                            .expect("socket");
                            s.set_reuse_address(true).expect("reuse");
                            if a.is_ipv6() {
                                s.set_only_v6(true).expect("v6only");
                            }
                            s.bind(&sa.into())
                                .unwrap_or_else(|e| panic!("bind tcp {sa}: {e}"));
                            s.listen(1024).expect("listen");
                            s.set_nonblocking(true).expect("nonblocking");
                            t.push(TcpListener::from(s));
                        }
                        Proto::Udp => {
                            let s = UdpSocket::bind(sa)
                                .unwrap_or_else(|e| panic!("bind udp {sa}: {e}"));
                            s.set_nonblocking(true).expect("nonblocking");
                            u.push(s);
                        }
                        Proto::Icmp => {}
                    }
                }
                (t, u)
            });
            tcp.extend(t);
            udp.extend(u);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop2.load(Ordering::Relaxed) {
                let mut busy = false;
                for l in &tcp {
                    while let Ok((mut c, _)) = l.accept() {
                        let _ = c.write_all(b"portolan-test\n");
                        busy = true;
                    }
                }
                for u in &udp {
                    while let Ok((n, peer)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], peer);
                        busy = true;
                    }
                }
                if !busy {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        Listeners {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Connection made / reply received.
    Passed,
    /// Nothing came back within the timeout.
    Blocked,
    /// Something else (e.g. a TCP reset: the packet got through but nothing listened).
    Odd,
}

/// One test packet: a new connection from `src` to `dst`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Probe {
    pub src: IpAddr,
    pub src_zone: Zone,
    pub dst: IpAddr,
    pub dst_zone: Zone,
    pub proto: Proto,
    /// Destination port (0 for ICMP echo).
    pub port: u16,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {}({}) -> {}({}):{}",
            self.proto,
            self.src,
            self.src_zone.tag(),
            self.dst,
            self.dst_zone.tag(),
            self.port
        )
    }
}

fn run_probe(topo_ns: String, p: Probe) -> Outcome {
    match p.proto {
        Proto::Icmp => {
            let fam = if p.dst.is_ipv6() { "-6" } else { "-4" };
            let w = PROBE_TIMEOUT.as_secs().max(1).to_string();
            let src = p.src.to_string();
            let dst = p.dst.to_string();
            let out = sh(&[
                "ip", "netns", "exec", &topo_ns, "ping", fam, "-n", "-q", "-c", "1", "-W", &w,
                "-I", &src, &dst,
            ]);
            if out.status.success() {
                Outcome::Passed
            } else {
                Outcome::Blocked
            }
        }
        Proto::Tcp | Proto::Udp => in_ns(&topo_ns, move || {
            let dst = SocketAddr::new(p.dst, p.port);
            let src = SocketAddr::new(p.src, 0);
            let (ty, proto) = if p.proto == Proto::Tcp {
                (Type::STREAM, SockProto::TCP)
            } else {
                (Type::DGRAM, SockProto::UDP)
            };
            let s = Socket::new(Domain::for_address(dst), ty, Some(proto)).expect("socket");
            s.bind(&src.into())
                .unwrap_or_else(|e| panic!("bind {src}: {e}"));
            if p.proto == Proto::Tcp {
                match s.connect_timeout(&SockAddr::from(dst), PROBE_TIMEOUT) {
                    Ok(()) => Outcome::Passed,
                    // A drop in the local output chain answers EPERM at once.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::PermissionDenied
                        ) =>
                    {
                        Outcome::Blocked
                    }
                    Err(_) => Outcome::Odd,
                }
            } else {
                let u: UdpSocket = s.into();
                let _ = u.set_read_timeout(Some(PROBE_TIMEOUT));
                match u.send_to(b"portolan-probe", dst) {
                    Ok(_) => {}
                    // A drop in the local output chain answers EPERM at once.
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        return Outcome::Blocked
                    }
                    Err(_) => return Outcome::Odd,
                }
                let mut buf = [0u8; 64];
                match u.recv_from(&mut buf) {
                    Ok((n, from)) if from == dst && &buf[..n] == b"portolan-probe" => {
                        Outcome::Passed
                    }
                    Ok(_) => Outcome::Odd,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        Outcome::Blocked
                    }
                    Err(_) => Outcome::Odd,
                }
            }
        }),
    }
}

/// Run probes in parallel; results in input order.
pub fn run_probes(topo: &Topology, probes: &[Probe]) -> Vec<Outcome> {
    let mut out = vec![Outcome::Odd; probes.len()];
    for (ci, chunk) in probes.chunks(PROBE_PARALLELISM).enumerate() {
        let handles: Vec<_> = chunk
            .iter()
            .map(|p| {
                let ns = topo.ns(p.src_zone);
                let p = p.clone();
                std::thread::spawn(move || run_probe(ns, p))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            out[ci * PROBE_PARALLELISM + i] = h.join().unwrap_or(Outcome::Odd);
        }
    }
    out
}

/// Read a whole file (test helper).
pub fn read(path: &std::path::Path) -> String {
    let mut s = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    s
}
