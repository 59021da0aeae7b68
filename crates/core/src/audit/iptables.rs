//! Front end: `iptables-save` / `ip6tables-save` output (one file holding either or both),
//! and `ipset save` output for `-m set` matches.
//!
//! Every table in the file is evaluated (raw, mangle, nat, filter, security) at its
//! netfilter priority, because a DROP in mangle drops as surely as one in filter.

use std::collections::HashMap;

use super::nft::{addr, prefix};
use super::ruleset::*;
use super::space::{Dim, IvSet};
use crate::diag::{Diagnostic, Errors, Source};

/// Contents of one ipset.
#[derive(Debug, Clone)]
pub struct Ipset {
    pub kind: String,
    pub fam: u8,
    /// Entries as terms over the set's dimensions (without the src/dst choice applied):
    /// each entry is (address set, optional (protocol, port set)).
    pub entries: Vec<(IvSet, Option<(u8, IvSet)>)>,
    /// `nomatch` entries or a type the audit does not model.
    pub unsupported: Option<String>,
}

pub type Ipsets = HashMap<String, Ipset>;

fn err_at(src: &Source, line_start: usize, line: &str, msg: String, help: &str) -> Errors {
    // Point at the word the message quotes, when the line has it; else at the line.
    let quoted = msg.split('`').nth(1).filter(|q| !q.is_empty());
    let span = match quoted.and_then(|q| line.find(q).map(|i| (i, q.len()))) {
        Some((i, n)) => line_start + i..line_start + i + n,
        None => line_start..line_start + line.trim_end().len(),
    };
    Diagnostic::error(msg)
        .at(src, span)
        .with_help(help.to_string())
        .into()
}

/// Parse `ipset save` output.
pub fn parse_ipsets(src: &Source) -> Result<Ipsets, Errors> {
    let mut sets: Ipsets = HashMap::new();
    let mut off = 0;
    for line in src.text.split_inclusive('\n') {
        let start = off;
        off += line.len();
        let toks: Vec<&str> = line.split_whitespace().collect();
        let bad = |m: String| err_at(src, start, line, m, "give the output of `ipset save`");
        match toks.first().copied() {
            None => {}
            Some(t) if t.starts_with('#') => {}
            Some("create") => {
                let (Some(name), Some(kind)) = (toks.get(1), toks.get(2)) else {
                    return Err(bad("`create` needs a set name and a type".into()));
                };
                let fam = match toks
                    .iter()
                    .position(|t| *t == "family")
                    .and_then(|i| toks.get(i + 1))
                {
                    Some(&"inet6") => 1,
                    _ => 0,
                };
                let unsupported = (!matches!(
                    *kind,
                    "hash:ip"
                        | "hash:net"
                        | "bitmap:ip"
                        | "hash:ip,port"
                        | "hash:net,port"
                        | "bitmap:port"
                ))
                .then(|| format!("ipset type {kind}"));
                sets.insert(
                    name.to_string(),
                    Ipset {
                        kind: kind.to_string(),
                        fam,
                        entries: Vec::new(),
                        unsupported,
                    },
                );
            }
            Some("add") => {
                let (Some(name), Some(entry)) = (toks.get(1), toks.get(2)) else {
                    return Err(bad("`add` needs a set name and an entry".into()));
                };
                let Some(set) = sets.get_mut(*name) else {
                    return Err(bad(format!(
                        "`add` to set {name}, which was not created before"
                    )));
                };
                if toks[3..].contains(&"nomatch") {
                    set.unsupported = Some(format!("ipset {name} has nomatch entries"));
                    continue;
                }
                if set.unsupported.is_some() {
                    continue;
                }
                let e = ipset_entry(set, entry).map_err(bad)?;
                set.entries.push(e);
            }
            Some(other) => {
                return Err(bad(format!("unknown ipset command `{other}`")));
            }
        }
    }
    Ok(sets)
}

