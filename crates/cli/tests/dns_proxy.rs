//! `portolan dns-proxy` on the firewall of a gateway, in namespaces: the appliance resolves
//! 200 fresh names under `*.avcloud.intra2net.com` through the proxy and connects to each at
//! once through the firewall's forward chain; every connection must succeed, because the
//! proxy commits each address to the wildcard's set before it answers. A name outside the
//! wildcard resolves but is not added, and its connection is dropped. A client other than
//! the appliance is REFUSED; a flood from the appliance keeps work and memory bounded.

mod netns;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use netns::dns;
use netns::*;
use portolan_core::{plan, profile, render, site, Source};

const NAMES: usize = 200;
const UPSTREAM: &str = "203.0.113.53";

const PROFILE: &str = r#"
id = "proxy-test"
name = "Proxy test appliance"
vendor = "portolan tests"
[[flows]]
id = "avcloud"
function = "antivirus cloud"
from = "appliance"
to = "*.avcloud.intra2net.com"
protocols = ["tcp"]
ports = [443]
[[flows]]
id = "dns"
function = "name resolution"
from = "appliance"
to = "dns-server"
protocols = ["udp", "tcp"]
ports = [53]
"#;

/// `n17-....avcloud.intra2net.com` -> 198.18.1.17: every name its own address.
fn address_of(name: &str) -> Option<IpAddr> {
    let i: u8 = name.strip_prefix('n')?.split('-').next()?.parse().ok()?;
    Some(IpAddr::V4(Ipv4Addr::new(198, 18, 1, i)))
}

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(format!("{name}.")).expect("name"),
        RecordType::A,
    ));
    m.to_vec().expect("query")
}

/// Resolve through the proxy and connect at once; (address, ttl, connected).
fn resolve_and_connect(proxy: SocketAddr, name: &str) -> Result<(IpAddr, u32, bool), String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.connect(proxy).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.send(&query(name)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let n = s
        .recv(&mut buf)
        .map_err(|e| format!("{name}: no answer from the proxy: {e}"))?;
    let m = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
    let (addr, ttl) = m
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some((IpAddr::V4(a.0), r.ttl)),
            _ => None,
        })
        .ok_or_else(|| format!("{name}: no A record ({:?})", m.metadata.response_code))?;
    let connected =
        TcpStream::connect_timeout(&SocketAddr::new(addr, 443), Duration::from_millis(800)).is_ok();
    Ok((addr, ttl, connected))
}

/// One query over TCP; the response code and the first A address.
fn tcp_query(proxy: SocketAddr, name: &str) -> Result<(String, Option<IpAddr>), String> {
    use std::io::{Read, Write};
    let mut s =
        TcpStream::connect_timeout(&proxy, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let q = query(name);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend(q);
    s.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).map_err(|e| e.to_string())?;
    let m = Message::from_vec(&body).map_err(|e| e.to_string())?;
    let a = m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        _ => None,
    });
    Ok((format!("{:?}", m.metadata.response_code), a))
}

/// Destinations behind the internet interface: 198.18.1.1 up to 198.18.1.`n` and `extra`,
/// routed from the firewall, each with a listener on TCP 443.
fn destinations(topo: &Topology, n: u32, extra: &[&str]) {
    let wan = topo.ns(Zone::Wan);
    let leaf = format!("{}l{}", topo.id, Zone::Wan.tag());
    let addrs = (1..=n)
        .map(|i| format!("198.18.1.{i}"))
        .chain(extra.iter().map(|a| a.to_string()));
    for a in addrs {
        must(&[
            "ip",
            "-n",
            &wan,
            "addr",
            "add",
            &format!("{a}/32"),
            "dev",
            &leaf,
        ]);
    }
    must(&[
        "ip",
        "-n",
        &topo.ns(Zone::Fw),
        "route",
        "add",
        "198.18.0.0/15",
        "dev",
        &topo.fw_if(Zone::Wan),
    ]);
    let l443 = in_ns(&wan, || TcpListener::bind("0.0.0.0:443").expect("bind 443"));
    std::thread::spawn(move || for _ in l443.incoming() {});
}

