//! pf (OpenBSD, FreeBSD): a `pf.conf` fragment of tables and `pass` rules for a pf host in
//! front of the appliance. Tables hold networks, or DNS names that pfctl resolves when the
//! rules are loaded (refresh with `pfctl -t NAME -T replace NAME...` or by reloading); pf
//! has no wildcard names: wildcard peers need pinned addresses, or their flows are left out.
//! Each policy passes `in` on the interface toward the source and `out` on the interface
//! toward the destination (`keep state`), labelled with its name.
//!
//! Reference: OpenBSD pf.conf(5) ("TABLES", "PACKET FILTERING", `label`), pfctl(8).
//! Table names: at most 31 characters; labels 63.

use std::fmt::Write as _;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{header, Capabilities, DnsModel, Lowered, Rendered, Target};
use crate::model::Protocol;
use crate::plan::Plan;

pub struct Pf;

const TABLE_MAX: usize = 31;
const LABEL_MAX: usize = 63;

impl Target for Pf {
    fn name(&self) -> &'static str {
        "pf"
    }
    fn description(&self) -> &'static str {
        "pf.conf fragment: tables (names resolved by pfctl at load), pass rules with labels"
    }
    fn extension(&self) -> &'static str {
        "conf"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dns: DnsModel::ResolvedAtLoad,
            max_comment_len: LABEL_MAX,
            max_set_name_len: TABLE_MAX,
            ..Capabilities::GATEWAY_OBJECTS
        }
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &super::Options) -> Rendered {
        lowered.objects_with(|o| render(plan, o))
    }
}

/// pf table names: the object name (`[a-z0-9.-]`, a word to pf.conf), at most 31 characters.
fn table(name: &str) -> String {
    fit(name, TABLE_MAX)
}

fn render(plan: &Plan, o: &Objects) -> Rendered {
    let index = super::FlowIndex::new(plan);
    let mut out = format!(
        "{}# reference: OpenBSD pf.conf(5) (TABLES, PACKET FILTERING, label) and pfctl(8)\n",
        header(
        plan,
        "pf",
        "include from pf.conf (anchor or include), check with pfctl -nf FILE, load with pfctl -f; these rules only pass: the ruleset must block by default (block all before them)",
    )
    );
    out.push_str("\n# Tables\n");
    for a in &o.addresses {
        let items: Vec<String> = match &a.kind {
            AddrKind::Nets(nets) => {
                let (v4, v6) = by_family(nets);
                v4.iter().chain(&v6).map(ToString::to_string).collect()
            }
            AddrKind::Fqdn(f) => vec![f.clone()],
            AddrKind::WildcardFqdn(_) => continue,
        };
        let _ = writeln!(
            out,
            "table <{}> persist {{ {} }}",
            table(&a.name),
            items.join(", ")
        );
    }
    out.push_str("\n# Rules\n");
    let mut count = 0;
    for p in &o.policies {
        let tabs = |v: &[String]| -> String {
            let t: Vec<String> = v
                .iter()
                .filter_map(|n| o.address(n))
                .map(|a| format!("<{}>", table(&a.name)))
                .collect();
            if t.len() == 1 {
                t[0].clone()
            } else {
                format!("{{ {} }}", t.join(", "))
            }
        };
        let (src, dst) = (tabs(&p.sources), tabs(&p.destinations));
        let label = fit(&p.name, LABEL_MAX);
        out.push_str(&index.lines_for(&p.flows, "#"));
        let mut by_proto: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for s in p.services.iter().filter_map(|n| o.service(n)) {
            match (s.protocol, s.ports, s.icmp) {
                (Protocol::Icmp, _, icmp) => {
                    for (fam, proto, kw, name) in [
                        ("inet", "icmp", "icmp-type", icmp.map(|t| t.v4_code())),
                        ("inet6", "icmp6", "icmp6-type", icmp.map(|t| t.v6_code())),
                    ] {
                        let t = name.map(|c| format!(" {kw} {c}")).unwrap_or_default();
                        by_proto
                            .entry(format!("{fam} proto {proto}"))
                            .or_default()
                            .push(t);
                    }
                }
                (proto, Some(r), _) => {
                    let port = if r.low == r.high {
                        r.low.to_string()
                    } else {
                        format!("{}:{}", r.low, r.high)
                    };
                    by_proto
                        .entry(format!("proto {proto}"))
                        .or_default()
                        .push(port);
                }
                (_, None, _) => {}
            }
        }
        for (proto, items) in by_proto {
            let (port, icmp) = if proto.contains("icmp") {
                (String::new(), items)
            } else {
                let p = if items.len() == 1 {
                    format!(" port {}", items[0])
                } else {
                    format!(" port {{ {} }}", items.join(", "))
                };
                (p, vec![String::new()])
            };
            for t in icmp {
                for (dir, zone) in [("in", &p.from_zone), ("out", &p.to_zone)] {
                    let on = zone
                        .as_ref()
                        .map(|z| format!(" on {z}"))
                        .unwrap_or_default();
                    count += 1;
                    let _ = writeln!(
                        out,
                        "pass {dir} quick{on} {proto} from {src} to {dst}{port}{t} keep state label \"{label}\""
                    );
                }
            }
        }
    }
    Rendered {
        text: out.clone(),
        parts: vec![("pf".into(), out)],
        rule_count: count,
        warnings: Vec::new(),
    }
}
