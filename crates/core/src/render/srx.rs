//! Juniper SRX (Junos set commands): the global address book (`address ... PREFIX`,
//! `dns-name`, `address-set`), `applications application` (one protocol and port range, or
//! one ICMP type, each), and `security policies from-zone .. to-zone .. policy` (a global
//! policy when a zone is not known). Junos has no wildcard DNS address: wildcard peers need
//! pinned addresses, or their flows are left out.
//!
//! Reference: Junos OS Security Policies User Guide for Security Devices ("Address Books and
//! Address Sets", "Security Policy Applications"), and the CLI reference for `address-book`,
//! `applications`, `security policies`. Names: at most 63 characters.

use std::fmt::Write as _;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{flow_comment, header, Capabilities, Lowered, Rendered, Target};
use crate::model::Protocol;
use crate::plan::Plan;

pub struct Srx;

const NAME_MAX: usize = 63;
const DESCRIPTION_MAX: usize = 900;

impl Target for Srx {
    fn name(&self) -> &'static str {
        "srx"
    }
    fn description(&self) -> &'static str {
        "Junos set commands: address book (dns-name), applications, policies per zone pair"
    }
    fn extension(&self) -> &'static str {
        "set"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_comment_len: DESCRIPTION_MAX,
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
        "{}# reference: Junos OS Security Policies User Guide: address books, applications, security policies (set commands)\n",
        header(
        plan,
        "srx",
        "load set terminal (or load set FILE) in configuration mode, then commit check and commit; these policies only permit: the default policy (deny-all) closes the rest",
    )
    );
    let ab = "set security address-book global";
    out.push_str("\n# Address book\n");
    for a in &o.addresses {
        let name = fit(&a.name, NAME_MAX - 4);
        match &a.kind {
            AddrKind::Nets(nets) => {
                let (v4, v6) = by_family(nets);
                let all: Vec<_> = v4.iter().chain(&v6).collect();
                if all.len() == 1 {
                    let _ = writeln!(out, "{ab} address {name} {}", all[0]);
                } else {
                    for (i, n) in all.iter().enumerate() {
                        let m = format!("{name}_{}", i + 1);
                        let _ = writeln!(out, "{ab} address {m} {n}");
                        let _ = writeln!(out, "{ab} address-set {name} address {m}");
                    }
                }
            }
            AddrKind::Fqdn(f) => {
                let _ = writeln!(out, "{ab} address {name} dns-name {f}");
            }
            AddrKind::WildcardFqdn(_) => {}
        }
    }
    out.push_str("\n# Applications\n");
    for s in &o.services {
        let name = fit(&s.name, NAME_MAX - 3);
        let app = format!("set applications application {name}");
        match (s.protocol, s.ports, s.icmp) {
            (Protocol::Icmp, _, icmp) => {
                let _ = writeln!(out, "{app} protocol icmp");
                if let Some(t) = icmp {
                    let _ = writeln!(out, "{app} icmp-type {}", t.v4_code());
                }
                let _ = writeln!(out, "set applications application {name}_v6 protocol icmp6");
                if let Some(t) = icmp {
                    let _ = writeln!(
                        out,
                        "set applications application {name}_v6 icmp6-type {}",
                        t.v6_code()
                    );
                }
            }
            (p, Some(r), _) => {
                let port = if r.low == r.high {
                    r.low.to_string()
                } else {
                    format!("{}-{}", r.low, r.high)
                };
                let _ = writeln!(out, "{app} protocol {p} destination-port {port}");
            }
            (_, None, _) => {}
        }
    }
    out.push_str("\n# Policies\n");
    for p in &o.policies {
        let name = fit(&p.name, NAME_MAX);
        let at = match (&p.from_zone, &p.to_zone) {
            (Some(f), Some(t)) => {
                format!("set security policies from-zone {f} to-zone {t} policy {name}")
            }
            _ => format!("set security policies global policy {name}"),
        };
        out.push_str(&index.lines_for(&p.flows, "#"));
        for s in &p.sources {
            if let Some(a) = o.address(s) {
                let _ = writeln!(
                    out,
                    "{at} match source-address {}",
                    fit(&a.name, NAME_MAX - 4)
                );
            }
        }
        for d in &p.destinations {
            if let Some(a) = o.address(d) {
                let _ = writeln!(
                    out,
                    "{at} match destination-address {}",
                    fit(&a.name, NAME_MAX - 4)
                );
            }
        }
        for s in p.services.iter().filter_map(|n| o.service(n)) {
            let n = fit(&s.name, NAME_MAX - 3);
            let _ = writeln!(out, "{at} match application {n}");
            if s.protocol == Protocol::Icmp {
                let _ = writeln!(out, "{at} match application {n}_v6");
            }
        }
        let _ = writeln!(
            out,
            "{at} then permit\n{at} description \"portolan {}\"",
            flow_comment(&p.flows, DESCRIPTION_MAX - 9)
        );
    }
    Rendered {
        text: out.clone(),
        parts: vec![("srx".into(), out)],
        rule_count: o.policies.len(),
        warnings: Vec::new(),
    }
}