/// The wildcard's IPv4 set on the firewall, as `nft -j` lists it.
fn wild_set(topo: &Topology) -> String {
    let out = topo.exec(
        Zone::Fw,
        &[
            "nft",
            "-j",
            "list",
            "set",
            "inet",
            "portolan",
            "wild_avcloud.intra2net.com_v4",
        ],
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn proxy_adds_wildcard_answers_before_the_first_packet() {
    // The dedicated gateway drops everything the plan does not name.
    let Some(lab) = Lab::start("drop", &[]) else {
        return;
    };
    let topo = &lab.topo;
    lab.zone.lock().expect("zone").records.insert(
        "other.intra2net.com".into(),
        vec!["198.18.2.1".parse().expect("a")],
    );
    // 200 fresh destinations behind the internet interface.
    destinations(topo, NAMES as u32 + 1, &[]);

    let proxy_addr: SocketAddr = "192.0.2.1:53".parse().expect("a");
    let results = in_ns(&topo.ns(Zone::App), move || {
        let tag = std::process::id();
        let mut out = Vec::new();
        for i in 1..=NAMES {
            out.push(resolve_and_connect(
                proxy_addr,
                &format!("n{i}-{tag}.avcloud.intra2net.com"),
            ));
        }
        out.push(resolve_and_connect(proxy_addr, "other.intra2net.com"));
        // With dns_proxy set, the appliance may not ask the upstream directly.
        out.push(resolve_and_connect(
            "203.0.113.53:53".parse().expect("a"),
            "n1-direct.avcloud.intra2net.com",
        ));
        out
    });
    // Over TCP too: answered, and the address is in the set before the answer arrives.
    let tcp_name = format!("n{}-tcp.avcloud.intra2net.com", NAMES + 1);
    let (tcp_code, tcp_addr) = in_ns(&topo.ns(Zone::App), move || {
        tcp_query(proxy_addr, &tcp_name)
    })
    .expect("tcp query");
    assert_eq!(tcp_code, "NoError");
    let tcp_addr = tcp_addr.expect("an A record over TCP");
    let connected = in_ns(&topo.ns(Zone::App), move || {
        TcpStream::connect_timeout(&SocketAddr::new(tcp_addr, 443), Duration::from_millis(800))
            .is_ok()
    });
    assert!(
        connected,
        "{tcp_addr}: first connection after a TCP answer was dropped"
    );
    let elements = wild_set(topo);
    // A reload with `portolan load` while the proxy runs keeps every address it added, and
    // the first destination still connects.
    let count = |text: &str| text.matches("\"val\"").count();
    let site = lab.dir.join("site.toml").to_string_lossy().to_string();
    let out = topo.exec(
        Zone::Fw,
        &[env!("CARGO_BIN_EXE_portolan"), "load", "--site", &site],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = wild_set(topo);
    assert_eq!(count(&after), count(&elements), "{after}");
    assert!(count(&after) > NAMES, "{after}");
    let first: SocketAddr = "198.18.1.1:443".parse().expect("a");
    assert!(
        in_ns(&topo.ns(Zone::App), move || {
            TcpStream::connect_timeout(&first, Duration::from_millis(800)).is_ok()
        }),
        "a proxied address connects after the reload"
    );
    // If the set cannot be updated (here: the table is gone), the client gets SERVFAIL.
    must(&[
        "ip",
        "netns",
        "exec",
        &topo.ns(Zone::Fw),
        "nft",
        "delete",
        "table",
        "inet",
        "portolan",
    ]);
    let failed_update = in_ns(&topo.ns(Zone::App), move || {
        tcp_query(proxy_addr, "n150-late.avcloud.intra2net.com")
    });
    assert_eq!(failed_update.map(|r| r.0), Ok("ServFail".to_string()));

    let (wild, rest) = results.split_at(NAMES);
    let (other, direct) = rest.split_at(1);
    assert!(
        matches!(&direct[0], Err(e) if e.contains("no answer")),
        "DNS straight to the upstream must be blocked when a proxy is named: {:?}",
        direct[0]
    );
    let failed: Vec<String> = wild
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Ok((_, _, true)) => None,
            Ok((a, _, false)) => Some(format!(
                "n{}: {a} resolved but the first connection was dropped",
                i + 1
            )),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {NAMES} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // TTLs in the reply stay below the element timeout (TTL 5 s -> elements live the
    // default floor of 600 s plus 30 s of grace).
    for r in wild.iter().flatten() {
        assert!(r.1 <= 5, "reply TTL {} not capped", r.1);
    }
    assert!(
        elements.contains("\"timeout\": 630") || elements.contains("\"timeout\":630"),
        "{elements}"
    );
    // Outside the wildcard: answered, not added, and the firewall drops the connection.
    match &other[0] {
        Ok((a, _, connected)) => {
            assert_eq!(a.to_string(), "198.18.2.1");
            assert!(
                !connected,
                "a name outside the wildcard must not open the firewall"
            );
        }
        Err(e) => panic!("other.intra2net.com: {e}"),
    }
    assert!(!elements.contains("198.18.2.1"), "{elements}");
    assert_eq!(
        elements.matches("198.18.1.").count(),
        NAMES + 1,
        "{elements}"
    );
}

/// A small lab for the proxy's own defences: the gateway topology with the rendered
/// ruleset on the firewall, an upstream in the internet zone, and the proxy on the firewall
/// at 192.0.2.1:53 started with `extra` arguments.
struct Lab {
    topo: Topology,
    dir: std::path::PathBuf,
    zone: dns::Shared,
    proxy: std::process::Child,
}

impl Lab {
    /// `others`: the gateway's `others` setting ("drop" or "accept").
    fn start(others: &str, extra: &[&str]) -> Option<Lab> {
        Lab::start_for("nftables", others, extra)
    }

    /// The same lab with the firewall's rules for `target` (`nftables` or `iptables`),
    /// loaded with `portolan load`, and the proxy filling that target's sets.
    fn start_for(target: &str, others: &str, extra: &[&str]) -> Option<Lab> {
        if !require_root_tools() {
            return None;
        }
        let mut topo = Topology::build(&[]);
        topo.add_addr("192.0.2.10".parse().expect("a"), Zone::App);
        topo.add_addr("192.0.2.66".parse().expect("a"), Zone::App);
        topo.add_addr(UPSTREAM.parse().expect("a"), Zone::Wan);
        let zone = dns::zone(5, &[]);
        zone.lock().expect("zone").wildcard = Some(("avcloud.intra2net.com".into(), address_of));
        let sa = SocketAddr::new(UPSTREAM.parse().expect("a"), 53);
        let (u, t) = in_ns(&topo.ns(Zone::Wan), move || {
            (
                UdpSocket::bind(sa).expect("udp"),
                TcpListener::bind(sa).expect("tcp"),
            )
        });
        dns::serve(zone.clone(), u, t);
        let dir = std::env::temp_dir().join(format!("portolan-proxylab-{}", topo.id));
        std::fs::create_dir_all(&dir).expect("dir");
        let site_text = format!(
            "profile = \"profile.toml\"\ndns_proxy = \"192.0.2.1\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n[roles]\ndns-server = [\"{UPSTREAM}\"]\n\
             [placement]\nmode = \"gateway\"\nappliance_interface = \"{}\"\ndefault_interface = \"{}\"\nothers = \"{others}\"\n[placement.zones]\ninternet = \"{}\"\n",
            topo.fw_if(Zone::App),
            topo.fw_if(Zone::Lan),
            topo.fw_if(Zone::Wan)
        );
        std::fs::write(dir.join("site.toml"), &site_text).expect("site");
        std::fs::write(dir.join("profile.toml"), PROFILE).expect("profile");
        let (s, _) = site::parse(&Source::new("site.toml", site_text.as_str())).expect("site");
        let (p, _) = profile::parse(&Source::new("profile.toml", PROFILE)).expect("profile");
        let plan = plan::build(&p, &s, None).expect("plan");
        if target == "nftables" {
            let rules = render::render(&plan, render::target("nftables").expect("t")).text;
            std::fs::write(dir.join("fw.nft"), rules).expect("rules");
            must(&[
                "ip",
                "netns",
                "exec",
                &topo.ns(Zone::Fw),
                "nft",
                "-f",
                &dir.join("fw.nft").to_string_lossy(),
            ]);
        } else {
            must(&[
                "ip",
                "netns",
                "exec",
                &topo.ns(Zone::Fw),
                env!("CARGO_BIN_EXE_portolan"),
                "load",
                "--site",
                &dir.join("site.toml").to_string_lossy(),
                "--target",
                target,
            ]);
        }
        let proxy = Command::new("ip")
            .args([
                "netns",
                "exec",
                &topo.ns(Zone::Fw),
                env!("CARGO_BIN_EXE_portolan"),
                "dns-proxy",
                "--site",
            ])
            .arg(dir.join("site.toml"))
            .args(["--listen", "192.0.2.1:53", "--upstream", UPSTREAM])
            .args(["--target", target])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proxy");
        std::thread::sleep(Duration::from_millis(500));
        Some(Lab {
            topo,
            dir,
            zone,
            proxy,
        })
    }

    fn set_elements(&self) -> String {
        String::from_utf8_lossy(
            &self
                .topo
                .exec(
                    Zone::Fw,
                    &[
                        "nft",
                        "list",
                        "set",
                        "inet",
                        "portolan",
                        "wild_avcloud.intra2net.com_v4",
                    ],
                )
                .stdout,
        )
        .to_string()
    }

    /// (VmHWM, VmRSS) of the proxy in KiB, and its open file descriptors.
    fn usage(&self) -> (u64, u64, usize) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proxy.id()))
            .unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.proxy.id()))
            .map(|d| d.count())
            .unwrap_or(0);
        (kib("VmHWM:"), kib("VmRSS:"), fds)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One UDP query from `src` (bound there, so the proxy sees that client address).