fn ipset_entry(set: &Ipset, e: &str) -> Result<(IvSet, Option<(u8, IvSet)>), String> {
    let fam = set.fam;
    let port_part = |p: &str| -> Result<(u8, IvSet), String> {
        let (proto, ports) = match p.split_once(':') {
            Some((pr, po)) => (
                proto_number(pr).ok_or_else(|| format!("unknown protocol `{pr}`"))?,
                po,
            ),
            None => (6, p),
        };
        Ok((proto, port_range(ports, '-')?))
    };
    if set.kind == "bitmap:port" {
        let (proto, ports) = port_part(e)?;
        let _ = proto;
        return Ok((IvSet::single(0, u128::MAX), Some((0, ports))));
    }
    let (a, rest) = match e.split_once(',') {
        Some((a, r)) => (a, Some(r)),
        None => (e, None),
    };
    let addrs = addr_spec(fam, a)?;
    let port = match rest {
        Some(r) if set.kind.ends_with(",port") => Some(port_part(r)?),
        Some(_) => return Err(format!("entry `{e}` does not fit set type {}", set.kind)),
        None if set.kind.ends_with(",port") => return Err(format!("entry `{e}` lacks a port")),
        None => None,
    };
    Ok((addrs, port))
}

fn addr_spec(fam: u8, a: &str) -> Result<IvSet, String> {
    if let Some((lo, hi)) = a.split_once('-') {
        return Ok(IvSet::single(addr(fam, lo)?, addr(fam, hi)?));
    }
    match a.split_once('/') {
        Some((base, len)) => {
            if let Ok(l) = len.parse::<u64>() {
                prefix(fam, base, l)
            } else if fam == 0 {
                // Dotted mask: must be contiguous.
                let m = addr(0, len)? as u32;
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(format!("non-contiguous mask `{len}`"));
                }
                prefix(0, base, u64::from(m.leading_ones()))
            } else {
                Err(format!("bad prefix length `{len}`"))
            }
        }
        None => Ok(IvSet::point(addr(fam, a)?)),
    }
}

/// Port numbers of service names, as /etc/services gives them (iptables-save prints a port
/// by name when the rule was written with one).
fn service_port(name: &str) -> Option<u16> {
    Some(match name {
        "ftp-data" => 20,
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "time" => 37,
        "whois" | "nicname" => 43,
        "domain" => 53,
        "tftp" => 69,
        "gopher" => 70,
        "finger" => 79,
        "http" | "www" | "www-http" => 80,
        "kerberos" | "kerberos5" | "krb5" => 88,
        "pop3" | "pop-3" => 110,
        "sunrpc" | "portmapper" => 111,
        "auth" | "ident" | "tap" => 113,
        "nntp" => 119,
        "ntp" => 123,
        "epmap" | "loc-srv" => 135,
        "netbios-ns" => 137,
        "netbios-dgm" => 138,
        "netbios-ssn" => 139,
        "imap" | "imap2" => 143,
        "snmp" => 161,
        "snmp-trap" | "snmptrap" => 162,
        "bgp" => 179,
        "ldap" => 389,
        "https" => 443,
        "microsoft-ds" => 445,
        "isakmp" => 500,
        "submissions" | "smtps" | "urd" => 465,
        "syslog" => 514,
        "printer" => 515,
        "submission" => 587,
        "ldaps" => 636,
        "rsync" => 873,
        "ftps-data" => 989,
        "ftps" => 990,
        "imaps" => 993,
        "pop3s" => 995,
        "openvpn" => 1194,
        "ms-sql-s" => 1433,
        "radius" => 1812,
        "radius-acct" => 1813,
        "nfs" => 2049,
        "mysql" => 3306,
        "ms-wbt-server" => 3389,
        "ipsec-nat-t" => 4500,
        "sip" => 5060,
        "postgresql" => 5432,
        "x11" => 6000,
        "http-alt" | "webcache" => 8080,
        _ => return None,
    })
}

/// `-j DNAT --to-destination A[-B][:P[-Q]]`, `-j REDIRECT [--to-ports P[-Q]]`.
fn dnat_target(fam: u8, redirect: bool, opts: &[&str]) -> Result<Dnat, String> {
    let mut to = None;
    let mut ports = None;
    let mut k = 0;
    while k < opts.len() {
        let v = opts.get(k + 1).copied();
        match (opts[k], v) {
            ("--to-destination" | "--to", Some(v)) if !redirect => {
                if to.is_some() {
                    return Err("several destinations (round robin)".into());
                }
                // 192.0.2.10-192.0.2.12:25-26, [2001:db8::1]:25, 2001:db8::1
                let (a, p) = if let Some(rest) = v.strip_prefix('[') {
                    let (a, p) = rest.split_once(']').ok_or("`[` without `]`")?;
                    (a, p.strip_prefix(':'))
                } else if fam == 0 {
                    match v.split_once(':') {
                        Some((a, p)) => (a, Some(p)),
                        None => (v, None),
                    }
                } else {
                    (v, None)
                };
                let iv = if a.is_empty() {
                    None
                } else {
                    Some(match a.split_once('-') {
                        Some((lo, hi)) => IvSet::single(addr(fam, lo)?, addr(fam, hi)?),
                        None => IvSet::point(addr(fam, a)?),
                    })
                };
                to = Some(iv.ok_or("no address")?);
                if let Some(p) = p {
                    ports = Some(port_range(p, '-')?);
                }
                k += 2;
            }
            ("--to-ports", Some(v)) if redirect => {
                ports = Some(port_range(v, '-')?);
                k += 2;
            }
            ("--random" | "--random-fully" | "--persistent", _) => k += 1,
            (o, _) => return Err(format!("option `{o}`")),
        }
    }
    if !redirect && to.is_none() {
        return Err("no --to-destination".into());
    }
    Ok(Dnat {
        fam: Some(fam),
        addr: to,
        ports,
    })
}

