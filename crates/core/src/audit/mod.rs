//! Audit: does an existing ruleset let every planned flow through, and what does it accept
//! toward or from the appliance beyond them?
//!
//! Front ends ([`nft`], [`iptables`]) read a ruleset into [`ruleset::Ruleset`]. The plan's
//! flows become regions of the packet space ([`space`]), one flow per value of the `Flow`
//! dimension, and [`eval`] pushes them all through the hooks of the site's placement in
//! one pass. A second pass pushes "every packet to or from the appliance" through and
//! subtracts what the plan needs: that is the excess.
//!
//! Semantics are those of the first packet of a new connection: conntrack state `new`, TCP
//! flags SYN, a source port from 1024 to 65535. A match the audit does not model makes the
//! packets it may match `unknown`; they are never counted as allowed.

pub mod eval;
pub mod iptables;
pub mod nft;
pub mod ruleset;
pub mod space;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use crate::model::Protocol;
use crate::plan::{Direction, Plan, PlannedFlow, SetKind};
use crate::render::{self, Family};
use crate::site::Placement;
use eval::{Compiled, Decision, Kind, Piece, RuleRef};
use ruleset::{proto_name, Hook, Ruleset};
use space::{coalesce, intersect, subtract, Cube, Dim, IvSet, Region};

/// Verdict for one planned flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every first packet of the flow is accepted.
    Allowed,
    /// Every one is dropped.
    Blocked,
    /// Some are certainly dropped, others accepted or unknown.
    Partial,
    /// Not dropped for sure, but a match the audit does not model decides some of it.
    Unknown,
    /// Allowed unless one of the rules in [`FlowResult::condition`] matches (they drop it
    /// and have a match the audit does not model, e.g. `-m recent`).
    AllowedUnless,
    /// Allowed only if one of the rules in [`FlowResult::condition`] matches (they accept
    /// it and have a match the audit does not model, e.g. `-m owner`).
    AllowedIf,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::Partial => "partial",
            Verdict::Unknown => "unknown",
            Verdict::AllowedUnless => "allowed-unless",
            Verdict::AllowedIf => "allowed-if",
        }
    }
}

/// A rule that decided, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleInfo {
    /// `inet filter input handle 7`, `rules.v4:12`, `inet filter input policy`.
    pub loc: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct FlowResult {
    pub id: String,
    pub protocol: Protocol,
    pub direction: Direction,
    pub ports: String,
    pub from: String,
    pub to: String,
    pub required: bool,
    pub verdict: Verdict,
    /// For blocked and partial: a packet that is dropped, and the rule that drops it.
    pub example: Option<(String, RuleInfo)>,
    /// Rules that accept (some of) the flow.
    pub allowed_by: Vec<RuleInfo>,
    /// Rules with unmodelled matches that decide part of it, with what they contain.
    pub unknown: Vec<(RuleInfo, Vec<String>)>,
    /// For `allowed-unless` / `allowed-if`: the rules whose unmodelled matches decide, with
    /// what they contain.
    pub condition: Vec<(RuleInfo, Vec<String>)>,
    /// The verdict per address family the flow has packets in; `None`: the ruleset has
    /// nothing for that family (e.g. an iptables-save file without its ip6tables part).
    pub families: Vec<(Family, Option<Verdict>)>,
    /// Destination NAT rules that rewrote the flow's packets on the way.
    pub translated_by: Vec<RuleInfo>,
    pub notes: Vec<String>,
}

/// The excess lines one rule accepts.
#[derive(Debug, Clone)]
pub struct ExcessGroup {
    pub rule: RuleInfo,
    /// How many excess lines name this rule.
    pub lines: usize,
    /// The largest of them (at most [`GROUP_SHOWN`]).
    pub top: Vec<Excess>,
}

pub const GROUP_SHOWN: usize = 3;

/// One line of the excess list.
#[derive(Debug, Clone)]
pub struct Excess {
    pub family: Family,
    pub source: String,
    pub destination: String,
    pub protocol: String,
    pub ports: String,
    pub interfaces: String,
    pub rules: Vec<RuleInfo>,
    /// log2 of the number of (address, port) points: the sort key.
    pub size_log2: f64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub format: &'static str,
    pub placement: String,
    pub flows: Vec<FlowResult>,
    /// Accepted beyond the plan, largest first (at most [`EXCESS_SHOWN`]).
    pub excess: Vec<Excess>,
    pub excess_more: usize,
    /// Maybe accepted beyond the plan (rules with unmodelled matches).
    pub maybe_excess: Vec<Excess>,
    /// The excess computation stopped (ruleset too fragmented for the budget).
    pub excess_incomplete: bool,
    /// All excess lines grouped by the rule that accepts them, largest first.
    pub excess_by_rule: Vec<ExcessGroup>,
    /// Families the plan has packets in and the ruleset says nothing about.
    pub missing_families: Vec<Family>,
    pub notes: Vec<String>,
}

pub const EXCESS_SHOWN: usize = 20;

pub const SEMANTICS: &str = "evaluated for the first packet of a new connection: conntrack state new, TCP flag SYN only, source port 1024-65535";

impl FlowResult {
    /// The verdict, with the families when they differ or one is not audited:
    /// `partial (IPv4 allowed, IPv6 blocked)`, `allowed (IPv6 not in the ruleset)`.
    pub fn verdict_text(&self) -> String {
        let name = self.verdict.name();
        let differ = self.families.iter().any(|(_, v)| *v != Some(self.verdict));
        if !differ || self.families.len() < 2 && self.families.iter().all(|(_, v)| v.is_some()) {
            return name.to_string();
        }
        let parts: Vec<String> = self
            .families
            .iter()
            .map(|(f, v)| match v {
                Some(v) => format!("{} {}", f.label(), v.name()),
                None => format!("{} not in the ruleset", f.label()),
            })
            .collect();
        format!("{name} ({})", parts.join(", "))
    }
}

impl Report {
    /// Every planned flow allowed, in every address family it has packets in: a family the
    /// ruleset has no part for was not audited, so it is no "yes".
    pub fn all_allowed(&self) -> bool {
        self.missing_families.is_empty() && self.flows.iter().all(|f| f.verdict == Verdict::Allowed)
    }
}

/// Which flows to evaluate and the packet space they occupy.
struct Setup {
    tags: Vec<String>,
    /// Tag of each name in `tags`.
    index: HashMap<String, u32>,
    /// Set reference (`inet portolan NAME`, `ipset NAME`) to the tags of the names it holds.
    bindings: HashMap<String, Vec<u32>>,
    ifaces: Vec<String>,
}

fn v4_set(nets: &[ipnet::Ipv4Net]) -> IvSet {
    IvSet::from_intervals(
        nets.iter()
            .map(|n| {
                (
                    u128::from(u32::from(n.network())),
                    u128::from(u32::from(n.broadcast())),
                )
            })
            .collect(),
    )
}

fn v6_set(nets: &[ipnet::Ipv6Net]) -> IvSet {
    IvSet::from_intervals(
        nets.iter()
            .map(|n| (u128::from(n.network()), u128::from(n.broadcast())))
            .collect(),
    )
}

fn fam_range(fam: u8) -> IvSet {
    if fam == 0 {
        IvSet::single(0, u128::from(u32::MAX))
    } else {
        IvSet::single(0, u128::MAX)
    }
}

