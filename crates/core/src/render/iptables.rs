//! iptables target: `iptables-restore` / `ip6tables-restore` input plus `ipset restore` input,
//! bundled as a POSIX shell script that applies the three in order.
//!
//! Same semantics as the nftables target. Differences that bite:
//! - iptables has no table of its own for portolan. In host mode the restore files replace
//!   the appliance's whole `filter` table (default drop in and out). In gateway mode they are
//!   loaded with `--noflush` and hold only the chain PORTOLAN-FORWARD, which FORWARD jumps to
//!   first; the firewall's own INPUT/OUTPUT rules are never touched.
//! - Sets are ipsets (`hash:net` for static sets, `hash:ip ... timeout 0` for DNS-filled ones
//!   so `sync` can add elements that expire). ipset names are at most 31 bytes; longer names
//!   are shortened with a stable hash. `hash:net` cannot hold a /0, so /0 becomes two /1.
//! - `-m multiport` takes at most 15 ports, a range counting two; longer lists are split.
//! - The script uses quoted here-documents (`<<'END'`), so nothing in it is expanded by the
//!   shell, and every line inside is generated with a fixed prefix, so no line can equal the
//!   terminator.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    appliance_refs, comment_text, flow_comment, header, others_accepted, set_name, Capabilities,
    Chain, Family, FlowIndex, NameStyle, Rendered, Rule, SetRef, Target,
};
use crate::model::{PortRange, Protocol};
use crate::plan::{AddressSet, Plan, SetKind};
use crate::site::Placement;

/// ipset names are at most IPSET_MAXNAMELEN - 1 = 31 bytes.
pub const IPSET_NAME_MAX: usize = 31;
/// The comment match keeps at most 256 bytes.
pub const IPT_COMMENT_MAX: usize = 256;
/// `-m multiport` takes up to 15 ports; a range counts as two.
pub const MULTIPORT_MAX: usize = 15;

pub struct Iptables;

impl Target for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }
    fn description(&self) -> &'static str {
        "shell script applying ipset restore, iptables-restore and ip6tables-restore"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dynamic_sets: true,
            interface_match: true,
            ipv6: true,
            max_comment_len: IPT_COMMENT_MAX,
            max_set_name_len: IPSET_NAME_MAX,
        }
    }

    fn render(&self, plan: &Plan, rules: &[Rule]) -> Rendered {
        let closing = if others_accepted(plan) {
            appliance_refs(plan)
        } else {
            vec![]
        };
        let used: BTreeSet<&SetRef> = rules
            .iter()
            .flat_map(|r| [&r.saddr, &r.daddr])
            .flatten()
            .chain(closing.iter())
            .collect();
        let mut ipset = String::new();
        for sref in &used {
            if let Some(set) = plan.set(&sref.set) {
                write_ipset(&mut ipset, set, sref.family);
            }
        }
        let v4 = restore_file(plan, rules, Family::V4);
        let v6 = restore_file(plan, rules, Family::V6);
        let gateway = matches!(plan.placement, Placement::Gateway { .. });
        let (restore_flags, load) = if gateway {
            (
                " --noflush",
                "sh FILE (as root; replaces only the chain PORTOLAN-FORWARD and jumps to it from FORWARD)",
            )
        } else {
            (
                "",
                "sh FILE (as root; replaces the filter tables of iptables and ip6tables)",
            )
        };

        let mut script = String::from("#!/bin/sh\n");
        script.push_str(&header(plan, "iptables", load));
        script.push_str(
            "set -eu\n\n# 1. address sets\nipset -exist restore <<'PORTOLAN_IPSET_END'\n",
        );
        script.push_str(&ipset);
        script.push_str(&format!(
            "PORTOLAN_IPSET_END\n\n# 2. IPv4 rules (atomic)\niptables-restore{restore_flags} <<'PORTOLAN_IPV4_END'\n"
        ));
        script.push_str(&v4);
        script.push_str(&format!(
            "PORTOLAN_IPV4_END\n\n# 3. IPv6 rules (atomic)\nip6tables-restore{restore_flags} <<'PORTOLAN_IPV6_END'\n"
        ));
        script.push_str(&v6);
        script.push_str("PORTOLAN_IPV6_END\n");
        if gateway {
            let _ = write!(
                script,
                "\n# 4. Send forwarded traffic through portolan's chain first (once).\n\
                 for t in iptables ip6tables; do\n\
                 \t$t -C FORWARD -j {GATEWAY_CHAIN} 2>/dev/null || $t -I FORWARD 1 -j {GATEWAY_CHAIN}\n\
                 done\n"
            );
        }

        Rendered {
            text: script,
            parts: vec![
                ("ipset".into(), ipset),
                ("v4".into(), v4),
                ("v6".into(), v6),
            ],
            rule_count: rules.len(),
            warnings: vec![],
        }
    }
}

