//! Site files: where one appliance stands. Binds a profile's roles to networks, pins DNS
//! names, chooses features and alternatives, and says where the firewall sits.
//!
//! [`parse`] checks everything that can be checked without the profile (addresses, names,
//! interface names); what needs the profile (unknown feature, unknown role) is checked when
//! the plan is built, still with the site's spans. [`demo`] builds the site used when only
//! `--profile` is given: RFC 5737 / RFC 3849 documentation addresses for everything.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Diagnostic, Errors, Sink, Source};
use crate::model::{check_dns_name, check_id, check_wildcard, PortRange, Profile};
use crate::profile::{from_toml, port_range, PortSpec};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// A site file: one appliance in one network.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "portolan site")]
pub struct RawSite {
    /// A catalog id (`intra2net`) or the path of a profile file, relative to this file.
    #[schemars(with = "String")]
    pub profile: Spanned<String>,
    /// Optional features to enable: a list of names, or "all".
    #[serde(default)]
    #[schemars(with = "Option<FeaturesSchema>")]
    pub features: Option<Spanned<FeatureList>>,
    pub appliance: RawAppliance,
    /// Role name -> networks or addresses. `internet` defaults to everything outside the
    /// `internal` role, the appliance and the special-purpose ranges.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub roles: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// Static DNS pins: name or `*.wildcard` -> addresses, used instead of DNS.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub hosts: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// Address of `portolan dns-proxy` as the appliance reaches it. Gateway mode: the
    /// appliance's DNS flows go to it only (wildcard names need the proxy to work).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub dns_proxy: Option<Spanned<String>>,
    /// PEM file of the CA(s) that `portolan probe` trusts for TLS checks, relative to this
    /// file (e.g. the site's own inspection-free CA); `--ca` overrides it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tls_ca: Option<Spanned<String>>,
    /// Wildcard -> a concrete name under it that `portolan probe` resolves and connects to
    /// (e.g. "*.avcloud.intra2net.com" = "de1.avcloud.intra2net.com"); role -> the name the
    /// role's TLS certificate is for (SNI and verification), e.g. smarthost = "mx.example.com".
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub probe_names: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Flow id -> ports, for flows the profile marks `port_configurable`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<PortSchema>>")]
    pub ports: BTreeMap<Spanned<String>, Vec<Spanned<PortSpec>>>,
    /// Alternative group -> the flow id(s) chosen.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub alternatives: BTreeMap<Spanned<String>, Spanned<FeatureList>>,
    #[serde(default)]
    pub placement: Option<RawPlacement>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAppliance {
    /// The appliance's own addresses (IPv4 and/or IPv6), as the firewall sees them.
    #[schemars(with = "Vec<String>")]
    pub addresses: Vec<Spanned<String>>,
    /// Public addresses a firewall in front translates (DNAT) to the appliance, e.g. the
    /// perimeter's "203.0.113.10". The audit then judges inbound flows from outside as
    /// packets to these addresses, which must be translated to the appliance.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub public: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    /// `host`: rules on the appliance itself (input/output). `gateway`: rules on a firewall
    /// in front of it (forward).
    #[schemars(with = "PlacementMode")]
    pub mode: Spanned<PlacementMode>,
    /// Gateway mode: the firewall's interface toward the appliance.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub appliance_interface: Option<Spanned<String>>,
    /// Gateway mode: role -> the firewall's interface toward it. DNS names and networks use
    /// the `internet` entry.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub zones: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Gateway mode: interface for roles not listed in `zones`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub default_interface: Option<Spanned<String>>,
    /// Gateway mode: forwarded traffic that involves neither the appliance's addresses
    /// (`drop`, the default: the firewall serves only the appliance) or is left alone
    /// (`accept`: a shared firewall; only traffic to or from the appliance is restricted).
    #[serde(default)]
    pub others: Option<Others>,
}

/// What a gateway does with forwarded traffic that does not involve the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Others {
    #[default]
    Drop,
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementMode {
    Host,
    Gateway,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum FeaturesSchema {
    All(String),
    List(Vec<String>),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum PortSchema {
    Port(u16),
    Range(String),
}

/// `"all"`, one name, or a list of names (each with its span).
#[derive(Debug, Clone)]
pub enum FeatureList {
    All,
    Names(Vec<Spanned<String>>),
    /// A single string other than "all"; its span is the outer one.
    One(String),
}

impl<'de> Deserialize<'de> for FeatureList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FeatureList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"all\" or a list of names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureList, E> {
                Ok(if v == "all" {
                    FeatureList::All
                } else {
                    FeatureList::One(v.to_string())
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FeatureList, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(FeatureList::Names(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl FeatureList {
    fn spanned(&self, outer: Range<usize>) -> Vec<(String, Range<usize>)> {
        match self {
            FeatureList::All => vec![],
            FeatureList::One(s) => vec![(s.clone(), outer)],
            FeatureList::Names(v) => v.iter().map(|s| (s.get_ref().clone(), s.span())).collect(),
        }
    }
}

/// A name as written, with where (none when it came from the command line).
pub type Named = (String, Option<Range<usize>>);

/// Which features are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Features {
    All,
    /// Names with the span they were written at (empty span for the command line).
    Some(Vec<Named>),
}

/// Where the rules go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Placement {
    Host,
    Gateway {
        appliance_interface: String,
        zones: BTreeMap<String, String>,
        default_interface: Option<String>,
        others: Others,
    },
}

impl Placement {
    pub fn mode(&self) -> PlacementMode {
        match self {
            Placement::Host => PlacementMode::Host,
            Placement::Gateway { .. } => PlacementMode::Gateway,
        }
    }
}

/// A validated site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Catalog id or profile path as written, with its span.
    pub profile: String,
    pub profile_span: Option<Range<usize>>,
    pub features: Features,
    pub appliance: Vec<IpNet>,
    /// `[appliance] public`: addresses DNAT'ed to the appliance.
    pub public: Vec<IpAddr>,
    pub roles: BTreeMap<String, (Vec<IpNet>, Option<Range<usize>>)>,
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
    /// Where each `[hosts]` key was written.
    pub host_spans: BTreeMap<String, Range<usize>>,
    /// Wildcard -> concrete name to probe it through; role -> the name to verify its TLS
    /// certificates against (and send as SNI).
    pub probe_names: BTreeMap<String, String>,
    /// Where each role key of `[probe_names]` was written.
    pub probe_name_spans: BTreeMap<String, Range<usize>>,
    /// CA file for TLS checks, as written (relative to the site file).
    pub tls_ca: Option<String>,
    /// Address of the DNS proxy, with where it was written.
    pub dns_proxy: Option<(IpAddr, Option<Range<usize>>)>,
    pub ports: BTreeMap<String, (Vec<PortRange>, Option<Range<usize>>)>,
    pub alternatives: BTreeMap<String, (Vec<Named>, Option<Range<usize>>)>,
    pub placement: Placement,
    /// Where each `[placement.zones]` key was written.
    pub zone_spans: BTreeMap<String, Range<usize>>,
    /// The file (or a description of the built-in demo site).
    pub origin: Source,
}

fn ifname_ok(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid interface name: 1 to {MAX_IFNAME_LEN} characters of letters, digits, `-`, `_` and `.`",
            name.escape_debug()
        ))
    }
}

/// Parse a network or address; addresses become host routes (/32, /128).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!(
                "network `{text}` has host bits set; write `{}` (or the address alone)",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!(
            "`{}` is not an IP address or network (write e.g. 192.0.2.10, 192.0.2.0/24 or 2001:db8::/64)",
            text.escape_debug()
        )
    })
}

