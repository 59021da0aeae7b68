//! The ruleset the audit evaluates, shared by the nft JSON and iptables-save front ends.
//!
//! Front ends produce [`Ruleset`]: chains of rules whose matches are [`Cond`]itions on the
//! packet dimensions, with interface names and named-set references still symbolic. The
//! evaluator compiles them to regions once the interface table and the DNS-name bindings
//! of the plan are known.

use std::collections::BTreeMap;

use super::space::{Dim, IvSet};

/// A netfilter hook a base chain is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Ingress,
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn parse(s: &str) -> Option<Hook> {
        Some(match s {
            "ingress" => Hook::Ingress,
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            _ => return None,
        })
    }
}

/// One conjunct of a term: a constraint on one dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    /// The dimension's value is in the set.
    In(Dim, IvSet),
    /// The interface (Iif or Oif) matches one of the names; a trailing `*` is a prefix match.
    Iface(Dim, Vec<String>),
    /// The address (Stag or Dtag side) belongs to the named set `key`, by its DNS binding.
    /// Only meaningful for sets the plan knows are kept filled from DNS; otherwise empty.
    SetTag(Dim, String),
    /// The address (Saddr or Daddr) is of one of these routing types (`local`,
    /// `multicast`, `broadcast`, `unicast`): iptables `-m addrtype`, nft `fib ... type`.
    /// Resolved against the host's own addresses when the ruleset is compiled.
    AddrType(Dim, Vec<String>),
}

/// Address types [`Atom::AddrType`] can decide.
pub const ADDR_TYPES: [&str; 4] = ["local", "multicast", "broadcast", "unicast"];

/// A conjunction of atoms, each possibly negated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Term(pub Vec<(Atom, bool)>);

/// A disjunction of terms. A rule matches when every one of its conditions holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cond(pub Vec<Term>);

impl Cond {
    pub fn atom(a: Atom) -> Cond {
        Cond(vec![Term(vec![(a, false)])])
    }
    pub fn not_atom(a: Atom) -> Cond {
        Cond(vec![Term(vec![(a, true)])])
    }
    pub fn is(d: Dim, s: IvSet) -> Cond {
        Cond::atom(Atom::In(d, s))
    }
    /// Never holds.
    pub fn never() -> Cond {
        Cond(Vec::new())
    }
    /// Always holds.
    pub fn always() -> Cond {
        Cond(vec![Term::default()])
    }
    /// Conjunction: every term of `self` with every term of `other`.
    pub fn and(&self, other: &Cond) -> Cond {
        let mut out = Vec::new();
        for x in &self.0 {
            for y in &other.0 {
                let mut t = x.0.clone();
                t.extend(y.0.iter().cloned());
                out.push(Term(t));
            }
        }
        Cond(out)
    }
    /// Negation, when it can be written as a condition: a single term of atoms, or a
    /// disjunction of single atoms. `None` otherwise.
    pub fn negate(&self) -> Option<Cond> {
        if self.0.is_empty() {
            return Some(Cond::always());
        }
        if self.0.len() == 1 {
            // not (a and b and c) = (not a) or (not b) or (not c)
            let t = &self.0[0];
            if t.0.is_empty() {
                return Some(Cond::never());
            }
            return Some(Cond(
                t.0.iter()
                    .map(|(a, n)| Term(vec![(a.clone(), !n)]))
                    .collect(),
            ));
        }
        if self.0.iter().all(|t| t.0.len() == 1) {
            // not (a or b or c) = (not a) and (not b) and (not c)
            return Some(Cond(vec![Term(
                self.0
                    .iter()
                    .map(|t| (t.0[0].0.clone(), !t.0[0].1))
                    .collect(),
            )]));
        }
        None
    }
}

/// What a rule does with the packets it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing that decides (counter, log, mark, ...).
    Continue,
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
    /// A verdict the audit cannot follow (queue, dnat, ...), named.
    Unknown(String),
    /// Verdict map: the first entry whose condition holds (entries are disjoint).
    Vmap(Vec<(Cond, Action)>),
    /// Destination NAT (`dnat`, `redirect`, `-j DNAT`, `-j REDIRECT`): the packet's
    /// destination is rewritten and it leaves the chain (a nat chain's accept).
    Dnat(Dnat),
}

/// Where a destination NAT sends the packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Dnat {
    /// The family it rewrites (0 = IPv4, 1 = IPv6; `None`: both, a REDIRECT in an inet
    /// table); packets of the other pass unchanged.
    pub fam: Option<u8>,
    /// New destination addresses; `None`: the receiving host's own address (REDIRECT).
    pub addr: Option<IvSet>,
    /// New destination ports; `None`: unchanged.
    pub ports: Option<IvSet>,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// All must hold.
    pub conds: Vec<Cond>,
    /// Match expressions the audit does not understand: the rule *may* match.
    pub unknown: Vec<String>,
    pub action: Action,
    /// Where it is: `inet filter input handle 7` or `rules.v4:12`.
    pub loc: String,
    /// The rule's text or comment, for the report.
    pub text: String,
}

