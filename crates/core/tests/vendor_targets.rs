//! The vendor targets (FortiGate, PAN-OS, ASA, SRX, pf, OPNsense), read back by a small
//! parser per format, for the three catalog profiles with every feature on behind a gateway
//! (and for random profiles):
//! - structure: every object a policy or group names is defined, no name is defined twice,
//!   every name is within the vendor's length limit;
//! - never widened: every (source, destination, protocol, port) the output accepts is inside a
//!   planned flow (its source and destination peers, its protocol, its ports or ICMP type);
//! - nothing silently lost: every planned flow the target could express has a policy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_core::model::Protocol;
use portolan_core::plan::{Plan, SetKind};
use portolan_core::site::{Others, Placement};
use portolan_core::{catalog, plan, profile, render, site, Source};
use proptest::prelude::*;

mod tools;

#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Net(IpNet),
    Fqdn(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Svc {
    /// `tcp`, `udp`, `icmp` (IPv4 type) or `icmp6`.
    proto: String,
    lo: u16,
    hi: u16,
}

#[derive(Debug, Default)]
struct Parsed {
    addrs: BTreeMap<String, Vec<Atom>>,
    groups: BTreeMap<String, Vec<String>>,
    services: BTreeMap<String, Vec<Svc>>,
    /// (sources, destinations, service names or inline services)
    rules: Vec<(Vec<String>, Vec<String>, Vec<Svc>)>,
    /// Every definition, in order (for duplicates).
    defined: Vec<String>,
    /// (name, limit)
    names: Vec<(String, usize)>,
    errors: Vec<String>,
}

impl Parsed {
    fn define(&mut self, name: &str, limit: usize) {
        self.defined.push(name.to_string());
        self.names.push((name.to_string(), limit));
    }
    fn expand(&mut self, name: &str, seen: usize) -> Vec<Atom> {
        if seen > 8 {
            return vec![];
        }
        if let Some(a) = self.addrs.get(name) {
            return a.clone();
        }
        if let Some(g) = self.groups.get(name).cloned() {
            return g.iter().flat_map(|m| self.expand(m, seen + 1)).collect();
        }
        self.errors.push(format!("undefined address {name}"));
        vec![]
    }
    fn service(&mut self, name: &str) -> Vec<Svc> {
        match self.services.get(name) {
            Some(s) => s.clone(),
            None => {
                self.errors.push(format!("undefined service {name}"));
                vec![]
            }
        }
    }
}

fn unq(s: &str) -> String {
    s.trim_matches('"').to_string()
}

fn range(s: &str, sep: char) -> (u16, u16) {
    match s.split_once(sep) {
        Some((a, b)) => (a.parse().expect("port"), b.parse().expect("port")),
        None => {
            let p = s.parse().expect("port");
            (p, p)
        }
    }
}

fn mask_net(addr: &str, mask: &str) -> IpNet {
    let m: std::net::Ipv4Addr = mask.parse().expect("mask");
    let len = u32::from(m).count_ones() as u8;
    IpNet::new(addr.parse().expect("addr"), len).expect("net")
}

fn words(line: &str) -> Vec<String> {
    // Splits on spaces, keeping "quoted strings" together.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    for c in line.chars() {
        match c {
            '"' => {
                q = !q;
                cur.push(c);
            }
            ' ' if !q => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn fortigate(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut section = String::new();
    let mut name = String::new();
    let mut kv: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let flush = |p: &mut Parsed, section: &str, name: &str, kv: &BTreeMap<String, Vec<String>>| {
        if name.is_empty() {
            return;
        }
        let get = |k: &str| kv.get(k).cloned().unwrap_or_default();
        match section {
            // address6/addrgrp6 are tables of their own: their names are kept apart ("6:").
            "firewall address" | "firewall address6" => {
                let key = if section.ends_with('6') {
                    format!("6:{name}")
                } else {
                    name.to_string()
                };
                p.defined.push(key.clone());
                p.names.push((name.to_string(), 79));
                let atom = if let Some(f) = kv.get("fqdn") {
                    Atom::Fqdn(unq(&f[0]))
                } else if let Some(s) = kv.get("subnet") {
                    mask_net(&s[0], &s[1]).pipe(Atom::Net)
                } else {
                    Atom::Net(get("ip6")[0].parse().expect("ip6"))
                };
                p.addrs.insert(key, vec![atom]);
            }
            "firewall addrgrp" | "firewall addrgrp6" => {
                let six = if section.ends_with('6') { "6:" } else { "" };
                p.defined.push(format!("{six}{name}"));
                p.names.push((name.to_string(), 79));
                p.groups.insert(
                    format!("{six}{name}"),
                    get("member")
                        .iter()
                        .map(|m| format!("{six}{}", unq(m)))
                        .collect(),
                );
            }
            "firewall service custom" => {
                p.define(name, 79);
                let mut v = Vec::new();
                for proto in ["tcp", "udp"] {
                    for r in kv.get(&format!("{proto}-portrange")).into_iter().flatten() {
                        let (lo, hi) = range(r, '-');
                        v.push(Svc {
                            proto: proto.into(),
                            lo,
                            hi,
                        });
                    }
                }
                if let Some(pr) = kv.get("protocol") {
                    let t: u16 = kv
                        .get("icmptype")
                        .map_or(0, |t| t[0].parse().expect("type"));
                    match pr[0].as_str() {
                        "ICMP" => v.push(Svc {
                            proto: "icmp".into(),
                            lo: t,
                            hi: t,
                        }),
                        "ICMP6" => v.push(Svc {
                            proto: "icmp6".into(),
                            lo: t,
                            hi: t,
                        }),
                        _ => {}
                    }
                }
                p.services.insert(name.to_string(), v);
            }
            "firewall policy" => {
                p.names.push((unq(&get("name")[0]), 35));
                let svcs: Vec<Svc> = get("service")
                    .iter()
                    .flat_map(|s| p.service(&unq(s)))
                    .collect();
                for (s, d, six) in [("srcaddr", "dstaddr", ""), ("srcaddr6", "dstaddr6", "6:")] {
                    if kv.contains_key(s) {
                        let names = |k: &str| -> Vec<String> {
                            get(k)
                                .iter()
                                .map(|x| unq(x))
                                .filter(|x| !x.is_empty())
                                .map(|x| format!("{six}{x}"))
                                .collect()
                        };
                        p.rules.push((names(s), names(d), svcs.clone()));
                    }
                }
            }
            _ => {}
        }
    };
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let w = words(l);
        match w[0].as_str() {
            "config" => section = w[1..].join(" "),
            "edit" => {
                name = unq(&w[1]);
                kv.clear();
            }
            "set" => {
                kv.insert(w[1].clone(), w[2..].to_vec());
            }
            "next" => {
                flush(&mut p, &section, &name, &kv);
                name.clear();
            }
            "end" => section.clear(),
            other => p.errors.push(format!("unexpected line start {other}")),
        }
    }
    p
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn list_after(w: &[String], i: usize) -> Vec<String> {
    if w.get(i).map(String::as_str) == Some("[") {
        w[i + 1..]
            .iter()
            .take_while(|x| *x != "]")
            .cloned()
            .collect()
    } else {
        w.get(i).cloned().into_iter().collect()
    }
}

fn panos(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut rules: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let w = words(line);
        match (w[1].as_str(), w.get(3).map(String::as_str)) {
            ("address", Some("ip-netmask")) => {
                p.define(&w[2], 63);
                p.addrs
                    .insert(w[2].clone(), vec![Atom::Net(w[4].parse().expect("net"))]);
            }
            ("address", Some("fqdn")) => {
                p.define(&w[2], 63);
                p.addrs.insert(w[2].clone(), vec![Atom::Fqdn(w[4].clone())]);
            }
            ("address-group", _) => {
                p.define(&w[2], 63);
                p.groups.insert(w[2].clone(), list_after(&w, 4));
            }
            ("service", _) => {
                p.define(&w[2], 63);
                let (lo, hi) = range(&w[6], '-');
                p.services.insert(
                    w[2].clone(),
                    vec![Svc {
                        proto: w[4].clone(),
                        lo,
                        hi,
                    }],
                );
            }
            ("rulebase", _) => {
                rules
                    .entry(w[4].clone())
                    .or_default()
                    .insert(w[5].clone(), list_after(&w, 6));
            }
            _ => p.errors.push(format!("unexpected: {line}")),
        }
    }
    for (name, kv) in rules {
        p.names.push((name.clone(), 63));
        let svcs: Vec<Svc> = if kv["application"] == ["ping"] {
            vec![
                Svc {
                    proto: "icmp".into(),
                    lo: 8,
                    hi: 8,
                },
                Svc {
                    proto: "icmp6".into(),
                    lo: 128,
                    hi: 128,
                },
            ]
        } else {
            assert_eq!(kv["application"], ["any"], "{name}");
            kv["service"].iter().flat_map(|s| p.service(s)).collect()
        };
        p.rules
            .push((kv["source"].clone(), kv["destination"].clone(), svcs));
    }
    p
}

/// Sources, destinations, applications of a policy.
type Lists = (Vec<String>, Vec<String>, Vec<String>);

fn srx(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut rules: BTreeMap<String, Lists> = BTreeMap::new();
    let mut apps: BTreeMap<String, (String, u16, u16)> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let w = words(line);
        if line.starts_with("set security address-book global address-set ") {
            p.groups.entry(w[5].clone()).or_default().push(w[7].clone());
            if !p.defined.contains(&w[5]) {
                p.define(&w[5], 63);
            }
        } else if line.starts_with("set security address-book global address ") {
            p.define(&w[5], 63);
            let atom = if w[6] == "dns-name" {
                Atom::Fqdn(w[7].clone())
            } else {
                Atom::Net(w[6].parse().expect("net"))
            };
            p.addrs.insert(w[5].clone(), vec![atom]);
        } else if line.starts_with("set applications application ") {
            let e = apps
                .entry(w[3].clone())
                .or_insert_with(|| (String::new(), 0, 0));
            match w[4].as_str() {
                "protocol" => {
                    e.0 = w[5].clone();
                    if w.get(6).map(String::as_str) == Some("destination-port") {
                        let (lo, hi) = range(&w[7], '-');
                        e.1 = lo;
                        e.2 = hi;
                    }
                }
                "icmp-type" | "icmp6-type" => {
                    let t = w[5].parse().expect("type");
                    e.1 = t;
                    e.2 = t;
                }
                _ => p.errors.push(format!("unexpected: {line}")),
            }
        } else if line.starts_with("set security policies ") {
            let i = w.iter().position(|x| x == "policy").expect("policy") + 1;
            let r = rules.entry(w[i].clone()).or_default();
            match (w[i + 1].as_str(), w.get(i + 2).map(String::as_str)) {
                ("match", Some("source-address")) => r.0.push(w[i + 3].clone()),
                ("match", Some("destination-address")) => r.1.push(w[i + 3].clone()),
                ("match", Some("application")) => r.2.push(w[i + 3].clone()),
                ("then", _) | ("description", _) => {}
                _ => p.errors.push(format!("unexpected: {line}")),
            }
        } else {
            p.errors.push(format!("unexpected: {line}"));
        }
    }
    for (n, (proto, lo, hi)) in apps {
        p.define(&n, 63);
        let proto = if proto == "icmp6" {
            "icmp6".to_string()
        } else {
            proto
        };
        p.services.insert(n, vec![Svc { proto, lo, hi }]);
    }
    for (name, (s, d, a)) in rules {
        p.names.push((name, 63));
        let svcs = a.iter().flat_map(|x| p.service(x)).collect();
        p.rules.push((s, d, svcs));
    }
    p
}

fn asa(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut obj: Option<(String, bool)> = None; // (name, is group)
    for line in text
        .lines()
        .filter(|l| !l.starts_with('!') && !l.trim().is_empty())
    {
        let w = words(line.trim());
        if let Some(rest) = line.strip_prefix(' ') {
            let (n, group) = obj.clone().expect("object body without object");
            let w = words(rest);
            if group {
                p.groups.entry(n).or_default().push(w[2].clone());
            } else {
                let atom = match w[0].as_str() {
                    "host" => Atom::Net(IpNet::from(w[1].parse::<IpAddr>().expect("host"))),
                    "subnet" if w.len() == 3 => Atom::Net(mask_net(&w[1], &w[2])),
                    "subnet" => Atom::Net(w[1].parse().expect("v6 net")),
                    "fqdn" => Atom::Fqdn(w[2].clone()),
                    other => panic!("unexpected object line {other}"),
                };
                p.addrs.insert(n, vec![atom]);
            }
            continue;
        }
        match (w[0].as_str(), w[1].as_str()) {
            ("object", "network") => {
                p.define(&w[2], 64);
                obj = Some((w[2].clone(), false));
            }
            ("object-group", "network") => {
                p.define(&w[2], 64);
                p.groups.entry(w[2].clone()).or_default();
                obj = Some((w[2].clone(), true));
            }
            ("access-list", _) if w[2] == "remark" => {}
            ("access-list", _) => {
                p.names.push((w[1].clone(), 64));
                // access-list ACL extended permit PROTO object-group S object-group D [tail]
                let proto = w[4].clone();
                let (s, d) = (w[6].clone(), w[8].clone());
                let svc = match (proto.as_str(), w.get(9).map(String::as_str)) {
                    ("tcp" | "udp", Some("eq")) => {
                        let v = w[10].parse().expect("port");
                        Svc {
                            proto,
                            lo: v,
                            hi: v,
                        }
                    }
                    ("tcp" | "udp", Some("range")) => Svc {
                        proto,
                        lo: w[10].parse().expect("port"),
                        hi: w[11].parse().expect("port"),
                    },
                    ("icmp" | "icmp6", Some(t)) => {
                        let t = t.parse().expect("type");
                        Svc {
                            proto,
                            lo: t,
                            hi: t,
                        }
                    }
                    _ => panic!("an access list line that matches all ports: {line}"),
                };
                p.rules.push((vec![s], vec![d], vec![svc]));
            }
            ("access-group", _) => {}
            _ => p.errors.push(format!("unexpected: {line}")),
        }
    }
    p
}

fn pf(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let names = |s: &str| -> Vec<String> {
        s.split(|c: char| c == ',' || c.is_whitespace() || c == '{' || c == '}')
            .filter(|x| !x.is_empty())
            .map(|x| x.trim_start_matches('<').trim_end_matches('>').to_string())
            .collect()
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        if let Some(rest) = line.strip_prefix("table <") {
            let (name, body) = rest.split_once("> persist {").expect("table");
            p.define(name, 31);
            let atoms = body
                .trim_end_matches('}')
                .split(',')
                .map(str::trim)
                .map(|x| match x.parse::<IpNet>() {
                    Ok(n) => Atom::Net(n),
                    Err(_) => Atom::Fqdn(x.to_string()),
                })
                .collect();
            p.addrs.insert(name.to_string(), atoms);
            continue;
        }
        let (_, after_proto) = line.split_once(" proto ").expect("proto");
        let proto = after_proto
            .split_whitespace()
            .next()
            .expect("p")
            .to_string();
        let from = line.split_once(" from ").expect("from").1;
        let (src, rest) = from.split_once(" to ").expect("to");
        let dst_end = rest
            .find(" port ")
            .or_else(|| rest.find(" icmp"))
            .or_else(|| rest.find(" keep state"))
            .expect("end");
        let dst = &rest[..dst_end];
        let svcs: Vec<Svc> = if let Some(ports) = rest.split_once(" port ") {
            let ports = ports.1.split(" keep state").next().expect("ports");
            names(ports)
                .iter()
                .map(|x| {
                    let (lo, hi) = range(x, ':');
                    Svc {
                        proto: proto.clone(),
                        lo,
                        hi,
                    }
                })
                .collect()
        } else if let Some(t) = rest.split_once("-type ") {
            let t: u16 =
                t.1.split_whitespace()
                    .next()
                    .expect("t")
                    .parse()
                    .expect("type");
            vec![Svc {
                proto: proto.clone(),
                lo: t,
                hi: t,
            }]
        } else {
            panic!("a pass rule for every port: {line}")
        };
        p.rules.push((names(src), names(dst), svcs));
    }
    p
}

fn tag<'a>(block: &'a str, t: &str) -> Option<&'a str> {
    let open = format!("<{t}>");
    let close = format!("</{t}>");
    let a = block.find(&open)? + open.len();
    let b = block[a..].find(&close)? + a;
    Some(&block[a..b])
}

