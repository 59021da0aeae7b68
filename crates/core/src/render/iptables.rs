//! iptables target: `iptables-restore` / `ip6tables-restore` input plus `ipset restore` input,
//! bundled as a POSIX shell script that applies the three in order.
//!
//! Same semantics as the nftables target. Differences that bite:
//! - iptables has no table of its own for portolan, so portolan owns chains, never a table:
//!   the restore files are loaded with `--noflush` and declare only portolan's chains
//!   (declaring a chain flushes it, atomically with the new rules). Every other chain, its
//!   rules and the policies of INPUT, FORWARD and OUTPUT stay exactly as they were.
//!   - Host mode: PORTOLAN-INPUT and PORTOLAN-OUTPUT, jumped to once, first, from INPUT and
//!     OUTPUT. A planned flow RETURNs to the rest of INPUT/OUTPUT, everything else is
//!     dropped: the same "portolan AND the host's own rules" as the nftables table, whose
//!     drop policy no other table can overrule. So portolan only ever closes.
//!   - Gateway mode: PORTOLAN-FORWARD, jumped to first from FORWARD; planned flows are
//!     accepted there, other forwarded traffic (or only the appliance's, on a shared
//!     gateway) is dropped.
//! - Sets are ipsets (`hash:net` for static sets, `hash:ip ... timeout 0` for DNS-filled ones
//!   so `sync` can add elements that expire). ipset names are at most 31 bytes; longer names
//!   are shortened with a stable hash. `hash:net` cannot hold a /0, so /0 becomes two /1.
//! - A static ipset is replaced atomically: filled under a temporary name, then `swap`ped
//!   with the live one and the old content destroyed; a rule matching it never sees it empty
//!   or half filled. The ipset of an unpinned DNS name is created if missing and otherwise
//!   left alone, so a reload never loses what was added to it (today nothing fills it: sync
//!   and dns-proxy write nft sets, and rendering warns about such names).
//! - `-m multiport` takes at most 15 ports, a range counting two; longer lists are split.
//! - The script uses quoted here-documents (`<<'END'`), so nothing in it is expanded by the
//!   shell, and every line inside is generated with a fixed prefix, so no line can equal the
//!   terminator.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    appliance_refs, comment_text, flow_comment, fnv32, header, others_accepted, set_name, set_of,
    Capabilities, Chain, ChainModel, DnsModel, Family, FlowIndex, Lowered, NameStyle, Rendered,
    Rule, SetRef, Target,
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
            model: ChainModel::Hooks,
            dns: DnsModel::FilledSets,
            interface_match: true,
            ipv6: true,
            icmp_types: true,
            host: true,
            gateway: true,
            comment: "#",
            max_comment_len: IPT_COMMENT_MAX,
            max_set_name_len: IPSET_NAME_MAX,
        }
    }

    fn extension(&self) -> &'static str {
        "sh"
    }

    fn set_name(&self, set: &AddressSet, family: Family) -> Option<String> {
        Some(ipset_name(set, family))
    }

    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &super::Options) -> Rendered {
        let rules = super::rules_of(lowered);
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
        let mut tmp_sets = Vec::new();
        for sref in &used {
            if let Some(set) = set_of(plan, sref) {
                if let Some(t) = write_ipset(&mut ipset, &set, sref.family) {
                    tmp_sets.push(t);
                }
            }
        }
        let v4 = restore_file(plan, rules, Family::V4);
        let v6 = restore_file(plan, rules, Family::V6);
        let gateway = matches!(plan.placement, Placement::Gateway { .. });
        let restore_flags = " --noflush";
        let load = if gateway {
            "sh FILE (as root; replaces only the chain PORTOLAN-FORWARD and jumps to it from FORWARD; other chains and policies are left alone)"
        } else {
            "sh FILE (as root; replaces only the chains PORTOLAN-INPUT and PORTOLAN-OUTPUT and jumps to them from INPUT and OUTPUT; other chains and policies are left alone)"
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
        let jumps: &[(&str, &str)] = if gateway {
            &[("FORWARD", GATEWAY_CHAIN)]
        } else {
            &[("INPUT", HOST_INPUT_CHAIN), ("OUTPUT", HOST_OUTPUT_CHAIN)]
        };
        script.push_str("\n# 4. Send traffic through portolan's chains first (once).\nfor t in iptables ip6tables; do\n");
        for (from, to) in jumps {
            let _ = writeln!(
                script,
                "\t$t -C {from} -j {to} 2>/dev/null || $t -I {from} 1 -j {to}"
            );
        }
        if rules.iter().any(|r| r.ftp_helper) {
            for hook in ["PREROUTING", "OUTPUT"] {
                let _ = writeln!(
                    script,
                    "\t$t -t raw -C {hook} -j {HELPER_CHAIN} 2>/dev/null || $t -t raw -I {hook} 1 -j {HELPER_CHAIN}"
                );
            }
        }
        script.push_str("done\n");
        if !tmp_sets.is_empty() {
            script.push_str("\n# 5. Drop the previous content of replaced address sets.\n");
            for t in &tmp_sets {
                let _ = writeln!(script, "ipset destroy {t} 2>/dev/null || true");
            }
        }

        // The DNS-filled ipsets are kept by `sync` and `dns-proxy` given `--target iptables`:
        // say so, naming them, so that nobody runs them for the nftables sets by mistake.
        let unfilled: BTreeSet<&str> = super::dynamic_feeds(plan, rules)
            .into_iter()
            .flat_map(|(_, fed)| fed)
            .map(|s| s.name.as_str())
            .collect();
        let mut warnings = Vec::new();
        if !unfilled.is_empty() {
            warnings.push(crate::diag::Diagnostic::note(format!(
                "iptables target: the ipsets of {} are filled by `portolan sync --target iptables` (DNS names) and `portolan dns-proxy --target iptables` (wildcards); until then their flows stay closed",
                unfilled.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }

        Rendered {
            text: script,
            parts: vec![
                ("ipset".into(), ipset),
                ("v4".into(), v4),
                ("v6".into(), v6),
            ],
            rule_count: rules.len(),
            warnings,
        }
    }
}

/// The ipset name of a plan set in a family.
pub fn ipset_name(set: &AddressSet, family: Family) -> String {
    set_name(set, family, IPSET_NAME_MAX, NameStyle::Ipset)
}

/// The temporary name a static ipset is filled under before the swap (at most 31 bytes).
pub fn ipset_tmp_name(live: &str) -> String {
    format!("portolan-tmp-{:08x}", fnv32(live))
}

/// Write the restore lines for one set. A static set is filled under a temporary name and
/// swapped in; its name is returned so the script can destroy the old content afterwards. The
/// set of an unpinned DNS name is only created if missing: its elements are not the
/// script's. Pinned names are static sets of the site's addresses.
fn write_ipset(out: &mut String, set: &AddressSet, family: Family) -> Option<String> {
    let name = ipset_name(set, family);
    let fam = match family {
        Family::V4 => "inet",
        Family::V6 => "inet6",
    };
    let what = match set.kind {
        SetKind::Appliance => "the appliance".to_string(),
        // ipset restore reads lines of limited length: name a few members only.
        _ if !set.members.is_empty() => {
            let shown = set.members.iter().take(3).cloned().collect::<Vec<_>>();
            let more = set.members.len() - shown.len();
            format!(
                "{:?} group of {}: {}{}",
                set.kind,
                set.members.len(),
                shown.join(" "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
            .to_lowercase()
        }
        _ => format!("{:?} {}", set.kind, set.name).to_lowercase(),
    };
    let _ = writeln!(out, "# {} ({})", comment_text(&what), family.label());
    let kind = if set.dynamic {
        "hash:ip family {fam} timeout 0"
    } else {
        "hash:net family {fam}"
    }
    .replace("{fam}", fam);
    let _ = writeln!(out, "create {name} {kind}");
    let nets: Vec<IpNet> = match family {
        Family::V4 => set.v4.iter().flat_map(|n| split_zero_v4(*n)).collect(),
        Family::V6 => set.v6.iter().flat_map(|n| split_zero_v6(*n)).collect(),
    };
    let text = |n: IpNet| match n {
        IpNet::V4(v) if v.prefix_len() == 32 => v.addr().to_string(),
        IpNet::V6(v) if v.prefix_len() == 128 => v.addr().to_string(),
        other => other.to_string(),
    };
    if set.dynamic && !set.pinned {
        // Filled by sync or the DNS proxy: created if missing, its elements left alone.
        return None;
    }
    let tmp = ipset_tmp_name(&name);
    let _ = writeln!(out, "create {tmp} {kind}");
    let _ = writeln!(out, "flush {tmp}");
    for n in nets {
        let _ = writeln!(out, "add {tmp} {}", text(n));
    }
    let _ = writeln!(out, "swap {tmp} {name}");
    Some(tmp)
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
/// Host mode: the chain INPUT jumps to first.
pub const HOST_INPUT_CHAIN: &str = "PORTOLAN-INPUT";
/// Host mode: the chain OUTPUT jumps to first.
pub const HOST_OUTPUT_CHAIN: &str = "PORTOLAN-OUTPUT";

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
    // Loaded with --noflush: only portolan's own chains are (re)declared and so flushed;
    // every other chain and every policy stays as it is. The script adds the jumps once.
    let mut out = String::from("*filter\n");
    let chains: &[(Chain, &str)] = if gateway {
        &[(Chain::Forward, GATEWAY_CHAIN)]
    } else {
        &[
            (Chain::Input, HOST_INPUT_CHAIN),
            (Chain::Output, HOST_OUTPUT_CHAIN),
        ]
    };
    for (_, name) in chains {
        let _ = writeln!(out, ":{name} - [0:0]");
    }
    // Host mode: a planned flow goes back to the host's own rules (RETURN), like a packet
    // the nftables table accepts still meets the host's other tables. Gateway mode accepts.
    let pass = if gateway { "ACCEPT" } else { "RETURN" };
    let icmp6 = family == Family::V6;
    let index = FlowIndex::new(plan);
    for (chain, name) in chains {
        let _ = writeln!(
            out,
            "-A {name} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"portolan: replies and related ICMP errors\" -j {pass}"
        );
        let _ = writeln!(out, "-A {name} -m conntrack --ctstate INVALID -j DROP");
        if !gateway {
            let lo = if *chain == Chain::Input { "-i" } else { "-o" };
            let _ = writeln!(out, "-A {name} {lo} lo -j {pass}");
            if icmp6 && !plan.appliance().v6.is_empty() {
                for t in [
                    "neighbour-solicitation",
                    "neighbour-advertisement",
                    "router-solicitation",
                    "router-advertisement",
                ] {
                    let _ = writeln!(
                        out,
                        "-A {name} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m comment --comment \"portolan: IPv6 neighbour discovery\" -j {pass}"
                    );
                }
            }
        }
        for r in rules
            .iter()
            .filter(|r| r.chain == *chain && r.family == family)
        {
            out.push_str(&index.lines(r, ""));
            for line in rule_lines(plan, r, name, pass) {
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
        if !gateway {
            let _ = writeln!(
                out,
                "-A {name} -m comment --comment \"portolan: traffic no flow allows\" -j DROP"
            );
        }
    }
    out.push_str("COMMIT\n");
    // Helpers live in the raw table: the FTP helper for flows that need it, matched by
    // protocol, port and addresses only (no interfaces there; the filter rules decide).
    // Only when some flow needs one: a ruleset without helpers leaves the raw table alone
    // (a chain left from an earlier load keeps attaching its helper until unloaded).
    if !rules.iter().any(|r| r.ftp_helper) {
        return out;
    }
    out.push_str(&format!("*raw\n:{HELPER_CHAIN} - [0:0]\n"));
    for r in rules.iter().filter(|r| r.ftp_helper && r.family == family) {
        let mut h = r.clone();
        h.iif = None;
        h.oif = None;
        for line in rule_lines(plan, &h, HELPER_CHAIN, "CT --helper ftp") {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str("COMMIT\n");
    out
}

/// The raw-table chain that attaches conntrack helpers (FTP).
pub const HELPER_CHAIN: &str = "PORTOLAN-HELPERS";

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

fn rule_lines(plan: &Plan, r: &Rule, chain: &str, pass: &str) -> Vec<String> {
    let mut base = format!("-A {chain}");
    if let Some(i) = &r.iif {
        let _ = write!(base, " -i {i}");
    }
    if let Some(o) = &r.oif {
        let _ = write!(base, " -o {o}");
    }
    for (dir, s) in [("src", &r.saddr), ("dst", &r.daddr)] {
        if let Some(sref) = s {
            if let Some(set) = set_of(plan, sref) {
                let _ = write!(
                    base,
                    " -m set --match-set {} {dir}",
                    ipset_name(&set, sref.family)
                );
            }
        }
    }
    let comment = format!(
        " -m comment --comment \"{}\" -j {pass}",
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

    /// The ipsets of unpinned names are named in a note with the commands that fill them
    /// (`--target iptables`); nftables (the default of sync) has no such note.
    #[test]
    fn unfilled_dns_ipsets_are_reported() {
        let Some(Ok(p)) = crate::catalog::load("intra2net") else {
            panic!("catalog intra2net");
        };
        let plan = crate::plan::build(&p, &crate::site::demo(&p), None).expect("plan");
        let ipt = super::super::render(&plan, &Iptables);
        assert!(
            ipt.warnings
                .iter()
                .any(|w| w.message.contains("update.intra2net.com")
                    && w.message.contains("sync --target iptables")),
            "{:?}",
            ipt.warnings
        );
        let nft = super::super::render(&plan, super::super::target("nftables").expect("nft"));
        assert!(!nft
            .warnings
            .iter()
            .any(|w| w.message.contains("sync --target iptables")));
    }

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