/// A chain. Base chains have a hook; the others are reached by jump and goto.
#[derive(Debug, Clone)]
pub struct Chain {
    /// `inet filter input` or `filter INPUT (IPv4)`.
    pub name: String,
    /// The table, for jump lookups: `inet filter` or `filter/IPv4`.
    pub scope: String,
    pub rules: Vec<Rule>,
    pub base: Option<Base>,
}

#[derive(Debug, Clone)]
pub struct Base {
    pub hook: Hook,
    pub priority: i32,
    /// Families the table sees (0 = IPv4, 1 = IPv6).
    pub families: IvSet,
    /// `accept` or `drop` (policy), and where it is written.
    pub policy_drop: bool,
    pub policy_loc: String,
    /// Netdev ingress: the device.
    pub device: Option<String>,
    /// A chain that rewrites or marks rather than filters (nft type nat/route, iptables nat,
    /// mangle and raw tables): its accept is no answer to "who let this in".
    pub rewrites: bool,
}

impl Rule {
    /// A rule iptables-nft loaded: nft shows its match or target as `xt`, without parameters.
    pub fn is_xt(&self) -> bool {
        self.unknown.iter().any(|u| u.starts_with("xt "))
            || matches!(&self.action, Action::Unknown(u) if u.starts_with("xt "))
    }
}

/// A parsed ruleset.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub format: &'static str,
    pub chains: Vec<Chain>,
    /// Chain lookup: (scope, name) -> index; scope is the table, e.g. `inet filter`.
    pub by_name: BTreeMap<(String, String), usize>,
    /// Families the ruleset describes at all (an iptables-save file with no IPv6 part says
    /// nothing about IPv6).
    pub families: IvSet,
    /// Things the audit saw and did not model, for the report.
    pub notes: Vec<String>,
    /// Named sets that hold addresses, by key: the front end's name for the set and where
    /// it is (e.g. `inet portolan dns_example.com_v4`). The evaluator binds the ones the
    /// plan fills from DNS.
    pub address_sets: Vec<String>,
}

impl Ruleset {
    /// Scope of a chain (its table) for jump lookups.
    pub fn chain_index(&self, scope: &str, name: &str) -> Option<usize> {
        self.by_name
            .get(&(scope.to_string(), name.to_string()))
            .copied()
    }
}

/// Match a pattern as nft and iptables do: a trailing `*` (nft) or `+` (iptables, converted
/// to `*` by the front end) matches any name with that prefix.
pub fn iface_match(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Protocol numbers and names shared by the front ends.
pub fn proto_number(s: &str) -> Option<u8> {
    Some(match s {
        "icmp" => 1,
        "igmp" => 2,
        "ipencap" | "ipip" => 4,
        "tcp" => 6,
        "ipv6" => 41,
        "ipv6-route" => 43,
        "ipv6-frag" => 44,
        "rsvp" => 46,
        "ipv6-nonxt" => 59,
        "ipv6-opts" => 60,
        "ospf" | "ospfigp" => 89,
        "encap" => 98,
        "pim" => 103,
        "vrrp" => 112,
        "l2tp" => 115,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        "udplite" => 136,
        "dccp" => 33,
        _ => return s.parse().ok(),
    })
}

pub fn proto_name(n: u128) -> String {
    match n {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        33 => "dccp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        n => format!("proto {n}"),
    }
}

/// Protocols with ports at the usual offsets (`th dport`).
pub const PORT_PROTOS: [u8; 5] = [6, 17, 33, 132, 136];

pub fn icmp_type_number(v6: bool, s: &str) -> Option<u8> {
    let v4 = [
        ("echo-reply", 0),
        ("destination-unreachable", 3),
        ("source-quench", 4),
        ("redirect", 5),
        ("echo-request", 8),
        ("router-advertisement", 9),
        ("router-solicitation", 10),
        ("time-exceeded", 11),
        ("ttl-exceeded", 11),
        ("parameter-problem", 12),
        ("timestamp-request", 13),
        ("timestamp-reply", 14),
        ("info-request", 15),
        ("info-reply", 16),
        ("address-mask-request", 17),
        ("address-mask-reply", 18),
    ];
    let v6t = [
        ("destination-unreachable", 1),
        ("packet-too-big", 2),
        ("time-exceeded", 3),
        ("ttl-exceeded", 3),
        ("parameter-problem", 4),
        ("echo-request", 128),
        ("echo-reply", 129),
        ("mld-listener-query", 130),
        ("mld-listener-report", 131),
        ("mld-listener-done", 132),
        ("mld-listener-reduction", 132),
        ("nd-router-solicit", 133),
        ("router-solicitation", 133),
        ("nd-router-advert", 134),
        ("router-advertisement", 134),
        ("nd-neighbor-solicit", 135),
        ("neighbour-solicitation", 135),
        ("neighbor-solicitation", 135),
        ("nd-neighbor-advert", 136),
        ("neighbour-advertisement", 136),
        ("neighbor-advertisement", 136),
        ("nd-redirect", 137),
        ("redirect", 137),
        ("router-renumbering", 138),
        ("ind-neighbor-solicit", 141),
        ("ind-neighbor-advert", 142),
        ("mld2-listener-report", 143),
    ];
    let table: &[(&str, u8)] = if v6 { &v6t } else { &v4 };
    table
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| s.parse().ok())
}