fn opnsense(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for block in text.split("<alias>").skip(1) {
        let name = tag(block, "name").expect("name").to_string();
        p.define(&name, 31);
        let addr = tag(block, "address").expect("address");
        match tag(block, "type").expect("type") {
            "port" => {
                let (lo, hi) = range(addr, ':');
                // The protocol comes from the rule.
                p.services.insert(
                    name,
                    vec![Svc {
                        proto: String::new(),
                        lo,
                        hi,
                    }],
                );
            }
            "host" => {
                p.addrs.insert(name, vec![Atom::Fqdn(addr.to_string())]);
            }
            _ => {
                p.addrs.insert(
                    name,
                    addr.split(' ')
                        .map(|n| Atom::Net(n.parse().expect("net")))
                        .collect(),
                );
            }
        }
    }
    for block in text.split("<rule>").skip(1) {
        let proto = tag(block, "protocol").expect("protocol").to_string();
        let src = tag(tag(block, "source").expect("src"), "address")
            .expect("a")
            .to_string();
        let dst_block = tag(block, "destination").expect("dst");
        let dst = tag(dst_block, "address").expect("a").to_string();
        let svcs = if proto == "icmp" {
            let t = match tag(block, "icmptype") {
                Some("echoreq") => 8,
                Some(other) => panic!("icmp type {other}"),
                None => panic!("an icmp rule for every type"),
            };
            vec![Svc {
                proto,
                lo: t,
                hi: t,
            }]
        } else {
            let port = tag(dst_block, "port").expect("a rule for every port");
            p.service(port)
                .into_iter()
                .map(|s| Svc {
                    proto: proto.clone(),
                    ..s
                })
                .collect()
        };
        p.rules.push((vec![src], vec![dst], svcs));
    }
    p
}

