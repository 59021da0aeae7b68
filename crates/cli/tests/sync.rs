//! `portolan sync` against an authoritative DNS server in a namespace, writing into the real
//! nftables sets of the rendered table in the appliance namespace.
//!
//! - a changed record: the set follows within the TTL bound, the old address ages out;
//! - the DNS server stops answering: the last known good addresses are kept;
//! - restart with the state directory while DNS is down: the sets are filled before any
//!   lookup succeeds;
//! - NXDOMAIN removes nothing until seen three times in a row.

mod netns;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netns::dns;
use netns::*;
use portolan_core::{plan, profile, render, site, Source};

const DNS: &str = "203.0.113.53";

const PROFILE: &str = r#"
id = "sync-test"
name = "Sync test appliance"
vendor = "portolan tests"
[[flows]]
id = "update"
function = "updates"
from = "appliance"
to = "update.intra2net.com"
protocols = ["tcp"]
ports = [443]
[[flows]]
id = "dns"
function = "name resolution"
from = "appliance"
to = "dns-server"
protocols = ["udp", "tcp"]
ports = [53]
[[flows]]
id = "av"
function = "antivirus"
from = "appliance"
to = "avupdate.intra2net.com"
protocols = ["tcp"]
ports = [8443]
"#;

const SITE: &str = "profile = \"profile.toml\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n[roles]\ndns-server = [\"203.0.113.53\"]\n";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Addresses currently in an nft set of the portolan table in the appliance namespace.
fn set_elements(topo: &Topology, set: &str) -> Vec<String> {
    let out = topo.exec(
        Zone::App,
        &["nft", "-j", "list", "set", "inet", "portolan", set],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft json");
    let mut found = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if s.parse::<IpAddr>().is_ok() => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => {
                if let Some(e) = o.get("elem") {
                    walk(e, out);
                }
                if let Some(e) = o.get("val") {
                    walk(e, out);
                }
                if let Some(s) = o.get("set") {
                    walk(s, out);
                }
                if let Some(n) = o.get("nftables") {
                    walk(n, out);
                }
            }
            _ => {}
        }
    }
    walk(&v, &mut found);
    found.sort();
    found
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for: {what}");
}

