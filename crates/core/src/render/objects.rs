//! The object model of firewalls that work with named objects and policies between zones
//! (FortiGate, PAN-OS, SRX), interface ACLs (ASA) or tables and rules (pf, OPNsense): the
//! shared lowering every such backend consumes.
//!
//! - one address object per plan set a policy uses: the networks of a role or of the
//!   appliance, a DNS name (an FQDN object, or its pinned addresses), a wildcard (a wildcard
//!   FQDN object where the target has them, else its pinned addresses);
//! - one service object per protocol and port range (or ICMP type);
//! - one policy per (from zone, to zone, source, services) with every destination that
//!   shares them, tracing the flows it serves.
//!
//! What a target cannot express is taken out here, before rendering, all at once, each with a
//! warning naming the flow, the target and the reason. Nothing is widened: a peer that cannot
//! be expressed is left out of the policy, and a policy left without a source or a
//! destination is left out whole.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::{Capabilities, DnsModel};
use crate::diag::Diagnostic;
use crate::model::{IcmpType, PortRange, Protocol};
use crate::plan::{AddressSet, Plan, SetKind};

/// What an address object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrKind {
    /// Networks and hosts (IPv4 and IPv6).
    Nets(Vec<IpNet>),
    /// A DNS name the firewall resolves (or resolved when the configuration is loaded).
    Fqdn(String),
    /// A wildcard (`*.example.com`) the firewall resolves from the DNS traffic it sees.
    WildcardFqdn(String),
}

/// A named address object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrObject {
    /// `pt-role-internet`, `pt-dns-update.example.com`, ... (`[a-z0-9._-]`, see [`Objects`]).
    pub name: String,
    /// What it stands for, for comments: `role internet`, `DNS name x`.
    pub what: String,
    pub kind: AddrKind,
}

/// A named service: one protocol and one port range, or one ICMP type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Service {
    pub name: String,
    pub protocol: Protocol,
    pub ports: Option<PortRange>,
    pub icmp: Option<IcmpType>,
}

/// An accept policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `pt-<first flow id>` (with `-2`, `-3` for further policies of the same flow).
    pub name: String,
    pub from_zone: Option<String>,
    pub to_zone: Option<String>,
    /// Address object names.
    pub sources: Vec<String>,
    pub destinations: Vec<String>,
    /// Service names.
    pub services: Vec<String>,
    /// Flow ids served.
    pub flows: BTreeSet<String>,
}

/// The lowered plan. Names are unique per kind and made of `[a-z0-9._-]` (plan set names and
/// flow ids are validated), so backends only check their own length limits.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub addresses: Vec<AddrObject>,
    pub services: Vec<Service>,
    pub policies: Vec<Policy>,
}

impl Objects {
    /// By name (addresses and services are sorted by name).
    pub fn address(&self, name: &str) -> Option<&AddrObject> {
        self.addresses
            .binary_search_by(|a| a.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.addresses[i])
    }
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.services[i])
    }
}

fn address_object(set: &AddressSet, caps: &Capabilities) -> Result<AddrObject, String> {
    let nets = set.addresses();
    let (name, what) = match set.kind {
        SetKind::Appliance => ("pt-appliance".to_string(), "the appliance".to_string()),
        SetKind::Role => (
            format!("pt-role-{}", set.name),
            format!("role {}", set.name),
        ),
        SetKind::Dns => (
            format!("pt-dns-{}", set.name),
            format!("DNS name {}", set.name),
        ),
        SetKind::Wildcard => (
            format!("pt-wild-{}", set.name.trim_start_matches("*.")),
            format!("wildcard {}", set.name),
        ),
        SetKind::Network => (
            format!("pt-net-{}", set.name.replace(['/', ':'], "_")),
            format!("network {}", set.name),
        ),
    };
    let kind = match set.kind {
        // Pinned by the site: the addresses it gives, whatever the target could resolve.
        SetKind::Dns | SetKind::Wildcard if set.pinned => AddrKind::Nets(nets),
        SetKind::Dns => match caps.dns {
            DnsModel::NativeFqdn { .. } | DnsModel::ResolvedAtLoad => {
                AddrKind::Fqdn(set.name.clone())
            }
            DnsModel::FilledSets => return Err("DNS names are sets there, not objects".to_string()),
            DnsModel::PinnedOnly => {
                return Err(format!(
                    "no DNS objects for peer {}; pin it under [hosts] to use fixed addresses",
                    set.name
                ))
            }
        },
        SetKind::Wildcard => match caps.dns {
            DnsModel::NativeFqdn { wildcard: true } => AddrKind::WildcardFqdn(set.name.clone()),
            _ => {
                return Err(format!(
                "no wildcard DNS objects for peer {}; pin it under [hosts] to use fixed addresses",
                set.name
            ))
            }
        },
        _ if nets.is_empty() => return Err(format!("{what} has no address")),
        _ => AddrKind::Nets(nets),
    };
    Ok(AddrObject { name, what, kind })
}

fn service_for(protocol: Protocol, ports: Option<PortRange>, icmp: Option<IcmpType>) -> Service {
    let name = match (protocol, ports, icmp) {
        (Protocol::Icmp, _, Some(t)) => format!("pt-icmp-{}", t.name()),
        (Protocol::Icmp, _, None) => "pt-icmp".to_string(),
        (p, Some(r), _) if r.low == r.high => format!("pt-{p}-{}", r.low),
        (p, Some(r), _) => format!("pt-{p}-{}-{}", r.low, r.high),
        (p, None, _) => format!("pt-{p}"),
    };
    Service {
        name,
        protocol,
        ports,
        icmp,
    }
}

