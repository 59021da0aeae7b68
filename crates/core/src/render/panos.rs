//! Palo Alto PAN-OS (set commands for the CLI's configure mode): `set address` (ip-netmask,
//! fqdn), `set address-group ... static`, `set service ... protocol tcp|udp port`, and one
//! `set rulebase security rules` entry per policy with `application any` (ping for ICMP echo
//! requests, which PAN-OS matches by App-ID, not by service). PAN-OS has no wildcard FQDN
//! objects: wildcard peers need pinned addresses, or their flows are left out.
//!
//! Reference: PAN-OS 11.1 CLI Quick Start and Administrator's Guide ("Objects > Addresses",
//! "Objects > Services", "Policies > Security"). Names: at most 63 characters of letters,
//! digits, `_`, `-`, `.` and space.

use std::fmt::Write as _;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{flow_comment, header, Capabilities, Lowered, Rendered, Target};
use crate::diag::Diagnostic;
use crate::model::{IcmpType, Protocol};
use crate::plan::Plan;

pub struct Panos;

const NAME_MAX: usize = 63;
const DESCRIPTION_MAX: usize = 1023;

impl Target for Panos {
    fn name(&self) -> &'static str {
        "panos"
    }
    fn description(&self) -> &'static str {
        "PAN-OS set commands: addresses (FQDN), services, security rules per zone pair"
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

fn list(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("[ {} ]", items.join(" "))
    }
}

fn render(plan: &Plan, o: &Objects) -> Rendered {
    let index = super::FlowIndex::new(plan);
    let mut out = format!(
        "{}# reference: PAN-OS 11.1 CLI and Administrator's Guide: Objects > Addresses, Objects > Services, Policies > Security\n",
        header(
        plan,
        "panos",
        "paste into the PAN-OS CLI in configure mode (or load set commands), then commit; these rules only allow, and traffic inside one zone passes the default intrazone rule: give the appliance a zone of its own",
    )
    );
    let mut warnings = Vec::new();
    out.push_str("\n# Addresses\n");
    for a in &o.addresses {
        let name = fit(&a.name, NAME_MAX - 4);
        match &a.kind {
            AddrKind::Nets(nets) => {
                let (v4, v6) = by_family(nets);
                let all: Vec<_> = v4.iter().chain(&v6).collect();
                if all.len() == 1 {
                    let _ = writeln!(out, "set address {name} ip-netmask {}", all[0]);
                } else {
                    let mut members = Vec::new();
                    for (i, n) in all.iter().enumerate() {
                        let m = format!("{name}_{}", i + 1);
                        let _ = writeln!(out, "set address {m} ip-netmask {n}");
                        members.push(m);
                    }
                    let _ = writeln!(out, "set address-group {name} static {}", list(&members));
                }
            }
            AddrKind::Fqdn(f) => {
                let _ = writeln!(out, "set address {name} fqdn {f}");
            }
            // The base never hands a wildcard to a target without wildcard objects.
            AddrKind::WildcardFqdn(_) => {}
        }
    }
    out.push_str("\n# Services\n");
    for s in o.services.iter().filter(|s| s.protocol != Protocol::Icmp) {
        if let Some(r) = s.ports {
            let port = if r.low == r.high {
                r.low.to_string()
            } else {
                format!("{}-{}", r.low, r.high)
            };
            let _ = writeln!(
                out,
                "set service {} protocol {} port {port}",
                fit(&s.name, NAME_MAX),
                s.protocol
            );
        }
    }
    out.push_str("\n# Security rules\n");
    let mut count = 0;
    for p in &o.policies {
        let zone = |z: &Option<String>| z.clone().unwrap_or_else(|| "any".to_string());
        let names = |v: &[String]| -> Vec<String> {
            v.iter()
                .filter_map(|n| o.address(n))
                .map(|a| fit(&a.name, NAME_MAX - 4))
                .collect()
        };
        let (src, dst) = (names(&p.sources), names(&p.destinations));
        let mut tcpudp = Vec::new();
        let mut ping = false;
        for s in p.services.iter().filter_map(|n| o.service(n)) {
            match (s.protocol, s.icmp) {
                (Protocol::Icmp, Some(IcmpType::EchoRequest)) => ping = true,
                (Protocol::Icmp, _) => warnings.push(Diagnostic::warning(format!(
                    "target panos: flow(s) {}: ICMP other than echo requests has no App-ID that matches only it; left out (never widened)",
                    p.flows.iter().cloned().collect::<Vec<_>>().join(", ")
                ))),
                _ => tcpudp.push(fit(&s.name, NAME_MAX)),
            }
        }
        let base = fit(&p.name, NAME_MAX - 5);
        for (rule, app, service) in [
            (base.clone(), "any".to_string(), tcpudp),
            (
                format!("{base}-ping"),
                "ping".to_string(),
                if ping {
                    vec!["application-default".to_string()]
                } else {
                    vec![]
                },
            ),
        ] {
            if service.is_empty() {
                continue;
            }
            count += 1;
            out.push_str(&index.lines_for(&p.flows, "#"));
            let r = format!("set rulebase security rules {rule}");
            let _ = writeln!(
                out,
                "{r} from {}\n{r} to {}\n{r} source {}\n{r} destination {}\n{r} service {}\n{r} application {app}\n{r} action allow\n{r} description \"portolan {}\"",
                zone(&p.from_zone),
                zone(&p.to_zone),
                list(&src),
                list(&dst),
                list(&service),
                flow_comment(&p.flows, DESCRIPTION_MAX - 9)
            );
        }
    }
    Rendered {
        text: out.clone(),
        parts: vec![("panos".into(), out)],
        rule_count: count,
        warnings,
    }
}