/// The firewalld script: its ipset files and the rich rules of its two policies. The host
/// itself is `HOST` (filled in by [`check`] with the appliance's addresses).
fn firewalld(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for block in text.split("cat > \"$d/").skip(1) {
        let (path, body) = block.split_once("\" <<'PORTOLAN_XML_END'\n").expect("file");
        let body = body.split("PORTOLAN_XML_END").next().expect("end");
        if let Some(name) = path
            .strip_prefix("ipsets/")
            .and_then(|n| n.strip_suffix(".xml"))
        {
            p.define(name, 31);
            let atoms = body
                .split("<entry>")
                .skip(1)
                .map(|e| Atom::Net(e.split('<').next().expect("e").parse().expect("net")))
                .collect();
            p.addrs.insert(name.to_string(), atoms);
            continue;
        }
        let inbound = path.contains("portolan-in");
        for rule in body.split("<rule ").skip(1) {
            let attr = |tag: &str, a: &str| -> Option<String> {
                let t = rule.split(&format!("<{tag} ")).nth(1)?;
                let v = t.split(&format!("{a}=\"")).nth(1)?;
                Some(v.split('"').next()?.to_string())
            };
            let family = rule.split('"').nth(1).expect("family");
            let svc = if let Some(port) = attr("port", "port") {
                let (lo, hi) = range(&port, '-');
                Svc {
                    proto: attr("port", "protocol").expect("protocol"),
                    lo,
                    hi,
                }
            } else {
                let name = attr("icmp-type", "name").expect("a rule for every port");
                let t = match name.as_str() {
                    "echo-request" => {
                        if family == "ipv4" {
                            8
                        } else {
                            128
                        }
                    }
                    other => panic!("icmp type {other}"),
                };
                Svc {
                    proto: if family == "ipv4" {
                        "icmp".into()
                    } else {
                        "icmp6".into()
                    },
                    lo: t,
                    hi: t,
                }
            };
            let peer =
                attr(if inbound { "source" } else { "destination" }, "ipset").expect("ipset");
            let (s, d) = if inbound {
                (peer, "HOST".to_string())
            } else {
                ("HOST".to_string(), peer)
            };
            p.rules.push((vec![s], vec![d], vec![svc]));
        }
    }
    p
}

/// The PowerShell script: keyword blocks (a variable per DNS name) and New-NetFirewallRule
/// lines; the host itself is `HOST`.
fn windows(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut keyword = String::new();
    let q = |line: &str, opt: &str| -> Option<String> {
        let rest = line.split(&format!(" -{opt} ")).nth(1)?;
        Some(
            rest.split_whitespace()
                .next()?
                .trim_matches('\'')
                .to_string(),
        )
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with("New-NetFirewallDynamicKeywordAddress") {
            keyword = q(line, "Keyword").expect("keyword");
        } else if line.starts_with("$pt_") && line.contains("RemoteDynamicKeywordAddresses") {
            let var = line
                .split_whitespace()
                .next()
                .expect("var")
                .trim_start_matches('$');
            p.addrs
                .insert(var.to_string(), vec![Atom::Fqdn(keyword.clone())]);
        } else if let Some(rest) = line.strip_prefix("New-NetFirewallRule ") {
            let name = q(line, "Name").expect("name");
            p.define(&format!("rule:{name}"), 255 + 5);
            let inbound = q(line, "Direction").as_deref() == Some("Inbound");
            let proto = q(line, "Protocol").expect("protocol");
            let svc = match proto.as_str() {
                "ICMPv4" | "ICMPv6" => {
                    let t = q(line, "IcmpType").expect("type").parse().expect("t");
                    Svc {
                        proto: if proto == "ICMPv4" {
                            "icmp".into()
                        } else {
                            "icmp6".into()
                        },
                        lo: t,
                        hi: t,
                    }
                }
                _ => {
                    let port = q(line, if inbound { "LocalPort" } else { "RemotePort" })
                        .expect("a rule for every port");
                    let (lo, hi) = range(&port, '-');
                    Svc {
                        proto: proto.to_lowercase(),
                        lo,
                        hi,
                    }
                }
            };
            let peer = if let Some(list) = rest.split("-RemoteAddress @(").nth(1) {
                let list = list.split(')').next().expect("list");
                let n = format!("inline:{name}");
                p.addrs.insert(
                    n.clone(),
                    list.split(',')
                        .map(|x| Atom::Net(x.trim_matches('\'').parse().expect("net")))
                        .collect(),
                );
                n
            } else {
                rest.split(" @pt_")
                    .nth(1)
                    .map(|v| format!("pt_{}", v.split_whitespace().next().expect("v")))
                    .expect("a peer")
            };
            let (s, d) = if inbound {
                (peer, "HOST".to_string())
            } else {
                ("HOST".to_string(), peer)
            };
            p.rules.push((vec![s], vec![d], vec![svc]));
        }
    }
    p
}