fn setup(plan: &Plan) -> Setup {
    let mut tags = vec![String::new()];
    let mut bindings = HashMap::new();
    // Each target whose sets portolan fills names them; the rulesets refer to them so.
    let named: Vec<(&str, &dyn render::Target)> =
        [("inet portolan", "nftables"), ("ipset", "iptables")]
            .into_iter()
            .filter_map(|(prefix, t)| render::target(t).map(|t| (prefix, t)))
            .collect();
    for set in plan.sets.values() {
        if !matches!(set.kind, SetKind::Dns | SetKind::Wildcard) {
            continue;
        }
        let tag = tags.len() as u32;
        tags.push(set.name.clone());
        for fam in [Family::V4, Family::V6] {
            for (prefix, t) in &named {
                if let Some(n) = t.set_name(set, fam) {
                    bindings.insert(format!("{prefix} {n}"), vec![tag]);
                }
            }
        }
    }
    // Groups portolan renders for many names with one match: a set holds all its members.
    let index: HashMap<&str, usize> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let (rules, _) = render::lower(plan);
    for (sref, fed) in render::dynamic_feeds(plan, &rules) {
        let Some(group) = render::set_of(plan, sref).filter(|g| !g.members.is_empty()) else {
            continue;
        };
        let member_tags: Vec<u32> = fed
            .iter()
            .filter_map(|m| index.get(m.name.as_str()))
            .map(|&t| t as u32)
            .collect();
        for (prefix, t) in &named {
            if let Some(n) = t.set_name(&group, sref.family) {
                bindings
                    .entry(format!("{prefix} {n}"))
                    .or_default()
                    .extend(&member_tags);
            }
        }
    }
    let mut ifaces = Vec::new();
    for f in &plan.flows {
        for p in f.source.peers.iter().chain(&f.destination.peers) {
            if let Some(i) = &p.interface {
                ifaces.push(i.clone());
            }
        }
    }
    if let Placement::Gateway {
        appliance_interface,
        zones,
        default_interface,
        ..
    } = &plan.placement
    {
        ifaces.push(appliance_interface.clone());
        ifaces.extend(zones.values().cloned());
        ifaces.extend(default_interface.iter().cloned());
    }
    Setup {
        index: tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect(),
        tags,
        bindings,
        ifaces,
    }
}

fn tag_of(setup: &Setup, plan: &Plan, set_id: &str) -> u32 {
    match plan.set(set_id) {
        Some(s) if matches!(s.kind, SetKind::Dns | SetKind::Wildcard) => {
            setup.index.get(&s.name).copied().unwrap_or(0)
        }
        _ => 0,
    }
}

fn internet(plan: &Plan, fam: u8) -> IvSet {
    if let Some(s) = plan.set("role:internet") {
        return if fam == 0 {
            v4_set(&s.v4)
        } else {
            v6_set(&s.v6)
        };
    }
    let (v4, v6) = crate::addr::internet(&plan.appliance().addresses());
    if fam == 0 {
        v4_set(&v4)
    } else {
        v6_set(&v6)
    }
}

/// Addresses of a plan set in a family; unresolved DNS names stand for any internet address.
fn set_addrs(plan: &Plan, set_id: &str, fam: u8) -> (IvSet, bool) {
    let Some(s) = plan.set(set_id) else {
        return (IvSet::empty(), false);
    };
    let a = if fam == 0 {
        v4_set(&s.v4)
    } else {
        v6_set(&s.v6)
    };
    if s.dynamic && a.is_empty() {
        return (internet(plan, fam), true);
    }
    (a, false)
}

fn path(plan: &Plan, dir: Direction) -> &'static [Hook] {
    match (&plan.placement, dir) {
        (Placement::Host, Direction::Outbound) => &[Hook::Output, Hook::Postrouting],
        (Placement::Host, _) => &[Hook::Ingress, Hook::Prerouting, Hook::Input],
        _ => &[
            Hook::Ingress,
            Hook::Prerouting,
            Hook::Forward,
            Hook::Postrouting,
        ],
    }
}

/// `[appliance] public` addresses of a family.
fn public_set(plan: &Plan, fam: u8) -> IvSet {
    IvSet::from_intervals(
        plan.public
            .iter()
            .filter_map(|a| match (a, fam) {
                (std::net::IpAddr::V4(v), 0) => Some(u128::from(u32::from(*v))),
                (std::net::IpAddr::V6(v), 1) => Some(u128::from(*v)),
                _ => None,
            })
            .map(|v| (v, v))
            .collect(),
    )
}

/// The host's own addresses per family, for REDIRECT and addrtype `local`: the appliance's
/// in host placement; a gateway's are not in the site, except the public addresses it
/// translates.
fn local_addrs(plan: &Plan) -> [IvSet; 2] {
    let app = plan.appliance();
    match plan.placement {
        Placement::Host => [v4_set(&app.v4), v6_set(&app.v6)],
        Placement::Gateway { .. } => [public_set(plan, 0), public_set(plan, 1)],
    }
}

/// Does a gateway reach this peer through its internet side (so the peer addresses the
/// appliance by its public address)?
fn outside(plan: &Plan, p: &crate::plan::Peer) -> bool {
    let Placement::Gateway {
        zones,
        default_interface,
        ..
    } = &plan.placement
    else {
        return false;
    };
    let internet_if = zones.get("internet").or(default_interface.as_ref());
    matches!(p.kind, SetKind::Dns | SetKind::Wildcard)
        || p.name == "internet"
        || (internet_if.is_some() && p.interface.as_ref() == internet_if)
}

/// The cubes of one planned flow, the peers whose addresses are not known, and where the
/// flow's packets must go (family and destination address) after any destination NAT.
fn flow_cubes(
    plan: &Plan,
    setup: &Setup,
    c: &Compiled,
    f: &PlannedFlow,
    k: u32,
) -> (Region, Vec<String>, Region) {
    let host = matches!(plan.placement, Placement::Host);
    let app = plan.appliance();
    let mut out = Vec::new();
    let mut expect = Vec::new();
    let mut unresolved = Vec::new();
    for src in &f.source.peers {
        for dst in &f.destination.peers {
            for fam in [0u8, 1] {
                let app_has = if fam == 0 {
                    !app.v4.is_empty()
                } else {
                    !app.v6.is_empty()
                };
                if !app_has && f.direction != Direction::Internal {
                    continue;
                }
                let (sa, su) = set_addrs(plan, &src.set, fam);
                let (da, du) = set_addrs(plan, &dst.set, fam);
                if sa.is_empty() || da.is_empty() {
                    continue;
                }
                for (u, p) in [(su, src), (du, dst)] {
                    if u && !unresolved.contains(&p.name) {
                        unresolved.push(p.name.clone());
                    }
                }
                let wire = c.ifaces.wire();
                let iface = |name: &Option<String>| match name {
                    Some(n) => c.ifaces.matching(std::slice::from_ref(n)),
                    None => wire.clone(),
                };
                let none = IvSet::point(0);
                let (iif, oif) = match (host, f.direction) {
                    (true, Direction::Outbound) => (none, wire.clone()),
                    (true, _) => (wire.clone(), none),
                    (false, _) => (iface(&src.interface), iface(&dst.interface)),
                };
                let mut cube = Cube::full();
                cube.set(Dim::Fam, IvSet::point(fam.into()));
                cube.set(Dim::Iif, iif);
                cube.set(Dim::Oif, oif);
                cube.set(Dim::Saddr, sa);
                let exp = Cube::full()
                    .with(Dim::Fam, &IvSet::point(fam.into()))
                    .with(Dim::Daddr, &da);
                // From outside, a gateway's DNAT is how packets reach the appliance: they
                // are addressed to its public address.
                let public = public_set(plan, fam);
                if !public.is_empty() && dst.kind == SetKind::Appliance && outside(plan, src) {
                    cube.set(Dim::Daddr, public);
                } else {
                    cube.set(Dim::Daddr, da);
                }
                cube.set(
                    Dim::Stag,
                    IvSet::point(tag_of(setup, plan, &src.set).into()),
                );
                cube.set(
                    Dim::Dtag,
                    IvSet::point(tag_of(setup, plan, &dst.set).into()),
                );
                cube.set(Dim::Flow, IvSet::point(k.into()));
                match f.protocol {
                    Protocol::Tcp | Protocol::Udp => {
                        cube.set(
                            Dim::Proto,
                            IvSet::point(if f.protocol == Protocol::Tcp { 6 } else { 17 }),
                        );
                        cube.set(Dim::Sport, IvSet::single(1024, 65535));
                        cube.set(
                            Dim::Dport,
                            IvSet::from_intervals(
                                f.ports
                                    .iter()
                                    .map(|r| (u128::from(r.low), u128::from(r.high)))
                                    .collect(),
                            ),
                        );
                    }
                    Protocol::Icmp => {
                        cube.set(Dim::Proto, IvSet::point(if fam == 0 { 1 } else { 58 }));
                        if let Some(t) = f.icmp_type {
                            let n = if fam == 0 { t.v4_code() } else { t.v6_code() };
                            cube.set(Dim::Icmp, IvSet::point(n.into()));
                        }
                    }
                }
                if !cube.is_empty() {
                    out.push(cube);
                    expect.push(exp);
                }
            }
        }
    }
    (out, unresolved, expect)
}

