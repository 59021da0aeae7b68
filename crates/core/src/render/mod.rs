//! Renderers: from a checked [`Plan`] to firewall configuration.
//!
//! The shared base does the work every target needs and none should do differently:
//! - [`lower`] turns planned flows into abstract [`Rule`]s: one per (chain, family,
//!   interfaces, source set, destination set, protocol), with the ports of every flow that
//!   shares those merged. So the number of rules grows with the number of distinct peers,
//!   not with the number of flows; sets carry the addresses.
//! - It never widens: a static set with no address in a family produces no rule for that
//!   family, and a flow left with no rule at all is reported as a warning.
//! - Each target declares its [`Capabilities`]; before rendering, the base takes out every
//!   rule the target cannot express and reports all of them at once.
//!
//! Targets are listed in one table, [`TARGETS`]. A target gets only `&Plan` and the lowered
//! rules, and must put no text from the input into its output except identifiers and DNS
//! names (validated to `[a-z0-9.*-]`) and comment lines passed through [`comment_text`].

pub mod asa;
pub mod cloud;
pub mod firewalld;
pub mod fortigate;
pub mod iptables;
pub mod nftables;
pub mod objects;
pub mod opnsense;
pub mod panos;
pub mod pf;
pub mod sheet;
pub mod srx;
pub mod windows;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::diag::Diagnostic;
use crate::model::{merge_ranges, IcmpType, PortRange, Protocol};
use crate::plan::{AddressSet, Direction, Plan, SetKind};
use crate::site::Placement;

/// IP family of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Where a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chain {
    Input,
    Output,
    Forward,
}

/// A set reference in a rule: which plan set, in which family. A group (see [`lower`]) has
/// the id `group:...` and lists the plan sets it merges in `members`; [`set_of`] gives the
/// set a target declares for either.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetRef {
    pub set: String,
    pub family: Family,
    /// Plan set ids merged into this group; empty for a plan set.
    pub members: Vec<String>,
}

impl SetRef {
    pub fn plain(set: &str, family: Family) -> SetRef {
        SetRef {
            set: set.to_string(),
            family,
            members: Vec::new(),
        }
    }
}

/// The set behind a reference: the plan's own, or for a group one made here: dynamic, no
/// static address, named `dns_`/`wild_` + its match + a fingerprint of match and members.
pub fn set_of<'a>(plan: &'a Plan, sref: &SetRef) -> Option<Cow<'a, AddressSet>> {
    if sref.members.is_empty() {
        return plan.set(&sref.set).map(Cow::Borrowed);
    }
    let members: Vec<&AddressSet> = sref.members.iter().filter_map(|m| plan.set(m)).collect();
    let first = members.first()?;
    Some(Cow::Owned(AddressSet {
        id: sref.set.clone(),
        kind: first.kind,
        name: sref
            .set
            .rsplit_once(':')
            .map_or(sref.set.as_str(), |(_, b)| b)
            .to_string(),
        v4: Vec::new(),
        v6: Vec::new(),
        dynamic: true,
        pinned: false,
        hosts: Vec::new(),
        probe_name: None,
        members: members.iter().map(|m| m.name.clone()).collect(),
    }))
}

/// The sets of the rules that are filled at run time, each with the unpinned DNS names or
/// wildcards whose addresses it holds: a plan set holds its own, a group its members'.
pub fn dynamic_feeds<'r, 'p>(
    plan: &'p Plan,
    rules: &'r [Rule],
) -> Vec<(&'r SetRef, Vec<&'p AddressSet>)> {
    let refs: BTreeSet<&SetRef> = rules
        .iter()
        .flat_map(|r| [&r.saddr, &r.daddr])
        .flatten()
        .collect();
    let mut out = Vec::new();
    for sref in refs {
        let ids: Vec<&String> = if sref.members.is_empty() {
            vec![&sref.set]
        } else {
            sref.members.iter().collect()
        };
        let fed: Vec<&AddressSet> = ids
            .into_iter()
            .filter_map(|id| plan.set(id))
            .filter(|s| {
                s.dynamic && !s.pinned && matches!(s.kind, SetKind::Dns | SetKind::Wildcard)
            })
            .collect();
        if !fed.is_empty() {
            out.push((sref, fed));
        }
    }
    out
}

