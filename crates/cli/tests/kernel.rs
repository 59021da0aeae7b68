//! Proof on a real kernel: the rendered rules let through exactly the planned flows.
//!
//! For each seed profile (all features on, every option of every alternative chosen) and each
//! target, a network of namespaces is built (appliance, firewall, internet, LAN, admin), the
//! gateway-mode ruleset is loaded in the firewall namespace and the host-mode ruleset in the
//! appliance namespace, listeners are started at the addresses the plan names, and real
//! connections are opened: every planned flow (each port range at its ends and middle, each
//! family, each peer), plus for each flow other ports, the reverse direction and other sources.
//!
//! What the kernel did is compared with an oracle computed from the plan alone (not from the
//! rendered text): a packet should pass iff some planned flow covers its source, destination,
//! protocol and port. So a renderer that widens or narrows anything fails here.

mod netns;

use std::collections::BTreeSet;
use std::net::IpAddr;

use netns::*;
use portolan_core::catalog;
use portolan_core::model::{IcmpType, Profile, Protocol};
use portolan_core::plan::{self, set_contains, Direction, Peer, Plan, SetKind};
use portolan_core::render;
use portolan_core::site;
use portolan_core::Source;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
}

/// The zone a peer lives in, in this test network.
fn zone_of_peer(p: &Peer) -> Zone {
    match p.kind {
        SetKind::Appliance => Zone::App,
        SetKind::Dns | SetKind::Wildcard | SetKind::Network => Zone::Wan,
        SetKind::Role => match p.name.as_str() {
            "internet" | "smarthost" => Zone::Wan,
            "admin" => Zone::Adm,
            _ => Zone::Lan,
        },
    }
}

struct TestNet {
    /// Role and pin addresses, then samples: the order in which peers pick addresses.
    addrs: Vec<(IpAddr, Zone)>,
    roles: Vec<(String, Vec<String>)>,
    hosts: Vec<(String, Vec<String>)>,
}

const APPLIANCE: [&str; 2] = ["192.0.2.10", "2001:db8:a::10"];