/// One host-side rule of a cloud output: (inbound, peer range, protocol, from, to).
fn cloud_rule(p: &mut Parsed, inbound: bool, range: &str, svc: Svc) {
    let n = format!("range:{range}");
    p.addrs
        .entry(n.clone())
        .or_insert_with(|| vec![Atom::Net(range.parse().expect("range"))]);
    let (s, d) = if inbound {
        (n, "HOST".to_string())
    } else {
        ("HOST".to_string(), n)
    };
    p.rules.push((vec![s], vec![d], vec![svc]));
}

fn aws_svc(proto: &str, from: i64, to: i64) -> Svc {
    match proto {
        "icmp" => Svc {
            proto: "icmp".into(),
            lo: from as u16,
            hi: from as u16,
        },
        "icmpv6" => Svc {
            proto: "icmp6".into(),
            lo: from as u16,
            hi: from as u16,
        },
        p => Svc {
            proto: p.into(),
            lo: from as u16,
            hi: to as u16,
        },
    }
}

/// AWS CloudFormation: the groups' ingress and egress lists. The egress rule to
/// 127.0.0.1/32 that replaces the default allow-all matches nothing an interface sends.
fn aws_cloudformation(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let v: serde_json::Value = serde_json::from_str(text).expect("json");
    for (name, r) in v["Resources"].as_object().expect("resources") {
        p.define(name, 255);
        for (key, inbound) in [
            ("SecurityGroupIngress", true),
            ("SecurityGroupEgress", false),
        ] {
            for e in r["Properties"][key].as_array().into_iter().flatten() {
                if e["IpProtocol"] == "-1" && e["CidrIp"] == "127.0.0.1/32" {
                    continue;
                }
                let range = e["CidrIp"]
                    .as_str()
                    .or(e["CidrIpv6"].as_str())
                    .expect("cidr");
                let svc = aws_svc(
                    e["IpProtocol"].as_str().expect("proto"),
                    e["FromPort"].as_i64().expect("from"),
                    e["ToPort"].as_i64().expect("to"),
                );
                cloud_rule(&mut p, inbound, range, svc);
            }
        }
    }
    p
}

fn aws_terraform(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let v: serde_json::Value = serde_json::from_str(text).expect("json");
    for (kind, inbound) in [
        ("aws_vpc_security_group_ingress_rule", true),
        ("aws_vpc_security_group_egress_rule", false),
    ] {
        for (name, e) in v["resource"][kind].as_object().into_iter().flatten() {
            p.define(name, 255);
            let range = e["cidr_ipv4"]
                .as_str()
                .or(e["cidr_ipv6"].as_str())
                .expect("cidr");
            let svc = aws_svc(
                e["ip_protocol"].as_str().expect("proto"),
                e["from_port"].as_i64().expect("from"),
                e["to_port"].as_i64().expect("to"),
            );
            cloud_rule(&mut p, inbound, range, svc);
        }
    }
    p
}

fn azure_nsg(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let v: serde_json::Value = serde_json::from_str(text).expect("json");
    for r in v["resources"][0]["properties"]["securityRules"]
        .as_array()
        .expect("rules")
    {
        p.define(r["name"].as_str().expect("name"), 80);
        let x = &r["properties"];
        if x["access"] == "Deny" {
            continue;
        }
        let inbound = x["direction"] == "Inbound";
        let own = if inbound {
            "destinationAddressPrefix"
        } else {
            "sourceAddressPrefix"
        };
        assert_eq!(x[own], "*", "the appliance's side is its NIC: {r}");
        let key = if inbound {
            "sourceAddressPrefix"
        } else {
            "destinationAddressPrefix"
        };
        // The service tag Internet: the public space, inside 0.0.0.0/0 and ::/0 (checked
        // against the plan as those).
        let peers = match x[key].as_str() {
            Some("Internet") => serde_json::json!(["0.0.0.0/0", "::/0"]),
            _ => x[format!("{key}es")].clone(),
        };
        let (lo, hi) = range(x["destinationPortRange"].as_str().expect("ports"), '-');
        let proto = x["protocol"].as_str().expect("protocol").to_lowercase();
        for peer in peers.as_array().expect("prefixes") {
            cloud_rule(
                &mut p,
                inbound,
                peer.as_str().expect("prefix"),
                Svc {
                    proto: proto.clone(),
                    lo,
                    hi,
                },
            );
        }
    }
    p
}

fn gcp_rules_parsed(
    p: &mut Parsed,
    name: &str,
    inbound: bool,
    ranges: &[String],
    allow: &[(String, Option<String>)],
) {
    p.define(name, 63);
    for (proto, ports) in allow {
        let (lo, hi) = range(ports.as_deref().expect("a rule for every port"), '-');
        for r in ranges {
            cloud_rule(
                p,
                inbound,
                r,
                Svc {
                    proto: proto.clone(),
                    lo,
                    hi,
                },
            );
        }
    }
}

fn gcp_terraform(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let v: serde_json::Value = serde_json::from_str(text).expect("json");
    for (_, r) in v["resource"]["google_compute_firewall"]
        .as_object()
        .expect("rules")
    {
        if r.get("deny").is_some() {
            continue;
        }
        let inbound = r["direction"] == "INGRESS";
        let ranges: Vec<String> = r[if inbound {
            "source_ranges"
        } else {
            "destination_ranges"
        }]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|x| x.as_str().expect("range").to_string())
        .collect();
        let allow: Vec<(String, Option<String>)> = r["allow"]
            .as_array()
            .expect("allow")
            .iter()
            .map(|a| {
                (
                    a["protocol"].as_str().expect("p").to_string(),
                    a["ports"][0].as_str().map(str::to_string),
                )
            })
            .collect();
        gcp_rules_parsed(
            &mut p,
            r["name"].as_str().expect("name"),
            inbound,
            &ranges,
            &allow,
        );
    }
    p
}

fn gcp(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for line in text.lines().filter(|l| l.starts_with("gcloud ")) {
        let opt = |k: &str| -> Option<String> {
            let v = line.split(&format!(" --{k}=")).nth(1)?;
            Some(v.split_whitespace().next()?.trim_matches('"').to_string())
        };
        if opt("action").as_deref() == Some("DENY") {
            continue;
        }
        let inbound = opt("direction").as_deref() == Some("INGRESS");
        let ranges: Vec<String> = opt(if inbound {
            "source-ranges"
        } else {
            "destination-ranges"
        })
        .expect("ranges")
        .split(',')
        .map(str::to_string)
        .collect();
        let allow: Vec<(String, Option<String>)> = opt("rules")
            .expect("rules")
            .split(',')
            .map(|r| match r.split_once(':') {
                Some((p, ports)) => (p.to_string(), Some(ports.to_string())),
                None => (r.to_string(), None),
            })
            .collect();
        let name = line.split_whitespace().nth(4).expect("name").to_string();
        gcp_rules_parsed(&mut p, &name, inbound, &ranges, &allow);
    }
    p
}