/// One abstract accept rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: Chain,
    pub family: Family,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub saddr: Option<SetRef>,
    pub daddr: Option<SetRef>,
    pub protocol: Protocol,
    /// Merged destination ports (TCP/UDP).
    pub ports: Vec<PortRange>,
    /// ICMP types (ICMP).
    pub icmp_types: Vec<IcmpType>,
    /// Flow ids this rule serves.
    pub flows: BTreeSet<String>,
    /// Connections this rule accepts get the FTP conntrack helper, so the data connections
    /// they announce (active and passive) are RELATED to them (flows flagged
    /// `needs_ftp_helper`; such flows never share a rule with others).
    pub ftp_helper: bool,
}

/// How a target keeps the peers given by DNS name current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsModel {
    /// Sets that `portolan sync` and `portolan dns-proxy` fill at run time.
    FilledSets,
    /// The firewall resolves FQDN address objects itself; `wildcard`: `*.` names too.
    NativeFqdn { wildcard: bool },
    /// Names are resolved when the configuration is loaded (refresh by reloading).
    ResolvedAtLoad,
    /// No DNS at all: only names the site pins under `[hosts]` can be expressed.
    PinnedOnly,
}

/// Where a target's rules sit, and so which lowering it consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainModel {
    /// Netfilter hooks: input/output on the appliance, or forward on a gateway ([`Rule`]s).
    Hooks,
    /// Named objects and policies between zones or interfaces ([`objects::Objects`]).
    Objects,
    /// The planned flows themselves, one line per flow and peer pair (the sheets).
    Flows,
}

/// What a target can express. The base checks every flow against it before rendering and
/// reports, all at once, what it leaves out.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    pub model: ChainModel,
    pub dns: DnsModel,
    /// Matching on input/output interface names (needed for gateway mode).
    pub interface_match: bool,
    /// IPv6 rules.
    pub ipv6: bool,
    /// Matching on ICMP types.
    pub icmp_types: bool,
    /// Renders for the appliance itself (placement host).
    pub host: bool,
    /// Renders for a firewall in front of it (placement gateway).
    pub gateway: bool,
    /// Longest in-kernel rule comment (or policy comment), in bytes.
    pub max_comment_len: usize,
    /// Longest set (or object) name, in bytes.
    pub max_set_name_len: usize,
    /// What starts a comment line in the output; free text (a flow's function, the profile
    /// name) appears nowhere else.
    pub comment: &'static str,
}

/// Output of a target.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The configuration text.
    pub text: String,
    /// Named parts (e.g. `ipset`, `v4`, `v6` for iptables) for tools that take one each.
    pub parts: Vec<(String, String)>,
    /// Number of accept rules for planned flows (not counting the fixed preamble).
    pub rule_count: usize,
    pub warnings: Vec<Diagnostic>,
}

impl Rendered {
    /// Nothing rendered (a backend handed the wrong lowering; the base never does that).
    pub fn empty() -> Rendered {
        Rendered {
            text: String::new(),
            parts: Vec::new(),
            rule_count: 0,
            warnings: Vec::new(),
        }
    }
}

/// Language of fixed texts where a target has any (the change-request sheets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    De,
}

/// Options of a rendering that are not in the plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub lang: Lang,
}