/// Lower the plan for an object-based target (gateway placement: the zones are the firewall
/// interfaces the site names; [`super::render`] refuses host placement first).
pub fn lower(plan: &Plan, caps: &Capabilities, target: &str) -> (Objects, Vec<Diagnostic>) {
    let mut warnings = Vec::new();
    let mut addresses: BTreeMap<String, AddrObject> = BTreeMap::new();
    // Plan set id -> why the target cannot express it.
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    let mut obj_of = |set: &AddressSet, refused: &mut BTreeMap<String, String>| {
        if refused.contains_key(&set.id) {
            return None;
        }
        match address_object(set, caps) {
            Ok(o) => {
                let n = o.name.clone();
                addresses.entry(n.clone()).or_insert(o);
                Some(n)
            }
            Err(why) => {
                refused.insert(set.id.clone(), why);
                None
            }
        }
    };
    let mut services: BTreeSet<Service> = BTreeSet::new();
    // (from, to, source, destination) -> (services, flows)
    type Pair = (Option<String>, Option<String>, String, String);
    let mut pairs: BTreeMap<Pair, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut left_out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let host = matches!(plan.placement, crate::site::Placement::Host);
    for flow in &plan.flows {
        if host && flow.direction == crate::plan::Direction::Internal {
            left_out.entry(flow.id.clone()).or_default().insert(
                "it does not involve the appliance, and a firewall on the appliance never sees it"
                    .to_string(),
            );
            continue;
        }
        if flow.protocol == Protocol::Icmp && !caps.icmp_types && flow.icmp_type.is_some() {
            left_out
                .entry(flow.id.clone())
                .or_default()
                .insert("no ICMP type matches".to_string());
            continue;
        }
        let svcs: Vec<Service> = match flow.protocol {
            Protocol::Icmp => vec![service_for(Protocol::Icmp, None, flow.icmp_type)],
            p => flow
                .ports
                .iter()
                .map(|r| service_for(p, Some(*r), None))
                .collect(),
        };
        for src in &flow.source.peers {
            for dst in &flow.destination.peers {
                let (Some(s), Some(d)) = (plan.set(&src.set), plan.set(&dst.set)) else {
                    continue;
                };
                let (so, dobj) = (obj_of(s, &mut refused), obj_of(d, &mut refused));
                for (set, o) in [(s, &so), (d, &dobj)] {
                    if o.is_none() {
                        if let Some(why) = refused.get(&set.id) {
                            left_out
                                .entry(flow.id.clone())
                                .or_default()
                                .insert(why.clone());
                        }
                    }
                }
                let (Some(so), Some(dobj)) = (so, dobj) else {
                    continue;
                };
                let e = pairs
                    .entry((src.interface.clone(), dst.interface.clone(), so, dobj))
                    .or_default();
                e.0.extend(svcs.iter().map(|s| s.name.clone()));
                e.1.insert(flow.id.clone());
                services.extend(svcs.iter().cloned());
            }
        }
    }
    for (flow, why) in left_out {
        warnings.push(Diagnostic::warning(format!(
            "flow `{flow}`, target {target}: {} (what it cannot express is left out, never widened)",
            why.into_iter().collect::<Vec<_>>().join("; ")
        )));
    }
    // Merge destinations that share zones, source and services.
    type Key = (Option<String>, Option<String>, String, BTreeSet<String>);
    let mut merged: BTreeMap<Key, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    for ((from, to, src, dst), (svcs, flows)) in pairs {
        let e = merged.entry((from, to, src, svcs)).or_default();
        e.0.push(dst);
        e.1.extend(flows);
    }
    let mut used_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut policies: Vec<Policy> = merged
        .into_iter()
        .map(|((from, to, src, svcs), (dsts, flows))| {
            let first = flows.iter().next().cloned().unwrap_or_default();
            let n = used_names.entry(first.clone()).or_insert(0);
            *n += 1;
            let name = if *n == 1 {
                format!("pt-{first}")
            } else {
                format!("pt-{first}-{n}")
            };
            Policy {
                name,
                from_zone: from,
                to_zone: to,
                sources: vec![src],
                destinations: dsts,
                services: svcs.into_iter().collect(),
                flows,
            }
        })
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    let used: BTreeSet<&String> = policies
        .iter()
        .flat_map(|p| p.sources.iter().chain(&p.destinations))
        .collect();
    let addresses = addresses
        .into_values()
        .filter(|a| used.contains(&a.name))
        .collect();
    (
        Objects {
            addresses,
            services: services.into_iter().collect(),
            policies,
        },
        warnings,
    )
}

/// `name`, shortened to `max` bytes with a stable hash when longer.
pub fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash = format!("{:08x}", super::fnv32(name));
    let keep = max.saturating_sub(hash.len() + 1);
    let mut cut = name[..keep.min(name.len())].to_string();
    while cut.ends_with(['.', '-', '_']) {
        cut.pop();
    }
    format!("{cut}-{hash}")
}

/// The IPv4 and the IPv6 networks of a list.
pub fn by_family(nets: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    nets.iter().partition(|n| matches!(n, IpNet::V4(_)))
}

/// IPv4 and IPv6 presence of an address object (an FQDN has both).
pub fn families(a: &AddrObject) -> (bool, bool) {
    match &a.kind {
        AddrKind::Nets(n) => {
            let (v4, v6) = by_family(n);
            (!v4.is_empty(), !v6.is_empty())
        }
        _ => (true, true),
    }
}