fn parse(target: &str, text: &str) -> Parsed {
    match target {
        "aws-cloudformation" => aws_cloudformation(text),
        "aws-terraform" => aws_terraform(text),
        "azure-nsg" => azure_nsg(text),
        "gcp" => gcp(text),
        "gcp-terraform" => gcp_terraform(text),
        "windows" => windows(text),
        "firewalld" => firewalld(text),
        "fortigate" => fortigate(text),
        "panos" => panos(text),
        "srx" => srx(text),
        "asa" => asa(text),
        "pf" => pf(text),
        "opnsense" => opnsense(text),
        other => panic!("no parser for {other}"),
    }
}

const VENDORS: [&str; 6] = ["fortigate", "panos", "asa", "srx", "pf", "opnsense"];

/// Is `atom` one of the addresses of the plan set `set`?
fn in_set(plan: &Plan, set: &str, atom: &Atom) -> bool {
    let Some(s) = plan.set(set) else {
        return false;
    };
    match atom {
        Atom::Fqdn(f) => {
            matches!(s.kind, SetKind::Dns | SetKind::Wildcard) && !s.pinned && s.name == *f
        }
        Atom::Net(n) => s.addresses().iter().any(|m| m.contains(n)),
    }
}

fn svc_in_flow(svc: &Svc, f: &portolan_core::plan::PlannedFlow) -> bool {
    match (svc.proto.as_str(), f.protocol) {
        ("tcp", Protocol::Tcp) | ("udp", Protocol::Udp) => {
            f.ports.iter().any(|r| r.low <= svc.lo && svc.hi <= r.high)
        }
        ("icmp", Protocol::Icmp) => f
            .icmp_type
            .is_some_and(|t| u16::from(t.v4_code()) == svc.lo),
        ("icmp6", Protocol::Icmp) => f
            .icmp_type
            .is_some_and(|t| u16::from(t.v6_code()) == svc.lo),
        _ => false,
    }
}

/// Check one rendered output against its plan; returns the problems found.
fn check(target: &str, plan: &Plan, text: &str) -> Vec<String> {
    let mut p = parse(target, text);
    p.addrs.insert(
        "HOST".into(),
        plan.appliance()
            .addresses()
            .into_iter()
            .map(Atom::Net)
            .collect(),
    );
    let mut problems = std::mem::take(&mut p.errors);
    let mut seen = BTreeSet::new();
    for d in &p.defined {
        if !seen.insert(d) {
            problems.push(format!("{target}: {d} defined twice"));
        }
    }
    for (n, max) in &p.names {
        if n.len() > *max {
            problems.push(format!("{target}: name {n} longer than {max}"));
        }
    }
    let rules = std::mem::take(&mut p.rules);
    let mut served: BTreeSet<String> = BTreeSet::new();
    for (srcs, dsts, svcs) in &rules {
        let s: Vec<Atom> = srcs.iter().flat_map(|n| p.expand(n, 0)).collect();
        let d: Vec<Atom> = dsts.iter().flat_map(|n| p.expand(n, 0)).collect();
        if s.is_empty() || d.is_empty() || svcs.is_empty() {
            problems.push(format!(
                "{target}: a rule with nothing on one side: {srcs:?} {dsts:?}"
            ));
        }
        for a in &s {
            for b in &d {
                for svc in svcs {
                    let flows: Vec<&str> = plan
                        .flows
                        .iter()
                        .filter(|f| {
                            svc_in_flow(svc, f)
                                && f.source.peers.iter().any(|x| in_set(plan, &x.set, a))
                                && f.destination.peers.iter().any(|x| in_set(plan, &x.set, b))
                        })
                        .map(|f| f.id.as_str())
                        .collect();
                    if flows.is_empty() {
                        problems.push(format!(
                            "{target}: accepts {a:?} -> {b:?} {svc:?}, which no planned flow allows"
                        ));
                    }
                    served.extend(flows.iter().map(|f| f.to_string()));
                }
            }
        }
    }
    problems.extend(p.errors);
    // Every flow whose peers the target can express is served (wildcards without pins and
    // peers without addresses may be left out, with a warning).
    for f in &plan.flows {
        let fqdn = !matches!(
            render::target(target).map(|t| t.capabilities().dns),
            Some(render::DnsModel::PinnedOnly)
        );
        let expressible = f.source.peers.iter().chain(&f.destination.peers).all(|x| {
            plan.set(&x.set).is_some_and(|s| match s.kind {
                SetKind::Dns if !s.pinned => fqdn,
                SetKind::Wildcard => s.pinned,
                _ => !s.is_empty(),
            })
        }) && !(matches!(plan.placement, Placement::Host)
            && f.direction == portolan_core::plan::Direction::Internal);
        let icmp_types = render::target(target).is_some_and(|t| t.capabilities().icmp_types);
        let icmp_other = f.protocol == Protocol::Icmp
            && (!icmp_types || f.icmp_type != Some(portolan_core::model::IcmpType::EchoRequest));
        if expressible && !icmp_other && !served.contains(&f.id) {
            problems.push(format!("{target}: flow {} has no policy", f.id));
        }
    }
    problems
}

fn gateway_site(p: &portolan_core::model::Profile) -> portolan_core::site::Site {
    let mut s = site::demo(p);
    s.features = site::Features::All;
    let mut zones = BTreeMap::new();
    zones.insert("internet".to_string(), "wan0".to_string());
    s.placement = Placement::Gateway {
        appliance_interface: "dmz0".into(),
        zones,
        default_interface: Some("lan0".into()),
        others: Others::Drop,
    };
    s
}