impl Capabilities {
    /// A firewall in front of the appliance that works with objects and policies, with
    /// native FQDN objects (no wildcards), ICMP types, `#` comments: the vendor targets
    /// start from this and change what differs.
    pub const GATEWAY_OBJECTS: Capabilities = Capabilities {
        model: ChainModel::Objects,
        dns: DnsModel::NativeFqdn { wildcard: false },
        interface_match: true,
        ipv6: true,
        icmp_types: true,
        host: false,
        gateway: true,
        max_comment_len: 255,
        max_set_name_len: 63,
        comment: "#",
    };
    /// The same for the appliance's own host (and its cloud): no interfaces, no DNS objects.
    pub const HOST_OBJECTS: Capabilities = Capabilities {
        dns: DnsModel::PinnedOnly,
        interface_match: false,
        host: true,
        gateway: false,
        ..Capabilities::GATEWAY_OBJECTS
    };
}

impl Lowered {
    /// Render the objects of an object-based target with `f` (nothing for another lowering,
    /// which the base never hands such a target).
    pub fn objects_with(&self, f: impl FnOnce(&objects::Objects) -> Rendered) -> Rendered {
        match self {
            Lowered::Objects(o) => f(o),
            _ => Rendered::empty(),
        }
    }
}

/// What a backend consumes: rules on netfilter hooks, or objects and policies.
#[derive(Debug, Clone)]
pub enum Lowered {
    Rules(Vec<Rule>),
    Objects(objects::Objects),
    /// Nothing lowered: the backend reads the plan's flows.
    Flows,
}

/// A firewall target (a backend): one module each, listed in [`TARGETS`]. The CLI's
/// `--target` values and their help, the golden test cases and the README's list all come
/// from that table.
pub trait Target: Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Extension of the rendered file (the golden file of a case is `NAME.EXT`).
    fn extension(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// Render what the base lowered for this target's [`ChainModel`], after it took out
    /// (and reported) what the target cannot express.
    fn render(&self, plan: &Plan, lowered: &Lowered, opts: &Options) -> Rendered;
    /// The name of the set that holds a plan set's addresses in `family`, for targets whose
    /// sets portolan fills at run time (sync, dns-proxy and the audit use it).
    fn set_name(&self, _set: &AddressSet, _family: Family) -> Option<String> {
        None
    }
}

/// Every target, by name. Add a target here, never in an if-chain.
pub static TARGETS: &[&dyn Target] = &[
    &nftables::Nftables,
    &iptables::Iptables,
    &fortigate::Fortigate,
    &panos::Panos,
    &asa::Asa,
    &srx::Srx,
    &pf::Pf,
    &opnsense::Opnsense,
    &firewalld::Firewalld,
    &windows::Windows,
    &cloud::AwsCloudformation,
    &cloud::AwsTerraform,
    &cloud::AzureNsg,
    &cloud::Gcp,
    &cloud::GcpTerraform,
    &sheet::SheetCsv,
    &sheet::SheetMarkdown,
    &sheet::SheetHtml,
];

pub fn target(name: &str) -> Option<&'static dyn Target> {
    TARGETS.iter().copied().find(|t| t.name() == name)
}

/// Lower, check and render in one go.
pub fn render(plan: &Plan, target: &dyn Target) -> Rendered {
    render_with(plan, target, &Options::default())
}

/// [`render`] with options.
pub fn render_with(plan: &Plan, target: &dyn Target, opts: &Options) -> Rendered {
    let caps = target.capabilities();
    let host = matches!(plan.placement, Placement::Host);
    if (host && !caps.host) || (!host && !caps.gateway) {
        let (what, help) = if host {
            (
                "a firewall in front of the appliance: the site needs placement mode \"gateway\"",
                "set [placement] mode = \"gateway\", appliance_interface and [placement.zones] (the firewall's interface or zone names)",
            )
        } else {
            (
                "the appliance's own firewall: the site needs placement mode \"host\"",
                "use placement mode \"host\", or a target for gateways",
            )
        };
        return Rendered {
            text: String::new(),
            parts: Vec::new(),
            rule_count: 0,
            warnings: vec![Diagnostic::error(format!(
                "target {} renders for {what}",
                target.name()
            ))
            .with_help(help)],
        };
    }
    let (lowered, mut warnings) = match caps.model {
        ChainModel::Hooks => {
            let (rules, mut warnings) = lower(plan);
            let (rules, rejected) = check_capabilities(plan, &rules, caps, target.name());
            warnings.extend(rejected);
            (Lowered::Rules(rules), warnings)
        }
        ChainModel::Objects => {
            let (o, w) = objects::lower(plan, &caps, target.name());
            (Lowered::Objects(o), w)
        }
        ChainModel::Flows => (Lowered::Flows, Vec::new()),
    };
    let mut out = target.render(plan, &lowered, opts);
    warnings.append(&mut out.warnings);
    out.warnings = warnings;
    out
}

