//! Profile files: the TOML format an appliance's requirements are written in.
//!
//! The `Raw*` types mirror the file one to one (serde with `deny_unknown_fields`, spans kept
//! for every value that is checked later) and generate the published JSON Schema. [`parse`]
//! turns them into the validated [`crate::model::Profile`], reporting *all* problems at once,
//! each with file:line:col. Nothing here may panic on any input: the fuzz target
//! `fuzz/fuzz_targets/profile.rs` feeds it arbitrary bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Diagnostic, Errors, Sink, Source};
use crate::model::*;

/// Longest free text (function, note, description) accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Raw file types
// ---------------------------------------------------------------------------------------------

/// A profile file: one appliance's firewall requirements.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "portolan profile")]
pub struct RawProfile {
    /// Catalog id: lowercase letters, digits and hyphens.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Product name as the vendor writes it.
    pub name: String,
    pub vendor: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The documents this profile was curated from.
    #[serde(default)]
    pub sources: Vec<RawSourceDoc>,
    /// Roles beyond the built-in ones, with what they mean.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawRole>")]
    pub roles: BTreeMap<Spanned<String>, RawRole>,
    /// Optional features; a flow with `feature = "x"` is planned only when the site enables x.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawFeature>")]
    pub features: BTreeMap<Spanned<String>, RawFeature>,
    /// Groups of flows the site chooses among (e.g. SMTP directly or through a smarthost).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawAlternative>")]
    pub alternatives: BTreeMap<Spanned<String>, RawAlternative>,
    /// Flaws of the source document, shown by `portolan check`.
    #[serde(default)]
    pub caveats: Vec<RawCaveat>,
    #[serde(default)]
    #[schemars(with = "Vec<RawFlow>")]
    pub flows: Vec<Spanned<RawFlow>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSourceDoc {
    /// Short id used by `source_lines` and caveats (`en`, `de`).
    pub id: String,
    pub title: String,
    /// ISO 639-1 language of the document (`en`, `de`).
    pub language: String,
    /// File name of the document (e.g. in `shared/seeds/`).
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFeature {
    pub description: String,
    /// Features this one needs; turning it on turns them on too.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub requires: Vec<Spanned<String>>,
    /// Flow ids that are not needed when this feature is on (off even when required).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub turns_off: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAlternative {
    pub description: String,
    /// Flow id used when the site does not choose.
    #[schemars(with = "String")]
    pub default: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCaveat {
    pub message: String,
    /// Id of the source document the caveat is about.
    #[serde(default)]
    pub source: Option<String>,
    /// Line in that document.
    #[serde(default)]
    pub line: Option<u32>,
    /// Flows the caveat concerns.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub flows: Vec<Spanned<String>>,
}

/// One requirement: who talks to whom, over what.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    /// Stable id, unique in the profile.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// What the flow is for, in English.
    pub function: String,
    /// The same in German, where the source has it.
    #[serde(default)]
    pub function_de: Option<String>,
    /// Who opens the connection: `appliance`, a role, a DNS name, `*.wildcard`, or a network.
    #[schemars(with = "OneOrMany")]
    pub from: Spanned<Endpoints>,
    /// Who accepts it; same forms as `from`.
    #[schemars(with = "OneOrMany")]
    pub to: Spanned<Endpoints>,
    /// `tcp`, `udp`, `icmp`; a row that needs both TCP and UDP lists both.
    #[schemars(with = "Vec<Protocol>")]
    pub protocols: Spanned<Vec<Protocol>>,
    /// Destination ports: numbers, or ranges written `"5000-5050"`. Empty for ICMP.
    #[serde(default)]
    #[schemars(with = "Vec<PortOrRange>")]
    pub ports: Vec<Spanned<PortSpec>>,
    /// ICMP message type, for `icmp` flows.
    #[serde(default)]
    #[schemars(with = "Option<IcmpType>")]
    pub icmp_type: Option<Spanned<IcmpType>>,
    /// The feature that enables this flow; without it the flow is required.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub feature: Option<Spanned<String>>,
    /// Further features that must all be on too (needs `feature`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub with_features: Vec<Spanned<String>>,
    /// The alternative group this flow is one option of.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub alternative: Option<Spanned<String>>,
    /// Application protocol to expect when probing (`https`, `smtp`, `ntp`, ...).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub app: Option<Spanned<String>>,
    #[serde(default)]
    pub flags: Vec<Flag>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Line of the row in each source document, by source id.
    #[serde(default)]
    pub source_lines: BTreeMap<String, u32>,
}

/// Schema-only: a string or a list of strings.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Schema-only: a port number or a `"low-high"` range.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum PortOrRange {
    Port(u16),
    Range(String),
}

/// `from`/`to`: one endpoint string or a list of them, each with its own span.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub items: Vec<Spanned<String>>,
    /// True when written as a single string: its span is then the outer one.
    pub single: bool,
}

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Endpoints;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an endpoint string or a list of endpoint strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Endpoints, E> {
                Ok(Endpoints {
                    items: vec![Spanned::new(0..0, v.to_string())],
                    single: true,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Endpoints, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(Endpoints {
                    items,
                    single: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Endpoints {
    /// Each endpoint with its span, given the span of the whole value.
    pub fn spanned(&self, outer: Range<usize>) -> Vec<(String, Range<usize>)> {
        self.items
            .iter()
            .map(|s| {
                let span = if self.single { outer.clone() } else { s.span() };
                (s.get_ref().clone(), span)
            })
            .collect()
    }
}

/// A port as written: a number (any integer, checked later for a helpful message) or a string.
#[derive(Debug, Clone)]
pub enum PortSpec {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a range such as \"5000-5050\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortSpec, E> {
                Ok(PortSpec::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortSpec, E> {
                Ok(PortSpec::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortSpec, E> {
                Ok(PortSpec::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Check one port value; `Err` holds the message.
pub fn port_range(spec: &PortSpec) -> Result<PortRange, String> {
    fn one(n: i64, text: &str) -> Result<u16, String> {
        if (1..=65535).contains(&n) {
            Ok(n as u16)
        } else {
            Err(format!("port {text} is out of range: ports are 1 to 65535"))
        }
    }
    fn num(s: &str) -> Result<i64, String> {
        let t = s.trim();
        t.parse::<i64>().map_err(|_| {
            format!(
                "`{}` is not a port: write a number, or a range such as \"5000-5050\"",
                s.escape_debug()
            )
        })
    }
    match spec {
        PortSpec::Number(n) => one(*n, &n.to_string()).map(PortRange::single),
        PortSpec::Text(t) => match t.split_once('-') {
            Some((a, b)) => {
                let (lo, hi) = (num(a)?, num(b)?);
                let (lo, hi) = (one(lo, &lo.to_string())?, one(hi, &hi.to_string())?);
                if lo > hi {
                    return Err(format!("range {t} is reversed: write \"{hi}-{lo}\""));
                }
                Ok(PortRange { low: lo, high: hi })
            }
            None => {
                let n = num(t)?;
                one(n, t).map(PortRange::single)
            }
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

/// Parse TOML text into `T`, turning syntax and shape errors into a located diagnostic.
pub fn from_toml<T: serde::de::DeserializeOwned>(source: &Source, what: &str) -> Result<T, Errors> {
    if source.text.trim().is_empty() {
        return Err(Diagnostic::error(format!("the {what} file is empty"))
            .in_file(source)
            .with_help(match what {
                "profile" => "a profile needs at least `id`, `name`, `vendor` and [[flows]]; see `portolan schema profile`".to_string(),
                "site" => "a site needs at least `profile` and `[appliance] addresses`; see `portolan schema site`".to_string(),
                _ => "`portolan catalog show intra2net` prints a complete profile; the README has a site example".to_string(),
            })
            .into());
    }
    toml::from_str::<T>(&source.text).map_err(|e| {
        let message = e.message().trim().to_string();
        let help = help_for_toml_error(&message, what);
        let mut d = Diagnostic::error(message);
        d = match e.span() {
            Some(span) => d.at(source, span),
            None => d.in_file(source),
        };
        if let Some(h) = help {
            d = d.with_help(h);
        }
        Errors::one(d)
    })
}

fn help_for_toml_error(message: &str, what: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some(format!(
            "remove or rename the key; `portolan schema {what}` lists every key"
        ))
    } else if message.starts_with("missing field") {
        Some(format!(
            "add the key; `portolan schema {what}` lists every key"
        ))
    } else if message.starts_with("unknown variant") {
        Some("use one of the values listed".into())
    } else if message.contains("invalid") || message.contains("expected") {
        Some("the file is not valid TOML here; see https://toml.io".into())
    } else {
        None
    }
}

/// Parse and validate a profile. Warnings (not caveats: those live in the profile) come back
/// beside it.
pub fn parse(source: &Source) -> Result<(Profile, Vec<Diagnostic>), Errors> {
    let raw: RawProfile = from_toml(source, "profile")?;
    validate(&raw, source)
}

fn text_ok(sink: &mut Sink, src: &Source, span: Range<usize>, what: &str, text: &str) {
    if text.len() > MAX_TEXT_LEN {
        sink.push(
            Diagnostic::error(format!("{what} is longer than {MAX_TEXT_LEN} bytes"))
                .at(src, span.clone()),
        );
    }
    if text.trim().is_empty() {
        sink.push(Diagnostic::error(format!("{what} is empty")).at(src, span));
    }
}

pub(crate) fn validate(
    raw: &RawProfile,
    src: &Source,
) -> Result<(Profile, Vec<Diagnostic>), Errors> {
    let mut sink = Sink::default();
    let id_ok = |sink: &mut Sink, s: &Spanned<String>, what: &str| -> bool {
        match check_id(s.get_ref(), what) {
            Ok(()) => true,
            Err(m) => {
                sink.push(Diagnostic::error(m).at(src, s.span()));
                false
            }
        }
    };
    id_ok(&mut sink, &raw.id, "profile");

    let mut roles = BTreeMap::new();
    for (name, role) in &raw.roles {
        if id_ok(&mut sink, name, "role") {
            if name.get_ref() == "appliance" || builtin_role(name.get_ref()).is_some() {
                sink.push(
                    Diagnostic::error(format!(
                        "role `{}` is built in; do not declare it",
                        name.get_ref()
                    ))
                    .at(src, name.span())
                    .with_help("remove this declaration, or give the role another name"),
                );
            }
            roles.insert(
                name.get_ref().clone(),
                RoleDecl {
                    description: role.description.clone(),
                },
            );
        }
    }
    let mut features = BTreeMap::new();
    for (name, f) in &raw.features {
        if id_ok(&mut sink, name, "feature") {
            if name.get_ref() == "all" {
                sink.push(
                    Diagnostic::error(
                        "a feature may not be called `all`: `--features all` means every feature",
                    )
                    .at(src, name.span()),
                );
            }
            features.insert(
                name.get_ref().clone(),
                FeatureDecl {
                    description: f.description.clone(),
                    requires: f.requires.iter().map(|r| r.get_ref().clone()).collect(),
                    turns_off: f.turns_off.iter().map(|r| r.get_ref().clone()).collect(),
                },
            );
        }
    }

    let source_ids: BTreeSet<&str> = raw.sources.iter().map(|s| s.id.as_str()).collect();
    let mut flows = Vec::new();
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for sflow in &raw.flows {
        let fspan = sflow.span();
        let rf = sflow.get_ref();
        let fid = rf.id.get_ref().clone();
        let mut ok = id_ok(&mut sink, &rf.id, "flow");
        if let Some(first) = seen.get(&fid) {
            let (line, _) = src.line_col(first.start);
            sink.push(
                Diagnostic::error(format!("duplicate flow id `{fid}`"))
                    .at(src, rf.id.span())
                    .with_help(format!(
                        "the first flow with this id is on line {line}; flow ids must be unique"
                    )),
            );
            ok = false;
        } else {
            seen.insert(fid.clone(), rf.id.span());
        }
        text_ok(&mut sink, src, fspan.clone(), "`function`", &rf.function);

        let mut endpoints = |ep: &Spanned<Endpoints>, side: &str| -> Vec<Endpoint> {
            let mut out = Vec::new();
            let items = ep.get_ref().spanned(ep.span());
            if items.is_empty() {
                sink.push(
                    Diagnostic::error(format!("`{side}` is empty"))
                        .at(src, ep.span())
                        .with_help("name at least one endpoint: `appliance`, a role, a DNS name or a network"),
                );
            }
            for (text, span) in items {
                let text = lowercase_dns_name(&text, src, span.clone(), &mut sink);
                match Endpoint::parse(&text) {
                    Ok(Endpoint::Role(r)) => {
                        if builtin_role(&r).is_none() && !roles.contains_key(&r) {
                            let known: Vec<&str> = BUILTIN_ROLES
                                .iter()
                                .map(|(n, _)| *n)
                                .chain(roles.keys().map(String::as_str))
                                .collect();
                            sink.push(
                                Diagnostic::error(format!("unknown role `{r}`"))
                                    .at(src, span)
                                    .with_help(format!(
                                        "declare it under [roles.{r}] with a description, or use one of: {}",
                                        known.join(", ")
                                    )),
                            );
                        } else {
                            out.push(Endpoint::Role(r));
                        }
                    }
                    Ok(e) => out.push(e),
                    Err(m) => sink.push(Diagnostic::error(m).at(src, span)),
                }
            }
            out
        };
        let from = endpoints(&rf.from, "from");
        let to = endpoints(&rf.to, "to");
        let has_app_from = from.contains(&Endpoint::Appliance);
        let has_app_to = to.contains(&Endpoint::Appliance);
        if (has_app_from && from.len() > 1) || (has_app_to && to.len() > 1) {
            sink.push(
                Diagnostic::error("`appliance` cannot be listed together with other endpoints")
                    .at(
                        src,
                        if has_app_from {
                            rf.from.span()
                        } else {
                            rf.to.span()
                        },
                    )
                    .with_help("split this into two flows"),
            );
        }
        if has_app_from && has_app_to {
            sink.push(
                Diagnostic::error("a flow from the appliance to itself never crosses a firewall")
                    .at(src, rf.to.span())
                    .with_help(
                        "for traffic between appliances of a cluster use the role `cluster-peer`",
                    ),
            );
        }

        let protocols: Vec<Protocol> = {
            let mut p = rf.protocols.get_ref().clone();
            p.sort();
            p.dedup();
            p
        };
        if protocols.is_empty() {
            sink.push(Diagnostic::error("`protocols` is empty").at(src, rf.protocols.span()));
        }
        let is_icmp = protocols.contains(&Protocol::Icmp);
        if is_icmp && protocols.len() > 1 {
            sink.push(
                Diagnostic::error("`icmp` cannot share a flow with `tcp` or `udp`")
                    .at(src, rf.protocols.span())
                    .with_help("split this into an ICMP flow and a TCP/UDP flow"),
            );
        }
        let mut ports = Vec::new();
        for p in &rf.ports {
            match port_range(p.get_ref()) {
                Ok(r) => ports.push(r),
                Err(m) => {
                    sink.push(Diagnostic::error(m).at(src, p.span()));
                    ok = false;
                }
            }
        }
        let icmp_type = rf.icmp_type.as_ref().map(|t| *t.get_ref());
        if is_icmp {
            if !rf.ports.is_empty() {
                sink.push(
                    Diagnostic::error("ICMP has no ports")
                        .at(src, rf.ports[0].span())
                        .with_help("remove `ports` and give `icmp_type`, e.g. \"echo-request\""),
                );
            }
            if icmp_type.is_none() {
                sink.push(
                    Diagnostic::error("an ICMP flow needs `icmp_type`")
                        .at(src, fspan.clone())
                        .with_help("add e.g. icmp_type = \"echo-request\""),
                );
            }
        } else {
            // A `port_configurable` flow may leave its ports to the site (an FTP server's
            // passive range): the plan leaves it out until the site gives them.
            let site_ports = rf.flags.contains(&Flag::PortConfigurable);
            if ports.is_empty() && rf.ports.is_empty() && !site_ports {
                sink.push(
                    Diagnostic::error("a TCP or UDP flow needs `ports`")
                        .at(src, rf.protocols.span())
                        .with_help("add e.g. ports = [443] or ports = [\"5000-5050\"]"),
                );
            }
            if let Some(t) = &rf.icmp_type {
                sink.push(
                    Diagnostic::error("`icmp_type` is only for ICMP flows").at(src, t.span()),
                );
            }
        }

        let condition = match &rf.feature {
            Some(f) => {
                if !features.contains_key(f.get_ref()) {
                    let known: Vec<&str> = features.keys().map(String::as_str).collect();
                    sink.push(
                        Diagnostic::error(format!("unknown feature `{}`", f.get_ref()))
                            .at(src, f.span())
                            .with_help(if known.is_empty() {
                                format!(
                                    "declare it: [features.{}] description = \"...\"",
                                    f.get_ref()
                                )
                            } else {
                                format!(
                                    "declare it under [features.{}], or use one of: {}",
                                    f.get_ref(),
                                    known.join(", ")
                                )
                            }),
                    );
                }
                Condition::Feature(f.get_ref().clone())
            }
            None => Condition::Required,
        };
        for w in &rf.with_features {
            if !features.contains_key(w.get_ref()) {
                sink.push(
                    Diagnostic::error(format!("unknown feature `{}`", w.get_ref()))
                        .at(src, w.span())
                        .with_help("declare it under [features.NAME]"),
                );
            }
        }
        if !rf.with_features.is_empty() && rf.feature.is_none() {
            sink.push(
                Diagnostic::error("`with_features` needs `feature`")
                    .at(src, rf.with_features[0].span())
                    .with_help("give the flow's own feature as `feature`, the others here"),
            );
        }
        if let Some(a) = &rf.alternative {
            if !raw.alternatives.keys().any(|k| k.get_ref() == a.get_ref()) {
                sink.push(
                    Diagnostic::error(format!("unknown alternative group `{}`", a.get_ref()))
                        .at(src, a.span())
                        .with_help(format!(
                            "declare it: [alternatives.{}] description = \"...\" default = \"<flow id>\"",
                            a.get_ref()
                        )),
                );
            }
        }
        if let Some(app) = &rf.app {
            if !APP_PROTOCOLS.contains(&app.get_ref().as_str()) {
                sink.push(
                    Diagnostic::error(format!(
                        "unknown application protocol `{}`",
                        app.get_ref().escape_debug()
                    ))
                    .at(src, app.span())
                    .with_help(format!("use one of: {}", APP_PROTOCOLS.join(", "))),
                );
            }
        }
        for (i, n) in rf.notes.iter().enumerate() {
            text_ok(&mut sink, src, fspan.clone(), &format!("note {}", i + 1), n);
        }
        if let Some(de) = &rf.function_de {
            text_ok(&mut sink, src, fspan.clone(), "`function_de`", de);
        }
        for sid in rf.source_lines.keys() {
            if !source_ids.contains(sid.as_str()) {
                sink.push(
                    Diagnostic::error(format!(
                        "`source_lines` names unknown source `{}`",
                        sid.escape_debug()
                    ))
                    .at(src, fspan.clone())
                    .with_help("use the `id` of one of the [[sources]]"),
                );
            }
        }
        if ok {
            flows.push(Flow {
                id: fid,
                function: rf.function.clone(),
                function_de: rf.function_de.clone(),
                from,
                to,
                protocols,
                ports: merge_ranges(ports),
                icmp_type,
                condition,
                with_features: rf
                    .with_features
                    .iter()
                    .map(|w| w.get_ref().clone())
                    .collect(),
                alternative: rf.alternative.as_ref().map(|a| a.get_ref().clone()),
                app: rf.app.as_ref().map(|a| a.get_ref().clone()),
                flags: rf.flags.iter().copied().collect(),
                notes: rf.notes.clone(),
                source_lines: rf.source_lines.clone(),
                span: fspan,
            });
        }
    }

    let mut alternatives = BTreeMap::new();
    let mut members_of: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &flows {
        if let Some(a) = f.alternative.as_deref() {
            *members_of.entry(a).or_default() += 1;
        }
    }
    let flow_by_id: BTreeMap<&str, &Flow> = flows.iter().map(|f| (f.id.as_str(), f)).collect();
    for (name, alt) in &raw.alternatives {
        if !id_ok(&mut sink, name, "alternative") {
            continue;
        }
        let members = members_of
            .get(name.get_ref().as_str())
            .copied()
            .unwrap_or(0);
        match flow_by_id.get(alt.default.get_ref().as_str()) {
            Some(f) if f.alternative.as_deref() == Some(name.get_ref()) => {}
            Some(_) => sink.push(
                Diagnostic::error(format!(
                    "default `{}` of alternative `{}` is not one of its flows",
                    alt.default.get_ref(),
                    name.get_ref()
                ))
                .at(src, alt.default.span())
                .with_help(format!(
                    "add alternative = \"{}\" to that flow",
                    name.get_ref()
                )),
            ),
            None => sink.push(
                Diagnostic::error(format!("unknown flow `{}`", alt.default.get_ref()))
                    .at(src, alt.default.span()),
            ),
        }
        if members < 2 {
            sink.push(
                Diagnostic::warning(format!(
                    "alternative `{}` has {} flow(s); an alternative offers a choice between at least two",
                    name.get_ref(),
                    members
                ))
                .at(src, name.span()),
            );
        }
        alternatives.insert(
            name.get_ref().clone(),
            AlternativeDecl {
                description: alt.description.clone(),
                default: alt.default.get_ref().clone(),
            },
        );
    }

    let mut caveats = Vec::new();
    for c in &raw.caveats {
        for f in &c.flows {
            if !flow_by_id.contains_key(f.get_ref().as_str()) && !seen.contains_key(f.get_ref()) {
                sink.push(
                    Diagnostic::error(format!("caveat names unknown flow `{}`", f.get_ref()))
                        .at(src, f.span()),
                );
            }
        }
        caveats.push(Caveat {
            message: c.message.clone(),
            source: c.source.clone(),
            line: c.line,
            flows: c.flows.iter().map(|f| f.get_ref().clone()).collect(),
        });
    }

    // One pass over the flows, not one per feature (drafts from `import` have thousands).
    let used_features: BTreeSet<&str> = flows
        .iter()
        .filter_map(|f| match &f.condition {
            Condition::Feature(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    // Features' requirements and the flows they turn off must exist.
    let flow_ids: BTreeSet<&str> = flows.iter().map(|f| f.id.as_str()).collect();
    for (name, f) in raw.features.iter() {
        for r in &f.requires {
            if !raw.features.keys().any(|k| k.get_ref() == r.get_ref())
                || r.get_ref() == name.get_ref()
            {
                sink.push(
                    Diagnostic::error(format!(
                        "feature `{}` requires `{}`, which is not another feature of this profile",
                        name.get_ref(),
                        r.get_ref()
                    ))
                    .at(src, r.span()),
                );
            }
        }
        for o in &f.turns_off {
            if !flow_ids.contains(o.get_ref().as_str()) {
                sink.push(
                    Diagnostic::error(format!(
                        "feature `{}` turns off `{}`, which is not a flow",
                        name.get_ref(),
                        o.get_ref()
                    ))
                    .at(src, o.span()),
                );
            }
        }
    }
    let used_features: BTreeSet<&str> = used_features
        .into_iter()
        .chain(
            flows
                .iter()
                .flat_map(|f| f.with_features.iter().map(String::as_str)),
        )
        .chain(
            raw.features
                .iter()
                .filter(|(_, f)| !f.turns_off.is_empty() || !f.requires.is_empty())
                .map(|(n, _)| n.get_ref().as_str()),
        )
        .collect();
    for (name, _) in raw.features.iter() {
        if !used_features.contains(name.get_ref().as_str()) {
            sink.push(
                Diagnostic::warning(format!("feature `{}` enables no flow", name.get_ref()))
                    .at(src, name.span()),
            );
        }
    }

    let profile = Profile {
        id: raw.id.get_ref().clone(),
        name: raw.name.clone(),
        vendor: raw.vendor.clone(),
        description: raw.description.clone(),
        sources: raw
            .sources
            .iter()
            .map(|s| SourceDoc {
                id: s.id.clone(),
                title: s.title.clone(),
                language: s.language.clone(),
                document: s.document.clone(),
                url: s.url.clone(),
            })
            .collect(),
        roles,
        features,
        alternatives,
        caveats,
        flows,
        origin: src.clone(),
    };
    sink.finish(profile)
}

/// The caveats of a profile as warnings, each pointing at the profile.
pub fn caveat_diagnostics(p: &Profile) -> Vec<Diagnostic> {
    p.caveats
        .iter()
        .map(|c| {
            let mut msg = format!("source caveat: {}", c.message);
            if let (Some(s), Some(l)) = (&c.source, c.line) {
                let doc = p
                    .sources
                    .iter()
                    .find(|d| &d.id == s)
                    .and_then(|d| d.document.clone())
                    .unwrap_or_else(|| s.clone());
                msg.push_str(&format!(" [{doc}, line {l}]"));
            }
            let mut d = Diagnostic::warning(msg).in_file(&p.origin);
            if !c.flows.is_empty() {
                d = d.with_help(format!("concerns flow(s): {}", c.flows.join(", ")));
            }
            d
        })
        .collect()
}

/// JSON Schema of the profile format.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawProfile)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(
            port_range(&PortSpec::Number(443)),
            Ok(PortRange::single(443))
        );
        assert_eq!(
            port_range(&PortSpec::Text("5000-5050".into())),
            Ok(PortRange {
                low: 5000,
                high: 5050
            })
        );
        assert!(port_range(&PortSpec::Number(0)).is_err());
        assert!(port_range(&PortSpec::Number(65536)).is_err());
        assert!(port_range(&PortSpec::Text("5050-5000".into())).is_err());
        assert!(port_range(&PortSpec::Text("https".into())).is_err());
    }
}