fn port_range(s: &str, sep: char) -> Result<IvSet, String> {
    let p = |x: &str| -> Result<u128, String> {
        x.parse::<u16>()
            .ok()
            .or_else(|| service_port(x))
            .map(u128::from)
            .ok_or_else(|| format!("`{x}` is not a port number or a known service name"))
    };
    match s.split_once(sep) {
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { p(a)? };
            let hi = if b.is_empty() { 65535 } else { p(b)? };
            Ok(IvSet::single(lo, hi))
        }
        None => Ok(IvSet::point(p(s)?)),
    }
}

/// Split a rule line into words, honouring double quotes as iptables-save writes them.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("unterminated quote".into()),
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        Some(x) => cur.push(x),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn hook_of(chain: &str) -> Option<Hook> {
    Some(match chain {
        "PREROUTING" => Hook::Prerouting,
        "INPUT" => Hook::Input,
        "FORWARD" => Hook::Forward,
        "OUTPUT" => Hook::Output,
        "POSTROUTING" => Hook::Postrouting,
        _ => return None,
    })
}

fn priority(table: &str, hook: Hook) -> i32 {
    match table {
        "raw" => -300,
        "mangle" => -150,
        "nat" => match hook {
            Hook::Prerouting | Hook::Output => -100,
            _ => 100,
        },
        "security" => 50,
        _ => 0,
    }
}

const NON_TERMINAL: &[&str] = &[
    "LOG",
    "NFLOG",
    "ULOG",
    "MARK",
    "CONNMARK",
    "TCPMSS",
    "TRACE",
    "AUDIT",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "SECMARK",
    "CONNSECMARK",
    "CHECKSUM",
    "TTL",
    "HL",
    "SET",
    "LED",
    "IDLETIMER",
];

struct Section {
    table: String,
    fam: u8,
    /// (chain name, line start offset, line) for chain declarations.
    chains: Vec<(String, Option<bool>, String)>,
    rules: Vec<(String, usize, String)>,
}