/// The rules of a [`Lowered`] (none for objects).
pub fn rules_of(lowered: &Lowered) -> &[Rule] {
    match lowered {
        Lowered::Rules(r) => r,
        Lowered::Objects(_) | Lowered::Flows => &[],
    }
}

type GroupKey = (
    bool,
    Chain,
    Family,
    Option<String>,
    Option<String>,
    Option<SetRef>,
    Option<SetRef>,
    Protocol,
);

/// Ports, ICMP types and flow ids collected for one group.
type GroupValue = (Vec<PortRange>, BTreeSet<IcmpType>, BTreeSet<String>);

fn families(set: &AddressSet) -> Vec<Family> {
    let mut f = Vec::new();
    if !set.v4.is_empty() || set.dynamic {
        f.push(Family::V4);
    }
    if !set.v6.is_empty() || set.dynamic {
        f.push(Family::V6);
    }
    f
}

/// Planned flows to abstract rules, grouped; warnings for flows that got no rule.
pub fn lower(plan: &Plan) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut warnings = Vec::new();
    let host = matches!(plan.placement, Placement::Host);
    let app_families = families(plan.appliance());
    let mut groups: BTreeMap<GroupKey, GroupValue> = BTreeMap::new();
    let mut served: BTreeSet<(String, crate::model::Protocol)> = BTreeSet::new();
    let mut host_internal: BTreeSet<String> = BTreeSet::new();

    for flow in &plan.flows {
        if host && flow.direction == Direction::Internal {
            host_internal.insert(flow.id.clone());
            continue;
        }
        for src in &flow.source.peers {
            for dst in &flow.destination.peers {
                let (Some(sset), Some(dset)) = (plan.set(&src.set), plan.set(&dst.set)) else {
                    continue;
                };
                for fam in [Family::V4, Family::V6] {
                    if !app_families.contains(&fam) && flow.direction != Direction::Internal {
                        continue;
                    }
                    if !families(sset).contains(&fam) || !families(dset).contains(&fam) {
                        continue;
                    }
                    // In host mode the appliance side is the host itself: no address match
                    // (it would break on addresses the site does not list, e.g. IPv6
                    // temporary addresses); the peer side always has one.
                    let sref = |s: &AddressSet| {
                        (!(host && s.kind == SetKind::Appliance)).then(|| SetRef::plain(&s.id, fam))
                    };
                    let chain = match (host, flow.direction) {
                        (true, Direction::Outbound) => Chain::Output,
                        (true, _) => Chain::Input,
                        (false, _) => Chain::Forward,
                    };
                    let key = (
                        flow.flags.contains(&crate::model::Flag::NeedsFtpHelper),
                        chain,
                        fam,
                        src.interface.clone(),
                        dst.interface.clone(),
                        sref(sset),
                        sref(dset),
                        flow.protocol,
                    );
                    let g = groups.entry(key).or_default();
                    g.0.extend(flow.ports.iter().copied());
                    g.1.extend(flow.icmp_type);
                    g.2.insert(flow.id.clone());
                    served.insert((flow.id.clone(), flow.protocol));
                }
            }
        }
    }

    for id in &host_internal {
        warnings.push(
            Diagnostic::warning(format!(
                "flow `{id}` does not involve the appliance; a host firewall never sees it, so it gets no rule"
            ))
            .with_help("use placement mode \"gateway\" for a firewall that forwards such traffic"),
        );
    }
    let mut missing: BTreeSet<&str> = BTreeSet::new();
    for flow in &plan.flows {
        let skipped_internal = host && flow.direction == Direction::Internal;
        if !(served.contains(&(flow.id.clone(), flow.protocol)) || skipped_internal) {
            missing.insert(&flow.id);
        }
    }
    for id in missing {
        warnings.push(
            Diagnostic::warning(format!(
                "flow `{id}` gets no rule: its peers have no address in a family the appliance has"
            ))
            .with_help(
                "give the appliance and the peer addresses of the same family (IPv4 or IPv6)",
            ),
        );
    }

    let rules = groups
        .into_iter()
        .map(
            |(
                (ftp_helper, chain, family, iif, oif, saddr, daddr, protocol),
                (ports, icmp, flows),
            )| Rule {
                ftp_helper,
                chain,
                family,
                iif,
                oif,
                saddr,
                daddr,
                protocol,
                ports: merge_ranges(ports),
                icmp_types: icmp.into_iter().collect(),
                flows,
            },
        )
        .collect();
    (merge_dynamic(plan, rules), warnings)
}