fn udp_query_from(src: &str, proxy: SocketAddr, name: &str) -> Result<Message, String> {
    let s = UdpSocket::bind((src.parse::<IpAddr>().expect("a"), 0)).map_err(|e| e.to_string())?;
    s.connect(proxy).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.send(&query(name)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let n = s.recv(&mut buf).map_err(|e| format!("no answer: {e}"))?;
    Message::from_vec(&buf[..n]).map_err(|e| e.to_string())
}

/// Regression (issue: the DNS proxy was an open resolver): a client that is not the
/// appliance gets REFUSED, over UDP and TCP, and nothing it asks enters a set; the appliance
/// is served as before.
#[test]
fn proxy_refuses_clients_other_than_the_appliance() {
    let Some(lab) = Lab::start("accept", &[]) else {
        return;
    };
    let proxy: SocketAddr = "192.0.2.1:53".parse().expect("a");
    let (outsider, outsider_tcp, appliance) = in_ns(&lab.topo.ns(Zone::App), move || {
        (
            udp_query_from("192.0.2.66", proxy, "n7-outsider.avcloud.intra2net.com"),
            {
                // TCP from the outsider address.
                use std::io::{Read, Write};
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .expect("socket");
                sock.bind(&SocketAddr::from(([192, 0, 2, 66], 0)).into())
                    .expect("bind");
                sock.connect_timeout(&proxy.into(), Duration::from_secs(2))
                    .expect("connect");
                let mut s: TcpStream = sock.into();
                s.set_read_timeout(Some(Duration::from_secs(3))).expect("t");
                let q = query("n8-outsider.avcloud.intra2net.com");
                let mut framed = (q.len() as u16).to_be_bytes().to_vec();
                framed.extend(q);
                s.write_all(&framed).expect("write");
                let mut len = [0u8; 2];
                s.read_exact(&mut len).expect("length");
                let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut body).expect("body");
                Message::from_vec(&body).expect("dns")
            },
            udp_query_from("192.0.2.10", proxy, "n9-appliance.avcloud.intra2net.com"),
        )
    });
    let outsider = outsider.expect("the outsider gets an answer");
    assert_eq!(
        outsider.metadata.response_code,
        hickory_proto::op::ResponseCode::Refused
    );
    assert!(outsider.answers.is_empty());
    assert_eq!(
        outsider_tcp.metadata.response_code,
        hickory_proto::op::ResponseCode::Refused
    );
    let appliance = appliance.expect("the appliance is served");
    assert_eq!(
        appliance.metadata.response_code,
        hickory_proto::op::ResponseCode::NoError
    );
    let elements = lab.set_elements();
    assert!(elements.contains("198.18.1.9"), "{elements}");
    assert!(
        !elements.contains("198.18.1.7") && !elements.contains("198.18.1.8"),
        "an outsider's query entered the set: {elements}"
    );
    // Only the upstream saw the appliance's query; the outsider's never left the proxy.
    assert_eq!(lab.zone.lock().expect("zone").queries, 1);
}

