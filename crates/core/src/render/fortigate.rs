//! FortiGate (FortiOS 7.x CLI): `config firewall address` / `address6` (type ipmask, fqdn,
//! wildcard fqdn), address groups, `config firewall service custom`, and one `config
//! firewall policy` entry per policy with IPv4 and IPv6 addresses side by side (`srcaddr6`,
//! `dstaddr6`: FortiOS 6.4+ consolidated policies, the default from 7.0).
//!
//! Reference: FortiOS 7.4 CLI Reference, "config firewall address", "config firewall
//! address6", "config firewall addrgrp", "config firewall service custom", "config firewall
//! policy". Names: addresses and services at most 79 characters, policy names 35.

use std::fmt::Write as _;

use ipnet::IpNet;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{
    comment_text, flow_comment, header, Capabilities, DnsModel, Lowered, Rendered, Target,
};
use crate::model::Protocol;
use crate::plan::Plan;

pub struct Fortigate;

const NAME_MAX: usize = 79;
const POLICY_NAME_MAX: usize = 35;
const COMMENT_MAX: usize = 1023;

fn mask(n: &IpNet) -> String {
    match n {
        IpNet::V4(v) => format!("{} {}", v.network(), v.netmask()),
        IpNet::V6(v) => format!("{}/{}", v.network(), v.prefix_len()),
    }
}

/// Names of the IPv4 and IPv6 objects standing for an address object (None: no such family).
/// Plan names have no `_`, so the suffixes `_v6` and `_N` (group members) never collide.
fn parts(o: &super::objects::AddrObject) -> (Option<String>, Option<String>) {
    let n = fit(&o.name, NAME_MAX - 2);
    match &o.kind {
        AddrKind::Nets(nets) => {
            let (v4, v6) = by_family(nets);
            (
                (!v4.is_empty()).then(|| n.clone()),
                (!v6.is_empty()).then(|| format!("{n}_v6")),
            )
        }
        _ => (Some(n.clone()), Some(format!("{n}_v6"))),
    }
}

impl Target for Fortigate {
    fn name(&self) -> &'static str {
        "fortigate"
    }
    fn description(&self) -> &'static str {
        "FortiOS CLI: addresses (FQDN and wildcard FQDN), services, policies per interface pair"
    }
    fn extension(&self) -> &'static str {
        "conf"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dns: DnsModel::NativeFqdn { wildcard: true },
            max_comment_len: COMMENT_MAX,
            max_set_name_len: NAME_MAX,
            ..Capabilities::GATEWAY_OBJECTS
        }
    }

    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &super::Options) -> Rendered {
        lowered.objects_with(|o| render(plan, o))
    }
}