fn load_table(topo: &Topology, dir: &std::path::Path, profile: &str) {
    let src = Source::new("site.toml", SITE);
    let (s, _) = site::parse(&src).expect("site");
    let (p, _) = profile::parse(&Source::new("profile.toml", profile)).expect("profile");
    let plan = plan::build(&p, &s, None).expect("plan");
    let out = render::render(&plan, render::target("nftables").expect("nft"));
    let f = dir.join("rules.nft");
    std::fs::write(&f, out.text).expect("write");
    let o = topo.exec(Zone::App, &["nft", "-f", &f.to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn sync_once(
    topo: &Topology,
    dir: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let mut args = vec![
        "netns".to_string(),
        "exec".into(),
        topo.ns(Zone::App),
        env!("CARGO_BIN_EXE_portolan").into(),
        "sync".into(),
        "--once".into(),
        "--site".into(),
        dir.join("site.toml").to_string_lossy().into(),
        "--state-dir".into(),
        dir.join("state").to_string_lossy().into(),
        "--min-refresh".into(),
        "1s".into(),
        "--timeout".into(),
        "500ms".into(),
        "--format".into(),
        "json".into(),
    ];
    // Extra resolvers are asked before the test's DNS server.
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--resolver".to_string(), DNS.to_string()]);
    let out = Command::new("ip").args(&args).output().expect("run sync");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sync output is not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

fn outcome<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["names"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no outcome for {name}: {doc}"))
}

struct Setup {
    topo: Topology,
    dir: std::path::PathBuf,
    zone: dns::Shared,
}

fn setup() -> Option<Setup> {
    setup_with(
        PROFILE,
        &[
            ("update.intra2net.com", "203.0.113.10"),
            ("avupdate.intra2net.com", "203.0.113.11"),
        ],
    )
}

/// The namespaces, a DNS server with `records`, the site and `profile` written, the rendered
/// table loaded.
fn setup_with(profile: &str, records: &[(&str, &str)]) -> Option<Setup> {
    if !require_root_tools() {
        return None;
    }
    let mut topo = Topology::build(&[]);
    topo.add_addr(ip("192.0.2.10"), Zone::App);
    topo.add_addr(ip(DNS), Zone::Wan);
    let zone = dns::zone(2, records);
    let sa = SocketAddr::new(ip(DNS), 53);
    let (udp, tcp) = in_ns(&topo.ns(Zone::Wan), move || {
        (
            UdpSocket::bind(sa).expect("udp 53"),
            TcpListener::bind(sa).expect("tcp 53"),
        )
    });
    dns::serve(zone.clone(), udp, tcp);
    let dir = std::env::temp_dir().join(format!("portolan-sync-{}", topo.id));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("site.toml"), SITE).expect("site");
    std::fs::write(dir.join("profile.toml"), profile).expect("profile");
    load_table(&topo, &dir, profile);
    Some(Setup { topo, dir, zone })
}

#[test]
fn sync_once_fills_sets_keeps_last_known_good_and_restores_after_restart() {
    let Some(Setup { topo, dir, zone }) = setup() else {
        return;
    };
    let set = "dns_update.intra2net.com_v4";
    assert!(
        set_elements(&topo, set).is_empty(),
        "the rendered set starts empty"
    );

    let (code, doc) = sync_once(&topo, &dir, &[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(outcome(&doc, "update.intra2net.com")["result"], "ok");
    assert_eq!(set_elements(&topo, set), ["203.0.113.10"]);
    assert_eq!(
        set_elements(&topo, "dns_avupdate.intra2net.com_v4"),
        ["203.0.113.11"]
    );

    // DNS down: the last known good addresses are re-asserted.
    zone.lock().expect("zone").down = true;
    let (code, doc) = sync_once(&topo, &dir, &[]);
    assert_eq!(code, Some(0), "{doc}");
    let o = outcome(&doc, "update.intra2net.com");
    assert_eq!(o["result"], "timeout", "{doc}");
    assert_eq!(o["stale"], true);
    assert_eq!(o["asserted"][0], "203.0.113.10");

    // "Reboot": the table is reloaded empty, DNS is still down. The state directory fills
    // the sets before any lookup succeeds.
    load_table(&topo, &dir, PROFILE);
    assert!(set_elements(&topo, set).is_empty());
    let (code, _) = sync_once(&topo, &dir, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(set_elements(&topo, set), ["203.0.113.10"]);

    // NXDOMAIN: kept twice, let go the third time in a row.
    {
        let mut z = zone.lock().expect("zone");
        z.down = false;
        z.records.remove("avupdate.intra2net.com");
    }
    let metrics = dir.join("metrics.prom");
    let metrics_arg = metrics.to_string_lossy().to_string();
    let elements_metric = || {
        let m = std::fs::read_to_string(&metrics).expect("metrics file");
        m.lines()
            .find(|l| {
                l.starts_with("portolan_sync_set_elements{set=\"dns_avupdate.intra2net.com_v4\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
            .unwrap_or_default()
    };
    for round in 1..=3 {
        let (code, doc) = sync_once(&topo, &dir, &["--metrics-file", &metrics_arg]);
        let o = outcome(&doc, "avupdate.intra2net.com");
        // Regression: the element count stayed at its last value when addresses were let go.
        assert_eq!(
            elements_metric(),
            if round < 3 { "1" } else { "0" },
            "round {round}"
        );
        assert_eq!(o["result"], "nxdomain");
        if round < 3 {
            assert_eq!(o["asserted"][0], "203.0.113.11", "round {round}: {doc}");
            assert_eq!(code, Some(0));
        } else {
            assert!(
                o["asserted"].as_array().is_some_and(|a| a.is_empty()),
                "round 3: {doc}"
            );
            assert_eq!(
                code,
                Some(1),
                "a name without addresses makes --once exit 1"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sync_daemon_follows_a_changed_record_within_the_ttl_bound() {
    let Some(Setup { topo, dir, zone }) = setup() else {
        return;
    };
    let set = "dns_update.intra2net.com_v4";
    let metrics = dir.join("metrics.prom");
    let mut daemon = Command::new("ip")
        .args([
            "netns",
            "exec",
            &topo.ns(Zone::App),
            env!("CARGO_BIN_EXE_portolan"),
            "sync",
            "--site",
        ])
        .arg(dir.join("site.toml"))
        .args([
            "--resolver",
            DNS,
            "--min-refresh",
            "1s",
            "--timeout",
            "500ms",
            "--metrics",
            "127.0.0.1:9109",
            "--metrics-file",
        ])
        .arg(&metrics)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sync");
    wait_for("the first address", Duration::from_secs(5), || {
        set_elements(&topo, set) == ["203.0.113.10"]
    });

    // TTL 2 s: refresh every 1 s; elements live TTL + 2 refresh periods = 4 s.
    zone.lock()
        .expect("zone")
        .records
        .insert("update.intra2net.com".into(), vec![ip("203.0.113.12")]);
    let changed = Instant::now();
    wait_for("the new address", Duration::from_secs(3), || {
        set_elements(&topo, set).contains(&"203.0.113.12".to_string())
    });
    wait_for("the old address to age out", Duration::from_secs(8), || {
        set_elements(&topo, set) == ["203.0.113.12"]
    });
    assert!(changed.elapsed() < Duration::from_secs(8));

    // DNS down for longer than the element timeout: still there (re-asserted).
    zone.lock().expect("zone").down = true;
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        set_elements(&topo, set),
        ["203.0.113.12"],
        "last known good must be kept"
    );

    let text = std::fs::read_to_string(&metrics).unwrap_or_default();
    assert!(
        text.contains("portolan_sync_lookups_total{name=\"update.intra2net.com\",result=\"ok\"}"),
        "{text}"
    );
    assert!(text.contains("result=\"timeout\""), "{text}");

    // The same over HTTP (Prometheus scrape).
    let scraped = in_ns(&topo.ns(Zone::App), || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.0.0.1:9109").expect("metrics endpoint");
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    });
    assert!(
        scraped.starts_with("HTTP/1.0 200") && scraped.contains("portolan_sync_set_elements"),
        "{scraped}"
    );

    let _ = Command::new("kill").arg(daemon.id().to_string()).status();
    let status = daemon.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = daemon.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        status.success(),
        "sync exits cleanly on SIGTERM: {status:?}\n{err}"
    );
    assert!(err.contains("sync: stopping"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression (issue: forged DNS answers entered allow sets): the stub resolver used fixed
/// query ids and took the first datagram that came back. A server that answers each query
/// first with a wrong id, a wrong question, a query instead of a response and from a wrong
/// source address, and only then with the real answer, must never get its addresses into a
/// set. The appliance's input filter is removed for this test, so that the resolver itself,
/// not the firewall, has to throw the forgeries away.
#[test]
fn forged_dns_answers_never_enter_a_set() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record};

    if !require_root_tools() {
        return;
    }
    let mut topo = Topology::build(&[]);
    topo.add_addr(ip("192.0.2.10"), Zone::App);
    topo.add_addr(ip(DNS), Zone::Wan);
    topo.add_addr(ip("203.0.113.54"), Zone::Wan);
    let dir = std::env::temp_dir().join(format!("portolan-forged-{}", topo.id));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("site.toml"), SITE).expect("site");
    std::fs::write(dir.join("profile.toml"), PROFILE).expect("profile");
    load_table(&topo, &dir, PROFILE);
    for chain in ["input", "output"] {
        let o = topo.exec(
            Zone::App,
            &["nft", "delete", "chain", "inet", "portolan", chain],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    let (real, other) = in_ns(&topo.ns(Zone::Wan), || {
        (
            UdpSocket::bind((ip(DNS), 53)).expect("udp 53"),
            UdpSocket::bind((ip("203.0.113.54"), 53)).expect("udp .54"),
        )
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = real.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(question) = q.queries.first().cloned() else {
                continue;
            };
            let reply = |id: u16, kind: MessageType, asked: Query, addr: &str| {
                let mut m = Message::new(id, kind, OpCode::Query);
                m.metadata.recursion_available = true;
                m.add_query(asked);
                if question.query_type() == hickory_proto::rr::RecordType::A {
                    m.answers.push(Record::from_rdata(
                        question.name().clone(),
                        60,
                        RData::A(A(addr.parse().expect("a"))),
                    ));
                }
                m.to_vec().expect("encode")
            };
            let id = q.metadata.id;
            let wrong_question = Query::query(
                Name::from_ascii("elsewhere.example.").expect("name"),
                question.query_type(),
            );
            // From the wrong source address, otherwise perfect.
            let _ = other.send_to(
                &reply(id, MessageType::Response, question.clone(), "198.51.100.68"),
                peer,
            );
            let forged = [
                reply(
                    id ^ 0x5a5a,
                    MessageType::Response,
                    question.clone(),
                    "198.51.100.66",
                ),
                reply(id, MessageType::Response, wrong_question, "198.51.100.67"),
                reply(id, MessageType::Query, question.clone(), "198.51.100.69"),
            ];
            for f in &forged {
                let _ = real.send_to(f, peer);
            }
            std::thread::sleep(Duration::from_millis(20));
            let _ = real.send_to(
                &reply(id, MessageType::Response, question.clone(), "203.0.113.10"),
                peer,
            );
        }
    });

    // The first resolver does not exist (no answer at all); the second is the forger.
    for round in 0..3 {
        let (code, doc) = sync_once(&topo, &dir, &["--resolver", "203.0.113.99"]);
        assert_eq!(code, Some(0), "round {round}: {doc}");
        let o = outcome(&doc, "update.intra2net.com");
        assert_eq!(o["result"], "ok", "{doc}");
        assert_eq!(o["asserted"], serde_json::json!(["203.0.113.10"]), "{doc}");
        for set in [
            "dns_update.intra2net.com_v4",
            "dns_avupdate.intra2net.com_v4",
        ] {
            assert_eq!(
                set_elements(&topo, set),
                ["203.0.113.10"],
                "round {round}: a forged address entered {set}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Connect from the appliance to `addr`; true when the handshake completes within 1 s.
fn connects(topo: &Topology, addr: SocketAddr) -> bool {
    in_ns(&topo.ns(Zone::App), move || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    })
}

/// Regression (issue: every reload threw away what sync had put into the sets): `portolan
/// load` replaces the table while connections to a synced address keep passing, and the
/// address is still in its set afterwards. A plain `nft -f` of the rendered script (what the
/// unit used to do) empties the set and blocks the flow: the test can tell the difference.
#[test]
fn reloading_with_portolan_load_keeps_synced_addresses_and_connections() {
    let Some(Setup { mut topo, dir, .. }) = setup() else {
        return;
    };
    let target = ip("203.0.113.10");
    topo.add_addr(target, Zone::Wan);
    let sa = SocketAddr::new(target, 443);
    let listener = in_ns(&topo.ns(Zone::Wan), move || {
        TcpListener::bind(sa).expect("listen 443")
    });
    std::thread::spawn(move || {
        for c in listener.incoming() {
            drop(c);
        }
    });
    let set = "dns_update.intra2net.com_v4";
    let (code, doc) = sync_once(&topo, &dir, &[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(set_elements(&topo, set), ["203.0.113.10"]);
    assert!(connects(&topo, sa), "the synced address is reachable");

    // Connections every 20 ms while the rules are reloaded five times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop2, ns) = (stop.clone(), topo.ns(Zone::App));
    let prober = std::thread::spawn(move || {
        in_ns(&ns, move || {
            let (mut ok, mut failed) = (0, 0);
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                match std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(1)) {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (ok, failed)
        })
    });
    let site = dir.join("site.toml").to_string_lossy().to_string();
    for _ in 0..5 {
        let out = topo.exec(
            Zone::App,
            &[env!("CARGO_BIN_EXE_portolan"), "load", "--site", &site],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("kept 2 address(es)"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = prober.join().expect("prober");
    assert!(ok > 10, "{ok} connections");
    assert_eq!(
        failed,
        0,
        "{failed} of {} connections failed across the reloads",
        ok + failed
    );
    assert_eq!(set_elements(&topo, set), ["203.0.113.10"]);

    // The old way: the rendered script alone. The set is empty and the flow is blocked.
    load_table(&topo, &dir, PROFILE);
    assert!(set_elements(&topo, set).is_empty());
    assert!(!connects(&topo, sa), "an emptied set blocks the flow");
}

/// Addresses (with their timeouts) in an ipset of the appliance namespace.
fn ipset_elements(topo: &Topology, set: &str) -> Vec<(String, u64)> {
    let out = topo.exec(Zone::App, &["ipset", "list", set]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut found: Vec<(String, u64)> = text
        .lines()
        .skip_while(|l| !l.starts_with("Members:"))
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let a = w.next()?.to_string();
            let t = w.nth(1).and_then(|t| t.parse().ok()).unwrap_or(0);
            Some((a, t))
        })
        .collect();
    found.sort();
    found
}

/// Regression (issue: nothing filled the iptables target's DNS ipsets): `sync --target
/// iptables` fills them with timeouts, follows a changed record, and the flow passes
/// through the iptables rules; a reload with `portolan load --target iptables` keeps them.
#[test]
fn sync_fills_the_ipsets_of_an_iptables_site_and_follows_a_record_change() {
    let Some(Setup {
        mut topo,
        dir,
        zone,
    }) = setup()
    else {
        return;
    };
    // Only the iptables rules guard this appliance.
    let o = topo.exec(Zone::App, &["nft", "delete", "table", "inet", "portolan"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let site = dir.join("site.toml").to_string_lossy().to_string();
    let bin = env!("CARGO_BIN_EXE_portolan");
    let load = |topo: &Topology| {
        let out = topo.exec(
            Zone::App,
            &[bin, "load", "--site", &site, "--target", "iptables"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    load(&topo);
    let set = "pt4-dns-update.intra2net.com";
    assert!(ipset_elements(&topo, set).is_empty());
    for a in ["203.0.113.10", "203.0.113.12"] {
        topo.add_addr(ip(a), Zone::Wan);
    }
    let listen = |a: &str| {
        let sa = SocketAddr::new(ip(a), 443);
        let l = in_ns(&topo.ns(Zone::Wan), move || {
            TcpListener::bind(sa).expect("443")
        });
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
        sa
    };
    let (old, new) = (listen("203.0.113.10"), listen("203.0.113.12"));
    let sync = |topo: &Topology| {
        let out = topo.exec(
            Zone::App,
            &[
                bin,
                "sync",
                "--once",
                "--site",
                &site,
                "--target",
                "iptables",
                "--resolver",
                DNS,
                "--min-refresh",
                "1s",
                "--timeout",
                "500ms",
                "--format",
                "json",
            ],
        );
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("instead"),
            "netlink must be used: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sync(&topo);
    let e = ipset_elements(&topo, set);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "203.0.113.10");
    // TTL 2 s, min refresh 1 s: the element lives TTL + 2 refresh periods, about 4 s.
    assert!((1..=4).contains(&e[0].1), "{e:?}");
    assert!(
        connects(&topo, old),
        "the synced address passes the iptables rules"
    );
    assert!(
        !connects(&topo, new),
        "an address not in the ipset is dropped"
    );

    // The record changes: the new address enters at once, the old one ages out.
    zone.lock()
        .expect("zone")
        .records
        .insert("update.intra2net.com".into(), vec![ip("203.0.113.12")]);
    sync(&topo);
    let e = ipset_elements(&topo, set);
    assert!(e.iter().any(|(a, _)| a == "203.0.113.12"), "{e:?}");
    assert!(connects(&topo, new));
    // A reload keeps the ipset's addresses.
    load(&topo);
    assert!(ipset_elements(&topo, set)
        .iter()
        .any(|(a, _)| a == "203.0.113.12"));
    assert!(connects(&topo, new), "the flow passes after the reload");
    wait_for("the old address to age out", Duration::from_secs(8), || {
        ipset_elements(&topo, set)
            .iter()
            .all(|(a, _)| a != "203.0.113.10")
    });
    assert!(
        !connects(&topo, old),
        "the address the vendor dropped is closed again"
    );
}

/// `--metrics-file` into a directory that does not exist is an error at start (exit 2), not
/// a silent failure at every pass.
#[test]
fn a_metrics_file_in_a_missing_directory_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args([
            "sync",
            "--once",
            "--profile",
            "intra2net",
            "--metrics-file",
            "/nonexistent-portolan-dir/m.prom",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent-portolan-dir") && err.contains("does not exist"),
        "{err}"
    );
}

const GROUP_PROFILE: &str = r#"
id = "group-test"
name = "Names that share a match"
vendor = "portolan tests"
[[flows]]
id = "dns"
function = "name resolution"
from = "appliance"
to = "dns-server"
protocols = ["udp", "tcp"]
ports = [53]
[[flows]]
id = "a"
function = "updates"
from = "appliance"
to = "a.vendor.example"
protocols = ["tcp"]
ports = [443]
[[flows]]
id = "b"
function = "licences"
from = "appliance"
to = "b.vendor.example"
protocols = ["tcp"]
ports = [443]
[[flows]]
id = "c"
function = "telemetry"
from = "appliance"
to = "c.vendor.example"
protocols = ["tcp"]
ports = [443]
"#;

/// Names of the sets in the portolan table of the appliance namespace.
fn set_names(topo: &Topology) -> Vec<String> {
    let out = topo.exec(
        Zone::App,
        &["nft", "-j", "list", "table", "inet", "portolan"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft json");
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["set"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Names with one match (tcp 443 out) share one set per family: sync fills it with every
/// name's addresses and nothing else passes, the audit of the loaded table binds the set to
/// all three names, a reload keeps its addresses, and dropping a name from the profile gives
/// the group another set, so `load` carries none of the old addresses (the dropped name's
/// address is blocked at once, not when its timeout runs out).
#[test]
fn names_sharing_a_match_share_one_set_that_sync_fills_and_load_never_widens() {
    let records = [
        ("a.vendor.example", "203.0.113.21"),
        ("b.vendor.example", "203.0.113.22"),
        ("c.vendor.example", "203.0.113.23"),
    ];
    let Some(Setup { mut topo, dir, .. }) = setup_with(GROUP_PROFILE, &records) else {
        return;
    };
    let dns_sets: Vec<String> = set_names(&topo)
        .into_iter()
        .filter(|n| n.starts_with("dns_"))
        .collect();
    // The appliance has IPv4 only: one set for the three names.
    assert_eq!(dns_sets.len(), 1, "one set for three names: {dns_sets:?}");
    let group = dns_sets
        .iter()
        .find(|n| n.ends_with("_v4"))
        .expect("IPv4 group")
        .clone();
    assert!(group.starts_with("dns_to_tcp_443_"), "{group}");

    let addrs = [
        "203.0.113.21",
        "203.0.113.22",
        "203.0.113.23",
        "203.0.113.24",
    ];
    let mut targets = Vec::new();
    for a in addrs {
        topo.add_addr(ip(a), Zone::Wan);
        let sa = SocketAddr::new(ip(a), 443);
        let l = in_ns(&topo.ns(Zone::Wan), move || {
            TcpListener::bind(sa).expect("listen 443")
        });
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
        targets.push(sa);
    }
    let metrics = dir.join("metrics.prom");
    let m = metrics.to_string_lossy().to_string();
    let (code, doc) = sync_once(&topo, &dir, &["--metrics-file", &m]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(set_elements(&topo, &group), &addrs[..3]);
    let line = format!("portolan_sync_set_elements{{set=\"{group}\"}} 3");
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    for sa in &targets[..3] {
        assert!(connects(&topo, *sa), "{sa} is one of the names");
    }
    assert!(!connects(&topo, targets[3]), "203.0.113.24 is none of them");

    // The audit of what is loaded: all three flows pass through the shared set.
    let rs = topo.exec(Zone::App, &["nft", "-j", "list", "ruleset"]);
    assert!(rs.status.success());
    let rs_file = dir.join("ruleset.json");
    std::fs::write(&rs_file, &rs.stdout).expect("write ruleset");
    let site = dir.join("site.toml").to_string_lossy().to_string();
    let bin = env!("CARGO_BIN_EXE_portolan");
    let audit = Command::new(bin)
        .args(["audit", "--site", &site, "--ruleset"])
        .arg(&rs_file)
        .output()
        .expect("audit");
    assert_eq!(
        audit.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );

    // Reload, same profile: the three addresses stay.
    let load = |topo: &Topology| {
        let out = topo.exec(Zone::App, &[bin, "load", "--site", &site]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let said = load(&topo);
    assert!(said.contains("kept 3 address(es)"), "{said}");
    assert_eq!(set_elements(&topo, &group), &addrs[..3]);

    // c leaves the profile: another set, nothing carried over, c blocked at once.
    let (before_c, _) = GROUP_PROFILE
        .split_once("[[flows]]\nid = \"c\"")
        .expect("c");
    std::fs::write(dir.join("profile.toml"), before_c).expect("profile");
    let said = load(&topo);
    assert!(said.contains("kept 0 address(es)"), "{said}");
    let new_group = set_names(&topo)
        .into_iter()
        .find(|n| n.starts_with("dns_") && n.ends_with("_v4"))
        .expect("new group");
    assert_ne!(new_group, group, "another membership, another set");
    assert!(!connects(&topo, targets[2]), "c's address left with c");
    let (code, doc) = sync_once(&topo, &dir, &[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(set_elements(&topo, &new_group), &addrs[..2]);
    assert!(connects(&topo, targets[0]));
    assert!(!connects(&topo, targets[2]));
    let _ = std::fs::remove_dir_all(&dir);
}