/// Rules that differ only in one dynamic peer (an unpinned DNS name, or an unpinned wildcard)
/// become one rule on a group set holding all their addresses. The kernel looks a set up by
/// name, walking the table's list of sets, for every element message and every rule: ten
/// thousand names with a set each made `sync` spend seconds in that walk, and every packet
/// walk ten thousand rules. A group is named by its match and a fingerprint of match and
/// members, so a set loaded before holds exactly the names it holds now, or it has another
/// name (its addresses are then not carried over by `load`; never more than the rule allows).
fn merge_dynamic(plan: &Plan, rules: Vec<Rule>) -> Vec<Rule> {
    let dynamic = |s: &Option<SetRef>| {
        s.as_ref()
            .filter(|r| r.members.is_empty())
            .and_then(|r| plan.set(&r.set))
            .filter(|s| {
                s.dynamic && !s.pinned && matches!(s.kind, SetKind::Dns | SetKind::Wildcard)
            })
            .map(|s| s.kind)
    };
    // Key: the rule without the dynamic peer and without its flows; with `any_family`, the
    // same for both families (for the fingerprint: a group's IPv4 and IPv6 sets share a name).
    let shape = |r: &Rule, to: bool, kind: SetKind, any_family: bool| {
        let mut k = r.clone();
        k.flows.clear();
        if to {
            k.daddr = None;
        } else {
            k.saddr = None;
        }
        if any_family {
            k.family = Family::V4;
            for s in [&mut k.saddr, &mut k.daddr].into_iter().flatten() {
                s.family = Family::V4;
            }
        }
        format!("{k:?} to={to} {kind:?}")
    };
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        let (to, kind) = match (dynamic(&r.daddr), dynamic(&r.saddr)) {
            (Some(k), _) => (true, k),
            (None, Some(k)) => (false, k),
            (None, None) => continue,
        };
        groups.entry(shape(r, to, kind, false)).or_default().push(i);
    }
    let mut merged: BTreeMap<usize, Rule> = BTreeMap::new();
    let mut gone: BTreeSet<usize> = BTreeSet::new();
    for idx in groups.into_values().filter(|v| v.len() > 1) {
        let first = &rules[idx[0]];
        let to = dynamic(&first.daddr).is_some();
        let side = |r: &Rule| {
            if to {
                r.daddr.clone()
            } else {
                r.saddr.clone()
            }
        };
        let members: Vec<String> = idx
            .iter()
            .filter_map(|&i| side(&rules[i]).map(|s| s.set))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let kind = dynamic(&side(first)).unwrap_or(SetKind::Dns);
        let fp = fnv32(&format!(
            "{} {}",
            shape(first, to, kind, true),
            members.join(" ")
        ));
        let kind = if kind == SetKind::Wildcard {
            "wild"
        } else {
            "dns"
        };
        let what = match first.protocol {
            Protocol::Icmp => first
                .icmp_types
                .iter()
                .map(|t| t.name().to_string())
                .collect::<Vec<_>>()
                .join("_"),
            _ => first
                .ports
                .iter()
                .map(PortRange::to_string)
                .collect::<Vec<_>>()
                .join("_"),
        };
        let body = format!(
            "{}_{}_{what}_{fp:08x}",
            if to { "to" } else { "from" },
            first.protocol
        );
        let gref = SetRef {
            set: format!("group:{kind}:{body}"),
            family: first.family,
            members,
        };
        let mut rule = first.clone();
        if to {
            rule.daddr = Some(gref);
        } else {
            rule.saddr = Some(gref);
        }
        for &i in &idx[1..] {
            rule.flows.extend(rules[i].flows.iter().cloned());
            gone.insert(i);
        }
        merged.insert(idx[0], rule);
    }
    rules
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(i, r)| merged.remove(&i).unwrap_or(r))
        .collect()
}