/// The ipset name of a plan set in a family.
pub fn ipset_name(set: &AddressSet, family: Family) -> String {
    set_name(set, family, IPSET_NAME_MAX, NameStyle::Ipset)
}

fn write_ipset(out: &mut String, set: &AddressSet, family: Family) {
    let name = ipset_name(set, family);
    let fam = match family {
        Family::V4 => "inet",
        Family::V6 => "inet6",
    };
    let what = match set.kind {
        SetKind::Appliance => "the appliance".to_string(),
        _ => format!("{:?} {}", set.kind, set.name).to_lowercase(),
    };
    let _ = writeln!(out, "# {} ({})", comment_text(&what), family.label());
    if set.dynamic {
        let _ = writeln!(out, "create {name} hash:ip family {fam} timeout 0");
    } else {
        let _ = writeln!(out, "create {name} hash:net family {fam}");
    }
    let _ = writeln!(out, "flush {name}");
    let nets: Vec<IpNet> = match family {
        Family::V4 => set.v4.iter().flat_map(|n| split_zero_v4(*n)).collect(),
        Family::V6 => set.v6.iter().flat_map(|n| split_zero_v6(*n)).collect(),
    };
    for n in nets {
        let text = match n {
            IpNet::V4(v) if v.prefix_len() == 32 => v.addr().to_string(),
            IpNet::V6(v) if v.prefix_len() == 128 => v.addr().to_string(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "add {name} {text}");
    }
}

fn split_zero_v4(n: Ipv4Net) -> Vec<IpNet> {
    if n.prefix_len() == 0 {
        n.subnets(1)
            .map(|s| s.map(IpNet::V4).collect())
            .unwrap_or_default()
    } else {
        vec![IpNet::V4(n)]
    }
}

fn split_zero_v6(n: Ipv6Net) -> Vec<IpNet> {
    if n.prefix_len() == 0 {
        n.subnets(1)
            .map(|s| s.map(IpNet::V6).collect())
            .unwrap_or_default()
    } else {
        vec![IpNet::V6(n)]
    }
}

/// The chain that holds portolan's forward rules in gateway mode.
pub const GATEWAY_CHAIN: &str = "PORTOLAN-FORWARD";

fn restore_file(plan: &Plan, rules: &[Rule], family: Family) -> String {
    let gateway = matches!(plan.placement, Placement::Gateway { .. });
    let closing: Vec<SetRef> = if others_accepted(plan) {
        appliance_refs(plan)
            .into_iter()
            .filter(|r| r.family == family)
            .collect()
    } else {
        vec![]
    };
    let mut out = String::from("*filter\n");
    if gateway {
        // Loaded with --noflush: only portolan's own chain is (re)declared and so flushed;
        // the firewall's INPUT, OUTPUT and other chains stay as they are. The script adds
        // the jump from FORWARD once.
        let _ = writeln!(out, ":{GATEWAY_CHAIN} - [0:0]");
    } else {
        // Host mode owns the appliance's filter table: default drop in and out.
        let _ = writeln!(
            out,
            ":INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]"
        );
    }
    let chains: &[(Chain, &str)] = if gateway {
        &[(Chain::Forward, GATEWAY_CHAIN)]
    } else {
        &[(Chain::Input, "INPUT"), (Chain::Output, "OUTPUT")]
    };
    let icmp6 = family == Family::V6;
    let index = FlowIndex::new(plan);
    for (chain, name) in chains {
        let _ = writeln!(
            out,
            "-A {name} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"portolan: replies and related ICMP errors\" -j ACCEPT"
        );
        let _ = writeln!(out, "-A {name} -m conntrack --ctstate INVALID -j DROP");
        if !gateway {
            let lo = if *chain == Chain::Input { "-i" } else { "-o" };
            let _ = writeln!(out, "-A {name} {lo} lo -j ACCEPT");
            if icmp6 && !plan.appliance().v6.is_empty() {
                for t in [
                    "neighbour-solicitation",
                    "neighbour-advertisement",
                    "router-solicitation",
                    "router-advertisement",
                ] {
                    let _ = writeln!(
                        out,
                        "-A {name} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m comment --comment \"portolan: IPv6 neighbour discovery\" -j ACCEPT"
                    );
                }
            }
        }
        for r in rules
            .iter()
            .filter(|r| r.chain == *chain && r.family == family)
        {
            out.push_str(&index.lines(r, ""));
            for line in rule_lines(plan, r, name) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        // Shared gateway: other hosts' traffic returns to FORWARD, the appliance's is closed
        // here. Dedicated gateway: everything else is dropped, as with the nftables policy.
        for r in &closing {
            if let Some(set) = plan.set(&r.set) {
                for dir in ["src", "dst"] {
                    let _ = writeln!(
                        out,
                        "-A {name} -m set --match-set {} {dir} -m comment --comment \"portolan: appliance traffic no flow allows\" -j DROP",
                        ipset_name(set, r.family)
                    );
                }
            }
        }
        if gateway && !others_accepted(plan) {
            let _ = writeln!(
                out,
                "-A {name} -m comment --comment \"portolan: forwarded traffic no flow allows\" -j DROP"
            );
        }
    }
    out.push_str("COMMIT\n");
    out
}

/// Split ports into multiport-sized chunks (a range counts two).
fn port_chunks(ports: &[PortRange]) -> Vec<Vec<PortRange>> {
    let mut chunks: Vec<Vec<PortRange>> = Vec::new();
    let mut weight = 0;
    for p in ports {
        let w = if p.low == p.high { 1 } else { 2 };
        if chunks.is_empty() || weight + w > MULTIPORT_MAX {
            chunks.push(Vec::new());
            weight = 0;
        }
        if let Some(c) = chunks.last_mut() {
            c.push(*p);
        }
        weight += w;
    }
    chunks
}

fn port_text(p: &PortRange) -> String {
    if p.low == p.high {
        p.low.to_string()
    } else {
        format!("{}:{}", p.low, p.high)
    }
}

fn rule_lines(plan: &Plan, r: &Rule, chain: &str) -> Vec<String> {
    let mut base = format!("-A {chain}");
    if let Some(i) = &r.iif {
        let _ = write!(base, " -i {i}");
    }
    if let Some(o) = &r.oif {
        let _ = write!(base, " -o {o}");
    }
    for (dir, s) in [("src", &r.saddr), ("dst", &r.daddr)] {
        if let Some(sref) = s {
            if let Some(set) = plan.set(&sref.set) {
                let _ = write!(
                    base,
                    " -m set --match-set {} {dir}",
                    ipset_name(set, sref.family)
                );
            }
        }
    }
    let comment = format!(
        " -m comment --comment \"{}\" -j ACCEPT",
        flow_comment(&r.flows, IPT_COMMENT_MAX)
    );
    match r.protocol {
        Protocol::Tcp | Protocol::Udp => port_chunks(&r.ports)
            .into_iter()
            .map(|chunk| {
                let ports = if chunk.len() == 1 {
                    format!(" -m {} --dport {}", r.protocol, port_text(&chunk[0]))
                } else {
                    format!(
                        " -m multiport --dports {}",
                        chunk.iter().map(port_text).collect::<Vec<_>>().join(",")
                    )
                };
                format!("{base} -p {}{ports}{comment}", r.protocol)
            })
            .collect(),
        Protocol::Icmp => r
            .icmp_types
            .iter()
            .map(|t| match r.family {
                Family::V4 => format!("{base} -p icmp -m icmp --icmp-type {}{comment}", t.name()),
                Family::V6 => format!(
                    "{base} -p ipv6-icmp -m icmp6 --icmpv6-type {}{comment}",
                    t.name()
                ),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiport_chunks_respect_the_limit() {
        let ports: Vec<PortRange> = (1..=20).map(PortRange::single).collect();
        let c = port_chunks(&ports);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].len(), 15);
        let ranges: Vec<PortRange> = (0..10)
            .map(|i| PortRange {
                low: i * 10 + 1,
                high: i * 10 + 5,
            })
            .collect();
        let c = port_chunks(&ranges);
        assert!(c.iter().all(|c| c.len() * 2 <= MULTIPORT_MAX));
    }
}
