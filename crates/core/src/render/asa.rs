//! Cisco ASA (9.x CLI): `object network` (host, subnet, `fqdn v4|v6`), `object-group
//! network`, and one extended access list per ingress interface (`access-list pt-IF extended
//! permit PROTO SRC DST eq PORT`, a `remark` per policy) bound with `access-group ... in
//! interface IF` (`global` when the interface is not known). ASA has no wildcard FQDN
//! objects: wildcard peers need pinned addresses, or their flows are left out.
//!
//! The `access-group` lines replace an access list already bound to that interface: merge the
//! `permit` lines into your own list instead when one is bound (the file says so at the top).
//!
//! Reference: Cisco Secure Firewall ASA Series Firewall CLI Configuration Guide 9.20,
//! "Objects for Access Control" and "Access Control Lists"; Command Reference for
//! `object network`, `object-group network`, `access-list extended`, `access-group`.
//! Names: at most 64 characters.

use std::fmt::Write as _;

use ipnet::IpNet;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{flow_comment, header, Capabilities, Lowered, Rendered, Target};
use crate::model::Protocol;
use crate::plan::Plan;

pub struct Asa;

const NAME_MAX: usize = 64;
const REMARK_MAX: usize = 100;

impl Target for Asa {
    fn name(&self) -> &'static str {
        "asa"
    }
    fn description(&self) -> &'static str {
        "Cisco ASA CLI: network objects (fqdn), object groups, extended ACLs per ingress interface"
    }
    fn extension(&self) -> &'static str {
        "cfg"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_comment_len: REMARK_MAX,
            max_set_name_len: NAME_MAX,
            comment: "!",
            ..Capabilities::GATEWAY_OBJECTS
        }
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &super::Options) -> Rendered {
        lowered.objects_with(|o| render(plan, o))
    }
}

fn net_line(n: &IpNet) -> String {
    match n {
        IpNet::V4(v) if v.prefix_len() == 32 => format!(" host {}", v.addr()),
        IpNet::V4(v) => format!(" subnet {} {}", v.network(), v.netmask()),
        IpNet::V6(v) if v.prefix_len() == 128 => format!(" host {}", v.addr()),
        IpNet::V6(v) => format!(" subnet {}/{}", v.network(), v.prefix_len()),
    }
}

fn render(plan: &Plan, o: &Objects) -> Rendered {
    let index = super::FlowIndex::new(plan);
    let head = format!(
        "{}# reference: Cisco Secure Firewall ASA 9.20 CLI Configuration Guide and Command Reference: object network, object-group network, access-list extended, access-group\n",
        header(
        plan,
        "asa",
        "paste in configuration mode; each access-group line REPLACES the list bound to its interface: if one is bound there, add the permit lines to it instead; the implicit deny at the end of each list closes the rest",
    )
    );
    // `!` starts a comment line in ASA configuration.
    let mut out: String = head
        .lines()
        .map(|l| format!("!{}\n", l.strip_prefix('#').unwrap_or(l)))
        .collect();
    out.push_str("!\n! Objects\n");
    // Every address object becomes an object-group of network objects (one per network, one
    // per family for a name).
    for a in &o.addresses {
        let group = fit(&a.name, NAME_MAX - 4);
        let mut members = Vec::new();
        match &a.kind {
            AddrKind::Nets(nets) => {
                let (v4, v6) = by_family(nets);
                for (i, n) in v4.iter().chain(&v6).enumerate() {
                    let m = format!("{group}_{}", i + 1);
                    let _ = writeln!(out, "object network {m}\n{}", net_line(n));
                    members.push(m);
                }
            }
            AddrKind::Fqdn(f) => {
                for fam in ["v4", "v6"] {
                    let m = format!("{group}_{fam}");
                    let _ = writeln!(out, "object network {m}\n fqdn {fam} {f}");
                    members.push(m);
                }
            }
            AddrKind::WildcardFqdn(_) => {}
        }
        let _ = writeln!(out, "object-group network {group}");
        for m in members {
            let _ = writeln!(out, " network-object object {m}");
        }
    }
    // One access list per ingress interface.
    let mut lists: std::collections::BTreeMap<String, (Option<String>, String)> =
        Default::default();
    let mut count = 0;
    for p in &o.policies {
        let iface = p.from_zone.clone().unwrap_or_default();
        let acl = if iface.is_empty() {
            "pt-global".to_string()
        } else {
            fit(&format!("pt-{iface}"), NAME_MAX)
        };
        let (_, body) = lists
            .entry(acl.clone())
            .or_insert_with(|| (p.from_zone.clone(), String::new()));
        body.push_str(&index.lines_for(&p.flows, "!"));
        let _ = writeln!(
            body,
            "access-list {acl} remark portolan {}",
            flow_comment(&p.flows, REMARK_MAX - 9)
        );
        for s in &p.sources {
            for d in &p.destinations {
                let (Some(sa), Some(da)) = (o.address(s), o.address(d)) else {
                    continue;
                };
                let (sg, dg) = (fit(&sa.name, NAME_MAX - 4), fit(&da.name, NAME_MAX - 4));
                for svc in p.services.iter().filter_map(|n| o.service(n)) {
                    let tail = match (svc.protocol, svc.ports, svc.icmp) {
                        (Protocol::Icmp, _, Some(t)) => {
                            // `icmp` matches IPv4 only, `icmp6` IPv6 only.
                            for (proto, code) in [("icmp", t.v4_code()), ("icmp6", t.v6_code())] {
                                count += 1;
                                let _ = writeln!(
                                    body,
                                    "access-list {acl} extended permit {proto} object-group {sg} object-group {dg} {code}"
                                );
                            }
                            continue;
                        }
                        (Protocol::Icmp, _, None) => String::new(),
                        (_, Some(r), _) if r.low == r.high => format!(" eq {}", r.low),
                        (_, Some(r), _) => format!(" range {} {}", r.low, r.high),
                        (_, None, _) => String::new(),
                    };
                    count += 1;
                    let _ = writeln!(
                        body,
                        "access-list {acl} extended permit {} object-group {sg} object-group {dg}{tail}",
                        svc.protocol
                    );
                }
            }
        }
    }
    out.push_str("!\n! Access lists\n");
    for (acl, (iface, body)) in &lists {
        out.push_str(body);
        let bind = iface
            .as_ref()
            .map(|i| format!("in interface {i}"))
            .unwrap_or_else(|| "global".to_string());
        let _ = writeln!(out, "access-group {acl} {bind}");
    }
    Rendered {
        text: out.clone(),
        parts: vec![("asa".into(), out)],
        rule_count: count,
        warnings: Vec::new(),
    }
}