/// Parse and validate a site file (without its profile).
pub fn parse(src: &Source) -> Result<(Site, Vec<Diagnostic>), Errors> {
    let raw: RawSite = from_toml(src, "site")?;
    let mut sink = Sink::default();

    let nets = |sink: &mut Sink, items: &[Spanned<String>]| -> Vec<IpNet> {
        let mut out = Vec::new();
        for s in items {
            match parse_net(s.get_ref()) {
                Ok(n) => out.push(n),
                Err(m) => sink.push(Diagnostic::error(m).at(src, s.span())),
            }
        }
        out
    };

    let appliance: Vec<IpNet> = raw
        .appliance
        .addresses
        .iter()
        .filter_map(|s| match s.get_ref().parse::<IpAddr>() {
            Ok(a) => Some(IpNet::from(a)),
            Err(_) => {
                sink.push(
                    Diagnostic::error(format!(
                        "`{}` is not an IP address",
                        s.get_ref().escape_debug()
                    ))
                    .at(src, s.span())
                    .with_help("list the appliance's own addresses, e.g. \"192.0.2.10\" or \"2001:db8::10\""),
                );
                None
            }
        })
        .collect();
    let mut public = Vec::new();
    for s in &raw.appliance.public {
        match s.get_ref().parse::<IpAddr>() {
            Ok(a) if appliance.iter().any(|n| n.contains(&a)) => sink.push(
                Diagnostic::error(format!("public address {a} is one of the appliance's own"))
                    .at(src, s.span())
                    .with_help("`public` lists the addresses a firewall translates to the appliance; the appliance's own go in `addresses`"),
            ),
            Ok(a) => public.push(a),
            Err(_) => sink.push(
                Diagnostic::error(format!(
                    "`{}` is not an IP address",
                    s.get_ref().escape_debug()
                ))
                .at(src, s.span())
                .with_help("give the address the firewall translates to the appliance, e.g. public = [\"203.0.113.10\"]"),
            ),
        }
    }
    if raw.appliance.addresses.is_empty() {
        sink.push(
            Diagnostic::error("the appliance has no addresses")
                .in_file(src)
                .with_help("add [appliance] addresses = [\"192.0.2.10\"]"),
        );
    }

    let mut roles = BTreeMap::new();
    for (name, items) in &raw.roles {
        if let Err(m) = check_id(name.get_ref(), "role") {
            sink.push(Diagnostic::error(m).at(src, name.span()));
            continue;
        }
        if name.get_ref() == "appliance" {
            sink.push(
                Diagnostic::error("`appliance` is not a role; its addresses go under [appliance]")
                    .at(src, name.span()),
            );
            continue;
        }
        let n = nets(&mut sink, items);
        roles.insert(name.get_ref().clone(), (n, Some(name.span())));
    }

    let fold = |sink: &mut Sink, text: &str, span: Range<usize>| {
        crate::model::lowercase_dns_name(text, src, span, sink)
    };
    let mut hosts = BTreeMap::new();
    let mut host_spans = BTreeMap::new();
    for (name, items) in &raw.hosts {
        let folded = fold(&mut sink, name.get_ref(), name.span());
        let n = &folded;
        let check = if n.starts_with('*') || n.contains('*') {
            check_wildcard(n)
        } else {
            check_dns_name(n)
        };
        if let Err(m) = check {
            sink.push(Diagnostic::error(m).at(src, name.span()));
            continue;
        }
        let mut addrs = Vec::new();
        for s in items {
            match s.get_ref().parse::<IpAddr>() {
                Ok(a) => addrs.push(a),
                Err(_) => sink.push(
                    Diagnostic::error(format!(
                        "`{}` is not an IP address (a DNS pin lists the addresses the name resolves to)",
                        s.get_ref().escape_debug()
                    ))
                    .at(src, s.span()),
                ),
            }
        }
        if hosts.insert(n.clone(), addrs).is_some() {
            sink.push(
                Diagnostic::error(format!(
                    "`{n}` is pinned twice (names are case-insensitive)"
                ))
                .at(src, name.span())
                .with_help("list all its addresses under one key"),
            );
        }
        host_spans.insert(n.clone(), name.span());
    }

    let dns_proxy = match &raw.dns_proxy {
        Some(p) => match p.get_ref().parse::<IpAddr>() {
            Ok(a) => Some((a, Some(p.span()))),
            Err(_) => {
                sink.push(
                    Diagnostic::error(format!("`{}` is not an IP address", p.get_ref().escape_debug()))
                        .at(src, p.span())
                        .with_help("give the address the appliance sends its DNS queries to, e.g. \"192.0.2.1\""),
                );
                None
            }
        },
        None => None,
    };
    let mut probe_names = BTreeMap::new();
    let mut probe_name_spans = BTreeMap::new();
    for (wild_raw, name_raw) in &raw.probe_names {
        let wild = Spanned::new(
            wild_raw.span(),
            fold(&mut sink, wild_raw.get_ref(), wild_raw.span()),
        );
        let name = Spanned::new(
            name_raw.span(),
            fold(&mut sink, name_raw.get_ref(), name_raw.span()),
        );
        // A role bound to host addresses: the name its TLS certificate is for.
        if !wild.get_ref().contains('*') && !wild.get_ref().contains('.') {
            if let Err(m) = crate::model::check_id(wild.get_ref(), "role") {
                sink.push(Diagnostic::error(m).at(src, wild.span()).with_help(
                    "keys of [probe_names] are wildcards (*.example.com) or role names",
                ));
                continue;
            }
            if let Err(m) = check_dns_name(name.get_ref()) {
                sink.push(Diagnostic::error(m).at(src, name.span()));
                continue;
            }
            probe_name_spans.insert(wild.get_ref().clone(), wild.span());
            probe_names.insert(wild.get_ref().clone(), name.get_ref().clone());
            continue;
        }
        if let Err(m) = check_wildcard(wild.get_ref()) {
            sink.push(Diagnostic::error(m).at(src, wild.span()));
            continue;
        }
        if let Err(m) = check_dns_name(name.get_ref()) {
            sink.push(Diagnostic::error(m).at(src, name.span()));
            continue;
        }
        if !crate::model::wildcard_matches(wild.get_ref(), name.get_ref()) {
            sink.push(
                Diagnostic::error(format!("`{}` is not under `{}`", name.get_ref(), wild.get_ref()))
                    .at(src, name.span())
                    .with_help("give a name the wildcard covers, e.g. x.avcloud.intra2net.com for *.avcloud.intra2net.com"),
            );
            continue;
        }
        probe_names.insert(wild.get_ref().clone(), name.get_ref().clone());
    }

    let mut ports = BTreeMap::new();
    for (flow, specs) in &raw.ports {
        let mut ranges = Vec::new();
        for p in specs {
            match port_range(p.get_ref()) {
                Ok(r) => ranges.push(r),
                Err(m) => sink.push(Diagnostic::error(m).at(src, p.span())),
            }
        }
        if specs.is_empty() {
            sink.push(
                Diagnostic::error(format!("no ports given for flow `{}`", flow.get_ref()))
                    .at(src, flow.span()),
            );
        }
        ports.insert(flow.get_ref().clone(), (ranges, Some(flow.span())));
    }

    let mut alternatives = BTreeMap::new();
    for (group, choice) in &raw.alternatives {
        if matches!(choice.get_ref(), FeatureList::All) {
            sink.push(
                Diagnostic::error("an alternative names flow ids, not \"all\"")
                    .at(src, choice.span()),
            );
            continue;
        }
        let chosen = choice
            .get_ref()
            .spanned(choice.span())
            .into_iter()
            .map(|(n, s)| (n, Some(s)))
            .collect();
        alternatives.insert(group.get_ref().clone(), (chosen, Some(group.span())));
    }

    let features = match &raw.features {
        None => Features::Some(vec![]),
        Some(f) => match f.get_ref() {
            FeatureList::All => Features::All,
            other => Features::Some(
                other
                    .spanned(f.span())
                    .into_iter()
                    .map(|(n, s)| (n, Some(s)))
                    .collect(),
            ),
        },
    };

    let mut zone_spans = BTreeMap::new();
    let placement = match &raw.placement {
        None => Placement::Host,
        Some(p) => match p.mode.get_ref() {
            PlacementMode::Host => {
                if let Some(i) = &p.appliance_interface {
                    sink.push(
                        Diagnostic::warning("`appliance_interface` is only used in gateway mode")
                            .at(src, i.span()),
                    );
                }
                Placement::Host
            }
            PlacementMode::Gateway => {
                let mut iface_errors = Vec::new();
                let mut missing_iface = false;
                let mut iface = |s: &Spanned<String>| -> String {
                    if let Err(m) = ifname_ok(s.get_ref()) {
                        iface_errors.push(Diagnostic::error(m).at(src, s.span()));
                    }
                    s.get_ref().clone()
                };
                let appliance_interface = match &p.appliance_interface {
                    Some(i) => iface(i),
                    None => {
                        missing_iface = true;
                        String::new()
                    }
                };
                let zones = p
                    .zones
                    .iter()
                    .map(|(k, v)| {
                        zone_spans.insert(k.get_ref().clone(), k.span());
                        (k.get_ref().clone(), iface(v))
                    })
                    .collect();
                let default_interface = p.default_interface.as_ref().map(&mut iface);
                if missing_iface {
                    sink.push(
                            Diagnostic::error("gateway mode needs `appliance_interface`")
                                .at(src, p.mode.span())
                                .with_help("name the firewall's interface toward the appliance, e.g. appliance_interface = \"dmz0\""),
                        );
                }
                for d in iface_errors {
                    sink.push(d);
                }
                Placement::Gateway {
                    appliance_interface,
                    zones,
                    default_interface,
                    others: p.others.unwrap_or_default(),
                }
            }
        },
    };

    let site = Site {
        profile: raw.profile.get_ref().clone(),
        profile_span: Some(raw.profile.span()),
        features,
        appliance,
        public,
        roles,
        hosts,
        host_spans,
        probe_names,
        probe_name_spans,
        tls_ca: raw.tls_ca.as_ref().map(|c| c.get_ref().clone()),
        dns_proxy,
        ports,
        alternatives,
        placement,
        zone_spans,
        origin: src.clone(),
    };
    sink.finish(site)
}

