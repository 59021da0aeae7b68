//! The plan: portolan's one intermediate representation.
//!
//! A plan is a profile bound to a site: the flows that are on (required ones, those of enabled
//! features, the chosen option of each alternative), one per protocol, with both ends resolved
//! to named address sets. Everything downstream (renderers, and later probe, sync and audit)
//! reads a [`Plan`] and never the profile or site directly.
//!
//! Meaning of the parts:
//! - [`AddressSet`]: a named set of addresses. Static sets (the appliance, roles, literal
//!   networks, pinned DNS names) carry their addresses; dynamic sets (unpinned DNS names and
//!   wildcard names) start empty and are filled at run time by `sync` or the DNS forwarder.
//!   Set ids are stable (`role:dns-server`, `dns:update.intra2net.com`) so that renderers
//!   derive the same target names on every run.
//! - [`PlannedFlow`]: one protocol of one profile flow, with its source and destination
//!   endpoints (each a union of sets), destination ports, direction seen from the appliance,
//!   and whether it is required or enabled by a feature.
//!
//! A `Plan` can only be made by [`build`], which checks the site against the profile, so a
//! renderer that takes `&Plan` never sees an unchecked binding. A flow that cannot be bound
//! (a role without addresses) is left out with a warning; it is never widened.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::addr;
use crate::diag::{Diagnostic, Errors, Sink};
use crate::model::*;
use crate::site::{Features, Placement, Site};

/// Direction of a flow seen from the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The appliance opens the connection.
    Outbound,
    /// A peer opens a connection to the appliance.
    Inbound,
    /// Neither end is the appliance (only a gateway sees these).
    Internal,
}

/// What an address set stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetKind {
    Appliance,
    Role,
    Dns,
    Wildcard,
    Network,
}