/// Take out rules the target cannot express; report each.
pub fn check_capabilities(
    plan: &Plan,
    rules: &[Rule],
    caps: Capabilities,
    target: &str,
) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut keep = Vec::new();
    let mut warnings = Vec::new();
    for r in rules {
        let mut why = Vec::new();
        if !caps.ipv6 && r.family == Family::V6 {
            why.push("IPv6".to_string());
        }
        if !caps.interface_match && (r.iif.is_some() || r.oif.is_some()) {
            why.push("interface names".to_string());
        }
        for s in [&r.saddr, &r.daddr].into_iter().flatten() {
            if caps.dns != DnsModel::FilledSets && set_of(plan, s).is_some_and(|s| s.dynamic) {
                why.push(format!("DNS-filled set {}", s.set));
            }
        }
        if why.is_empty() {
            keep.push(r.clone());
        } else {
            warnings.push(Diagnostic::warning(format!(
                "target {target} cannot express {} for flow(s) {}; the rule is left out",
                why.join(", "),
                r.flows.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    (keep, warnings)
}

/// Gateway mode with `others = "accept"`: the forward chain accepts what does not involve the
/// appliance, and drops unplanned traffic to or from it with explicit rules at the end.
pub fn others_accepted(plan: &Plan) -> bool {
    matches!(
        plan.placement,
        Placement::Gateway {
            others: crate::site::Others::Accept,
            ..
        }
    )
}

/// The appliance's set references for the families it has (for the closing drop rules).
pub fn appliance_refs(plan: &Plan) -> Vec<SetRef> {
    let a = plan.appliance();
    let mut v = Vec::new();
    if !a.v4.is_empty() {
        v.push(SetRef::plain(&a.id, Family::V4));
    }
    if !a.v6.is_empty() {
        v.push(SetRef::plain(&a.id, Family::V6));
    }
    v
}

/// Make free text safe for a `#` comment line in any target: control characters (including
/// newlines and the Unicode line separators) become spaces, so the text cannot end the
/// comment and start a directive.
pub fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// `flows: a b c`, cut to `max` bytes with a count of what was left out. Flow ids are
/// validated identifiers, so they need no escaping inside a quoted comment.
pub fn flow_comment(flows: &BTreeSet<String>, max: usize) -> String {
    let mut out = String::from("flows:");
    let total = flows.len();
    for (i, f) in flows.iter().enumerate() {
        let more = format!(" +{} more", total - i);
        if out.len() + 1 + f.len() + if i + 1 < total { more.len() } else { 0 } > max {
            out.push_str(&more);
            return out;
        }
        out.push(' ');
        out.push_str(f);
    }
    out
}

/// FNV-1a, 32 bits: a stable short hash for shortening names (no randomness, same on every run).
pub fn fnv32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A target name for a plan set: `prefix` + the set's name, shortened with a hash when longer
/// than `max`. Plan set names contain only `[a-z0-9.*:/-]`; `*`, `:` and `/` are mapped.
pub fn set_name(set: &AddressSet, family: Family, max: usize, style: NameStyle) -> String {
    let kind = match set.kind {
        SetKind::Appliance => "appliance",
        SetKind::Role => "role",
        SetKind::Dns => "dns",
        SetKind::Wildcard => "wild",
        SetKind::Network => "net",
    };
    let body: String = match set.kind {
        SetKind::Appliance => String::new(),
        SetKind::Wildcard => set.name.trim_start_matches("*.").to_string(),
        _ => set.name.replace([':', '/'], "_"),
    };
    let full = match style {
        NameStyle::Nft => {
            if body.is_empty() {
                format!("{kind}_{}", family.suffix())
            } else {
                format!("{kind}_{body}_{}", family.suffix())
            }
        }
        NameStyle::Ipset => {
            let f = if family == Family::V4 { "4" } else { "6" };
            if body.is_empty() {
                format!("pt{f}-{kind}")
            } else {
                format!("pt{f}-{kind}-{body}")
            }
        }
    };
    if full.len() <= max {
        return full;
    }
    let hash = format!("{:08x}", fnv32(&full));
    let keep = max.saturating_sub(hash.len() + 1);
    let mut cut = full[..keep.min(full.len())].to_string();
    while cut.ends_with(['.', '-', '_']) {
        cut.pop();
    }
    format!("{cut}-{hash}")
}

/// Naming conventions of the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStyle {
    Nft,
    Ipset,
}

/// A header naming what was rendered, as `#` comment lines.
pub fn header(plan: &Plan, target: &str, load: &str) -> String {
    let placement = match &plan.placement {
        Placement::Host => "host (rules on the appliance: input/output)".to_string(),
        Placement::Gateway {
            appliance_interface,
            ..
        } => format!("gateway (forward path; appliance behind {appliance_interface})"),
    };
    let features = if plan.features.is_empty() {
        "none".to_string()
    } else {
        plan.features.join(", ")
    };
    format!(
        "# Generated by portolan {} for target {target}; do not edit, regenerate.\n\
         # profile: {} ({})\n\
         # placement: {placement}\n\
         # features: {features}\n\
         # load: {load}\n",
        env!("CARGO_PKG_VERSION"),
        plan.profile,
        comment_text(&plan.profile_name),
    )
}

/// Flows by id, built once per render so comment lines cost O(1) per flow.
pub struct FlowIndex<'a>(BTreeMap<&'a str, &'a crate::plan::PlannedFlow>);

impl<'a> FlowIndex<'a> {
    pub fn new(plan: &'a Plan) -> Self {
        let mut m = BTreeMap::new();
        for f in &plan.flows {
            m.entry(f.id.as_str()).or_insert(f);
        }
        FlowIndex(m)
    }

    /// One `#` line per flow a rule serves: `# id [required|feature X]: function` (sanitized).
    pub fn lines(&self, rule: &Rule, indent: &str) -> String {
        self.lines_for(&rule.flows, &format!("{indent}#"))
    }

    /// The same lines for a set of flow ids, each starting with `prefix` (the format's comment
    /// start).
    pub fn lines_for(&self, flows: &BTreeSet<String>, prefix: &str) -> String {
        let mut out = String::new();
        for id in flows {
            let f = self.0.get(id.as_str());
            let func = f.map(|f| comment_text(&f.function)).unwrap_or_default();
            let req = match f.and_then(|f| f.feature.as_deref()) {
                Some(feat) => format!(" [feature {feat}]"),
                None => " [required]".to_string(),
            };
            out.push_str(&format!("{prefix} {id}{req}: {func}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_comment_fits_the_limit() {
        let flows: BTreeSet<String> = (0..40).map(|i| format!("flow-number-{i}")).collect();
        let c = flow_comment(&flows, 128);
        assert!(c.len() <= 128, "{c}");
        assert!(c.ends_with("more"));
        let few: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(flow_comment(&few, 128), "flows: a b");
    }

    #[test]
    fn comment_text_removes_line_breaks() {
        assert_eq!(comment_text("a\nb\rc\u{2028}d"), "a b c d");
    }
}