/// First documentation address for the appliance.
pub const DEMO_APPLIANCE_V4: &str = "192.0.2.10";
pub const DEMO_APPLIANCE_V6: &str = "2001:db8:0:1::10";

/// The built-in demo site for a profile: host placement, the appliance at 192.0.2.10 and
/// 2001:db8:0:1::10, `internal` = 192.0.2.0/24 and 2001:db8:0:1::/64, each other role one
/// documentation address in that network, `internet` the default. DNS names stay unpinned.
pub fn demo(profile: &Profile) -> Site {
    let mut roles = BTreeMap::new();
    let net = |s: &str| -> IpNet {
        parse_net(s).unwrap_or_else(|_| IpNet::from(IpAddr::from([192, 0, 2, 0])))
    };
    roles.insert(
        "internal".to_string(),
        (vec![net("192.0.2.0/24"), net("2001:db8:0:1::/64")], None),
    );
    let mut names: Vec<&str> = profile.used_roles().into_iter().collect();
    names.extend(profile.roles.keys().map(String::as_str));
    names.sort();
    names.dedup();
    let mut host = 20u32;
    for r in names {
        if r == "internet" || r == "internal" {
            continue;
        }
        roles.insert(
            r.to_string(),
            (
                vec![
                    net(&format!("192.0.2.{host}")),
                    net(&format!("2001:db8:0:1::{host}")),
                ],
                None,
            ),
        );
        host = (host + 1).min(254);
    }
    let text = format!(
        "# built-in demo site for profile {}: documentation addresses only (RFC 5737, RFC 3849)\n",
        profile.id
    );
    Site {
        profile: profile.id.clone(),
        profile_span: None,
        features: Features::Some(vec![]),
        appliance: vec![net(DEMO_APPLIANCE_V4), net(DEMO_APPLIANCE_V6)],
        public: Vec::new(),
        roles,
        hosts: BTreeMap::new(),
        host_spans: BTreeMap::new(),
        probe_names: BTreeMap::new(),
        probe_name_spans: BTreeMap::new(),
        tls_ca: None,
        dns_proxy: None,
        ports: BTreeMap::new(),
        alternatives: BTreeMap::new(),
        placement: Placement::Host,
        zone_spans: BTreeMap::new(),
        origin: Source::new(format!("demo-site:{}", profile.id), text),
    }
}

/// JSON Schema of the site format.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawSite)).unwrap_or_default()
}
