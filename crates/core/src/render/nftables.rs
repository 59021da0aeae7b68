//! nftables target: one `inet` table owned by portolan, loaded atomically with `nft -f`.
//!
//! Why `inet`: one table holds the IPv4 and IPv6 rules, so each base chain exists once and its
//! policy applies to both families. The file starts with `table inet portolan` followed by
//! `delete table inet portolan`, which makes loading idempotent in one transaction: either the
//! whole new table is in place or the old one is untouched. Other tables are left alone; note
//! that a packet dropped by any base chain on a hook is dropped, whatever other tables say.
//!
//! Every role and DNS name gets a named set (`role_dns-server_v4`, `dns_update.intra2net.com_v4`),
//! so `sync` and the DNS forwarder can change addresses without touching rules. Static sets
//! are interval sets; DNS-filled sets carry `flags timeout` so that resolved addresses can age
//! out. Each accept rule names its flows in its comment and above it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    appliance_refs, comment_text, flow_comment, header, others_accepted, set_name, set_of,
    Capabilities, Chain, ChainModel, DnsModel, Family, FlowIndex, Lowered, NameStyle, Rendered,
    Rule, SetRef, Target,
};
use crate::model::{PortRange, Protocol};
use crate::plan::{AddressSet, Plan, SetKind};
use crate::site::Placement;

/// The table portolan owns.
pub const TABLE: &str = "portolan";
/// nft keeps at most 128 bytes of a rule comment (NFTNL_UDATA_COMMENT_MAXLEN).
pub const NFT_COMMENT_MAX: usize = 128;
/// nft set names are limited to NFT_NAME_MAXLEN - 1 bytes.
pub const NFT_SET_NAME_MAX: usize = 255;
/// Above this many elements a set is written one element per line.
const ELEMENTS_PER_LINE: usize = 4;

pub struct Nftables;