/// A named set of addresses.
#[derive(Debug, Clone, Serialize)]
pub struct AddressSet {
    /// Stable id: `appliance`, `role:NAME`, `dns:NAME`, `wildcard:*.NAME`, `net:CIDR`.
    pub id: String,
    pub kind: SetKind,
    /// The role, DNS name, wildcard pattern or network it stands for.
    pub name: String,
    pub v4: Vec<Ipv4Net>,
    pub v6: Vec<Ipv6Net>,
    /// Filled at run time (DNS); its static addresses are only the pinned ones.
    pub dynamic: bool,
    /// Addresses come from the site's `[hosts]` pins.
    pub pinned: bool,
    /// The single host addresses as the site listed them (before `v4`/`v6` were merged into
    /// CIDR blocks): what a prober connects to.
    pub hosts: Vec<IpAddr>,
    /// Wildcard sets: the concrete name the site gives for probing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_name: Option<String>,
    /// A group made by the renderer (never by the planner): the names of the DNS names or
    /// wildcards whose addresses this one kernel set holds (see `render::lower`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

impl AddressSet {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
    pub fn addresses(&self) -> Vec<IpNet> {
        self.v4
            .iter()
            .map(|n| IpNet::V4(*n))
            .chain(self.v6.iter().map(|n| IpNet::V6(*n)))
            .collect()
    }
}

/// One end of a planned flow: a reference to a set, with the interface it sits behind in
/// gateway mode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Peer {
    pub kind: SetKind,
    pub name: String,
    pub set: String,
    /// Gateway mode: the firewall interface toward this peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// Either end of a flow: the union of its peers.
#[derive(Debug, Clone)]
pub struct FlowEnd {
    pub peers: Vec<Peer>,
}

impl FlowEnd {
    pub fn is_appliance(&self) -> bool {
        self.peers.len() == 1 && self.peers[0].kind == SetKind::Appliance
    }
    /// The peers by name (`appliance` for the appliance), comma-separated.
    pub fn text(&self) -> String {
        self.peers
            .iter()
            .map(|p| match p.kind {
                SetKind::Appliance => "appliance",
                _ => p.name.as_str(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One protocol of one profile flow, bound to the site.
#[derive(Debug, Clone)]
pub struct PlannedFlow {
    pub id: String,
    pub function: String,
    pub function_de: Option<String>,
    pub direction: Direction,
    pub protocol: Protocol,
    /// Destination ports; empty for ICMP.
    pub ports: Vec<PortRange>,
    pub icmp_type: Option<IcmpType>,
    pub source: FlowEnd,
    pub destination: FlowEnd,
    pub required: bool,
    pub feature: Option<String>,
    pub alternative: Option<String>,
    pub app: Option<String>,
    pub flags: Vec<Flag>,
    pub notes: Vec<String>,
    /// The site overrode the profile's ports.
    pub ports_overridden: bool,
    /// The line of each source document (by its id) the flow comes from.
    pub source_lines: BTreeMap<String, u32>,
}

impl PlannedFlow {
    /// `25,465,587`, `5000-5050`, or the ICMP type's name.
    pub fn ports_text(&self) -> String {
        if let Some(t) = self.icmp_type {
            return t.name().to_string();
        }
        self.ports
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
}

/// A profile bound to a site.
#[derive(Debug, Clone)]
pub struct Plan {
    pub profile: String,
    pub profile_name: String,
    pub vendor: String,
    pub placement: Placement,
    /// Addresses a firewall in front translates to the appliance (`[appliance] public`);
    /// only the audit reads them.
    pub public: Vec<std::net::IpAddr>,
    pub features: Vec<String>,
    pub sets: BTreeMap<String, AddressSet>,
    pub flows: Vec<PlannedFlow>,
    /// Profile flows that are off (feature disabled, alternative not chosen), by id.
    pub inactive: Vec<String>,
    /// Warnings from binding (roles without addresses, unpinned names, ...).
    pub warnings: Vec<Diagnostic>,
    /// The documents the profile was curated from.
    pub sources: Vec<crate::model::SourceDoc>,
}

impl Plan {
    pub fn set(&self, id: &str) -> Option<&AddressSet> {
        self.sets.get(id)
    }
    /// Addresses of a flow end (static ones only).
    pub fn end_addresses(&self, end: &FlowEnd) -> Vec<IpNet> {
        end.peers
            .iter()
            .filter_map(|p| self.sets.get(&p.set))
            .flat_map(|s| s.addresses())
            .collect()
    }
    pub fn appliance(&self) -> &AddressSet {
        // `build` always inserts the appliance set.
        &self.sets["appliance"]
    }
}

/// Build the plan. `features` from the command line replaces the site's list.
pub fn build(profile: &Profile, site: &Site, features: Option<&Features>) -> Result<Plan, Errors> {
    let mut sink = Sink::default();
    let src = &site.origin;
    let at = |d: Diagnostic, span: &Option<std::ops::Range<usize>>| match span {
        Some(s) => d.at(src, s.clone()),
        None => d.in_file(src),
    };

    // Features.
    let features = features.unwrap_or(&site.features);
    let enabled: BTreeSet<String> = match features {
        // Every feature that adds flows; one that turns flows off (a GINA satellite) is a
        // mode, chosen by name only.
        Features::All => profile
            .features
            .iter()
            .filter(|(_, d)| d.turns_off.is_empty())
            .map(|(n, _)| n.clone())
            .collect(),
        Features::Some(list) => {
            let mut on = BTreeSet::new();
            for (name, span) in list {
                if profile.features.contains_key(name) {
                    on.insert(name.clone());
                } else {
                    let known: Vec<&str> = profile.features.keys().map(String::as_str).collect();
                    sink.push(at(
                        Diagnostic::error(format!(
                            "unknown feature `{}` for profile {}",
                            name.escape_debug(),
                            profile.id
                        ))
                        .with_help(if known.is_empty() {
                            format!("profile {} has no optional features", profile.id)
                        } else {
                            format!("use \"all\" or some of: {}", known.join(", "))
                        }),
                        span,
                    ));
                }
            }
            on
        }
    };

    // Roles the site binds that the profile does not know.
    for (role, (_, span)) in &site.roles {
        if builtin_role(role).is_none() && !profile.roles.contains_key(role) {
            let used: Vec<&str> = profile.used_roles().into_iter().collect();
            sink.push(at(
                Diagnostic::error(format!("unknown role `{role}` for profile {}", profile.id))
                    .with_help(format!(
                        "the roles profile {} uses are: {}",
                        profile.id,
                        used.join(", ")
                    )),
                span,
            ));
        }
    }

    // `[probe_names]` keyed by a role: the role must be bound to addresses here.
    for (role, span) in &site.probe_name_spans {
        if !site.roles.contains_key(role) {
            sink.push(at(
                Diagnostic::error(format!(
                    "[probe_names] names `{role}`, which is not a role bound under [roles]"
                ))
                .with_help("bind the role to its host addresses under [roles], or give a wildcard"),
                &Some(span.clone()),
            ));
        }
    }

    // Zones must name roles: a misspelled key would silently send that role's rules to the
    // default interface.
    if let Placement::Gateway { zones, .. } = &site.placement {
        let used = profile.used_roles();
        let known: Vec<&str> = BUILTIN_ROLES
            .iter()
            .map(|(n, _)| *n)
            .chain(profile.roles.keys().map(String::as_str))
            .chain(used.iter().copied())
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .collect();
        for zone in zones.keys() {
            if known.contains(&zone.as_str()) {
                continue;
            }
            let help = match closest(zone, known.iter().copied()) {
                Some(c) => format!("did you mean `{c}`? Zones are roles: {}", known.join(", ")),
                None => format!(
                    "zones are roles of profile {}: {}",
                    profile.id,
                    known.join(", ")
                ),
            };
            sink.push(at(
                Diagnostic::error(format!(
                    "[placement.zones] names `{}`, which is not a role of profile {}",
                    zone.escape_debug(),
                    profile.id
                ))
                .with_help(help),
                &site.zone_spans.get(zone).cloned(),
            ));
        }
    }

    // Pins of names the profile never uses: most likely a typo of one it does use.
    {
        let names: BTreeSet<&str> = profile
            .flows
            .iter()
            .flat_map(|f| f.from.iter().chain(&f.to))
            .filter_map(|e| match e {
                Endpoint::Dns(n) | Endpoint::Wildcard(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        for name in site.hosts.keys() {
            if names.contains(name.as_str()) {
                continue;
            }
            let help = match closest(name, names.iter().copied()) {
                Some(c) => format!("did you mean `{c}`? The pin is not used as written"),
                None if names.is_empty() => format!("profile {} uses no DNS names", profile.id),
                None => format!(
                    "the names profile {} uses are: {}",
                    profile.id,
                    names.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            };
            sink.push(at(
                Diagnostic::warning(format!(
                    "[hosts] pins `{name}`, which profile {} does not use",
                    profile.id
                ))
                .with_help(help),
                &site.host_spans.get(name).cloned(),
            ));
        }
    }

    // Alternatives: which flows of each group are chosen.
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    for (group, decl) in &profile.alternatives {
        match site.alternatives.get(group) {
            Some((flows, _)) => {
                for (fid, span) in flows {
                    match profile.flow(fid) {
                        Some(f) if f.alternative.as_deref() == Some(group) => {
                            chosen.insert(fid.clone());
                        }
                        _ => {
                            let options: Vec<&str> = profile
                                .flows
                                .iter()
                                .filter(|f| f.alternative.as_deref() == Some(group))
                                .map(|f| f.id.as_str())
                                .collect();
                            sink.push(at(
                                Diagnostic::error(format!(
                                    "`{}` is not an option of alternative `{group}`",
                                    fid.escape_debug()
                                ))
                                .with_help(format!("choose among: {}", options.join(", "))),
                                span,
                            ));
                        }
                    }
                }
            }
            None => {
                chosen.insert(decl.default.clone());
            }
        }
    }
    for (group, (_, span)) in &site.alternatives {
        if !profile.alternatives.contains_key(group) {
            sink.push(at(
                Diagnostic::error(format!(
                    "unknown alternative `{group}` for profile {}",
                    profile.id
                )),
                span,
            ));
        }
    }

    // Port overrides.
    for (fid, (_, span)) in &site.ports {
        match profile.flow(fid) {
            None => sink.push(at(
                Diagnostic::error(format!(
                    "[ports] names unknown flow `{}`",
                    fid.escape_debug()
                )),
                span,
            )),
            Some(f) if !f.has_flag(Flag::PortConfigurable) => sink.push(at(
                Diagnostic::error(format!(
                    "the port of flow `{fid}` is not configurable on this appliance"
                ))
                .with_help(
                    "the profile marks only some flows `port_configurable`; remove this override",
                ),
                span,
            )),
            Some(f) if f.protocols.contains(&Protocol::Icmp) => sink.push(at(
                Diagnostic::error(format!("flow `{fid}` is ICMP and has no ports")),
                span,
            )),
            Some(_) => {}
        }
    }

    if site.appliance.is_empty() {
        sink.push(Diagnostic::error("the appliance has no addresses").in_file(src));
    }
    if sink.has_errors() {
        return Err(sink.into_errors());
    }

    // Address sets.
    let mut sets: BTreeMap<String, AddressSet> = BTreeMap::new();
    let (av4, av6) = addr::split(&site.appliance);
    sets.insert(
        "appliance".into(),
        AddressSet {
            id: "appliance".into(),
            kind: SetKind::Appliance,
            name: "appliance".into(),
            v4: av4,
            v6: av6,
            dynamic: false,
            pinned: false,
            hosts: host_addrs(&site.appliance),
            probe_name: None,
            members: Vec::new(),
        },
    );

    let zone_if = |role: Option<&str>| -> Option<String> {
        match &site.placement {
            Placement::Host => None,
            Placement::Gateway {
                zones,
                default_interface,
                ..
            } => role
                .and_then(|r| zones.get(r).cloned())
                .or_else(|| zones.get("internet").cloned().filter(|_| role.is_none()))
                .or_else(|| default_interface.clone()),
        }
    };
    // A feature's requirements come with it (NTP with a cluster), said in the warnings.
    let mut enabled = enabled;
    let mut required_notes: Vec<Diagnostic> = Vec::new();
    loop {
        let mut added = Vec::new();
        for name in &enabled {
            if let Some(decl) = profile.features.get(name) {
                for r in &decl.requires {
                    if !enabled.contains(r) && !added.iter().any(|(a, _)| a == r) {
                        added.push((r.clone(), name.clone()));
                    }
                }
            }
        }
        if added.is_empty() {
            break;
        }
        for (r, by) in added {
            required_notes.push(
                Diagnostic::warning(format!(
                    "feature `{by}` requires `{r}`: `{r}` is turned on too"
                ))
                .with_help(format!("add `{r}` to the site's features to say so")),
            );
            enabled.insert(r);
        }
    }
    // Flows an enabled feature makes unnecessary.
    let turned_off: BTreeMap<&str, &str> = enabled
        .iter()
        .filter_map(|n| profile.features.get(n).map(|d| (n, d)))
        .flat_map(|(n, d)| d.turns_off.iter().map(move |f| (f.as_str(), n.as_str())))
        .collect();
    for (feature, decl) in enabled
        .iter()
        .filter_map(|n| profile.features.get(n).map(|d| (n, d)))
    {
        if !decl.turns_off.is_empty() {
            required_notes.push(Diagnostic::note(format!(
                "feature `{feature}` turns off flows {} (not needed with it)",
                decl.turns_off.join(", ")
            )));
        }
    }
    let appliance_if = match &site.placement {
        Placement::Host => None,
        Placement::Gateway {
            appliance_interface,
            ..
        } => Some(appliance_interface.clone()),
    };

    let mut flows = Vec::new();
    let mut inactive = Vec::new();
    let mut unpinned: BTreeSet<String> = BTreeSet::new();
    let mut unbound: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut no_iface: BTreeSet<String> = BTreeSet::new();
    let mut proxied: Vec<String> = Vec::new();

    for flow in &profile.flows {
        let on_by_feature = match &flow.condition {
            Condition::Required => true,
            Condition::Feature(f) => {
                enabled.contains(f) && flow.with_features.iter().all(|w| enabled.contains(w))
            }
        } && !turned_off.contains_key(flow.id.as_str());
        let on_by_choice = flow
            .alternative
            .as_ref()
            .is_none_or(|_| chosen.contains(&flow.id));
        if !(on_by_feature && on_by_choice) {
            inactive.push(flow.id.clone());
            continue;
        }

        let mut missing = Vec::new();
        let mut end = |eps: &[Endpoint]| -> FlowEnd {
            let mut peers = Vec::new();
            for ep in eps {
                let (id, kind, name, iface_role): (String, SetKind, String, Option<&str>) = match ep
                {
                    Endpoint::Appliance => {
                        peers.push(Peer {
                            kind: SetKind::Appliance,
                            name: "appliance".into(),
                            set: "appliance".into(),
                            interface: appliance_if.clone(),
                        });
                        continue;
                    }
                    Endpoint::Role(r) => (
                        format!("role:{r}"),
                        SetKind::Role,
                        r.clone(),
                        Some(r.as_str()),
                    ),
                    Endpoint::Dns(n) => (format!("dns:{n}"), SetKind::Dns, n.clone(), None),
                    Endpoint::Wildcard(n) => {
                        (format!("wildcard:{n}"), SetKind::Wildcard, n.clone(), None)
                    }
                    Endpoint::Network(n) => {
                        (format!("net:{n}"), SetKind::Network, n.to_string(), None)
                    }
                };
                if !sets.contains_key(&id) {
                    let set = match ep {
                        Endpoint::Role(r) => {
                            let nets: Vec<IpNet> = match site.roles.get(r) {
                                Some((n, _)) => n.clone(),
                                None if r == "internet" => {
                                    let internal: Vec<IpNet> = site
                                        .roles
                                        .get("internal")
                                        .map(|(n, _)| n.clone())
                                        .unwrap_or_default()
                                        .into_iter()
                                        .chain(site.appliance.iter().copied())
                                        .collect();
                                    let (v4, v6) = addr::internet(&internal);
                                    v4.into_iter()
                                        .map(IpNet::V4)
                                        .chain(v6.into_iter().map(IpNet::V6))
                                        .collect()
                                }
                                None => vec![],
                            };
                            let (v4, v6) = addr::split(&nets);
                            AddressSet {
                                id: id.clone(),
                                kind,
                                name: name.clone(),
                                v4,
                                v6,
                                dynamic: false,
                                pinned: false,
                                hosts: host_addrs(&nets),
                                probe_name: site.probe_names.get(r).cloned(),
                                members: Vec::new(),
                            }
                        }
                        Endpoint::Dns(n) | Endpoint::Wildcard(n) => {
                            let pins: Vec<IpNet> = site
                                .hosts
                                .get(n)
                                .map(|v| v.iter().map(|a| IpNet::from(*a)).collect())
                                .unwrap_or_default();
                            let pinned = site.hosts.contains_key(n);
                            if !pinned {
                                unpinned.insert(n.clone());
                            }
                            let (v4, v6) = addr::split(&pins);
                            AddressSet {
                                id: id.clone(),
                                kind,
                                name: name.clone(),
                                v4,
                                v6,
                                dynamic: true,
                                pinned,
                                hosts: host_addrs(&pins),
                                probe_name: site.probe_names.get(n).cloned(),
                                members: Vec::new(),
                            }
                        }
                        Endpoint::Network(n) => {
                            let (v4, v6) = addr::split(&[*n]);
                            AddressSet {
                                id: id.clone(),
                                kind,
                                name: name.clone(),
                                v4,
                                v6,
                                dynamic: false,
                                pinned: false,
                                hosts: host_addrs(&[*n]),
                                probe_name: None,
                                members: Vec::new(),
                            }
                        }
                        Endpoint::Appliance => continue,
                    };
                    sets.insert(id.clone(), set);
                }
                if kind == SetKind::Role && sets[&id].is_empty() {
                    missing.push(name.clone());
                    continue;
                }
                let interface = zone_if(iface_role);
                if appliance_if.is_some() && interface.is_none() {
                    no_iface.insert(name.clone());
                }
                peers.push(Peer {
                    kind,
                    name,
                    set: id,
                    interface,
                });
            }
            FlowEnd { peers }
        };
        let source = end(&flow.from);
        let mut destination = end(&flow.to);
        // With a DNS proxy (gateway mode), the appliance resolves through the proxy only.
        if let (Some((proxy, _)), Placement::Gateway { .. }) = (&site.dns_proxy, &site.placement) {
            let is_dns =
                flow.app.as_deref() == Some("dns") || flow.ports.iter().any(|r| r.contains(53));
            if is_dns && source.is_appliance() && flow.from == [Endpoint::Appliance] {
                let net = IpNet::from(*proxy);
                let id = format!("net:{net}");
                let (v4, v6) = addr::split(&[net]);
                sets.entry(id.clone()).or_insert(AddressSet {
                    id: id.clone(),
                    kind: SetKind::Network,
                    name: net.to_string(),
                    v4,
                    v6,
                    dynamic: false,
                    pinned: false,
                    hosts: vec![*proxy],
                    probe_name: None,
                    members: Vec::new(),
                });
                destination = FlowEnd {
                    peers: vec![Peer {
                        kind: SetKind::Network,
                        name: net.to_string(),
                        set: id,
                        // Often the firewall itself (never forwarded); match the address only.
                        interface: None,
                    }],
                };
                proxied.push(flow.id.clone());
            }
        }
        if source.peers.is_empty() || destination.peers.is_empty() {
            for m in &missing {
                unbound.entry(m.clone()).or_default().push(flow.id.clone());
            }
            continue;
        }
        for m in &missing {
            unbound.entry(m.clone()).or_default().push(flow.id.clone());
        }
        let direction = if source.is_appliance() {
            Direction::Outbound
        } else if destination.is_appliance() {
            Direction::Inbound
        } else {
            Direction::Internal
        };
        let (ports, overridden) = match site.ports.get(&flow.id) {
            Some((p, _)) => (merge_ranges(p.clone()), true),
            None => (flow.ports.clone(), false),
        };
        // Ports only the site can give, and it gave none: left out, never widened.
        if ports.is_empty() && flow.protocols.iter().any(|p| *p != Protocol::Icmp) {
            sink.push(
                Diagnostic::warning(format!(
                    "flow {} has no ports until the site gives them; it is left out",
                    flow.id
                ))
                .in_file(src)
                .with_help(format!("add [ports] {} = [...] to the site", flow.id)),
            );
            inactive.push(flow.id.clone());
            continue;
        }
        for &protocol in &flow.protocols {
            flows.push(PlannedFlow {
                id: flow.id.clone(),
                function: flow.function.clone(),
                function_de: flow.function_de.clone(),
                direction,
                protocol,
                ports: if protocol == Protocol::Icmp {
                    vec![]
                } else {
                    ports.clone()
                },
                icmp_type: if protocol == Protocol::Icmp {
                    flow.icmp_type
                } else {
                    None
                },
                source: source.clone(),
                destination: destination.clone(),
                required: flow.condition == Condition::Required,
                feature: match &flow.condition {
                    Condition::Feature(f) if flow.with_features.is_empty() => Some(f.clone()),
                    Condition::Feature(f) => Some(format!("{f}+{}", flow.with_features.join("+"))),
                    Condition::Required => None,
                },
                alternative: flow.alternative.clone(),
                app: flow.app.clone(),
                flags: flow.flags.iter().copied().collect(),
                notes: flow.notes.clone(),
                ports_overridden: overridden,
                source_lines: flow.source_lines.clone(),
            });
        }
    }

    // A peer whose addresses share no family with the appliance (appliance IPv4 only, name
    // pinned IPv6 only): its set is not empty, yet the flow can never work.
    let (app_v4, app_v6) = (
        !sets["appliance"].v4.is_empty(),
        !sets["appliance"].v6.is_empty(),
    );
    let mut family_gaps: BTreeMap<String, (SetKind, bool, BTreeSet<String>, bool)> =
        BTreeMap::new();
    for f in &flows {
        let peer = match f.direction {
            Direction::Outbound => &f.destination,
            Direction::Inbound => &f.source,
            Direction::Internal => continue,
        };
        let peer_sets: Vec<&AddressSet> =
            peer.peers.iter().filter_map(|p| sets.get(&p.set)).collect();
        // An unpinned name gets its addresses from DNS, in either family.
        if peer_sets.iter().any(|s| s.dynamic && !s.pinned) {
            continue;
        }
        let v4 = peer_sets.iter().any(|s| !s.v4.is_empty());
        let v6 = peer_sets.iter().any(|s| !s.v6.is_empty());
        if (v4 && app_v4) || (v6 && app_v6) || !(v4 || v6) {
            continue;
        }
        for s in &peer_sets {
            let e = family_gaps.entry(s.name.clone()).or_insert((
                s.kind,
                s.pinned,
                BTreeSet::new(),
                false,
            ));
            e.2.insert(f.id.clone());
            e.3 |= f.required;
        }
    }
    for (name, (kind, pinned, fids, required)) in &family_gaps {
        let (has, lacks) = if app_v4 {
            ("IPv4", "IPv6")
        } else {
            ("IPv6", "IPv4")
        };
        let what = if *pinned {
            format!("`{name}` is pinned to {lacks} addresses only")
        } else if *kind == SetKind::Network {
            format!("the profile names the {lacks} network `{name}` only")
        } else {
            format!("`{name}` has {lacks} addresses only")
        };
        let req = if *required { "required " } else { "" };
        sink.push(at(
            Diagnostic::warning(format!(
                "{what}, but the appliance has only {has} addresses: {req}flow(s) {} cannot work",
                fids.iter().cloned().collect::<Vec<_>>().join(", ")
            ))
            .with_help(if *pinned {
                format!("pin an {has} address of `{name}` too under [hosts], or give the appliance an {lacks} address")
            } else if *kind == SetKind::Network {
                format!("give the appliance an {lacks} address, or leave the flow out")
            } else {
                format!("bind an {has} network to `{name}` too, or give the appliance an {lacks} address")
            }),
            &if *pinned {
                site.host_spans.get(name).cloned()
            } else {
                site.roles.get(name).and_then(|(_, s)| s.clone())
            },
        ));
    }

    for (role, fids) in &unbound {
        let required: Vec<&String> = fids
            .iter()
            .filter(|f| {
                profile
                    .flow(f)
                    .is_some_and(|f| f.condition == Condition::Required)
            })
            .collect();
        let what = if required.is_empty() { "" } else { "required " };
        sink.push(
            Diagnostic::warning(format!(
                "role `{role}` has no addresses in the site, so {what}flow(s) {} leave it out",
                fids.join(", ")
            ))
            .in_file(src)
            .with_help(format!("bind it: [roles] {role} = [\"192.0.2.0/24\"]")),
        );
    }
    if !unpinned.is_empty() {
        let names: Vec<&str> = unpinned.iter().map(String::as_str).collect();
        sink.push(
            Diagnostic::warning(format!(
                "{} DNS name(s) have no pinned addresses; their sets start empty until `portolan sync` (names) or the DNS forwarder (wildcards) fills them: {}",
                names.len(),
                names.join(", ")
            ))
            .in_file(src)
            .with_help("pin them under [hosts] to render fixed addresses"),
        );
    }
    if let Some((proxy, span)) = &site.dns_proxy {
        match &site.placement {
            Placement::Host => sink.push(at(
                Diagnostic::warning(
                    "dns_proxy in host mode: the proxy runs on the appliance and needs its upstream, so DNS to the dns-server role stays open",
                ),
                span,
            )),
            Placement::Gateway { .. } if !proxied.is_empty() => sink.push(at(
                Diagnostic::note(format!(
                    "DNS flow(s) {} go to the DNS proxy {proxy} only",
                    proxied.join(", ")
                )),
                span,
            )),
            Placement::Gateway { .. } => {}
        }
    }
    if !no_iface.is_empty() {
        sink.push(
            Diagnostic::warning(format!(
                "gateway mode: no interface for {}; their rules match addresses only",
                no_iface.into_iter().collect::<Vec<_>>().join(", ")
            ))
            .in_file(src)
            .with_help("add them under [placement.zones], or set placement.default_interface"),
        );
    }

    let mut plan_warnings = required_notes;
    plan_warnings.extend(sink.diags);
    Ok(Plan {
        profile: profile.id.clone(),
        profile_name: profile.name.clone(),
        vendor: profile.vendor.clone(),
        placement: site.placement.clone(),
        public: site.public.clone(),
        features: enabled.into_iter().collect(),
        sets,
        flows,
        inactive,
        warnings: plan_warnings,
        sources: profile.sources.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// JSON view
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct EndJson<'a> {
    peers: &'a [Peer],
    addresses: Vec<IpNet>,
    dns_names: Vec<&'a str>,
}

#[derive(Serialize)]
struct FlowJson<'a> {
    id: &'a str,
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_de: Option<&'a str>,
    direction: Direction,
    protocol: Protocol,
    ports: &'a [PortRange],
    icmp_type: Option<&'static str>,
    source: EndJson<'a>,
    destination: EndJson<'a>,
    required: bool,
    feature: Option<&'a str>,
    alternative: Option<&'a str>,
    app: Option<&'a str>,
    flags: &'a [Flag],
    notes: &'a [String],
}

#[derive(Serialize)]
struct PlanJson<'a> {
    profile: &'a str,
    profile_name: &'a str,
    placement: &'a Placement,
    features: &'a [String],
    flows: Vec<FlowJson<'a>>,
    sets: Vec<&'a AddressSet>,
    inactive: &'a [String],
    warnings: &'a [Diagnostic],
}

impl Plan {
    fn end_json<'a>(&'a self, end: &'a FlowEnd) -> EndJson<'a> {
        EndJson {
            peers: &end.peers,
            addresses: self.end_addresses(end),
            dns_names: end
                .peers
                .iter()
                .filter(|p| matches!(p.kind, SetKind::Dns | SetKind::Wildcard))
                .map(|p| p.name.as_str())
                .collect(),
        }
    }

    /// The stable JSON form: `{"profile": ID, "flows": [...], ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        let doc = PlanJson {
            profile: &self.profile,
            profile_name: &self.profile_name,
            placement: &self.placement,
            features: &self.features,
            flows: self
                .flows
                .iter()
                .map(|f| FlowJson {
                    id: &f.id,
                    function: &f.function,
                    function_de: f.function_de.as_deref(),
                    direction: f.direction,
                    protocol: f.protocol,
                    ports: &f.ports,
                    icmp_type: f.icmp_type.map(IcmpType::name),
                    source: self.end_json(&f.source),
                    destination: self.end_json(&f.destination),
                    required: f.required,
                    feature: f.feature.as_deref(),
                    alternative: f.alternative.as_deref(),
                    app: f.app.as_deref(),
                    flags: &f.flags,
                    notes: &f.notes,
                })
                .collect(),
            sets: self.sets.values().collect(),
            inactive: &self.inactive,
            warnings: &self.warnings,
        };
        serde_json::to_value(doc).unwrap_or_default()
    }
}

/// The single-address entries of a list, in the order given, without duplicates.
fn host_addrs(nets: &[IpNet]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for n in nets {
        if n.prefix_len() == n.max_prefix_len() && !out.contains(&n.addr()) {
            out.push(n.addr());
        }
    }
    out
}

/// Is `addr` inside a static set? (Used by tests and, later, audit and probe.)
pub fn set_contains(set: &AddressSet, addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => set.v4.iter().any(|n| n.contains(&a)),
        IpAddr::V6(a) => set.v6.iter().any(|n| n.contains(&a)),
    }
}