/// Parse iptables-save output (IPv4, IPv6 or both, one after the other).
pub fn parse(src: &Source, ipsets: Option<&Ipsets>) -> Result<Ruleset, Errors> {
    let name = src.name.to_string();
    let help = "give the unmodified output of `iptables-save` (and `ip6tables-save`)";
    let mut rs = Ruleset {
        format: "iptables-save",
        families: IvSet::empty(),
        ..Ruleset::default()
    };
    let mut sections: Vec<Section> = Vec::new();
    let mut cur: Option<Section> = None;
    let mut fam_hint: Option<u8> = None;
    let mut off = 0;
    let mut lineno = 0;
    let mut line_starts: HashMap<usize, usize> = HashMap::new();
    for line in src.text.split_inclusive('\n') {
        let start = off;
        off += line.len();
        lineno += 1;
        line_starts.insert(lineno, start);
        let t = line.trim();
        let bad = |m: String| err_at(src, start, line, m, help);
        if t.is_empty() {
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            if c.contains("ip6tables-save") {
                fam_hint = Some(1);
            } else if c.contains("iptables-save") {
                fam_hint = Some(0);
            }
            continue;
        }
        if let Some(table) = t.strip_prefix('*') {
            if cur.is_some() {
                return Err(bad(format!(
                    "table *{table} starts before the previous table's COMMIT"
                )));
            }
            cur = Some(Section {
                table: table.to_string(),
                fam: fam_hint.unwrap_or(2),
                chains: Vec::new(),
                rules: Vec::new(),
            });
            continue;
        }
        let Some(sec) = cur.as_mut() else {
            return Err(bad(
                "a line outside any table (expected `*filter` first)".into()
            ));
        };
        if t == "COMMIT" {
            sections.push(cur.take().expect("section"));
            fam_hint = None;
            continue;
        }
        if let Some(decl) = t.strip_prefix(':') {
            let mut it = decl.split_whitespace();
            let (Some(chain), Some(policy)) = (it.next(), it.next()) else {
                return Err(bad(
                    "a chain line needs a name and a policy (`:INPUT ACCEPT [0:0]`)".into(),
                ));
            };
            let pol = match policy {
                "ACCEPT" => Some(false),
                "DROP" => Some(true),
                "-" => None,
                other => return Err(bad(format!("unknown policy `{other}`"))),
            };
            sec.chains
                .push((chain.to_string(), pol, format!("{name}:{lineno}")));
            continue;
        }
        // Counters prefix from `iptables-save -c`.
        let body = if t.starts_with('[') {
            t.split_once(']').map_or(t, |(_, r)| r.trim_start())
        } else {
            t
        };
        if body.starts_with("-A ") {
            sec.rules
                .push((body.to_string(), lineno, format!("{name}:{lineno}")));
            continue;
        }
        return Err(bad(format!(
            "unexpected line: `{}`",
            t.chars().take(60).collect::<String>()
        )));
    }
    if let Some(sec) = cur {
        let _ = sec;
        return Err(
            Diagnostic::error("the file ends inside a table: no COMMIT (truncated?)")
                .at(src, src.text.len()..src.text.len())
                .with_help(help.to_string())
                .into(),
        );
    }
    if sections.is_empty() {
        return Err(Diagnostic::error("no table in this file")
            .in_file(src)
            .with_help(help.to_string())
            .into());
    }
    // Built-in chains used without their `:CHAIN` line (iptables-restore accepts that: they
    // always exist): declared here, with the kernel's default policy, and said in the notes.
    for s in &mut sections {
        let mut used: Vec<String> = Vec::new();
        for (r, _, _) in &s.rules {
            if let Some(c) = r.split_whitespace().nth(1) {
                if hook_of(c).is_some()
                    && !s.chains.iter().any(|d| d.0 == c)
                    && !used.iter().any(|u| u == c)
                {
                    used.push(c.to_string());
                }
            }
        }
        for c in used {
            rs.notes.push(format!(
                "table {}: chain {c} is used without its `:{c}` line; its policy is not in the file, ACCEPT (the kernel's default) is assumed",
                s.table
            ));
            s.chains
                .push((c.clone(), Some(false), format!("{name} (no :{c} line)")));
        }
    }
    // Families of sections without a header comment: by their contents.
    for s in &mut sections {
        if s.fam == 2 {
            let v6 = s.rules.iter().any(|(r, _, _)| {
                r.contains("ipv6-icmp")
                    || r.contains("icmp6")
                    || r.split_whitespace()
                        .any(|w| w.contains(':') && w.contains('/'))
            });
            s.fam = u8::from(v6);
        }
    }
    let mut seen: HashMap<(String, u8), ()> = HashMap::new();
    for s in &sections {
        if seen.insert((s.table.clone(), s.fam), ()).is_some() {
            return Err(Diagnostic::error(format!(
                "table {} for {} appears twice",
                s.table,
                if s.fam == 0 { "IPv4" } else { "IPv6" }
            ))
            .in_file(src)
            .with_help("give one iptables-save and at most one ip6tables-save output")
            .into());
        }
        if s.table == "filter" {
            rs.families = rs.families.union(&IvSet::point(s.fam.into()));
        }
    }

    let mut old_negation = false;
    for s in &sections {
        let fam_label = if s.fam == 0 { "IPv4" } else { "IPv6" };
        let scope = format!("{}/{fam_label}", s.table);
        for (chain, pol, loc) in &s.chains {
            let base = match (hook_of(chain), pol) {
                (Some(h), Some(drop)) => Some(Base {
                    hook: h,
                    priority: priority(&s.table, h),
                    families: IvSet::point(s.fam.into()),
                    policy_drop: *drop,
                    policy_loc: format!("{loc} (policy {})", if *drop { "DROP" } else { "ACCEPT" }),
                    device: None,
                    rewrites: matches!(s.table.as_str(), "nat" | "mangle" | "raw"),
                }),
                _ => None,
            };
            rs.by_name
                .insert((scope.clone(), chain.clone()), rs.chains.len());
            rs.chains.push(Chain {
                name: format!("{} {chain} ({fam_label})", s.table),
                scope: scope.clone(),
                rules: Vec::new(),
                base,
            });
        }
        for (text, lineno, loc) in &s.rules {
            let start = line_starts.get(lineno).copied().unwrap_or(0);
            let bad = |m: String| err_at(src, start, text, m, help);
            let mut w = words(text).map_err(&bad)?;
            // iptables before 1.4.3 wrote `-d ! 10.0.0.0/8`; today's is `! -d 10.0.0.0/8`.
            let mut k = 0;
            while k + 2 < w.len() {
                if w[k].starts_with('-') && w[k + 1] == "!" && !w[k + 2].starts_with('-') {
                    w.swap(k, k + 1);
                    if !old_negation {
                        old_negation = true;
                        rs.notes.push(format!(
                            "{loc}: `OPTION ! VALUE` is the negation syntax of iptables before 1.4.3; read as `! OPTION VALUE`"
                        ));
                    }
                    k += 3;
                } else {
                    k += 1;
                }
            }
            let chain = w.get(1).ok_or_else(|| bad("`-A` without a chain".into()))?;
            let Some(ci) = rs.chain_index(&scope, chain) else {
                return Err(bad(format!(
                    "chain {chain} is not declared (`:{chain} - [0:0]`)"
                )));
            };
            let declared: Vec<&str> = s.chains.iter().map(|c| c.0.as_str()).collect();
            let rule = parse_rule(
                &w[2..],
                s.fam,
                &s.table,
                &declared,
                ipsets,
                loc.clone(),
                text.clone(),
            )
            .map_err(&bad)?;
            if let Action::Jump(t) | Action::Goto(t) = &rule.action {
                if rs.chain_index(&scope, t).is_none() {
                    return Err(bad(format!("jump to chain {t}, which is not declared")));
                }
            }
            rs.chains[ci].rules.push(rule);
        }
    }
    for (fam, label) in [(0u128, "IPv4"), (1, "IPv6")] {
        if !rs.families.contains(fam) {
            rs.notes.push(format!(
                "the file has no {label} filter table; {label} flows are reported as unknown"
            ));
        }
    }
    Ok(rs)
}