/// The packets to or from the appliance that the firewall sees, per path.
fn universe(plan: &Plan, c: &Compiled) -> Vec<(&'static [Hook], Region)> {
    let app = plan.appliance();
    let wire = c.ifaces.wire();
    let mut out = Vec::new();
    let base = |fam: u8, addrs: IvSet, d: Dim| {
        let mut cube = Cube::full();
        cube.set(Dim::Fam, IvSet::point(fam.into()));
        cube.set(d, addrs);
        cube.set(Dim::Stag, IvSet::point(0));
        cube.set(Dim::Dtag, IvSet::point(0));
        cube.set(Dim::Flow, IvSet::point(0));
        cube
    };
    for fam in [0u8, 1] {
        let a = if fam == 0 {
            v4_set(&app.v4)
        } else {
            v6_set(&app.v6)
        };
        if a.is_empty() {
            continue;
        }
        match &plan.placement {
            Placement::Host => {
                let mut inb = base(fam, a.clone(), Dim::Daddr);
                inb.set(Dim::Iif, wire.clone());
                inb.set(Dim::Oif, IvSet::point(0));
                out.push((path(plan, Direction::Inbound), vec![inb]));
                let mut outb = base(fam, a, Dim::Saddr);
                outb.set(Dim::Iif, IvSet::point(0));
                outb.set(Dim::Oif, wire.clone());
                out.push((path(plan, Direction::Outbound), vec![outb]));
            }
            Placement::Gateway {
                appliance_interface,
                ..
            } => {
                // Routing: the appliance's packets come in on its interface and leave on
                // another; packets to it leave on its interface.
                let app_if = c
                    .ifaces
                    .matching(std::slice::from_ref(appliance_interface))
                    .intersect(&wire);
                let others = wire.subtract(&app_if, Dim::Iif.max());
                let mut from = base(fam, a.clone(), Dim::Saddr);
                from.set(Dim::Iif, app_if.clone());
                from.set(Dim::Oif, others.clone());
                let mut to = base(fam, a, Dim::Daddr);
                to.set(Dim::Iif, others.clone());
                to.set(Dim::Oif, app_if.clone());
                let to = subtract(vec![to], std::slice::from_ref(&from));
                let mut r = vec![from.clone()];
                r.extend(to);
                // Packets to the public address, which a DNAT may send to the appliance.
                let public = public_set(plan, fam);
                if !public.is_empty() {
                    let mut p = base(fam, public, Dim::Daddr);
                    p.set(Dim::Iif, others);
                    p.set(Dim::Oif, app_if);
                    r.extend(subtract(vec![p], std::slice::from_ref(&from)));
                }
                out.push((path(plan, Direction::Internal), r));
            }
        }
    }
    out
}

fn rule_info(rs: &Ruleset, by: RuleRef) -> RuleInfo {
    if by.chain == NO_DNAT {
        return RuleInfo {
            loc: "(no DNAT rule translates it to the appliance)".into(),
            text: "the firewall receives packets to the public address itself".into(),
        };
    }
    if by.chain == usize::MAX {
        return RuleInfo {
            loc: "(no chain on this path: the kernel accepts)".into(),
            text: String::new(),
        };
    }
    let ch = &rs.chains[by.chain];
    match by.rule {
        Some(i) => RuleInfo {
            loc: ch.rules[i].loc.clone(),
            text: ch.rules[i].text.clone(),
        },
        None => {
            let b = ch.base.as_ref();
            RuleInfo {
                loc: b.map_or_else(|| format!("{} (end)", ch.name), |b| b.policy_loc.clone()),
                text: format!(
                    "policy {}",
                    if b.is_some_and(|b| b.policy_drop) {
                        "drop"
                    } else {
                        "accept"
                    }
                ),
            }
        }
    }
}

/// A drop that is no rule's: the packet to the public address was not translated to the
/// appliance, so the firewall receives it itself.
const NO_DNAT: usize = usize::MAX - 1;

/// Does the ruleset rewrite destinations anywhere?
fn has_dnat(rs: &Ruleset) -> bool {
    fn dnat(a: &ruleset::Action) -> bool {
        match a {
            ruleset::Action::Dnat(_) => true,
            ruleset::Action::Vmap(es) => es.iter().any(|(_, a)| dnat(a)),
            _ => false,
        }
    }
    rs.chains
        .iter()
        .any(|c| c.rules.iter().any(|r| dnat(&r.action)))
}

/// Walk `region` along `hooks`; with destination NAT in play, route after the hook where
/// it happens (prerouting, or output for local packets): `route` says which pieces go on.
fn run_routed(
    c: &Compiled,
    hooks: &[Hook],
    region: Region,
    nat: bool,
    route: &dyn Fn(Vec<Piece>) -> (Vec<Piece>, Vec<Decision>),
) -> Vec<Decision> {
    let split = hooks
        .iter()
        .position(|h| matches!(h, Hook::Prerouting | Hook::Output));
    let Some(i) = split.filter(|_| nat) else {
        return c.run_path(hooks, region);
    };
    let pieces = region.into_iter().map(Piece::from).collect();
    let (mut out, p1) = c.run_hooks(&hooks[..=i], pieces);
    let (p2, d2) = route(p1);
    out.extend(d2);
    let (d3, p3) = c.run_hooks(&hooks[i + 1..], p2);
    out.extend(d3);
    out.extend(Compiled::accepted(p3));
    out
}