#[test]
fn catalog_profiles_read_back_defined_bounded_and_never_wider_than_the_plan() {
    let mut problems = Vec::new();
    for id in catalog::ids() {
        let prof = catalog::load(id)
            .expect("catalog id")
            .expect("catalog profile");
        let plan = plan::build(&prof, &gateway_site(&prof), None).expect("plan");
        for t in VENDORS {
            let target = render::target(t).expect("target");
            let out = render::render(&plan, target);
            assert!(!out.text.is_empty(), "{id} {t}: {:?}", out.warnings);
            problems.extend(
                check(t, &plan, &out.text)
                    .into_iter()
                    .map(|x| format!("{id}: {x}")),
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Targets on the appliance's own host, checked with the demo site (placement host).
const HOST_TARGETS: [&str; 7] = [
    "firewalld",
    "windows",
    "aws-cloudformation",
    "aws-terraform",
    "azure-nsg",
    "gcp",
    "gcp-terraform",
];

#[test]
fn host_targets_read_back_defined_bounded_and_never_wider_than_the_plan() {
    let mut problems = Vec::new();
    for id in catalog::ids() {
        let prof = catalog::load(id)
            .expect("catalog id")
            .expect("catalog profile");
        let mut s = site::demo(&prof);
        s.features = site::Features::All;
        let plan = plan::build(&prof, &s, None).expect("plan");
        for t in HOST_TARGETS {
            let out = render::render(&plan, render::target(t).expect("target"));
            assert!(!out.text.is_empty(), "{id} {t}: {:?}", out.warnings);
            problems.extend(
                check(t, &plan, &out.text)
                    .into_iter()
                    .map(|x| format!("{id}: {x}")),
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_a_widened_rule_and_an_undefined_name() {
    let prof = catalog::load("seppmail").expect("id").expect("profile");
    let plan = plan::build(&prof, &gateway_site(&prof), None).expect("plan");
    let out = render::render(&plan, render::target("pf").expect("pf")).text;
    assert!(check("pf", &plan, &out).is_empty());
    let widened = out.replacen("port 25 ", "port 1:65535 ", 1);
    assert_ne!(widened, out);
    assert!(
        !check("pf", &plan, &widened).is_empty(),
        "a widened port is caught"
    );
    let out = render::render(&plan, render::target("srx").expect("srx")).text;
    let broken = out.replacen(
        "match destination-address pt-role-",
        "match destination-address nope-",
        1,
    );
    assert!(check("srx", &plan, &broken)
        .iter()
        .any(|p| p.contains("undefined")));
}

fn random_profile(flows: &[(u8, u16, u16, u8)]) -> String {
    let peers = [
        "internet",
        "update.example.com",
        "*.cloud.example.com",
        "10.1.0.0/16",
        "mail-server",
    ];
    let mut s = String::from("id = \"rand\"\nname = \"r\"\nvendor = \"v\"\n");
    for (i, (dir, lo, len, peer)) in flows.iter().enumerate() {
        let peer = peers[*peer as usize % peers.len()];
        let (from, to) = if dir % 2 == 0 || peer.contains('.') && !peer.contains('/') {
            ("appliance", peer)
        } else {
            (peer, "appliance")
        };
        let proto = ["tcp", "udp", "icmp"][*dir as usize % 3];
        let hi = lo.saturating_add(*len % 50).max(*lo);
        let ports = if proto == "icmp" {
            "icmp_type = \"echo-request\"".to_string()
        } else {
            format!("ports = [\"{lo}-{hi}\"]")
        };
        s.push_str(&format!(
            "[[flows]]\nid = \"f{i}\"\nfunction = \"x\"\nfrom = \"{from}\"\nto = \"{to}\"\nprotocols = [\"{proto}\"]\n{ports}\n"
        ));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    /// Random profiles: the output of every vendor target stays inside the plan.
    #[test]
    fn random_profiles_are_never_widened(flows in proptest::collection::vec((0u8..6, 1u16..60000, 0u16..200, 0u8..5), 1..8)) {
        let text = random_profile(&flows);
        let src = Source::new("rand.toml", text.clone());
        let Ok((prof, _)) = profile::parse(&src) else {
            return Ok(());
        };
        let Ok(plan) = plan::build(&prof, &gateway_site(&prof), None) else {
            return Ok(());
        };
        for t in VENDORS {
            let out = render::render(&plan, render::target(t).expect("t"));
            if out.text.is_empty() {
                continue;
            }
            let problems = check(t, &plan, &out.text);
            prop_assert!(problems.is_empty(), "{}\n{}\n{}", text, out.text, problems.join("\n"));
        }
    }
}

/// The README's list of targets is the table of backends: a row per target with its
/// description, in the table's order.
#[test]
fn the_readme_lists_every_target_of_the_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let listed: Vec<String> = rows
        .iter()
        .filter_map(|l| l.split('`').nth(1).map(str::to_string))
        .collect();
    let names: Vec<String> = render::TARGETS
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    assert_eq!(listed, names, "README targets table");
    for (row, t) in rows.iter().zip(render::TARGETS) {
        assert!(row.contains(t.description()), "{row}\n{}", t.description());
    }
}

// ---------------------------------------------------------------------------------------
// Cross-check against an independent implementation: Aerleon (PyPI) renders FortiGate,
// PAN-OS, ASA, SRX and pf from its own policy format. The plan (no DNS names) is written as an Aerleon policy
// (a filter per pair of interfaces, a term per flow and peer pair); both outputs are read
// back and asked the same questions: is (source, destination, protocol, port) accepted, for
// addresses at and just outside the edges of every network and ports at and just outside
// every range.

/// `aclgen` of the tool environment (scripts/tool-venv.sh).
fn aclgen() -> Option<std::path::PathBuf> {
    tools::bin("aclgen")
}

const CROSS_PROFILE: &str = r#"
id = "cross"
name = "Cross-check appliance"
vendor = "portolan tests"
[roles.partner]
description = "a partner"
[[flows]]
id = "smtp-in"
function = "mail in"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [40025]
[[flows]]
id = "admin"
function = "administration"
from = "admin"
to = "appliance"
protocols = ["tcp"]
ports = [42022, "48443-48450"]
[[flows]]
id = "partner"
function = "exchange"
from = "appliance"
to = "partner"
protocols = ["udp", "tcp"]
ports = ["45000-45010"]
[[flows]]
id = "net"
function = "a network"
from = "appliance"
to = "203.0.113.0/25"
protocols = ["tcp"]
ports = [41000]
"#;

const CROSS_SITE: &str = r#"
profile = "cross.toml"
[appliance]
addresses = ["192.0.2.10", "2001:db8:a::10"]
[roles]
admin = ["198.51.100.128/26", "2001:db8:c::/64"]
partner = ["198.51.100.0/27", "198.51.100.64/28"]
[placement]
mode = "gateway"
appliance_interface = "dmz0"
default_interface = "lan0"
[placement.zones]
internet = "wan0"
admin = "adm0"
"#;

fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The plan as an Aerleon policy and definitions (YAML).
fn aerleon_policy(plan: &Plan) -> (String, String) {
    let mut nets = String::from("networks:\n");
    let mut svcs = String::from("services:\n");
    let mut used = BTreeSet::new();
    let mut filters: BTreeMap<(String, String), String> = BTreeMap::new();
    for f in &plan.flows {
        let svc = format!("{}_{}", ident(&f.id), f.protocol);
        svcs.push_str(&format!("  {}:\n", ident(&svc)));
        for r in &f.ports {
            svcs.push_str(&format!(
                "    - port: {}\n      protocol: {}\n",
                if r.low == r.high {
                    r.low.to_string()
                } else {
                    format!("{}-{}", r.low, r.high)
                },
                f.protocol
            ));
        }
        for s in &f.source.peers {
            for d in &f.destination.peers {
                used.insert(s.set.clone());
                used.insert(d.set.clone());
                let key = (
                    s.interface.clone().unwrap_or_default(),
                    d.interface.clone().unwrap_or_default(),
                );
                filters.entry(key).or_default().push_str(&format!(
                    "      - name: {}-{}-{}-{}\n        source-address: {}\n        destination-address: {}\n        protocol: {}\n        destination-port: {}\n        action: accept\n",
                    f.id,
                    f.protocol,
                    ident(&s.set).to_lowercase(),
                    ident(&d.set).to_lowercase(),
                    ident(&s.set),
                    ident(&d.set),
                    f.protocol,
                    ident(&svc)
                ));
            }
        }
    }
    for id in used {
        let set = plan.set(&id).expect("set");
        nets.push_str(&format!("  {}:\n    values:\n", ident(&id)));
        for n in set.addresses() {
            nets.push_str(&format!("      - address: {n}\n"));
        }
    }
    let mut pol = String::from("filters:\n");
    for ((from, to), terms) in filters {
        pol.push_str(&format!(
            "  - header:\n      targets:\n        fortigate: \"from-zone {from} to-zone {to}\"\n        packetfilter: \"mixed\"\n        ciscoasa: \"{from}\"\n        srx: \"from-zone {from} to-zone {to}\"\n        paloalto: \"from-zone {from} to-zone {to} mixed\"\n    terms:\n{terms}"
        ));
    }
    (pol, format!("{nets}{svcs}"))
}

/// Aerleon's ASA output: access-list lines with addresses inline.
fn aerleon_asa(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut n = 0;
    for line in text.lines().filter(|l| l.contains(" extended permit ")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let mut i = 5;
        let addr = |i: &mut usize| -> Atom {
            let a = match w[*i] {
                "host" => {
                    *i += 1;
                    Atom::Net(IpNet::from(w[*i].parse::<IpAddr>().expect("host")))
                }
                x if x.contains('/') => Atom::Net(x.parse().expect("v6 net")),
                x => {
                    *i += 1;
                    Atom::Net(mask_net(x, w[*i]))
                }
            };
            *i += 1;
            a
        };
        let s = addr(&mut i);
        let d = addr(&mut i);
        let (lo, hi) = match w.get(i).copied() {
            Some("eq") => {
                let v = w[i + 1].parse().expect("a numbered port");
                (v, v)
            }
            Some("range") => (
                w[i + 1].parse().expect("port"),
                w[i + 2].parse().expect("port"),
            ),
            other => panic!("aerleon asa: {other:?} in {line}"),
        };
        n += 1;
        let (sn, dn) = (format!("s{n}"), format!("d{n}"));
        p.addrs.insert(sn.clone(), vec![s]);
        p.addrs.insert(dn.clone(), vec![d]);
        p.rules.push((
            vec![sn],
            vec![dn],
            vec![Svc {
                proto: w[4].to_string(),
                lo,
                hi,
            }],
        ));
    }
    p
}

/// Aerleon's pf output: tables (possibly continued with `\`) and `pass` lines.
fn aerleon_pf(text: &str) -> Parsed {
    let joined = text.replace("\\\n", "");
    let mut p = Parsed::default();
    let inside = |s: &str| -> Vec<String> {
        s.split(|c: char| c == ',' || c.is_whitespace() || c == '{' || c == '}')
            .filter(|x| !x.is_empty())
            .map(|x| x.trim_start_matches('<').trim_end_matches('>').to_string())
            .collect()
    };
    for line in joined.lines() {
        if let Some(rest) = line.strip_prefix("table <") {
            let (name, body) = rest.split_once("> {").expect("table");
            p.addrs.insert(
                name.to_string(),
                inside(body)
                    .iter()
                    .map(|x| Atom::Net(x.parse().expect("net")))
                    .collect(),
            );
        } else if line.starts_with("pass ") {
            let proto = inside(
                line.split_once(" proto ")
                    .expect("proto")
                    .1
                    .split('}')
                    .next()
                    .expect("p"),
            );
            let from = line.split_once(" from ").expect("from").1;
            let (src, rest) = from.split_once(" to ").expect("to");
            let (dst, ports) = rest.split_once(" port ").expect("a rule for every port");
            let ports = ports.split('}').next().expect("ports");
            let svcs = proto
                .iter()
                .flat_map(|pr| {
                    inside(ports).into_iter().map(move |x| {
                        let (lo, hi) = range(&x, ':');
                        Svc {
                            proto: pr.clone(),
                            lo,
                            hi,
                        }
                    })
                })
                .collect();
            p.rules.push((inside(src), inside(dst), svcs));
        }
    }
    p
}

/// Aerleon's FortiGate output reads like ours, with unquoted names and `none` for an absent
/// family.
fn aerleon_fortigate(text: &str) -> Parsed {
    let mut p = fortigate(&text.replace("\"none\"", "\"\""));
    p.rules.retain(|r| !r.0.is_empty() && !r.1.is_empty());
    p.errors.retain(|e| !e.contains("unexpected line start"));
    p
}

/// `[ a b ]` or `a` after a keyword, without the `;`.
fn srx_list(rest: &str) -> Vec<String> {
    rest.trim_end_matches(';')
        .split_whitespace()
        .filter(|x| *x != "[" && *x != "]")
        .map(str::to_string)
        .collect()
}

/// Aerleon's SRX output: the hierarchical Junos configuration (address book, policies,
/// applications and application sets).
fn aerleon_srx(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut depth = 0usize;
    let mut set: Option<String> = None;
    let mut policy: Option<(usize, Lists)> = None;
    let mut app: Option<String> = None;
    let mut app_set: Option<String> = None;
    let mut app_sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for raw in text.lines() {
        let line = raw.trim();
        let w: Vec<&str> = line
            .trim_end_matches(['{', ';'])
            .split_whitespace()
            .collect();
        let opens = line.ends_with('{');
        match (w.first().copied(), w.len()) {
            (Some("address-set"), _) if opens => {
                set = Some(w[1].to_string());
                p.groups.entry(w[1].to_string()).or_default();
            }
            (Some("address" | "address-set"), 2) if set.is_some() => {
                if let Some(g) = &set {
                    p.groups
                        .entry(g.clone())
                        .or_default()
                        .push(w[1].to_string());
                }
            }
            (Some("address"), 3) => {
                p.addrs.insert(
                    w[1].to_string(),
                    vec![Atom::Net(w[2].parse().expect("net"))],
                );
            }
            (Some("policy"), _) if opens => {
                policy = Some((depth + 1, Default::default()));
            }
            (Some("source-address"), _) => {
                if let Some((_, l)) = policy.as_mut() {
                    l.0.extend(srx_list(&line["source-address".len()..]));
                }
            }
            (Some("destination-address"), _) => {
                if let Some((_, l)) = policy.as_mut() {
                    l.1.extend(srx_list(&line["destination-address".len()..]));
                }
            }
            (Some("application-set"), _) if opens => app_set = Some(w[1].to_string()),
            (Some("application"), _) if opens => app = Some(w[1].to_string()),
            (Some("application"), _) => {
                let names = srx_list(&line["application".len()..]);
                if let Some((_, l)) = policy.as_mut() {
                    l.2.extend(names);
                } else if let Some(s) = &app_set {
                    app_sets.entry(s.clone()).or_default().extend(names);
                }
            }
            (Some("term"), _) => {
                let proto = w[w.iter().position(|x| *x == "protocol").expect("protocol") + 1];
                let port = w[w
                    .iter()
                    .position(|x| *x == "destination-port")
                    .expect("a term for every port")
                    + 1];
                let (lo, hi) = range(port, '-');
                if let Some(a) = &app {
                    p.services.entry(a.clone()).or_default().push(Svc {
                        proto: proto.into(),
                        lo,
                        hi,
                    });
                }
            }
            _ => {}
        }
        if opens {
            depth += 1;
        }
        if line.starts_with('}') {
            depth = depth.saturating_sub(1);
            if depth == 0 || set.is_some() {
                set = None;
            }
            app = None;
            if policy.as_ref().is_some_and(|(d, _)| depth < *d) {
                if let Some((_, (s, d, a))) = policy.take() {
                    let svcs = a
                        .iter()
                        .flat_map(|n| match app_sets.get(n) {
                            Some(m) => m.clone(),
                            None => vec![n.clone()],
                        })
                        .collect::<Vec<_>>();
                    p.rules.push((
                        s,
                        d,
                        svcs.iter()
                            .map(|n| Svc {
                                proto: format!("@{n}"),
                                lo: 0,
                                hi: 0,
                            })
                            .collect(),
                    ));
                }
            }
            if app_set.is_some() && !line.contains("application") {
                app_set = None;
            }
        }
    }
    // Applications are defined after the policies: resolve the names now.
    let rules = std::mem::take(&mut p.rules);
    for (s, d, v) in rules {
        let svcs = v
            .iter()
            .flat_map(|x| {
                let n = x.proto.trim_start_matches('@');
                match app_sets.get(n) {
                    Some(members) => members.iter().flat_map(|m| p.service(m)).collect(),
                    None => p.service(n),
                }
            })
            .collect();
        p.rules.push((s, d, svcs));
    }
    p
}

/// The `<entry name="...">` blocks of an XML section.
fn xml_entries(section: &str) -> Vec<(String, String)> {
    section
        .split("<entry name=\"")
        .skip(1)
        .filter_map(|b| {
            let (name, body) = b.split_once('"')?;
            Some((name.to_string(), body.to_string()))
        })
        .collect()
}

fn xml_members(block: &str) -> Vec<String> {
    block
        .split("<member>")
        .skip(1)
        .filter_map(|m| m.split_once("</member>").map(|(x, _)| x.to_string()))
        .collect()
}

/// Aerleon's PAN-OS output: the XML configuration (addresses, groups, services, rules).
fn aerleon_panos(text: &str) -> Parsed {
    let mut p = Parsed::default();
    if let Some(sec) = tag(text, "address") {
        for (n, b) in xml_entries(sec) {
            let net = tag(&b, "ip-netmask").expect("ip-netmask");
            p.addrs
                .insert(n, vec![Atom::Net(net.parse().expect("net"))]);
        }
    }
    if let Some(sec) = tag(text, "address-group") {
        for (n, b) in xml_entries(sec) {
            p.groups.insert(n, xml_members(&b));
        }
    }
    if let Some(sec) = tag(text, "service") {
        for (n, b) in xml_entries(sec) {
            let mut v = Vec::new();
            for proto in ["tcp", "udp"] {
                if let Some(ports) = tag(&b, proto).and_then(|x| tag(x, "port")) {
                    for r in ports.split(',') {
                        let (lo, hi) = range(r, '-');
                        v.push(Svc {
                            proto: proto.into(),
                            lo,
                            hi,
                        });
                    }
                }
            }
            p.services.insert(n, v);
        }
    }
    let rules = tag(text, "rules").expect("rules");
    for (_, b) in xml_entries(rules) {
        assert_eq!(xml_members(tag(&b, "application").expect("app")), ["any"]);
        let svcs = xml_members(tag(&b, "service").expect("service"))
            .iter()
            .flat_map(|s| p.service(s))
            .collect();
        p.rules.push((
            xml_members(tag(&b, "source").expect("source")),
            xml_members(tag(&b, "destination").expect("destination")),
            svcs,
        ));
    }
    p
}

/// Does any rule accept (s, d, proto, port)?
fn accepts(
    expanded: &[(Vec<Atom>, Vec<Atom>, Vec<Svc>)],
    s: IpAddr,
    d: IpAddr,
    proto: &str,
    port: u16,
) -> bool {
    let has = |atoms: &[Atom], a: IpAddr| {
        atoms
            .iter()
            .any(|x| matches!(x, Atom::Net(n) if n.contains(&a)))
    };
    expanded.iter().any(|(src, dst, svcs)| {
        has(src, s)
            && has(dst, d)
            && svcs
                .iter()
                .any(|v| v.proto == proto && v.lo <= port && port <= v.hi)
    })
}

fn expand_rules(p: &mut Parsed) -> Vec<(Vec<Atom>, Vec<Atom>, Vec<Svc>)> {
    let rules = std::mem::take(&mut p.rules);
    rules
        .iter()
        .map(|(s, d, v)| {
            (
                s.iter().flat_map(|n| p.expand(n, 0)).collect(),
                d.iter().flat_map(|n| p.expand(n, 0)).collect(),
                v.clone(),
            )
        })
        .collect()
}

/// Addresses at and just outside the edges of every network of the plan.
fn probe_addresses(plan: &Plan) -> Vec<IpAddr> {
    let mut out = BTreeSet::new();
    for s in plan.sets.values() {
        let nets = s.addresses();
        for n in nets.iter().take(3).chain(nets.iter().rev().take(3)) {
            let (a, b) = (n.network(), n.broadcast());
            out.insert(a);
            out.insert(b);
            match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    out.insert(IpAddr::V4((u32::from(a).wrapping_sub(1)).into()));
                    out.insert(IpAddr::V4((u32::from(b).wrapping_add(1)).into()));
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    out.insert(IpAddr::V6((u128::from(a).wrapping_sub(1)).into()));
                    out.insert(IpAddr::V6((u128::from(b).wrapping_add(1)).into()));
                }
                _ => {}
            }
        }
    }
    out.into_iter().collect()
}

#[test]
fn vendor_outputs_accept_what_aerleon_renders_from_the_same_plan() {
    let Some(aclgen) = aclgen() else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("aerleon-cross");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pol")).expect("dir");
    std::fs::create_dir_all(dir.join("def")).expect("dir");
    std::fs::create_dir_all(dir.join("out")).expect("dir");
    let (prof, _) = profile::parse(&Source::new("cross.toml", CROSS_PROFILE)).expect("profile");
    let (s, _) = site::parse(&Source::new("site.toml", CROSS_SITE)).expect("site");
    let plan = plan::build(&prof, &s, None).expect("plan");
    let (pol, defs) = aerleon_policy(&plan);
    std::fs::write(dir.join("pol/cross.yaml"), &pol).expect("policy");
    std::fs::write(dir.join("def/defs.yaml"), &defs).expect("definitions");
    let out = std::process::Command::new(&aclgen)
        .arg(format!(
            "--policy_file={}",
            dir.join("pol/cross.yaml").display()
        ))
        .arg(format!("--base_directory={}", dir.join("pol").display()))
        .arg(format!(
            "--definitions_directory={}",
            dir.join("def").display()
        ))
        .arg(format!("--output_directory={}", dir.join("out").display()))
        .output()
        .expect("aclgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addrs = probe_addresses(&plan);
    let mut ports = BTreeSet::new();
    for f in &plan.flows {
        for r in &f.ports {
            ports.extend([r.low - 1, r.low, r.high, r.high + 1]);
        }
    }
    let mut problems = Vec::new();
    let mut accepted = 0;
    // Aerleon's ciscoasa generator renders IPv4 only: ASA is compared on IPv4.
    for (ours, file, theirs, v6) in [
        (
            "fortigate",
            "cross.fgacl",
            aerleon_fortigate as fn(&str) -> Parsed,
            true,
        ),
        ("asa", "cross.asa", aerleon_asa, false),
        ("pf", "cross.pf", aerleon_pf, true),
        ("srx", "cross.srx", aerleon_srx, true),
        ("panos", "cross.xml", aerleon_panos, true),
    ] {
        let text = std::fs::read_to_string(dir.join("out").join(file)).expect("aerleon output");
        let mut a = theirs(&text);
        assert!(a.errors.is_empty(), "{ours}: {:?}", a.errors);
        let mine = render::render(&plan, render::target(ours).expect("t")).text;
        let mut m = parse(ours, &mine);
        let (ae, me) = (expand_rules(&mut a), expand_rules(&mut m));
        assert!(
            !ae.is_empty() && !me.is_empty(),
            "{ours}: nothing to compare"
        );
        for &sa in &addrs {
            for &da in &addrs {
                if sa.is_ipv4() != da.is_ipv4() || (!v6 && sa.is_ipv6()) {
                    continue;
                }
                for proto in ["tcp", "udp"] {
                    for &port in &ports {
                        let x = accepts(&ae, sa, da, proto, port);
                        let y = accepts(&me, sa, da, proto, port);
                        accepted += usize::from(y);
                        if x != y {
                            problems.push(format!(
                                "{ours}: {sa} -> {da} {proto}/{port}: aerleon {x}, portolan {y}"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        accepted > 0,
        "no packet accepted at all: the comparison would prove nothing"
    );
    problems.truncate(20);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