fn render(plan: &Plan, o: &Objects) -> Rendered {
    let index = super::FlowIndex::new(plan);
    let mut out = format!(
        "{}# reference: FortiOS 7.4 CLI Reference: config firewall address, address6, addrgrp, addrgrp6, service custom, policy\n",
        header(
        plan,
        "fortigate",
        "paste into the FortiGate CLI (or execute a script) in the VDOM the appliance sits behind; these policies only allow: the implicit deny policy closes the rest",
    )
    );
    let mut warnings = Vec::new();
    // Addresses: one entry per network (a group when there are several), FQDNs in both tables.
    let mut v4 = String::new();
    let mut v6 = String::new();
    let mut g4 = String::new();
    let mut g6 = String::new();
    for a in &o.addresses {
        let (n4, n6) = parts(a);
        let what = comment_text(&a.what);
        match &a.kind {
            AddrKind::Nets(nets) => {
                let (l4, l6) = by_family(nets);
                for (list, name, table, group, key) in [
                    (&l4, n4, &mut v4, &mut g4, "subnet"),
                    (&l6, n6, &mut v6, &mut g6, "ip6"),
                ] {
                    let Some(name) = name else { continue };
                    if list.len() == 1 {
                        let _ = writeln!(
                            table,
                            "    edit \"{name}\"\n        set comment \"portolan: {what}\"\n        set {key} {}\n    next",
                            mask(&list[0])
                        );
                    } else {
                        let mut members = Vec::new();
                        for (i, n) in list.iter().enumerate() {
                            let m = fit(&format!("{name}_{}", i + 1), NAME_MAX);
                            let _ = writeln!(
                                table,
                                "    edit \"{m}\"\n        set {key} {}\n    next",
                                mask(n)
                            );
                            members.push(format!("\"{m}\""));
                        }
                        let _ = writeln!(
                            group,
                            "    edit \"{name}\"\n        set comment \"portolan: {what}\"\n        set member {}\n    next",
                            members.join(" ")
                        );
                    }
                }
            }
            AddrKind::Fqdn(f) | AddrKind::WildcardFqdn(f) => {
                for (name, table) in [(n4, &mut v4), (n6, &mut v6)] {
                    if let Some(name) = name {
                        let _ = writeln!(
                            table,
                            "    edit \"{name}\"\n        set comment \"portolan: {what}\"\n        set type fqdn\n        set fqdn \"{f}\"\n    next"
                        );
                    }
                }
            }
        }
    }
    for (title, body) in [
        ("config firewall address", &v4),
        ("config firewall address6", &v6),
        ("config firewall addrgrp", &g4),
        ("config firewall addrgrp6", &g6),
    ] {
        if !body.is_empty() {
            let _ = write!(out, "\n{title}\n{body}end\n");
        }
    }
    // Services.
    out.push_str("\nconfig firewall service custom\n");
    for s in &o.services {
        let name = fit(&s.name, NAME_MAX - 2);
        match (s.protocol, s.ports, s.icmp) {
            (Protocol::Icmp, _, icmp) => {
                for (suffix, proto, code) in [
                    ("", "ICMP", icmp.map(|t| t.v4_code())),
                    ("_v6", "ICMP6", icmp.map(|t| t.v6_code())),
                ] {
                    let _ = write!(
                        out,
                        "    edit \"{name}{suffix}\"\n        set protocol {proto}\n"
                    );
                    if let Some(c) = code {
                        let _ = writeln!(out, "        set icmptype {c}");
                    }
                    out.push_str("    next\n");
                }
            }
            (p, Some(r), _) => {
                let range = if r.low == r.high {
                    r.low.to_string()
                } else {
                    format!("{}-{}", r.low, r.high)
                };
                let _ = writeln!(
                    out,
                    "    edit \"{name}\"\n        set protocol TCP/UDP/SCTP\n        set {p}-portrange {range}\n    next"
                );
            }
            (_, None, _) => {}
        }
    }
    out.push_str("end\n");
    // Policies.
    out.push_str("\nconfig firewall policy\n");
    let mut count = 0;
    for p in &o.policies {
        let pick = |names: &[String]| -> (Vec<String>, Vec<String>) {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for n in names {
                if let Some(obj) = o.address(n) {
                    let (x, y) = parts(obj);
                    a.extend(x.map(|x| format!("\"{x}\"")));
                    b.extend(y.map(|y| format!("\"{y}\"")));
                }
            }
            (a, b)
        };
        let (s4, s6) = pick(&p.sources);
        let (d4, d6) = pick(&p.destinations);
        let (v4ok, v6ok) = (
            !s4.is_empty() && !d4.is_empty(),
            !s6.is_empty() && !d6.is_empty(),
        );
        if !v4ok && !v6ok {
            warnings.push(crate::diag::Diagnostic::warning(format!(
                "target fortigate: policy {} (flows {}) has no address family its source and destination share; left out",
                p.name,
                p.flows.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
            continue;
        }
        let services: Vec<String> = p
            .services
            .iter()
            .filter_map(|n| o.service(n))
            .flat_map(|s| {
                let n = fit(&s.name, NAME_MAX - 2);
                if s.protocol == Protocol::Icmp {
                    let mut v = Vec::new();
                    if v4ok {
                        v.push(format!("\"{n}\""));
                    }
                    if v6ok {
                        v.push(format!("\"{n}_v6\""));
                    }
                    v
                } else {
                    vec![format!("\"{n}\"")]
                }
            })
            .collect();
        count += 1;
        out.push_str(&index.lines_for(&p.flows, "    #"));
        let intf = |z: &Option<String>| z.clone().unwrap_or_else(|| "any".to_string());
        let _ = writeln!(
            out,
            "    edit 0\n        set name \"{}\"\n        set srcintf \"{}\"\n        set dstintf \"{}\"",
            fit(&p.name, POLICY_NAME_MAX),
            intf(&p.from_zone),
            intf(&p.to_zone)
        );
        if v4ok {
            let _ = writeln!(
                out,
                "        set srcaddr {}\n        set dstaddr {}",
                s4.join(" "),
                d4.join(" ")
            );
        }
        if v6ok {
            let _ = writeln!(
                out,
                "        set srcaddr6 {}\n        set dstaddr6 {}",
                s6.join(" "),
                d6.join(" ")
            );
        }
        let _ = writeln!(
            out,
            "        set action accept\n        set schedule \"always\"\n        set service {}\n        set comments \"portolan {}\"\n    next",
            services.join(" "),
            flow_comment(&p.flows, COMMENT_MAX - 9)
        );
    }
    out.push_str("end\n");
    Rendered {
        text: out.clone(),
        parts: vec![("fortigate".into(), out)],
        rule_count: count,
        warnings,
    }
}