/// Regression (issue: one task per datagram, unbounded): 10,000 queries from one client
/// while the upstream is silent keep at most a bounded number of queries (sockets) in
/// flight and a bounded amount of memory; afterwards the proxy still answers.
#[test]
fn a_query_flood_costs_bounded_memory() {
    // The rate limit is lifted so that the bound on work in flight is what is tested.
    let Some(lab) = Lab::start("accept", &["--rate", "1000000", "--timeout", "2s"]) else {
        return;
    };
    lab.zone.lock().expect("zone").down = true;
    let (hwm_before, _, fds_before) = lab.usage();
    let proxy: SocketAddr = "192.0.2.1:53".parse().expect("a");
    let sender = std::thread::spawn({
        let ns = lab.topo.ns(Zone::App);
        move || {
            in_ns(&ns, move || {
                let s = UdpSocket::bind("192.0.2.10:0").expect("bind");
                s.connect(proxy).expect("connect");
                for i in 0..10_000u32 {
                    let _ = s.send(&query(&format!(
                        "n{}-flood{i}.avcloud.intra2net.com",
                        i % 200
                    )));
                    if i % 500 == 0 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        }
    });
    let mut max_fds = fds_before;
    while !sender.is_finished() {
        max_fds = max_fds.max(lab.usage().2);
        std::thread::sleep(Duration::from_millis(5));
    }
    sender.join().expect("sender");
    for _ in 0..100 {
        max_fds = max_fds.max(lab.usage().2);
        std::thread::sleep(Duration::from_millis(10));
    }
    let (hwm_after, _, _) = lab.usage();
    eprintln!(
        "flood: fds {fds_before} -> max {max_fds}, VmHWM {hwm_before} KiB -> {hwm_after} KiB"
    );
    assert!(
        max_fds <= fds_before + portolan_net::dns_proxy::MAX_INFLIGHT + 8,
        "{max_fds} descriptors open at once: work in flight is not bounded"
    );
    // At most 256 queries in flight, each with a 64 KiB receive buffer: 16 MiB. Without the
    // bound, 10,000 tasks would hold 640 MiB.
    assert!(
        hwm_after < hwm_before + 64 * 1024,
        "peak memory grew from {hwm_before} KiB to {hwm_after} KiB"
    );
    // Still serving once the upstream is back.
    lab.zone.lock().expect("zone").down = false;
    std::thread::sleep(Duration::from_secs(3));
    let after = in_ns(&lab.topo.ns(Zone::App), move || {
        udp_query_from("192.0.2.10", proxy, "n42-after.avcloud.intra2net.com")
    });
    assert_eq!(
        after.map(|m| m.metadata.response_code),
        Ok(hickory_proto::op::ResponseCode::NoError)
    );
}

/// Regression (issue: nothing filled the iptables target's ipsets): on an iptables gateway,
/// the proxy puts each wildcard answer into the wildcard's ipset before answering, and the
/// first connection to each fresh address passes the iptables rules; a name outside the
/// wildcard is answered but not let through.
#[test]
fn proxy_fills_the_ipsets_of_an_iptables_gateway() {
    const N: u32 = 20;
    let Some(lab) = Lab::start_for("iptables", "drop", &[]) else {
        return;
    };
    let topo = &lab.topo;
    lab.zone.lock().expect("zone").records.insert(
        "other.intra2net.com".into(),
        vec!["198.18.2.1".parse().expect("a")],
    );
    destinations(topo, N, &["198.18.2.1"]);
    let proxy: SocketAddr = "192.0.2.1:53".parse().expect("a");
    let results = in_ns(&topo.ns(Zone::App), move || {
        let tag = std::process::id();
        let mut out: Vec<_> = (1..=N)
            .map(|i| resolve_and_connect(proxy, &format!("n{i}-{tag}.avcloud.intra2net.com")))
            .collect();
        out.push(resolve_and_connect(proxy, "other.intra2net.com"));
        out
    });
    let (wild, other) = results.split_at(N as usize);
    for (i, r) in wild.iter().enumerate() {
        match r {
            Ok((_, _, true)) => {}
            other => panic!("n{}: {other:?}: the first connection must pass", i + 1),
        }
    }
    assert!(
        matches!(&other[0], Ok((_, _, false))),
        "outside the wildcard: answered, not let through: {:?}",
        other[0]
    );
    let list = topo.exec(
        Zone::Fw,
        &["ipset", "list", "pt4-wild-avcloud.intra2net.com"],
    );
    let text = String::from_utf8_lossy(&list.stdout);
    let members = text
        .lines()
        .filter(|l| l.starts_with("198.18.1.") && l.contains(" timeout "))
        .count();
    assert_eq!(members, N as usize, "{text}");
}