/// Routing for planned flows: a piece goes on where its destination is the flow's own
/// (after any destination NAT); elsewhere it never reaches it.
fn route_flows(pieces: Vec<Piece>, expect: &[Region]) -> (Vec<Piece>, Vec<Decision>) {
    let mut go = Vec::new();
    let mut gone = Vec::new();
    for p in pieces {
        for &(lo, hi) in &p.cube.get(Dim::Flow).0 {
            let hi = hi.min(expect.len().saturating_sub(1) as u128);
            for k in lo..=hi {
                let sub = p.cube.clone().with(Dim::Flow, &IvSet::point(k));
                let e = &expect[k as usize];
                go.extend(
                    intersect(std::slice::from_ref(&sub), e)
                        .into_iter()
                        .map(|cube| Piece {
                            cube,
                            by: p.by,
                            nat: p.nat,
                        }),
                );
                for cube in subtract(vec![sub], e) {
                    gone.push(Decision {
                        cube,
                        kind: Kind::Drop,
                        by: p.nat.unwrap_or(RuleRef {
                            chain: NO_DNAT,
                            rule: None,
                        }),
                        nat: p.nat,
                    });
                }
            }
        }
    }
    (go, gone)
}

/// Routing for the excess universe: packets from the appliance go on; packets to it only
/// where their destination (after NAT) is the appliance.
fn route_universe(pieces: Vec<Piece>, app: &[Cube]) -> (Vec<Piece>, Vec<Decision>) {
    // `app` is "to the appliance"; the same addresses as sources are "from" it.
    let from: Vec<Cube> = app
        .iter()
        .map(|a| {
            let mut x = Cube::full().with(Dim::Fam, a.get(Dim::Fam));
            x.set(Dim::Saddr, a.get(Dim::Daddr).clone());
            x
        })
        .collect();
    let mut go = Vec::new();
    for p in pieces {
        let keep = intersect(std::slice::from_ref(&p.cube), &from);
        let rest = subtract(vec![p.cube.clone()], &from);
        let keep2 = intersect(&rest, app);
        go.extend(keep.into_iter().chain(keep2).map(|cube| Piece {
            cube,
            by: p.by,
            nat: p.nat,
        }));
    }
    (go, Vec::new())
}

fn verdict_of(acc: bool, drop: bool, unk: bool) -> Verdict {
    match (acc, drop, unk) {
        (true, false, false) => Verdict::Allowed,
        (false, true, false) => Verdict::Blocked,
        (_, true, _) => Verdict::Partial,
        _ => Verdict::Unknown,
    }
}

