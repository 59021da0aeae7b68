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
use eval::{Compiled, Decision, Kind, RuleRef};
use ruleset::{proto_name, Hook, Ruleset};
use space::{coalesce, subtract, Cube, Dim, IvSet, Region};

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
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::Partial => "partial",
            Verdict::Unknown => "unknown",
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
    pub notes: Vec<String>,
}

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
    pub notes: Vec<String>,
}

pub const EXCESS_SHOWN: usize = 20;

pub const SEMANTICS: &str = "evaluated for the first packet of a new connection: conntrack state new, TCP flag SYN only, source port 1024-65535";

impl Report {
    pub fn all_allowed(&self) -> bool {
        self.flows.iter().all(|f| f.verdict == Verdict::Allowed)
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

/// The cubes of one planned flow; `true` when a peer's addresses are not known.
fn flow_cubes(
    plan: &Plan,
    setup: &Setup,
    c: &Compiled,
    f: &PlannedFlow,
    k: u32,
) -> (Region, Vec<String>) {
    let host = matches!(plan.placement, Placement::Host);
    let app = plan.appliance();
    let mut out = Vec::new();
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
                cube.set(Dim::Daddr, da);
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
                }
            }
        }
    }
    (out, unresolved)
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
                to.set(Dim::Iif, others);
                to.set(Dim::Oif, app_if);
                let to = subtract(vec![to], std::slice::from_ref(&from));
                let mut r = vec![from];
                r.extend(to);
                out.push((path(plan, Direction::Internal), r));
            }
        }
    }
    out
}

fn rule_info(rs: &Ruleset, by: RuleRef) -> RuleInfo {
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

/// Run the audit.
pub fn audit(plan: &Plan, rs: &Ruleset) -> Report {
    let setup = setup(plan);
    let c = Compiled::new(rs, &setup.bindings, &setup.ifaces);
    let host = matches!(plan.placement, Placement::Host);
    let mut notes: Vec<String> = vec![SEMANTICS.to_string()];
    notes.extend(rs.notes.iter().cloned());

    // Flows, grouped by path, all in one pass per path.
    let mut per_flow: Vec<(Region, Vec<String>)> = Vec::new();
    let mut by_path: BTreeMap<&'static [Hook], Region> = BTreeMap::new();
    let mut uncovered: Vec<Vec<Cube>> = vec![Vec::new(); plan.flows.len()];
    let mut skipped_internal = Vec::new();
    for (k, f) in plan.flows.iter().enumerate() {
        if host && f.direction == Direction::Internal {
            skipped_internal.push(f.id.clone());
            per_flow.push((Vec::new(), Vec::new()));
            continue;
        }
        let (cubes, unresolved) = flow_cubes(plan, &setup, &c, f, k as u32);
        // Families the ruleset says nothing about.
        let mut inside = Vec::new();
        for cube in &cubes {
            if cube.get(Dim::Fam).overlaps(&rs.families) {
                inside.push(cube.clone().with(Dim::Fam, &rs.families));
            }
            let out = cube.clone().with(Dim::Fam, &rs.families.complement(1));
            if !out.is_empty() {
                uncovered[k].push(out);
            }
        }
        by_path
            .entry(path(plan, f.direction))
            .or_default()
            .extend(inside);
        per_flow.push((cubes, unresolved));
    }
    if !skipped_internal.is_empty() {
        notes.push(format!(
            "flow(s) {} do not involve the appliance; a host firewall never sees them",
            skipped_internal.join(", ")
        ));
    }
    let mut decisions: Vec<Decision> = Vec::new();
    for (hooks, region) in by_path {
        decisions.extend(c.run_path(hooks, region));
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
        let has = |kind: Kind| ds.iter().any(|d| d.kind == kind);
        let (acc, drop, unk) = (
            has(Kind::Accept),
            has(Kind::Drop),
            has(Kind::Unknown) || !uncovered[k].is_empty(),
        );
        let mut notes_f = Vec::new();
        let verdict = if cubes.is_empty() {
            notes_f.push("no packet to check: the flow's peers have no address in a family the appliance has".to_string());
            Verdict::Unknown
        } else {
            match (acc, drop, unk) {
                (true, false, false) => Verdict::Allowed,
                (false, true, false) => Verdict::Blocked,
                (_, true, _) => Verdict::Partial,
                _ => Verdict::Unknown,
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
        let mut unknown: Vec<(RuleInfo, Vec<String>)> = Vec::new();
        for d in ds.iter().filter(|d| d.kind == Kind::Unknown) {
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
        if !uncovered[k].is_empty() {
            let fams: Vec<&str> = uncovered[k]
                .iter()
                .filter_map(|c| c.get(Dim::Fam).first())
                .map(|f| if f == 0 { "IPv4" } else { "IPv6" })
                .collect();
            unknown.push((
                RuleInfo {
                    loc: "(ruleset)".into(),
                    text: String::new(),
                },
                vec![format!("no {} rules in the ruleset file", fams.join("/"))],
            ));
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
            ports: ports_text(f),
            from: end_text(&f.source),
            to: end_text(&f.destination),
            required: f.required,
            verdict,
            example,
            allowed_by,
            unknown,
            notes: notes_f,
        });
    }

    // Excess: everything to or from the appliance, accepted, minus what the plan needs.
    let mut needed: Region = Vec::new();
    for (cubes, _) in &per_flow {
        for cube in cubes {
            let mut n = cube.clone();
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
        for d in c.run_path(hooks, inside) {
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
        notes,
    }
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

fn ports_text(f: &PlannedFlow) -> String {
    if let Some(t) = f.icmp_type {
        return t.name().to_string();
    }
    f.ports
        .iter()
        .map(|r| {
            if r.low == r.high {
                r.low.to_string()
            } else {
                format!("{}-{}", r.low, r.high)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn end_text(end: &crate::plan::FlowEnd) -> String {
    end.peers
        .iter()
        .map(|p| match p.kind {
            SetKind::Appliance => "appliance".to_string(),
            _ => p.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
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
                "notes": f.notes,
            })).collect::<Vec<_>>(),
            "excess": self.excess.iter().map(excess).collect::<Vec<_>>(),
            "excess_more": self.excess_more,
            "maybe_excess": self.maybe_excess.iter().map(excess).collect::<Vec<_>>(),
            "excess_incomplete": self.excess_incomplete,
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