const TOP: &[&str] = &[
    "-s",
    "--source",
    "-d",
    "--destination",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-p",
    "--protocol",
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
    "!",
    "-f",
    "--fragment",
];

fn parse_rule(
    w: &[String],
    fam: u8,
    table: &str,
    declared: &[&str],
    ipsets: Option<&Ipsets>,
    loc: String,
    text: String,
) -> Result<Rule, String> {
    let mut conds: Vec<Cond> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut action = Action::Continue;
    let mut neg = false;
    let mut module = String::new();
    let mut proto: Option<u8> = None;
    let mut i = 0;
    let need = |i: usize, o: &str| -> Result<&String, String> {
        w.get(i + 1).ok_or_else(|| format!("`{o}` needs a value"))
    };
    let push = |conds: &mut Vec<Cond>, c: Cond, neg: bool| -> Result<(), String> {
        if neg {
            conds.push(c.negate().ok_or("negation of this match")?);
        } else {
            conds.push(c);
        }
        Ok(())
    };
    while i < w.len() {
        let o = w[i].as_str();
        match o {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-s" | "--source" | "-d" | "--destination" => {
                let d = if o.starts_with("-s") || o == "--source" {
                    Dim::Saddr
                } else {
                    Dim::Daddr
                };
                let v = need(i, o)?;
                let mut ivs = Vec::new();
                for a in v.split(',') {
                    ivs.extend(addr_spec(fam, a)?.0);
                }
                push(&mut conds, Cond::is(d, IvSet::from_intervals(ivs)), neg)?;
                i += 2;
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let d = if o.starts_with("-i") || o == "--in-interface" {
                    Dim::Iif
                } else {
                    Dim::Oif
                };
                let v = need(i, o)?;
                let pat = match v.strip_suffix('+') {
                    Some(p) => format!("{p}*"),
                    None => v.clone(),
                };
                push(&mut conds, Cond::atom(Atom::Iface(d, vec![pat])), neg)?;
                i += 2;
            }
            "-p" | "--protocol" => {
                let v = need(i, o)?;
                if v != "all" && v != "0" {
                    let p = proto_number(v).ok_or_else(|| format!("unknown protocol `{v}`"))?;
                    proto = Some(p);
                    push(
                        &mut conds,
                        Cond::is(Dim::Proto, IvSet::point(p.into())),
                        neg,
                    )?;
                    if neg {
                        proto = None;
                    }
                }
                i += 2;
            }
            "-f" | "--fragment" => {
                // The first packet of a connection is never a non-first fragment.
                conds.push(if neg { Cond::always() } else { Cond::never() });
                i += 1;
            }
            "-m" | "--match" => {
                module = need(i, o)?.clone();
                i += 2;
                if !matches!(
                    module.as_str(),
                    "tcp"
                        | "udp"
                        | "multiport"
                        | "iprange"
                        | "state"
                        | "conntrack"
                        | "set"
                        | "icmp"
                        | "icmp6"
                        | "comment"
                        | "sctp"
                        | "udplite"
                        | "addrtype"
                ) {
                    unknown.push(format!("-m {module}"));
                    // Skip the module's options.
                    while i < w.len() && !TOP.contains(&w[i].as_str()) {
                        i += 1;
                    }
                    // A `!` that belongs to the next top-level option is kept.
                }
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let t = need(i, o)?.clone();
                i += 2;
                let goto = o == "-g" || o == "--goto";
                action = match t.as_str() {
                    x if declared.contains(&x) => {
                        if goto {
                            Action::Goto(x.to_string())
                        } else {
                            Action::Jump(x.to_string())
                        }
                    }
                    "ACCEPT" => Action::Accept,
                    "DROP" | "REJECT" => Action::Drop,
                    "RETURN" => Action::Return,
                    "SNAT" | "MASQUERADE" if table == "nat" => Action::Accept,
                    "DNAT" | "REDIRECT" if table == "nat" => {
                        let opts: Vec<&str> = w[i..]
                            .iter()
                            .take_while(|o| !TOP.contains(&o.as_str()))
                            .map(String::as_str)
                            .collect();
                        match dnat_target(fam, t == "REDIRECT", &opts) {
                            Ok(d) => Action::Dnat(d),
                            Err(why) => Action::Unknown(format!("-j {t}: {why}")),
                        }
                    }
                    x if NON_TERMINAL.contains(&x) => Action::Continue,
                    // `-j CT --helper NAME` only attaches a helper (portolan's FTP rules);
                    // `--notrack` and zones change what the filter sees: unknown.
                    "CT" if {
                        let opts: Vec<&str> = w[i..]
                            .iter()
                            .take_while(|o| !TOP.contains(&o.as_str()))
                            .map(String::as_str)
                            .collect();
                        opts.first() == Some(&"--helper") && opts.len() == 2
                    } =>
                    {
                        Action::Continue
                    }
                    x if x.chars().all(|c| c.is_ascii_uppercase()) && !goto => {
                        // DNAT, REDIRECT, NFQUEUE, CT, NOTRACK, TPROXY, ...
                        Action::Unknown(format!("-j {x}"))
                    }
                    x => {
                        if goto {
                            Action::Goto(x.to_string())
                        } else {
                            Action::Jump(x.to_string())
                        }
                    }
                };
                // Target options.
                while i < w.len() && !TOP.contains(&w[i].as_str()) {
                    i += 1;
                }
            }
            _ if o.starts_with("--") => {
                let v = w.get(i + 1).cloned().unwrap_or_default();
                let ports_proto = |module: &str| -> Vec<u8> {
                    match module {
                        "udp" => vec![17],
                        "tcp" => vec![6],
                        "sctp" => vec![132],
                        "udplite" => vec![136],
                        _ => proto.map_or_else(|| PORT_PROTOS.to_vec(), |p| vec![p]),
                    }
                };
                let proto_cond = |ps: Vec<u8>| {
                    Cond::is(
                        Dim::Proto,
                        IvSet::from_intervals(
                            ps.into_iter()
                                .map(|p| (u128::from(p), u128::from(p)))
                                .collect(),
                        ),
                    )
                };
                // `-p tcp --dport 22` loads the protocol's match implicitly.
                let implicit = match proto {
                    Some(6) => "tcp",
                    Some(17) => "udp",
                    Some(1) => "icmp",
                    Some(58) => "icmp6",
                    _ => "",
                };
                let module = if module.is_empty() {
                    implicit
                } else {
                    module.as_str()
                };
                match (module, o) {
                    (
                        "tcp" | "udp" | "sctp" | "udplite",
                        "--dport" | "--destination-port" | "--sport" | "--source-port",
                    ) => {
                        let d = if o.contains('d') && !o.starts_with("--s") {
                            Dim::Dport
                        } else {
                            Dim::Sport
                        };
                        conds.push(proto_cond(ports_proto(module)));
                        push(&mut conds, Cond::is(d, port_range(&v, ':')?), neg)?;
                        i += 2;
                    }
                    (
                        "multiport",
                        "--dports"
                        | "--destination-ports"
                        | "--sports"
                        | "--source-ports"
                        | "--ports",
                    ) => {
                        let mut ivs = Vec::new();
                        for p in v.split(',') {
                            ivs.extend(port_range(p, ':')?.0);
                        }
                        let s = IvSet::from_intervals(ivs);
                        conds.push(proto_cond(ports_proto(module)));
                        let c = match o {
                            "--dports" | "--destination-ports" => Cond::is(Dim::Dport, s),
                            "--ports" => Cond(vec![
                                Term(vec![(Atom::In(Dim::Sport, s.clone()), false)]),
                                Term(vec![(Atom::In(Dim::Dport, s), false)]),
                            ]),
                            _ => Cond::is(Dim::Sport, s),
                        };
                        push(&mut conds, c, neg)?;
                        i += 2;
                    }
                    ("tcp", "--syn") => {
                        conds.push(proto_cond(vec![6]));
                        conds.push(if neg { Cond::never() } else { Cond::always() });
                        i += 1;
                    }
                    ("tcp", "--tcp-flags") => {
                        let comp = w
                            .get(i + 2)
                            .ok_or("`--tcp-flags` needs a mask and a comparison")?;
                        let f = |s: &str| -> Result<u8, String> {
                            let mut b = 0u8;
                            for x in s.split(',') {
                                b |= match x {
                                    "FIN" => 1,
                                    "SYN" => 2,
                                    "RST" => 4,
                                    "PSH" => 8,
                                    "ACK" => 16,
                                    "URG" => 32,
                                    "ALL" => 63,
                                    "NONE" => 0,
                                    other => return Err(format!("unknown TCP flag `{other}`")),
                                };
                            }
                            Ok(b)
                        };
                        let hit = 0x02 & f(&v)? == f(comp)?;
                        conds.push(proto_cond(vec![6]));
                        conds.push(if hit != neg {
                            Cond::always()
                        } else {
                            Cond::never()
                        });
                        i += 3;
                    }
                    ("iprange", "--src-range" | "--dst-range") => {
                        let d = if o == "--src-range" {
                            Dim::Saddr
                        } else {
                            Dim::Daddr
                        };
                        let (a, b) = v
                            .split_once('-')
                            .ok_or_else(|| format!("range `{v}` needs a dash"))?;
                        push(
                            &mut conds,
                            Cond::is(d, IvSet::single(addr(fam, a)?, addr(fam, b)?)),
                            neg,
                        )?;
                        i += 2;
                    }
                    ("state", "--state") | ("conntrack", "--ctstate") => {
                        let states: Vec<&str> = v.split(',').collect();
                        if states.iter().any(|s| {
                            !matches!(
                                *s,
                                "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED"
                            )
                        }) {
                            unknown.push(format!("{o} {v}"));
                        } else {
                            let hit = states.contains(&"NEW");
                            conds.push(if hit != neg {
                                Cond::always()
                            } else {
                                Cond::never()
                            });
                        }
                        i += 2;
                    }
                    ("set", "--match-set") => {
                        let flags = w
                            .get(i + 2)
                            .ok_or("`--match-set` needs a set name and flags")?;
                        match set_cond(ipsets, &v, flags, fam)? {
                            Ok(c) => push(&mut conds, c, neg)?,
                            Err(why) => unknown.push(why),
                        }
                        i += 3;
                    }
                    ("icmp", "--icmp-type") | ("icmp6", "--icmpv6-type") => {
                        let v6 = o == "--icmpv6-type";
                        conds.push(Cond::is(Dim::Proto, IvSet::point(if v6 { 58 } else { 1 })));
                        if v == "any" {
                            if neg {
                                conds.push(Cond::never());
                            }
                        } else {
                            let (t, code) = match v.split_once('/') {
                                Some((t, c)) => (t, Some(c)),
                                None => (v.as_str(), None),
                            };
                            match icmp_type_number(v6, t) {
                                Some(n) if code.is_none() => push(
                                    &mut conds,
                                    Cond::is(Dim::Icmp, IvSet::point(n.into())),
                                    neg,
                                )?,
                                _ => unknown.push(format!("{o} {v}")),
                            }
                        }
                        i += 2;
                    }
                    ("comment", "--comment") => i += 2,
                    ("addrtype", "--src-type" | "--dst-type") => {
                        let d = if o == "--src-type" {
                            Dim::Saddr
                        } else {
                            Dim::Daddr
                        };
                        let types: Vec<String> =
                            v.split(',').map(|t| t.to_ascii_lowercase()).collect();
                        if types.iter().all(|t| ADDR_TYPES.contains(&t.as_str())) {
                            push(&mut conds, Cond::atom(Atom::AddrType(d, types)), neg)?;
                        } else {
                            unknown.push(format!("-m addrtype {o} {v}"));
                        }
                        i += 2;
                    }
                    ("addrtype", "--limit-iface-in" | "--limit-iface-out") => {
                        unknown.push(format!("-m addrtype {o}"));
                        i += 1;
                    }
                    _ => {
                        unknown.push(format!("-m {module} {o}"));
                        i += 1;
                        while i < w.len() && !w[i].starts_with('-') && w[i] != "!" {
                            i += 1;
                        }
                    }
                }
            }
            other => return Err(format!("unexpected word `{other}`")),
        }
        neg = false;
    }
    if let Action::Unknown(n) = &action {
        unknown.push(n.clone());
    }
    Ok(Rule {
        conds,
        unknown,
        action,
        loc,
        text,
    })
}