/// Run the audit.
pub fn audit(plan: &Plan, rs: &Ruleset) -> Report {
    let setup = setup(plan);
    let local = local_addrs(plan);
    let c = Compiled::with_local(rs, &setup.bindings, &setup.ifaces, &local);
    let host = matches!(plan.placement, Placement::Host);
    let mut notes: Vec<String> = vec![SEMANTICS.to_string()];
    notes.extend(rs.notes.iter().cloned());
    let nat = has_dnat(rs) || (!host && !plan.public.is_empty());
    if host && !plan.public.is_empty() {
        notes.push("[appliance] public is used in gateway placement only: a host firewall sees packets after any NAT in front of it".into());
    }
    if uses_addrtype(rs) {
        notes.push(match plan.placement {
            Placement::Host => "address type `local` (addrtype, fib) is taken to be the appliance's addresses and loopback; the host may have others".into(),
            Placement::Gateway { .. } => "address type `local` (addrtype, fib) is taken to be loopback and [appliance] public; the firewall's other own addresses are not in the site".into(),
        });
    }

    // Flows, grouped by path, all in one pass per path.
    let mut per_flow: Vec<(Region, Vec<String>)> = Vec::new();
    let mut by_path: BTreeMap<&'static [Hook], Region> = BTreeMap::new();
    let mut expect: Vec<Region> = vec![Vec::new(); plan.flows.len()];
    let mut skipped_internal = Vec::new();
    let mut missing_families: Vec<Family> = Vec::new();
    for (k, f) in plan.flows.iter().enumerate() {
        if host && f.direction == Direction::Internal {
            skipped_internal.push(f.id.clone());
            per_flow.push((Vec::new(), Vec::new()));
            continue;
        }
        let (cubes, unresolved, e) = flow_cubes(plan, &setup, &c, f, k as u32);
        expect[k] = e;
        // Families the ruleset says nothing about are not walked.
        let mut inside = Vec::new();
        for cube in &cubes {
            let x = cube.clone().with(Dim::Fam, &rs.families);
            if !x.is_empty() {
                inside.push(x);
            }
            for fam in [Family::V4, Family::V6] {
                let fi = u128::from(fam == Family::V6);
                if cube.get(Dim::Fam).contains(fi)
                    && !rs.families.contains(fi)
                    && !missing_families.contains(&fam)
                {
                    missing_families.push(fam);
                }
            }
        }
        by_path
            .entry(path(plan, f.direction))
            .or_default()
            .extend(inside);
        per_flow.push((cubes, unresolved));
    }
    missing_families.sort_by_key(|f| *f == Family::V6);
    for fam in &missing_families {
        notes.push(format!(
            "the ruleset has no {} part: the flows' {} packets were not audited; {}",
            fam.label(),
            fam.label(),
            if *fam == Family::V6 {
                "append the output of `ip6tables-save` to the file (or audit `nft -j list ruleset`)"
            } else {
                "append the output of `iptables-save` to the file (or audit `nft -j list ruleset`)"
            }
        ));
    }
    if !skipped_internal.is_empty() {
        notes.push(format!(
            "flow(s) {} do not involve the appliance; a host firewall never sees them",
            skipped_internal.join(", ")
        ));
    }
    let route = |p: Vec<Piece>| route_flows(p, &expect);
    let mut decisions: Vec<Decision> = Vec::new();
    for (hooks, region) in &by_path {
        decisions.extend(run_routed(&c, hooks, region.clone(), nat, &route));
    }
    // Index decisions by flow.
    let mut by_flow: Vec<Vec<&Decision>> = vec![Vec::new(); plan.flows.len()];
    for d in &decisions {
        for &(lo, hi) in &d.cube.get(Dim::Flow).0 {
            for k in lo..=hi.min(plan.flows.len() as u128 - 1) {
                by_flow[k as usize].push(d);
            }
        }
    }

    let mut flows = Vec::new();
    for (k, f) in plan.flows.iter().enumerate() {
        if host && f.direction == Direction::Internal {
            continue;
        }
        let (cubes, unresolved) = &per_flow[k];
        let ds = &by_flow[k];
        let kpt = IvSet::point(k as u128);
        let mut notes_f = Vec::new();
        // Per family.
        let mut families = Vec::new();
        for fam in [Family::V4, Family::V6] {
            let fi = u128::from(fam == Family::V6);
            if !cubes.iter().any(|c| c.get(Dim::Fam).contains(fi)) {
                continue;
            }
            if !rs.families.contains(fi) {
                families.push((fam, None));
                continue;
            }
            let has = |kind: Kind| {
                ds.iter()
                    .any(|d| d.kind == kind && d.cube.get(Dim::Fam).contains(fi))
            };
            families.push((
                fam,
                Some(verdict_of(
                    has(Kind::Accept),
                    has(Kind::Drop),
                    has(Kind::Unknown),
                )),
            ));
        }
        let audited: Vec<Verdict> = families.iter().filter_map(|(_, v)| *v).collect();
        let mut verdict = if cubes.is_empty() {
            notes_f.push("no packet to check: the flow's peers have no address in a family the appliance has".to_string());
            Verdict::Unknown
        } else if audited.is_empty() {
            notes_f.push("the ruleset has no part for the flow's address families".into());
            Verdict::Unknown
        } else {
            let all = |v: Verdict| audited.iter().all(|x| *x == v);
            if all(Verdict::Allowed) {
                Verdict::Allowed
            } else if all(Verdict::Blocked) {
                Verdict::Blocked
            } else if audited
                .iter()
                .any(|v| matches!(v, Verdict::Blocked | Verdict::Partial))
            {
                Verdict::Partial
            } else {
                Verdict::Unknown
            }
        };
        let example = ds.iter().find(|d| d.kind == Kind::Drop).map(|d| {
            (
                packet_text(&setup, &c, &d.cube.clone().with(Dim::Flow, &kpt)),
                rule_info(rs, d.by),
            )
        });
        let mut allowed_by: Vec<RuleInfo> = ds
            .iter()
            .filter(|d| d.kind == Kind::Accept)
            .map(|d| rule_info(rs, d.by))
            .collect();
        allowed_by.sort();
        allowed_by.dedup();
        let mut translated_by: Vec<RuleInfo> = ds
            .iter()
            .filter_map(|d| d.nat)
            .map(|r| rule_info(rs, r))
            .collect();
        translated_by.sort();
        translated_by.dedup();
        if let Some(d) = ds
            .iter()
            .find(|d| d.kind == Kind::Drop && d.nat.is_some() && d.by == d.nat.unwrap_or(d.by))
        {
            notes_f.push(format!(
                "{} translates it to {}, which is not where the flow goes",
                rule_info(rs, d.by).loc,
                packet_text(&setup, &c, &d.cube.clone().with(Dim::Flow, &kpt))
            ));
        }
        let mut unknown: Vec<(RuleInfo, Vec<String>)> = Vec::new();
        let mut unknown_refs: Vec<RuleRef> = Vec::new();
        for d in ds.iter().filter(|d| d.kind == Kind::Unknown) {
            if !unknown_refs.contains(&d.by) {
                unknown_refs.push(d.by);
            }
            let info = rule_info(rs, d.by);
            if unknown.iter().any(|(i, _)| *i == info) {
                continue;
            }
            let what = match d.by.rule {
                Some(r) => rs.chains[d.by.chain].rules[r].unknown.clone(),
                None if c.overflow.get() => vec![c.overflow_reason()],
                None => vec![],
            };
            unknown.push((info, what));
        }
        // A conditional verdict: what if the rules the audit cannot decide do not match
        // (or do)?
        let mut condition = Vec::new();
        if verdict == Verdict::Unknown && !c.overflow.get() {
            if let Some((v, refs)) = conditional(&c, plan, f, cubes, rs, unknown_refs, &route, nat)
            {
                verdict = v;
                // The walk covered every family: one that was undecided is now the same.
                for (_, fv) in &mut families {
                    if *fv == Some(Verdict::Unknown) {
                        *fv = Some(v);
                    }
                }
                condition = refs
                    .iter()
                    .map(|r| {
                        (
                            rule_info(rs, *r),
                            r.rule
                                .map(|i| rs.chains[r.chain].rules[i].unknown.clone())
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
            }
        }
        if !unresolved.is_empty() && verdict != Verdict::Allowed {
            notes_f.push(format!(
                "the addresses of {} are not known to the audit, so this holds for any internet address; pin them under [hosts] in the site to audit the real ones",
                unresolved.join(", ")
            ));
        }
        flows.push(FlowResult {
            id: f.id.clone(),
            protocol: f.protocol,
            direction: f.direction,
            ports: f.ports_text(),
            from: f.source.text(),
            to: f.destination.text(),
            required: f.required,
            verdict,
            example,
            allowed_by,
            unknown,
            condition,
            families,
            translated_by,
            notes: notes_f,
        });
    }

    // Excess: everything to or from the appliance, accepted, minus what the plan needs.
    let mut needed: Region = Vec::new();
    for (k, (cubes, _)) in per_flow.iter().enumerate() {
        for (i, cube) in cubes.iter().enumerate() {
            let mut n = cube.clone();
            // What the flow needs is its packets as the appliance's side sees them.
            if let Some(e) = expect[k].get(i) {
                n.set(Dim::Daddr, e.get(Dim::Daddr).clone());
            }
            n.set(Dim::Sport, IvSet::single(0, 65535));
            n.set(Dim::Stag, IvSet::single(0, Dim::Stag.max()));
            n.set(Dim::Dtag, IvSet::single(0, Dim::Dtag.max()));
            n.set(Dim::Flow, IvSet::single(0, Dim::Flow.max()));
            needed.push(n);
        }
    }
    // IPv6 neighbour discovery is infrastructure, not excess.
    let mut nd = Cube::full();
    nd.set(Dim::Fam, IvSet::point(1));
    nd.set(Dim::Proto, IvSet::point(58));
    nd.set(Dim::Icmp, IvSet::single(133, 136));
    needed.push(nd);
    let app = plan.appliance();
    let app_cubes: Vec<Cube> = [(0u8, v4_set(&app.v4)), (1, v6_set(&app.v6))]
        .into_iter()
        .filter(|(_, a)| !a.is_empty())
        .map(|(f, a)| {
            Cube::full()
                .with(Dim::Fam, &IvSet::point(f.into()))
                .with(Dim::Daddr, &a)
        })
        .collect();
    let uroute = |p: Vec<Piece>| route_universe(p, &app_cubes);
    let mut accepted: Vec<(Cube, RuleRef)> = Vec::new();
    let mut maybe: Vec<(Cube, RuleRef)> = Vec::new();
    for (hooks, region) in universe(plan, &c) {
        let inside: Region = region
            .into_iter()
            .filter_map(|cube| {
                let x = cube.with(Dim::Fam, &rs.families);
                (!x.is_empty()).then_some(x)
            })
            .collect();
        for d in run_routed(&c, hooks, inside, nat, &uroute) {
            match d.kind {
                Kind::Accept => accepted.push((d.cube, d.by)),
                Kind::Unknown => maybe.push((d.cube, d.by)),
                Kind::Drop => {}
            }
        }
    }
    let excess_incomplete = c.overflow.get();
    if excess_incomplete {
        notes.push(c.overflow_reason());
    }
    let excess_all = summarize(plan, &c, rs, accepted, &needed);
    let maybe_excess = summarize(plan, &c, rs, maybe, &needed);
    let excess_by_rule = group_excess(&excess_all);
    let excess_more = excess_all.len().saturating_sub(EXCESS_SHOWN);
    let excess = excess_all.into_iter().take(EXCESS_SHOWN).collect();
    Report {
        format: rs.format,
        placement: match plan.placement {
            Placement::Host => "host (input and output hooks)".into(),
            Placement::Gateway { .. } => "gateway (forward hook)".into(),
        },
        flows,
        excess,
        excess_more,
        maybe_excess: maybe_excess.into_iter().take(EXCESS_SHOWN).collect(),
        excess_incomplete,
        excess_by_rule,
        missing_families,
        notes,
    }
}

/// Most rules whose unmodelled matches a conditional verdict may name.
const CONDITION_RULES: usize = 4;

/// For a flow whose verdict is unknown only because of rules with unmodelled matches:
/// walk it again assuming they do not match, then assuming they do. `allowed-unless` when
/// the first accepts all of it, `allowed-if` when only the second does.
#[allow(clippy::too_many_arguments)]
fn conditional(
    c: &Compiled,
    plan: &Plan,
    f: &PlannedFlow,
    cubes: &Region,
    rs: &Ruleset,
    mut refs: Vec<RuleRef>,
    route: &dyn Fn(Vec<Piece>) -> (Vec<Piece>, Vec<Decision>),
    nat: bool,
) -> Option<(Verdict, Vec<RuleRef>)> {
    let region: Region = cubes
        .iter()
        .filter_map(|cube| {
            let x = cube.clone().with(Dim::Fam, &rs.families);
            (!x.is_empty()).then_some(x)
        })
        .collect();
    // Only rules whose *matches* the audit cannot decide: a rule whose verdict it cannot
    // follow (notrack, queue, a DNAT by map) matches what it matches, and assuming it does
    // not would be wrong.
    let decidable = |refs: &[RuleRef]| {
        !refs.is_empty()
            && refs.len() <= CONDITION_RULES
            && refs.iter().all(|r| {
                r.rule.is_some_and(|i| {
                    let rule = &rs.chains[r.chain].rules[i];
                    !rule.unknown.is_empty() && !matches!(rule.action, ruleset::Action::Unknown(_))
                })
            })
    };
    let hooks = path(plan, f.direction);
    let walk = |refs: &[RuleRef], assume: bool| -> Vec<Decision> {
        *c.assume.borrow_mut() = refs.iter().map(|r| (*r, assume)).collect();
        let ds = run_routed(c, hooks, region.clone(), nat, route);
        c.assume.borrow_mut().clear();
        ds
    };
    let mut result = None;
    while decidable(&refs) {
        let ds = walk(&refs, false);
        if c.overflow.get() {
            return None;
        }
        if ds.iter().all(|d| d.kind == Kind::Accept) {
            result = Some((Verdict::AllowedUnless, refs.clone()));
            break;
        }
        let new: Vec<RuleRef> = ds
            .iter()
            .filter(|d| d.kind == Kind::Unknown && !refs.contains(&d.by))
            .map(|d| d.by)
            .collect();
        if ds.iter().any(|d| d.kind == Kind::Drop) || new.is_empty() {
            // Dropped when they do not match: are they what lets it through?
            let ds = walk(&refs, true);
            if !c.overflow.get() && ds.iter().all(|d| d.kind == Kind::Accept) {
                result = Some((Verdict::AllowedIf, refs.clone()));
            }
            break;
        }
        for r in new {
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    result
}

fn uses_addrtype(rs: &Ruleset) -> bool {
    let cond = |c: &ruleset::Cond| {
        c.0.iter().any(|t| {
            t.0.iter()
                .any(|(a, _)| matches!(a, ruleset::Atom::AddrType(..)))
        })
    };
    rs.chains
        .iter()
        .any(|ch| ch.rules.iter().any(|r| r.conds.iter().any(cond)))
}

/// Excess lines grouped by the rule that accepts them, the group with the largest line
/// first; a line accepted by several rules counts for each.
fn group_excess(lines: &[Excess]) -> Vec<ExcessGroup> {
    let mut groups: Vec<ExcessGroup> = Vec::new();
    for e in lines {
        for r in &e.rules {
            match groups.iter_mut().find(|g| g.rule == *r) {
                Some(g) => {
                    g.lines += 1;
                    if g.top.len() < GROUP_SHOWN {
                        g.top.push(e.clone());
                    }
                }
                None => groups.push(ExcessGroup {
                    rule: r.clone(),
                    lines: 1,
                    top: vec![e.clone()],
                }),
            }
        }
    }
    // `lines` is sorted largest first, so each group's first line is its largest.
    groups.sort_by(|a, b| b.top[0].size_log2.total_cmp(&a.top[0].size_log2));
    groups
}

fn summarize(
    plan: &Plan,
    c: &Compiled,
    rs: &Ruleset,
    pieces: Vec<(Cube, RuleRef)>,
    needed: &[Cube],
) -> Vec<Excess> {
    // Group by rule so each line names the rule that accepts it.
    let mut by_rule: BTreeMap<RuleRef, Region> = BTreeMap::new();
    for (cube, by) in pieces {
        by_rule.entry(by).or_default().push(cube);
    }
    let mut out: Vec<Excess> = Vec::new();
    for (by, region) in by_rule {
        let mut rest = subtract(region, needed);
        for cube in &mut rest {
            cube.set(Dim::Flow, IvSet::point(0));
        }
        let rest = coalesce(rest);
        for cube in rest {
            for fam in [0u8, 1] {
                let cube = cube.clone().with(Dim::Fam, &IvSet::point(fam.into()));
                if cube.is_empty() {
                    continue;
                }
                let e = excess_line(plan, c, fam, &cube, rule_info(rs, by));
                // Merge lines that read the same.
                if let Some(prev) = out.iter_mut().find(|p| {
                    p.family == e.family
                        && p.source == e.source
                        && p.destination == e.destination
                        && p.protocol == e.protocol
                        && p.ports == e.ports
                        && p.interfaces == e.interfaces
                }) {
                    if !prev.rules.contains(&e.rules[0]) {
                        prev.rules.extend(e.rules);
                    }
                    prev.size_log2 = prev.size_log2.max(e.size_log2);
                } else {
                    out.push(e);
                }
            }
        }
    }
    out.sort_by(|a, b| b.size_log2.total_cmp(&a.size_log2));
    out
}

fn excess_line(plan: &Plan, c: &Compiled, fam: u8, cube: &Cube, rule: RuleInfo) -> Excess {
    let app = plan.appliance();
    let app_set = if fam == 0 {
        v4_set(&app.v4)
    } else {
        v6_set(&app.v6)
    };
    let addr = |d: Dim| {
        let s = cube.get(d).intersect(&fam_range(fam));
        if s == app_set {
            "appliance".to_string()
        } else {
            addr_text(fam, &s, plan)
        }
    };
    let proto = cube.get(Dim::Proto);
    let protocol = if proto.is_full(255) {
        "any protocol".to_string()
    } else {
        list_text(proto, 4, |lo, hi| {
            if lo == hi {
                proto_name(lo)
            } else {
                format!("protocols {lo}-{hi}")
            }
        })
    };
    let port_protos = IvSet::from_intervals(
        ruleset::PORT_PROTOS
            .iter()
            .map(|p| (u128::from(*p), u128::from(*p)))
            .collect(),
    );
    let icmp_proto = IvSet::point(if fam == 0 { 1 } else { 58 });
    let ports = if proto.subset_of(&port_protos) {
        let d = cube.get(Dim::Dport);
        let s = cube.get(Dim::Sport);
        let mut t = if d.is_full(65535) {
            "any port".to_string()
        } else {
            format!("port {}", list_text(d, 6, range_text))
        };
        if !s.is_full(65535) {
            t.push_str(&format!(" from port {}", list_text(s, 4, range_text)));
        }
        t
    } else if proto.subset_of(&icmp_proto) {
        let t = cube.get(Dim::Icmp);
        if t.is_full(255) {
            "any type".to_string()
        } else {
            format!("type {}", list_text(t, 6, range_text))
        }
    } else {
        String::new()
    };
    let wire = c.ifaces.wire();
    let mut ifs = Vec::new();
    for (d, label) in [(Dim::Iif, "in"), (Dim::Oif, "out")] {
        let s = cube.get(d);
        if !s.is_empty() && !wire.subset_of(s) && s.first() != Some(0) {
            ifs.push(format!(
                "{label} {}",
                list_text(s, 3, |lo, _| c.ifaces.display(lo))
            ));
        }
    }
    let size_log2 = [Dim::Saddr, Dim::Daddr]
        .iter()
        .map(|d| {
            cube.get(*d)
                .intersect(&fam_range(fam))
                .count()
                .max(1.0)
                .log2()
        })
        .sum::<f64>()
        + if proto.subset_of(&port_protos) {
            cube.get(Dim::Dport).count().max(1.0).log2()
        } else {
            0.0
        }
        + proto.count().log2();
    Excess {
        family: if fam == 0 { Family::V4 } else { Family::V6 },
        source: addr(Dim::Saddr),
        destination: addr(Dim::Daddr),
        protocol,
        ports,
        interfaces: ifs.join(", "),
        rules: vec![rule],
        size_log2,
    }
}

fn range_text(lo: u128, hi: u128) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

fn list_text(s: &IvSet, max: usize, f: impl Fn(u128, u128) -> String) -> String {
    let mut parts: Vec<String> = s.0.iter().take(max).map(|&(a, b)| f(a, b)).collect();
    if s.0.len() > max {
        parts.push(format!("(+{} more)", s.0.len() - max));
    }
    parts.join(", ")
}

/// Addresses as CIDR blocks (or "any", or a plan set's name when it is exactly that set).
fn addr_text(fam: u8, s: &IvSet, plan: &Plan) -> String {
    if s.is_empty() {
        return "(none)".into();
    }
    if s == &fam_range(fam) {
        return "any".into();
    }
    for set in plan.sets.values() {
        let a = if fam == 0 {
            v4_set(&set.v4)
        } else {
            v6_set(&set.v6)
        };
        if !a.is_empty() && a == *s {
            return match set.kind {
                SetKind::Appliance => "appliance".into(),
                SetKind::Role => format!("role {}", set.name),
                _ => set.name.clone(),
            };
        }
    }
    let rest = fam_range(fam).subtract(s, u128::MAX);
    if rest.0.len() <= 2 && rest.count() < s.count() {
        let mut out = Vec::new();
        for &(lo, hi) in &rest.0 {
            out.extend(cidrs_of(fam, lo, hi));
        }
        if out.len() <= 4 {
            return format!("any except {}", out.join(", "));
        }
    }
    let mut cidrs = Vec::new();
    for &(lo, hi) in &s.0 {
        cidrs.extend(cidrs_of(fam, lo, hi));
        if cidrs.len() > 4 {
            break;
        }
    }
    let total: usize =
        s.0.iter()
            .map(|&(lo, hi)| cidrs_of(fam, lo, hi).len())
            .take(1000)
            .sum();
    let mut shown: Vec<String> = cidrs.into_iter().take(4).collect();
    if total > shown.len() {
        shown.push(format!("(+{} more blocks)", total - shown.len()));
    }
    shown.join(", ")
}

fn addr_string(fam: u8, v: u128) -> String {
    if fam == 0 {
        Ipv4Addr::from(v as u32).to_string()
    } else {
        Ipv6Addr::from(v).to_string()
    }
}

fn cidrs_of(fam: u8, lo: u128, hi: u128) -> Vec<String> {
    let bits: u32 = if fam == 0 { 32 } else { 128 };
    let mut out = Vec::new();
    let mut cur = lo;
    loop {
        // Largest block starting at cur that fits.
        let mut size_bits = cur.trailing_zeros().min(bits);
        while size_bits > 0 {
            let last = if size_bits >= 128 {
                u128::MAX
            } else {
                cur + ((1u128 << size_bits) - 1)
            };
            if last <= hi {
                break;
            }
            size_bits -= 1;
        }
        out.push(format!("{}/{}", addr_string(fam, cur), bits - size_bits));
        let last = if size_bits >= 128 {
            u128::MAX
        } else {
            cur + ((1u128 << size_bits) - 1)
        };
        if last >= hi || out.len() > 64 {
            break;
        }
        cur = last + 1;
    }
    out
}

fn packet_text(setup: &Setup, c: &Compiled, cube: &Cube) -> String {
    let fam = cube.get(Dim::Fam).first().unwrap_or(0) as u8;
    let first = |d: Dim| cube.get(d).first().unwrap_or(0);
    let proto = first(Dim::Proto);
    let mut stands = Vec::new();
    let mut addr = |d: Dim, tag: Dim| {
        // Prefer a global unicast example over ::2 for a name that may be anywhere.
        let set = cube.get(d);
        // A host, not a network's own address (`1.0.0.1`, not `1.0.0.0`).
        let v = if fam == 1 {
            let g = set.intersect(&IvSet::single(0x2000u128 << 112, u128::MAX));
            g.first_host().or(set.first_host()).unwrap_or(0)
        } else {
            set.first_host().unwrap_or(0)
        };
        let a = addr_string(fam, v);
        let t = first(tag) as usize;
        if t > 0 {
            stands.push(format!(
                "{a} stands for any address of {}",
                setup.tags.get(t).map_or("?", String::as_str)
            ));
        }
        a
    };
    let sport = if cube.get(Dim::Sport).contains(40000) {
        40000
    } else {
        first(Dim::Sport)
    };
    let (s, d) = (addr(Dim::Saddr, Dim::Stag), addr(Dim::Daddr, Dim::Dtag));
    let body = if ruleset::PORT_PROTOS.contains(&(proto as u8)) {
        let w = |a: String, p: u128| {
            if fam == 1 {
                format!("[{a}]:{p}")
            } else {
                format!("{a}:{p}")
            }
        };
        format!(
            "{} {} -> {}",
            proto_name(proto),
            w(s, sport),
            w(d, first(Dim::Dport))
        )
    } else if proto == 1 || proto == 58 {
        format!("{} type {} {s} -> {d}", proto_name(proto), first(Dim::Icmp))
    } else {
        format!("{} {s} -> {d}", proto_name(proto))
    };
    let mut ifs = Vec::new();
    let wire = c.ifaces.wire();
    for (d, label) in [(Dim::Iif, "in"), (Dim::Oif, "out")] {
        // Only when the interface matters: not "any interface" in host mode.
        if first(d) != 0 && !wire.subset_of(cube.get(d)) {
            ifs.push(format!("{label} {}", c.ifaces.display(first(d))));
        }
    }
    ifs.extend(stands);
    if ifs.is_empty() {
        body
    } else {
        format!("{body} ({})", ifs.join(", "))
    }
}

impl Report {
    pub fn to_json(&self) -> Value {
        let rule = |r: &RuleInfo| json!({"at": r.loc, "text": r.text});
        let excess = |e: &Excess| {
            json!({
                "family": e.family.label(),
                "source": e.source,
                "destination": e.destination,
                "protocol": e.protocol,
                "ports": e.ports,
                "interfaces": e.interfaces,
                "accepted_by": e.rules.iter().map(rule).collect::<Vec<_>>(),
            })
        };
        json!({
            "ruleset_format": self.format,
            "placement": self.placement,
            "all_allowed": self.all_allowed(),
            "flows": self.flows.iter().map(|f| json!({
                "id": f.id,
                "protocol": f.protocol.to_string(),
                "direction": f.direction,
                "ports": f.ports,
                "from": f.from,
                "to": f.to,
                "required": f.required,
                "verdict": f.verdict.name(),
                "example": f.example.as_ref().map(|(p, r)| json!({"packet": p, "dropped_by": rule(r)})),
                "allowed_by": f.allowed_by.iter().map(rule).collect::<Vec<_>>(),
                "unknown": f.unknown.iter().map(|(r, w)| json!({"rule": rule(r), "unsupported": w})).collect::<Vec<_>>(),
                "condition": (!f.condition.is_empty()).then(|| json!({
                    "allowed": if f.verdict == Verdict::AllowedIf { "if any matches" } else { "unless any matches" },
                    "rules": f.condition.iter().map(|(r, w)| json!({"rule": rule(r), "unsupported": w})).collect::<Vec<_>>(),
                })),
                "families": f.families.iter().map(|(fam, v)| json!({
                    "family": fam.label(),
                    "verdict": v.map_or("not-in-ruleset", Verdict::name),
                })).collect::<Vec<_>>(),
                "translated_by": f.translated_by.iter().map(rule).collect::<Vec<_>>(),
                "notes": f.notes,
            })).collect::<Vec<_>>(),
            "excess": self.excess.iter().map(excess).collect::<Vec<_>>(),
            "excess_more": self.excess_more,
            "maybe_excess": self.maybe_excess.iter().map(excess).collect::<Vec<_>>(),
            "excess_incomplete": self.excess_incomplete,
            "excess_by_rule": self.excess_by_rule.iter().map(|g| json!({
                "rule": rule(&g.rule),
                "lines": g.lines,
                "top": g.top.iter().map(excess).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "missing_families": self.missing_families.iter().map(|f| f.label()).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}

/// Ruleset file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesetFormat {
    NftJson,
    IptablesSave,
}

/// Tell the format from the text: nft JSON starts with `{`.
pub fn detect(text: &str) -> RulesetFormat {
    if text.trim_start().starts_with('{') {
        RulesetFormat::NftJson
    } else {
        RulesetFormat::IptablesSave
    }
}

/// Read a ruleset in the given (or detected) format; `ipsets` is `ipset save` output.
pub fn parse_ruleset(
    src: &crate::diag::Source,
    format: Option<RulesetFormat>,
    ipsets: Option<&crate::diag::Source>,
) -> Result<Ruleset, crate::diag::Errors> {
    match format.unwrap_or_else(|| detect(&src.text)) {
        RulesetFormat::NftJson => {
            if ipsets.is_some() {
                return Err(crate::diag::Diagnostic::error(
                    "--ipset is for iptables-save rulesets; nft JSON carries its sets",
                )
                .into());
            }
            nft::parse(src)
        }
        RulesetFormat::IptablesSave => {
            let sets = ipsets.map(iptables::parse_ipsets).transpose()?;
            iptables::parse(src, sets.as_ref())
        }
    }
}

/// The tables iptables-nft keeps in nftables (`ip filter`, `ip6 nat`, ...).
pub const IPTABLES_NFT_TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];

/// Does this nft ruleset hold rules iptables-nft loaded (`xt` expressions nft cannot show)?
pub fn has_xt(rs: &Ruleset) -> bool {
    rs.chains
        .iter()
        .any(|c| c.rules.iter().any(ruleset::Rule::is_xt))
}

/// A live ruleset read both ways: the nft tables iptables-nft owns are replaced by the
/// same tables as `iptables-save` / `ip6tables-save` decode them; nft's own tables stay.
pub fn merge_iptables_nft(nft: Ruleset, ipt: Ruleset) -> Ruleset {
    let owned = |scope: &str| {
        let mut w = scope.split(' ');
        matches!(
            (w.next(), w.next()),
            (Some("ip" | "ip6"), Some(t)) if IPTABLES_NFT_TABLES.contains(&t)
        )
    };
    let mut out = Ruleset {
        format: "nft-json + iptables-save",
        families: nft.families.union(&ipt.families),
        address_sets: nft.address_sets.clone(),
        ..Ruleset::default()
    };
    out.address_sets.extend(ipt.address_sets.iter().cloned());
    for n in nft.notes.iter().chain(&ipt.notes) {
        if !n.contains("iptables-nft") {
            out.notes.push(n.clone());
        }
    }
    out.notes.push(
        "the tables iptables-nft loaded were read through iptables-save and ip6tables-save, which decode their `xt` matches"
            .into(),
    );
    for part in [nft, ipt] {
        let mut index = vec![None; part.chains.len()];
        for (i, c) in part.chains.into_iter().enumerate() {
            if part.format == "nft-json" && owned(&c.scope) {
                continue;
            }
            index[i] = Some(out.chains.len());
            out.chains.push(c);
        }
        for (key, i) in part.by_name {
            if let Some(j) = index[i] {
                out.by_name.insert(key, j);
            }
        }
    }
    out
}

/// One concrete packet, for checking the model against the kernel packet by packet.
#[derive(Debug, Clone)]
pub struct Packet {
    pub iif: String,
    pub oif: String,
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub icmp_type: u8,
}

/// Decide single packets with a compiled ruleset (the same evaluator as the audit).
pub struct Decider<'a>(Compiled<'a>);

impl<'a> Decider<'a> {
    /// `ifaces`: every interface name the packets will use.
    pub fn new(rs: &'a Ruleset, ifaces: &[String]) -> Self {
        Decider(Compiled::new(rs, &HashMap::new(), ifaces))
    }

    /// What the ruleset does with the first packet of a new connection along `hooks`.
    pub fn decide(&self, hooks: &[Hook], p: &Packet) -> Kind {
        let c = &self.0;
        let fam: u8 = if p.src.is_ipv4() { 0 } else { 1 };
        let a = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(v) => u128::from(u32::from(v)),
            std::net::IpAddr::V6(v) => u128::from(v),
        };
        let ifid = |n: &str| -> IvSet {
            if n.is_empty() {
                IvSet::point(0)
            } else {
                c.ifaces.matching(&[n.to_string()])
            }
        };
        let mut cube = Cube::full();
        cube.set(Dim::Fam, IvSet::point(fam.into()));
        cube.set(Dim::Iif, ifid(&p.iif));
        cube.set(Dim::Oif, ifid(&p.oif));
        cube.set(Dim::Saddr, IvSet::point(a(p.src)));
        cube.set(Dim::Daddr, IvSet::point(a(p.dst)));
        cube.set(Dim::Proto, IvSet::point(p.proto.into()));
        if ruleset::PORT_PROTOS.contains(&p.proto) {
            cube.set(Dim::Sport, IvSet::point(p.sport.into()));
            cube.set(Dim::Dport, IvSet::point(p.dport.into()));
        } else {
            cube.set(Dim::Sport, IvSet::point(0));
            cube.set(Dim::Dport, IvSet::point(0));
        }
        cube.set(Dim::Icmp, IvSet::point(p.icmp_type.into()));
        cube.set(Dim::Stag, IvSet::point(0));
        cube.set(Dim::Dtag, IvSet::point(0));
        cube.set(Dim::Flow, IvSet::point(0));
        let ds = c.run_path(hooks, vec![cube]);
        if ds.iter().any(|d| d.kind == Kind::Unknown) {
            Kind::Unknown
        } else if ds.iter().any(|d| d.kind == Kind::Drop) {
            Kind::Drop
        } else {
            Kind::Accept
        }
    }
}