impl Target for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }
    fn description(&self) -> &'static str {
        "nft -f script: one inet table, named sets, default-drop base chains"
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
            max_comment_len: NFT_COMMENT_MAX,
            max_set_name_len: NFT_SET_NAME_MAX,
        }
    }

    fn extension(&self) -> &'static str {
        "nft"
    }

    fn set_name(&self, set: &AddressSet, family: Family) -> Option<String> {
        Some(nft_set_name(set, family))
    }

    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &super::Options) -> Rendered {
        let rules = super::rules_of(lowered);
        let mut out = String::from("#!/usr/sbin/nft -f\n");
        out.push_str(&header(
            plan,
            "nftables",
            "nft -f FILE (atomic; replaces only table inet portolan)",
        ));
        let _ = write!(
            out,
            "\n# Replace the table in one transaction: create it if missing, then delete and rebuild.\ntable inet {TABLE}\ndelete table inet {TABLE}\n\ntable inet {TABLE} {{\n"
        );

        // Sets, in a stable order, only those rules use.
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
        for sref in &used {
            if let Some(set) = set_of(plan, sref) {
                write_set(&mut out, &set, sref.family);
            }
        }

        if rules.iter().any(|r| r.ftp_helper) {
            out.push_str(
                "\t# The FTP conntrack helper: the data connections an FTP control connection\n\t# announces (active or passive) are RELATED to it, and pass as such.\n\tct helper ftp {\n\t\ttype \"ftp\" protocol tcp\n\t\tl3proto inet\n\t}\n\n",
            );
        }
        let app_v6 = !plan.appliance().v6.is_empty();
        let index = FlowIndex::new(plan);
        let chains: &[(Chain, &str, &str)] = match plan.placement {
            Placement::Host => &[
                (Chain::Input, "input", "iifname"),
                (Chain::Output, "output", "oifname"),
            ],
            Placement::Gateway { .. } => &[(Chain::Forward, "forward", "")],
        };
        for (chain, name, lo) in chains {
            let _ = writeln!(out, "\tchain {name} {{");
            let policy = if closing.is_empty() { "drop" } else { "accept" };
            let _ = writeln!(
                out,
                "\t\ttype filter hook {name} priority filter; policy {policy};"
            );
            // Replies first: the bulk of packets match here, and a reply needs no flow rule.
            let _ = writeln!(
                out,
                "\t\tct state established,related accept comment \"portolan: replies and related ICMP errors\""
            );
            let _ = writeln!(
                out,
                "\t\tct state invalid drop comment \"portolan: invalid state\""
            );
            if !lo.is_empty() {
                let _ = writeln!(out, "\t\t{lo} \"lo\" accept comment \"portolan: loopback\"");
                if app_v6 {
                    // Without neighbour discovery a host with a drop policy loses IPv6 entirely.
                    let _ = writeln!(
                        out,
                        "\t\ticmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }} accept comment \"portolan: IPv6 neighbour discovery\""
                    );
                }
            }
            for rule in rules.iter().filter(|r| r.chain == *chain) {
                out.push_str(&index.lines(rule, "\t\t"));
                let _ = writeln!(out, "\t\t{}", rule_text(plan, rule));
            }
            // Shared gateway: other hosts' traffic passes, the appliance's is closed here.
            for r in &closing {
                if let Some(set) = plan.set(&r.set) {
                    let (ip, name) = (
                        if r.family == Family::V4 { "ip" } else { "ip6" },
                        nft_set_name(set, r.family),
                    );
                    for dir in ["saddr", "daddr"] {
                        let _ = writeln!(
                            out,
                            "\t\t{ip} {dir} @{name} counter drop comment \"portolan: appliance traffic no flow allows\""
                        );
                    }
                }
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        Rendered {
            text: out.clone(),
            parts: vec![("nft".into(), out)],
            rule_count: rules.len(),
            warnings: vec![],
        }
    }
}

/// The nft name of a plan set in a family.
pub fn nft_set_name(set: &AddressSet, family: Family) -> String {
    set_name(set, family, NFT_SET_NAME_MAX, NameStyle::Nft)
}

/// Members of a group set listed per comment line.
const MEMBERS_PER_LINE: usize = 4;

fn write_set(out: &mut String, set: &AddressSet, family: Family) {
    let name = nft_set_name(set, family);
    let ty = match family {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    };
    let what = match set.kind {
        SetKind::Appliance => "the appliance".to_string(),
        SetKind::Role => format!("role {}", set.name),
        SetKind::Dns if !set.members.is_empty() => format!("{} DNS names", set.members.len()),
        SetKind::Wildcard if !set.members.is_empty() => {
            format!("{} wildcards", set.members.len())
        }
        SetKind::Dns => format!("DNS name {}", set.name),
        SetKind::Wildcard => format!("wildcard {}", set.name),
        SetKind::Network => format!("network {}", set.name),
    };
    let elements: Vec<String> = match family {
        Family::V4 => set.v4.iter().map(|n| fmt_net(IpNet::V4(*n))).collect(),
        Family::V6 => set.v6.iter().map(|n| fmt_net(IpNet::V6(*n))).collect(),
    };
    let filled_by = match set.kind {
        SetKind::Dns if set.pinned => " (pinned by the site)",
        SetKind::Dns => " (filled by `portolan sync`)",
        SetKind::Wildcard if set.pinned => " (pinned by the site)",
        SetKind::Wildcard => " (filled by `portolan dns-proxy`)",
        _ => "",
    };
    let _ = writeln!(
        out,
        "\t# {}, {}{filled_by}",
        comment_text(&what),
        family.label()
    );
    // A group: its members (validated DNS names), a few per line.
    for line in set.members.chunks(MEMBERS_PER_LINE) {
        let _ = writeln!(out, "\t#   {}", comment_text(&line.join(" ")));
    }
    let _ = writeln!(out, "\tset {name} {{");
    let _ = writeln!(out, "\t\ttype {ty}");
    if set.dynamic {
        let _ = writeln!(out, "\t\tflags timeout");
    } else {
        let _ = writeln!(out, "\t\tflags interval");
    }
    // Set names and DNS names are validated `[a-z0-9.*-]`: safe inside quotes.
    let _ = writeln!(out, "\t\tcomment \"{}\"", what);
    if !elements.is_empty() {
        if elements.len() > ELEMENTS_PER_LINE {
            let _ = writeln!(out, "\t\telements = {{");
            for (i, e) in elements.iter().enumerate() {
                let sep = if i + 1 < elements.len() { "," } else { "" };
                let _ = writeln!(out, "\t\t\t{e}{sep}");
            }
            let _ = writeln!(out, "\t\t}}");
        } else {
            let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
        }
    }
    out.push_str("\t}\n\n");
}

fn fmt_net(n: IpNet) -> String {
    match n {
        IpNet::V4(v) if v.prefix_len() == Ipv4Net::default().max_prefix_len() => {
            v.addr().to_string()
        }
        IpNet::V6(v) if v.prefix_len() == Ipv6Net::default().max_prefix_len() => {
            v.addr().to_string()
        }
        other => other.to_string(),
    }
}

fn ports_text(ports: &[PortRange]) -> String {
    let items: Vec<String> = ports.iter().map(PortRange::to_string).collect();
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

fn rule_text(plan: &Plan, r: &Rule) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(i) = &r.iif {
        parts.push(format!("iifname \"{i}\""));
    }
    if let Some(o) = &r.oif {
        parts.push(format!("oifname \"{o}\""));
    }
    // The protocol and port first: they are cheap to compare, so a packet of another
    // protocol or port leaves the rule before any set is looked up (a chain of many
    // DNS-set rules costs every packet that passes it one lookup per rule otherwise).
    match r.protocol {
        Protocol::Tcp | Protocol::Udp => {
            parts.push(format!("{} dport {}", r.protocol, ports_text(&r.ports)));
        }
        Protocol::Icmp => {
            let (kw, names): (&str, Vec<&str>) = match r.family {
                Family::V4 => ("icmp", r.icmp_types.iter().map(|t| t.name()).collect()),
                Family::V6 => ("icmpv6", r.icmp_types.iter().map(|t| t.name()).collect()),
            };
            let list = if names.len() == 1 {
                names[0].to_string()
            } else {
                format!("{{ {} }}", names.join(", "))
            };
            parts.push(format!("{kw} type {list}"));
        }
    }
    let ipk = match r.family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    };
    for (dir, s) in [("saddr", &r.saddr), ("daddr", &r.daddr)] {
        if let Some(sref) = s {
            if let Some(set) = set_of(plan, sref) {
                parts.push(format!("{ipk} {dir} @{}", nft_set_name(&set, sref.family)));
            }
        }
    }
    if r.ftp_helper {
        parts.push("ct helper set \"ftp\"".into());
    }
    parts.push("counter accept".into());
    parts.push(format!(
        "comment \"{}\"",
        flow_comment(&r.flows, NFT_COMMENT_MAX)
    ));
    parts.join(" ")
}