/// `-m set --match-set NAME FLAGS` as a condition. `Ok(Err(why))`: not modelled.
fn set_cond(
    ipsets: Option<&Ipsets>,
    name: &str,
    flags: &str,
    fam: u8,
) -> Result<Result<Cond, String>, String> {
    let Some(sets) = ipsets else {
        return Ok(Err(format!(
            "-m set {name} (pass its contents with --ipset FILE)"
        )));
    };
    let Some(set) = sets.get(name) else {
        return Ok(Err(format!("-m set {name} (not in the --ipset file)")));
    };
    if let Some(u) = &set.unsupported {
        return Ok(Err(u.clone()));
    }
    if set.fam != fam {
        return Ok(Ok(Cond::never()));
    }
    let fl: Vec<Dim> = flags
        .split(',')
        .map(|f| match f {
            "src" => Ok(Dim::Saddr),
            "dst" => Ok(Dim::Daddr),
            other => Err(format!("unknown set flag `{other}`")),
        })
        .collect::<Result<_, _>>()?;
    let port_dim = |d: Dim| {
        if d == Dim::Saddr {
            Dim::Sport
        } else {
            Dim::Dport
        }
    };
    let addr_dim = fl.first().copied().unwrap_or(Dim::Saddr);
    if set.kind == "bitmap:port" {
        let mut ivs = Vec::new();
        for (_, p) in &set.entries {
            if let Some((_, ps)) = p {
                ivs.extend(ps.0.iter().copied());
            }
        }
        let c = Cond::is(
            Dim::Proto,
            IvSet::from_intervals(
                PORT_PROTOS
                    .iter()
                    .map(|p| (u128::from(*p), u128::from(*p)))
                    .collect(),
            ),
        )
        .and(&Cond::is(port_dim(addr_dim), IvSet::from_intervals(ivs)));
        return Ok(Ok(c));
    }
    let tag_dim = if addr_dim == Dim::Saddr {
        Dim::Stag
    } else {
        Dim::Dtag
    };
    if set.kind.ends_with(",port") {
        let pd = port_dim(fl.get(1).copied().unwrap_or(addr_dim));
        let terms = set
            .entries
            .iter()
            .map(|(a, p)| {
                let mut t = vec![(Atom::In(addr_dim, a.clone()), false)];
                if let Some((proto, ps)) = p {
                    t.push((
                        Atom::In(Dim::Proto, IvSet::point(u128::from(*proto))),
                        false,
                    ));
                    t.push((Atom::In(pd, ps.clone()), false));
                }
                Term(t)
            })
            .collect();
        return Ok(Ok(Cond(terms)));
    }
    let mut ivs = Vec::new();
    for (a, _) in &set.entries {
        ivs.extend(a.0.iter().copied());
    }
    Ok(Ok(Cond(vec![
        Term(vec![(
            Atom::In(addr_dim, IvSet::from_intervals(ivs)),
            false,
        )]),
        Term(vec![(
            Atom::SetTag(tag_dim, format!("ipset {name}")),
            false,
        )]),
    ])))
}