fn test_net(profile: &Profile) -> TestNet {
    let mut addrs: Vec<(IpAddr, Zone)> = APPLIANCE.iter().map(|a| (ip(a), Zone::App)).collect();
    // Samples that belong to no role: the internet, a LAN host, a non-admin host, another host
    // in the appliance's network.
    for (a, z) in [
        ("203.0.113.77", Zone::Wan),
        ("2001:db8:d::77", Zone::Wan),
        ("198.51.100.99", Zone::Lan),
        ("2001:db8:b::99", Zone::Lan),
    ] {
        addrs.push((ip(a), z));
    }
    let mut roles = vec![(
        "internal".to_string(),
        vec!["198.51.100.0/25".to_string(), "2001:db8:b::/64".to_string()],
    )];
    let mut names: Vec<String> = profile.used_roles().into_iter().map(String::from).collect();
    names.extend(profile.roles.keys().cloned());
    names.sort();
    names.dedup();
    let mut lan = 10;
    for r in names {
        let (v4, v6, z) = match r.as_str() {
            "internet" | "internal" => continue,
            "admin" => (
                "198.51.100.200".to_string(),
                "2001:db8:c::200".to_string(),
                Zone::Adm,
            ),
            "smarthost" => (
                "203.0.113.25".to_string(),
                "2001:db8:d::25".to_string(),
                Zone::Wan,
            ),
            _ => {
                lan += 1;
                (
                    format!("198.51.100.{lan}"),
                    format!("2001:db8:b::{lan}"),
                    Zone::Lan,
                )
            }
        };
        addrs.push((ip(&v4), z));
        addrs.push((ip(&v6), z));
        roles.push((r, vec![v4, v6]));
    }
    let mut dns: BTreeSet<String> = BTreeSet::new();
    for f in &profile.flows {
        for e in f.from.iter().chain(&f.to) {
            if let portolan_core::model::Endpoint::Dns(n)
            | portolan_core::model::Endpoint::Wildcard(n) = e
            {
                dns.insert(n.clone());
            }
        }
    }
    let mut hosts = Vec::new();
    for (i, n) in dns.into_iter().enumerate() {
        let v4 = format!("203.0.113.{}", 100 + i);
        let v6 = format!("2001:db8:d::{}", 100 + i);
        addrs.push((ip(&v4), Zone::Wan));
        addrs.push((ip(&v6), Zone::Wan));
        hosts.push((n, vec![v4, v6]));
    }
    // Sources that must not get through: another host next to the appliance, a host in the
    // admin network that is not an admin.
    for (a, z) in [
        ("192.0.2.11", Zone::App),
        ("2001:db8:a::11", Zone::App),
        ("198.51.100.201", Zone::Adm),
        ("2001:db8:c::201", Zone::Adm),
    ] {
        addrs.push((ip(a), z));
    }
    TestNet {
        addrs,
        roles,
        hosts,
    }
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn site_text(
    profile: &Profile,
    net: &TestNet,
    topo: &Topology,
    gateway: bool,
    shared: bool,
) -> String {
    let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
    let mut s = format!(
        "profile = {}\nfeatures = \"all\"\n\n[appliance]\naddresses = [{}]\n\n[roles]\n",
        q(&profile.id),
        APPLIANCE
            .iter()
            .map(|a| q(a))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (r, a) in &net.roles {
        s.push_str(&format!("{r} = [{}]\n", list(a)));
    }
    s.push_str("\n[hosts]\n");
    for (n, a) in &net.hosts {
        s.push_str(&format!("{} = [{}]\n", q(n), list(a)));
    }
    // Flows whose ports only the site gives (an FTP server's passive range).
    s.push_str("\n[ports]\n");
    for f in &profile.flows {
        if f.ports.is_empty() && f.protocols.iter().any(|p| *p != Protocol::Icmp) {
            s.push_str(&format!("{} = [\"50000-50010\"]\n", q(&f.id)));
        }
    }
    s.push_str("\n[alternatives]\n");
    for g in profile.alternatives.keys() {
        let options: Vec<String> = profile
            .flows
            .iter()
            .filter(|f| f.alternative.as_deref() == Some(g))
            .map(|f| f.id.clone())
            .collect();
        s.push_str(&format!("{g} = [{}]\n", list(&options)));
    }
    if gateway {
        s.push_str(&format!(
            "\n[placement]\nmode = \"gateway\"\nothers = {}\nappliance_interface = {}\ndefault_interface = {}\n[placement.zones]\ninternet = {}\nsmarthost = {}\nadmin = {}\n",
            q(if shared { "accept" } else { "drop" }),
            q(&topo.fw_if(Zone::App)),
            q(&topo.fw_if(Zone::Lan)),
            q(&topo.fw_if(Zone::Wan)),
            q(&topo.fw_if(Zone::Wan)),
            q(&topo.fw_if(Zone::Adm)),
        ));
    } else {
        s.push_str("\n[placement]\nmode = \"host\"\n");
    }
    s
}

/// Does a peer cover this address in this zone?
fn peer_covers(plan: &Plan, host: bool, p: &Peer, addr: IpAddr, zone: Zone) -> bool {
    let Some(set) = plan.set(&p.set) else {
        return false;
    };
    if p.kind == SetKind::Appliance {
        // Host mode does not match the appliance's own addresses: any local address counts.
        return zone == Zone::App && (host || set_contains(set, addr));
    }
    let zone_ok = if host {
        zone != Zone::App
    } else {
        zone == zone_of_peer(p)
    };
    zone_ok && set_contains(set, addr)
}

/// The oracle: should this probe pass, according to the plan? On a shared gateway, traffic
/// that involves no address of the appliance is not the plan's business and passes.
fn expected(plan: &Plan, host: bool, shared: bool, p: &Probe) -> bool {
    let app = plan.appliance();
    if shared && !set_contains(app, p.src) && !set_contains(app, p.dst) {
        return true;
    }
    plan.flows.iter().any(|f| {
        if host && f.direction == Direction::Internal {
            return false;
        }
        let proto_port = match (f.protocol, p.proto) {
            (Protocol::Tcp, Proto::Tcp) | (Protocol::Udp, Proto::Udp) => {
                f.ports.iter().any(|r| r.contains(p.port))
            }
            (Protocol::Icmp, Proto::Icmp) => f.icmp_type == Some(IcmpType::EchoRequest),
            _ => false,
        };
        proto_port
            && f.source
                .peers
                .iter()
                .any(|s| peer_covers(plan, host, s, p.src, p.src_zone))
            && f.destination
                .peers
                .iter()
                .any(|d| peer_covers(plan, host, d, p.dst, p.dst_zone))
    })
}

fn pick(plan: &Plan, net: &TestNet, p: &Peer, v6: bool) -> Option<(IpAddr, Zone)> {
    let set = plan.set(&p.set)?;
    let zone = zone_of_peer(p);
    net.addrs
        .iter()
        .copied()
        .find(|(a, z)| *z == zone && a.is_ipv6() == v6 && set_contains(set, *a))
}

const OTHER_PORTS: [u16; 2] = [7777, 31337];

fn probes_for(plan: &Plan, net: &TestNet) -> (Vec<Probe>, usize) {
    let mut set: BTreeSet<Probe> = BTreeSet::new();
    let mut positives = BTreeSet::new();
    let others: Vec<(IpAddr, Zone)> = net
        .addrs
        .iter()
        .copied()
        .filter(|(a, _)| {
            [
                "203.0.113.77",
                "2001:db8:d::77",
                "198.51.100.99",
                "2001:db8:b::99",
                "198.51.100.201",
                "2001:db8:c::201",
                "192.0.2.11",
                "2001:db8:a::11",
            ]
            .contains(&a.to_string().as_str())
        })
        .collect();
    for f in &plan.flows {
        let proto = match f.protocol {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
            Protocol::Icmp => Proto::Icmp,
        };
        let mut ports: Vec<u16> = Vec::new();
        for r in &f.ports {
            ports.push(r.low);
            ports.push(r.high);
            if r.high - r.low > 1 {
                ports.push(r.low + (r.high - r.low) / 2);
            }
        }
        if proto == Proto::Icmp {
            ports.push(0);
        }
        for sp in &f.source.peers {
            for dp in &f.destination.peers {
                for v6 in [false, true] {
                    let (Some((s, sz)), Some((d, dz))) =
                        (pick(plan, net, sp, v6), pick(plan, net, dp, v6))
                    else {
                        continue;
                    };
                    for &port in &ports {
                        let p = Probe {
                            src: s,
                            src_zone: sz,
                            dst: d,
                            dst_zone: dz,
                            proto,
                            port,
                        };
                        positives.insert(p.clone());
                        set.insert(p);
                        // The reverse direction.
                        set.insert(Probe {
                            src: d,
                            src_zone: dz,
                            dst: s,
                            dst_zone: sz,
                            proto,
                            port,
                        });
                    }
                    // Other ports between the same hosts.
                    if proto != Proto::Icmp {
                        for &port in &OTHER_PORTS {
                            set.insert(Probe {
                                src: s,
                                src_zone: sz,
                                dst: d,
                                dst_zone: dz,
                                proto,
                                port,
                            });
                        }
                    }
                    // Other sources toward the same destination and port.
                    for &(o, oz) in &others {
                        if o.is_ipv6() == v6 && oz != dz && o != s {
                            set.insert(Probe {
                                src: o,
                                src_zone: oz,
                                dst: d,
                                dst_zone: dz,
                                proto,
                                port: ports[0],
                            });
                        }
                    }
                }
            }
        }
    }
    (set.into_iter().collect(), positives.len())
}

fn load_ruleset(topo: &Topology, zone: Zone, target: &str, rendered: &render::Rendered, tag: &str) {
    let text = &rendered.text;
    let path = std::env::temp_dir().join(format!("portolan-kernel-{}-{tag}.rules", topo.id));
    std::fs::write(&path, text).expect("write ruleset");
    let p = path.to_string_lossy().to_string();
    let out = match target {
        "nftables" => {
            // First the check mode, as an administrator would run it, then the real load.
            let check = topo.exec(zone, &["nft", "-c", "-f", &p]);
            assert!(
                check.status.success(),
                "nft -c rejected the ruleset:\n{}",
                String::from_utf8_lossy(&check.stderr)
            );
            topo.exec(zone, &["nft", "-f", &p])
        }
        _ => {
            // The parts through the native tools' check modes first (the sets must exist for
            // `-m set` to be checked), then the script as an administrator would run it.
            let part = |name: &str| -> String {
                let f =
                    std::env::temp_dir().join(format!("portolan-kernel-{}-{tag}.{name}", topo.id));
                let body = &rendered
                    .parts
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("part")
                    .1;
                std::fs::write(&f, body).expect("write part");
                f.to_string_lossy().to_string()
            };
            let ipset = part("ipset");
            let o = topo.exec(zone, &["ipset", "-exist", "restore", "-file", &ipset]);
            assert!(
                o.status.success(),
                "ipset restore: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            for (tool, name) in [("iptables-restore", "v4"), ("ip6tables-restore", "v6")] {
                let f = part(name);
                let o = topo.exec(zone, &["sh", "-c", &format!("{tool} --test < {f}")]);
                assert!(
                    o.status.success(),
                    "{tool} --test rejected the {name} part:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let _ = std::fs::remove_file(&f);
            }
            let _ = std::fs::remove_file(&ipset);
            topo.exec(zone, &["sh", &p])
        }
    };
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "loading the {target} ruleset failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Read the loaded ruleset back from the kernel, as an administrator would hand it to
/// `portolan audit`, and audit it against the plan it came from: every flow allowed, nothing
/// in excess.
fn audit_round_trip(topo: &Topology, zone: Zone, target: &str, plan: &Plan, mode: &str) {
    let out = |args: &[&str]| -> String {
        let o = topo.exec(zone, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let (rules, ipsets) = if target == "nftables" {
        (out(&["nft", "-j", "list", "ruleset"]), None)
    } else {
        (
            format!("{}{}", out(&["iptables-save"]), out(&["ip6tables-save"])),
            Some(Source::new("ipsets.txt", out(&["ipset", "save"]))),
        )
    };
    let src = Source::new(format!("{target}-{mode}.dump"), rules);
    let rs = portolan_core::audit::parse_ruleset(&src, None, ipsets.as_ref())
        .unwrap_or_else(|e| panic!("audit cannot read the {target} {mode} dump: {e}"));
    let report = portolan_core::audit::audit(plan, &rs);
    let bad: Vec<String> = report
        .flows
        .iter()
        .filter(|f| f.verdict != portolan_core::audit::Verdict::Allowed)
        .map(|f| {
            format!(
                "  {} {} {}: {} {:?} {:?}",
                f.id,
                f.protocol,
                f.ports,
                f.verdict.name(),
                f.example,
                f.unknown
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} {target} {mode}: the audit of portolan's own ruleset finds flows not allowed:\n{}",
        plan.profile,
        bad.join("\n")
    );
    let excess: Vec<String> = report
        .excess
        .iter()
        .chain(&report.maybe_excess)
        .map(|e| {
            format!(
                "  {} {} -> {} {} {} {} by {:?}",
                e.family.label(),
                e.source,
                e.destination,
                e.protocol,
                e.ports,
                e.interfaces,
                e.rules
            )
        })
        .collect();
    assert!(
        excess.is_empty() && !report.excess_incomplete,
        "{} {target} {mode}: the audit finds excess in portolan's own ruleset:\n{}",
        plan.profile,
        excess.join("\n")
    );
    assert_eq!(
        report.flows.len(),
        plan.flows
            .iter()
            .filter(|f| mode != "host" || f.direction != Direction::Internal)
            .count()
    );
}

fn prove(profile_id: &str, target_name: &str) {
    prove_modes(profile_id, target_name, &[(true, false), (false, false)]);
}

/// `modes`: (gateway, shared) pairs.
fn prove_modes(profile_id: &str, target_name: &str, modes: &[(bool, bool)]) {
    if !require_root_tools() {
        return;
    }
    let profile = match catalog::load(profile_id) {
        Some(Ok(p)) => p,
        other => panic!("catalog {profile_id}: {:?}", other.map(|r| r.err())),
    };
    let target = render::target(target_name).expect("target");
    let net = test_net(&profile);
    let mut topo = Topology::build(&[]);
    for (a, z) in &net.addrs {
        topo.add_addr(*a, *z);
    }

    let mut report = String::new();
    for &(gateway, shared) in modes {
        let mode = match (gateway, shared) {
            (true, true) => "shared-gateway",
            (true, false) => "gateway",
            _ => "host",
        };
        let text = site_text(&profile, &net, &topo, gateway, shared);
        let (site, _) = site::parse(&Source::new(format!("test-site-{mode}.toml"), text))
            .expect("test site parses");
        let plan = plan::build(&profile, &site, None).unwrap_or_else(|e| panic!("{e}"));
        // Every flow is on, except those of a mode feature (a GINA satellite turns the
        // email paths off, so "all" leaves it out): they are rendered like any other flow.
        let modes_only: Vec<&String> = plan
            .inactive
            .iter()
            .filter(|id| {
                !profile.flows.iter().any(|f| {
                    &&f.id == id
                        && matches!(&f.condition, portolan_core::model::Condition::Feature(x)
                            if profile.features.get(x).is_some_and(|d| !d.turns_off.is_empty()))
                })
            })
            .collect();
        assert!(
            modes_only.is_empty(),
            "test site must turn every flow on: {modes_only:?}"
        );
        let rendered = render::render(&plan, target);
        assert!(
            rendered.warnings.is_empty(),
            "unexpected render warnings: {:?}",
            rendered
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        let zone = if gateway { Zone::Fw } else { Zone::App };
        if gateway && target_name == "iptables" {
            // The firewall's own rules must survive portolan's gateway script.
            let o = topo.exec(
                zone,
                &[
                    "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "DROP",
                ],
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        load_ruleset(&topo, zone, target_name, &rendered, mode);
        if gateway && target_name == "iptables" {
            // Loading again is harmless: still exactly one jump, the firewall's rule intact.
            load_ruleset(&topo, zone, target_name, &rendered, mode);
            let saved =
                String::from_utf8_lossy(&topo.exec(zone, &["iptables-save"]).stdout).to_string();
            assert!(
                saved.contains("-A INPUT -p tcp -m tcp --dport 2222 -j DROP"),
                "{saved}"
            );
            assert_eq!(
                saved.matches("-A FORWARD -j PORTOLAN-FORWARD").count(),
                1,
                "{saved}"
            );
        }

        audit_round_trip(&topo, zone, target_name, &plan, mode);

        let (mut probes, positives) = probes_for(&plan, &net);
        if !gateway {
            // A host firewall sees only traffic to or from itself.
            probes.retain(|p| p.src_zone == Zone::App || p.dst_zone == Zone::App);
        }
        let targets: BTreeSet<(String, IpAddr, Proto, u16)> = probes
            .iter()
            .filter(|p| p.proto != Proto::Icmp)
            .map(|p| (topo.ns(p.dst_zone), p.dst, p.proto, p.port))
            .collect();
        let listeners = Listeners::start(&targets);
        let outcomes = run_probes(&topo, &probes);
        drop(listeners);

        let mut should_pass = 0;
        let mut should_block = 0;
        let mut wrong = Vec::new();
        for (p, o) in probes.iter().zip(&outcomes) {
            let want = expected(&plan, !gateway, shared, p);
            if want {
                should_pass += 1;
            } else {
                should_block += 1;
            }
            let ok = match o {
                Outcome::Passed => want,
                Outcome::Blocked => !want,
                Outcome::Odd => false,
            };
            if !ok {
                wrong.push(format!(
                    "  {p}: kernel {o:?}, plan says {}",
                    if want { "pass" } else { "block" }
                ));
            }
        }
        report.push_str(&format!(
            "{profile_id}/{target_name}/{mode}: {} probes ({positives} planned flows' packets), {should_pass} should pass, {should_block} should be blocked, {} wrong\n",
            probes.len(),
            wrong.len()
        ));
        assert!(
            positives > 0 && should_block > 0,
            "the probe set must test both ways"
        );
        assert!(
            wrong.is_empty(),
            "{profile_id} {target_name} {mode}: the kernel disagrees with the plan on {} of {} probes:\n{}",
            wrong.len(),
            probes.len(),
            wrong.join("\n")
        );
        // Leave the namespace clean for the next mode.
        let _ = topo.exec(zone, &["nft", "flush", "ruleset"]);
        let _ = topo.exec(zone, &["ipset", "destroy"]);
    }
    eprint!("{report}");
}

#[test]
fn kernel_intra2net_nftables() {
    prove("intra2net", "nftables");
}

#[test]
fn kernel_intra2net_iptables() {
    prove("intra2net", "iptables");
}

/// `others = "accept"`: only the appliance's traffic is restricted; other hosts pass.
#[test]
fn kernel_shared_gateway_nftables() {
    prove_modes("seppmail", "nftables", &[(true, true)]);
}

#[test]
fn kernel_shared_gateway_iptables() {
    prove_modes("intra2net", "iptables", &[(true, true)]);
}

#[test]
fn kernel_seppmail_nftables() {
    prove("seppmail", "nftables");
}

#[test]
fn kernel_seppmail_iptables() {
    prove("seppmail", "iptables");
}

#[test]
fn kernel_clearswift_nftables() {
    prove("clearswift", "nftables");
}

#[test]
fn kernel_clearswift_iptables() {
    prove("clearswift", "iptables");
}

/// A profile full of quotes, newlines, semicolons and here-document terminators in its free
/// text renders to rules the real tools accept, with exactly the rules of a benign profile.
#[test]
fn hostile_profile_text_is_accepted_by_the_real_tools_unchanged() {
    if !require_root_tools() {
        return;
    }
    let nasty = "x\\\"; accept; flush ruleset\\n}\\nPORTOLAN_IPV4_END\\n-A INPUT -j ACCEPT\\r\\n# $(reboot) `id`\\u2028table inet evil {}";
    let profile_text = |f: &str| {
        format!(
            "id = \"hostile\"\nname = \"{f}\"\nvendor = \"{f}\"\n[[flows]]\nid = \"out\"\nfunction = \"{f}\"\nnotes = [\"{f}\"]\nfrom = \"appliance\"\nto = \"update.example.com\"\nprotocols = [\"tcp\"]\nports = [443]\n[[flows]]\nid = \"in\"\nfunction = \"{f}\"\nfrom = \"internet\"\nto = \"appliance\"\nprotocols = [\"udp\"]\nports = [\"500-501\"]\n"
        )
    };
    let render_both = |text: String| {
        let (p, _) = portolan_core::profile::parse(&Source::new("hostile.toml", text))
            .expect("free text is accepted");
        let plan = plan::build(&p, &site::demo(&p), None).expect("plan");
        ["nftables", "iptables"].map(|t| render::render(&plan, render::target(t).expect("target")))
    };
    let hostile = render_both(profile_text(nasty));
    let benign = render_both(profile_text("benign"));
    let topo = Topology::build(&[]);
    let dir = std::env::temp_dir();
    let nft = dir.join(format!("{}-hostile.nft", topo.id));
    std::fs::write(&nft, &hostile[0].text).expect("write");
    let out = topo.exec(Zone::Fw, &["nft", "-f", &nft.to_string_lossy()]);
    assert!(
        out.status.success(),
        "nft rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&topo.exec(Zone::Fw, &["nft", "list", "ruleset"]).stdout)
        .to_string();
    assert!(
        !listed.contains("evil") && !listed.contains("reboot"),
        "{listed}"
    );
    assert_eq!(
        listed.matches("counter").count(),
        benign[0].rule_count,
        "{listed}"
    );
    let sh = dir.join(format!("{}-hostile.sh", topo.id));
    std::fs::write(&sh, &hostile[1].text).expect("write");
    let out = topo.exec(Zone::Lan, &["sh", &sh.to_string_lossy()]);
    assert!(
        out.status.success(),
        "iptables script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved =
        String::from_utf8_lossy(&topo.exec(Zone::Lan, &["iptables-save"]).stdout).to_string();
    assert!(
        !saved.contains("reboot") && !saved.contains("evil"),
        "{saved}"
    );
    assert_eq!(
        saved
            .lines()
            .filter(|l| l.starts_with("-A") && l.contains("flows:"))
            .count(),
        benign[1].parts[1]
            .1
            .lines()
            .filter(|l| l.starts_with("-A") && l.contains("flows:"))
            .count()
    );
    let _ = std::fs::remove_file(nft);
    let _ = std::fs::remove_file(sh);
}

/// Regression (issue: host mode replaced the whole filter table and set `:FORWARD ACCEPT`):
/// on a host with a FORWARD drop policy, another program's chain with its rules, a NAT rule
/// and a DNS-filled ipset that sync had filled, loading the iptables script (twice) in host
/// and in gateway mode leaves everything that is not portolan's exactly as it was, v4 and v6,
/// and keeps sync's set elements.
#[test]
fn iptables_script_touches_only_its_own_chains() {
    if !require_root_tools() {
        return;
    }
    let profile = match catalog::load("intra2net") {
        Some(Ok(p)) => p,
        _ => panic!("catalog intra2net"),
    };
    let net = test_net(&profile);
    let mut topo = Topology::build(&[]);
    for (a, z) in &net.addrs {
        topo.add_addr(*a, *z);
    }
    let target = render::target("iptables").expect("target");
    // Everything but portolan's own lines, without counters. The raw table portolan's FTP
    // helper chain lives in appears with it; with nothing but its built-in chains at their
    // default policy left, it is no change to anyone's rules.
    let foreign = |topo: &Topology, zone: Zone| -> String {
        ["iptables-save", "ip6tables-save"]
            .iter()
            .flat_map(|tool| {
                let lines: Vec<String> = String::from_utf8_lossy(&topo.exec(zone, &[tool]).stdout)
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.contains("PORTOLAN"))
                    .map(|l| match l.split_once(" [") {
                        Some((head, _)) if l.starts_with(':') => head.to_string(),
                        _ => l.to_string(),
                    })
                    .collect();
                let mut kept = Vec::new();
                let mut i = 0;
                while i < lines.len() {
                    if lines[i] == "*raw" {
                        let end = lines[i..]
                            .iter()
                            .position(|l| l == "COMMIT")
                            .map_or(lines.len(), |e| i + e);
                        let untouched = lines[i + 1..end]
                            .iter()
                            .all(|l| l == ":PREROUTING ACCEPT" || l == ":OUTPUT ACCEPT");
                        if untouched {
                            i = end + 1;
                            continue;
                        }
                    }
                    kept.push(lines[i].clone());
                    i += 1;
                }
                kept
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for gateway in [false, true] {
        let mode = if gateway { "gateway" } else { "host" };
        let zone = if gateway { Zone::Fw } else { Zone::App };
        let setup = "for t in iptables ip6tables; do \
              $t -P FORWARD DROP && $t -N FOREIGN && $t -A FOREIGN -p tcp --dport 6000 -j DROP && \
              $t -A INPUT -j FOREIGN && $t -A FORWARD -j FOREIGN && $t -A OUTPUT -p udp --dport 7000 -j DROP && \
              $t -t nat -A POSTROUTING -o lo -j RETURN || exit 1; done";
        let o = topo.exec(zone, &["sh", "-c", setup]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let before = foreign(&topo, zone);
        assert!(before.contains(":FORWARD DROP"), "{before}");

        // avfpc.intra2net.com unpinned: its set belongs to sync.
        let text: String = site_text(&profile, &net, &topo, gateway, false)
            .lines()
            .filter(|l| !l.starts_with("\"avfpc.intra2net.com\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let (site, _) = site::parse(&Source::new(format!("site-{mode}.toml"), text)).expect("site");
        let plan = plan::build(&profile, &site, None).expect("plan");
        let rendered = render::render(&plan, target);
        load_ruleset(&topo, zone, "iptables", &rendered, mode);
        // sync fills a DNS set; a reload must keep it.
        let o = topo.exec(
            zone,
            &[
                "ipset",
                "add",
                "pt4-dns-avfpc.intra2net.com",
                "203.0.113.201",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        load_ruleset(&topo, zone, "iptables", &rendered, mode);

        let after = foreign(&topo, zone);
        assert_eq!(
            before, after,
            "{mode}: loading portolan changed rules or policies that are not its own"
        );
        let saved = String::from_utf8_lossy(&topo.exec(zone, &["iptables-save"]).stdout)
            .to_string()
            + &String::from_utf8_lossy(&topo.exec(zone, &["ip6tables-save"]).stdout);
        let jumps: &[&str] = if gateway {
            &["-A FORWARD -j PORTOLAN-FORWARD"]
        } else {
            &["-A INPUT -j PORTOLAN-INPUT", "-A OUTPUT -j PORTOLAN-OUTPUT"]
        };
        for j in jumps {
            assert_eq!(
                saved.matches(j).count(),
                2,
                "{mode}: one `{j}` per family\n{saved}"
            );
        }
        let members = String::from_utf8_lossy(
            &topo
                .exec(zone, &["ipset", "list", "pt4-dns-avfpc.intra2net.com"])
                .stdout,
        )
        .to_string();
        assert!(
            members.contains("203.0.113.201"),
            "{mode}: a reload lost what sync put in a set:\n{members}"
        );
        let leftovers =
            String::from_utf8_lossy(&topo.exec(zone, &["ipset", "list", "-n"]).stdout).to_string();
        assert!(
            !leftovers.contains("portolan-tmp"),
            "{mode}: temporary sets left behind:\n{leftovers}"
        );
    }
}
