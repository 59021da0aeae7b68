//! The requirements model: what an appliance needs, independent of any site.
//!
//! These are the *validated* types. They are only built by [`crate::profile::parse`], which
//! checks every identifier, name and number, so code downstream (the plan, the renderers) can
//! rely on the invariants written on each type. In particular every identifier and DNS name
//! here is made of `[a-z0-9.*-]` only, which is what lets renderers put them into generated
//! configuration without any chance of injection.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::diag::Source;

/// Longest identifier (flow, feature, role, profile) accepted.
pub const MAX_ID_LEN: usize = 63;
/// Longest DNS name accepted (RFC 1035, without the trailing dot).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest DNS label accepted (RFC 1035).
pub const MAX_DNS_LABEL_LEN: usize = 63;

/// Transport protocol of a flow. A source row that needs both TCP and UDP becomes two planned
/// flows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    /// ICMP for IPv4 and ICMPv6 for IPv6; the type says which message.
    Icmp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        })
    }
}

/// ICMP message types a profile may name. Each has an IPv4 and an IPv6 spelling.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum IcmpType {
    EchoRequest,
    EchoReply,
    DestinationUnreachable,
    TimeExceeded,
}

impl IcmpType {
    pub fn name(self) -> &'static str {
        match self {
            IcmpType::EchoRequest => "echo-request",
            IcmpType::EchoReply => "echo-reply",
            IcmpType::DestinationUnreachable => "destination-unreachable",
            IcmpType::TimeExceeded => "time-exceeded",
        }
    }
    /// Numeric ICMPv4 type.
    /// The name pf and OPNsense/pfSense use for the IPv4 type.
    pub fn pf_name(self) -> &'static str {
        match self {
            IcmpType::EchoRequest => "echoreq",
            IcmpType::EchoReply => "echorep",
            IcmpType::DestinationUnreachable => "unreach",
            IcmpType::TimeExceeded => "timex",
        }
    }
    pub fn v4_code(self) -> u8 {
        match self {
            IcmpType::EchoRequest => 8,
            IcmpType::EchoReply => 0,
            IcmpType::DestinationUnreachable => 3,
            IcmpType::TimeExceeded => 11,
        }
    }
    /// Numeric ICMPv6 type.
    pub fn v6_code(self) -> u8 {
        match self {
            IcmpType::EchoRequest => 128,
            IcmpType::EchoReply => 129,
            IcmpType::DestinationUnreachable => 1,
            IcmpType::TimeExceeded => 3,
        }
    }
}

/// An inclusive port range; `low <= high`, both in 1..=65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub fn single(p: u16) -> Self {
        PortRange { low: p, high: p }
    }
    pub fn contains(&self, p: u16) -> bool {
        self.low <= p && p <= self.high
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// Serialized as `[low, high]`, the form the plan's JSON promises.
impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.low, self.high].serialize(s)
    }
}

/// Sort, then merge overlapping and adjacent ranges.
pub fn merge_ranges(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.sort();
    let mut out: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if u32::from(r.low) <= u32::from(last.high) + 1 => {
                last.high = last.high.max(r.high);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Machine-readable remarks on a flow that later stages act on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The traffic is not plain HTTPS: a TLS-intercepting proxy breaks it.
    NoTlsInterception,
    /// The appliance lets the administrator change this port; a site may override it.
    PortConfigurable,
    /// The appliance can reach this peer through an HTTP proxy instead.
    ProxyPossible,
    /// The data connections of this FTP flow need a conntrack helper or more ports.
    NeedsFtpHelper,
}

/// One side of a flow, as the profile names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// The appliance itself.
    Appliance,
    /// A role the site binds to addresses (`dns-server`, `internet`, ...).
    Role(String),
    /// A DNS name whose addresses are pinned by the site or filled by `sync`.
    Dns(String),
    /// A wildcard name `*.suffix`; the string is the whole pattern including `*.`.
    Wildcard(String),
    /// A literal network or address.
    Network(IpNet),
}

impl Endpoint {
    /// Parse the textual form used in profiles. Roles are not checked against a declaration
    /// here; that needs the profile.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        if text == "appliance" {
            return Ok(Endpoint::Appliance);
        }
        if let Ok(net) = text.parse::<IpNet>() {
            if net.trunc() != net {
                return Err(format!(
                    "network `{text}` has host bits set; write `{}`",
                    net.trunc()
                ));
            }
            return Ok(Endpoint::Network(net));
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(Endpoint::Network(IpNet::from(addr)));
        }
        if looks_like_address(text) {
            return Err(format!("`{text}` is not a valid IP address or network"));
        }
        if text.contains('*') {
            return check_wildcard(text).map(|()| Endpoint::Wildcard(text.to_string()));
        }
        if text.contains('.') {
            return check_dns_name(text).map(|()| Endpoint::Dns(text.to_string()));
        }
        check_id(text, "role").map(|()| Endpoint::Role(text.to_string()))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Appliance => "appliance",
            Endpoint::Role(_) => "role",
            Endpoint::Dns(_) => "dns",
            Endpoint::Wildcard(_) => "wildcard",
            Endpoint::Network(_) => "network",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Appliance => f.write_str("appliance"),
            Endpoint::Role(r) => f.write_str(r),
            Endpoint::Dns(n) | Endpoint::Wildcard(n) => f.write_str(n),
            Endpoint::Network(n) => write!(f, "{n}"),
        }
    }
}

/// Digits, dots, colons and a slash only: the writer meant an address.
fn looks_like_address(text: &str) -> bool {
    let has_digit = text.chars().any(|c| c.is_ascii_digit());
    let addr_chars = text
        .chars()
        .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/'));
    let all_digits_dots = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '/'));
    has_digit && (all_digits_dots || (addr_chars && text.contains(':')) || text.contains('/'))
}

/// Identifiers (flow ids, feature, role and profile names): `[a-z][a-z0-9-]*`, at most
/// [`MAX_ID_LEN`] characters, no trailing or doubled hyphen.
pub fn check_id(text: &str, what: &str) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.ends_with('-')
        && !text.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid {what} name: use lowercase letters, digits and single hyphens, starting with a letter, at most {MAX_ID_LEN} characters",
            text.escape_debug()
        ))
    }
}

/// A DNS host name: lowercase LDH labels, at least two of them.
pub fn check_dns_name(text: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "`{}` is not a valid DNS name: {why}",
            text.escape_debug()
        ))
    };
    if text.len() > MAX_DNS_NAME_LEN {
        return bad("longer than 253 characters");
    }
    if text.ends_with('.') {
        return bad("leave out the trailing dot");
    }
    let labels: Vec<&str> = text.split('.').collect();
    if labels.len() < 2 {
        return bad("it needs at least two labels");
    }
    for label in labels {
        if label.is_empty() {
            return bad("it has an empty label");
        }
        if label.len() > MAX_DNS_LABEL_LEN {
            return bad("a label is longer than 63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad("labels may hold only lowercase letters, digits and hyphens");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with a hyphen");
        }
    }
    Ok(())
}

/// A wildcard name: exactly `*.` followed by a DNS name with at least two labels.
pub fn check_wildcard(text: &str) -> Result<(), String> {
    let Some(rest) = text.strip_prefix("*.") else {
        return Err(format!(
            "`{}` is not a valid wildcard name: `*` may only stand as the whole first label, as in `*.example.com`",
            text.escape_debug()
        ));
    };
    if rest.contains('*') {
        return Err(format!(
            "`{}` is not a valid wildcard name: only one `*`, as the whole first label, is allowed",
            text.escape_debug()
        ));
    }
    check_dns_name(rest).map_err(|e| format!("in wildcard `{}`: {e}", text.escape_debug()))
}

/// Does `name` fall under the wildcard `pattern` (`*.suffix`)? One or more labels may stand
/// for the `*`, as DNS forwarders treat it.
pub fn wildcard_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.len() > suffix.len() + 1 && name.ends_with(&format!(".{suffix}")),
        None => false,
    }
}

/// DNS names are case-insensitive: a name written with capitals (`Update.Example.COM`) is
/// taken in lowercase. Returns the lowercase form when `text` is a DNS or wildcard name with
/// ASCII capitals (not an address, not a role), so the caller can say so in a note.
pub fn fold_dns_case(text: &str) -> Option<String> {
    // Cheapest test first: almost every name is already lowercase.
    let name_like = text.bytes().any(|b| b.is_ascii_uppercase())
        && text.contains('.')
        && text.parse::<IpNet>().is_err()
        && text.parse::<std::net::IpAddr>().is_err();
    name_like.then(|| text.to_ascii_lowercase())
}

/// [`fold_dns_case`] for a name read from a file: the lowercase form, with a note at `span`
/// when it differs from what was written.
pub fn lowercase_dns_name(
    text: &str,
    src: &Source,
    span: std::ops::Range<usize>,
    sink: &mut crate::diag::Sink,
) -> String {
    match fold_dns_case(text) {
        Some(lower) => {
            sink.push(
                crate::diag::Diagnostic::note(format!(
                    "`{}` is taken as `{lower}`: DNS names are case-insensitive",
                    text.escape_debug()
                ))
                .at(src, span),
            );
            lower
        }
        None => text.to_string(),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most a third of the word's length, and at least 1).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters (two rows, O(len(a) * len(b)) time).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// When a flow applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Required,
    Feature(String),
}

/// A document a profile was curated from.
#[derive(Debug, Clone, Serialize)]
pub struct SourceDoc {
    pub id: String,
    pub title: String,
    pub language: String,
    pub document: Option<String>,
    pub url: Option<String>,
}

/// A role a profile declares beyond the built-in ones.
#[derive(Debug, Clone, Serialize)]
pub struct RoleDecl {
    pub description: String,
}

/// An optional feature that switches flows on.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureDecl {
    pub description: String,
    /// Features this one needs: turning it on turns them on too (said in the plan's
    /// warnings), e.g. NTP for a cluster.
    pub requires: Vec<String>,
    /// Flows that are not needed when this feature is on (a GINA satellite needs none of the
    /// email paths): they are off even when required.
    pub turns_off: Vec<String>,
}

/// A set of flows of which the site uses one (or several): e.g. SMTP out directly or through a
/// smarthost.
#[derive(Debug, Clone, Serialize)]
pub struct AlternativeDecl {
    pub description: String,
    /// The flow id chosen when the site says nothing.
    pub default: String,
}

/// A flaw of the source document the curator found, shown by `portolan check`.
#[derive(Debug, Clone, Serialize)]
pub struct Caveat {
    pub message: String,
    pub source: Option<String>,
    pub line: Option<u32>,
    pub flows: Vec<String>,
}

/// One requirement of the appliance.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub function: String,
    pub function_de: Option<String>,
    pub from: Vec<Endpoint>,
    pub to: Vec<Endpoint>,
    pub protocols: Vec<Protocol>,
    /// Empty for ICMP.
    pub ports: Vec<PortRange>,
    pub icmp_type: Option<IcmpType>,
    pub condition: Condition,
    /// Further features that must all be on as well (the inbound half of an In/Out row
    /// behind both its own feature and an opt-in).
    pub with_features: Vec<String>,
    pub alternative: Option<String>,
    /// Application protocol a prober should speak (`https`, `smtp`, ...).
    pub app: Option<String>,
    pub flags: BTreeSet<Flag>,
    pub notes: Vec<String>,
    /// Line numbers of the row in each source document (`en` -> 12).
    pub source_lines: BTreeMap<String, u32>,
    /// Byte span of the `[[flows]]` entry in the profile text, for diagnostics.
    pub span: std::ops::Range<usize>,
}

impl Flow {
    pub fn has_flag(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }
}

/// A validated appliance profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub description: Option<String>,
    pub sources: Vec<SourceDoc>,
    pub roles: BTreeMap<String, RoleDecl>,
    pub features: BTreeMap<String, FeatureDecl>,
    pub alternatives: BTreeMap<String, AlternativeDecl>,
    pub caveats: Vec<Caveat>,
    pub flows: Vec<Flow>,
    /// The text it was parsed from, for diagnostics and `catalog show`.
    pub origin: Source,
}

impl Profile {
    pub fn flow(&self, id: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.id == id)
    }

    /// Every role this profile's flows use (built-in or declared), sorted.
    pub fn used_roles(&self) -> BTreeSet<&str> {
        self.flows
            .iter()
            .flat_map(|f| f.from.iter().chain(&f.to))
            .filter_map(|e| match e {
                Endpoint::Role(r) => Some(r.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Roles every profile may use without declaring them.
pub const BUILTIN_ROLES: &[(&str, &str)] = &[
    (
        "internet",
        "Hosts on the Internet; by default everything outside the site's internal networks",
    ),
    ("internal", "The site's internal networks"),
    ("admin", "Workstations of the administrators"),
    ("dns-server", "The DNS resolvers the appliance uses"),
    ("ntp-server", "Time servers of the site's choice"),
    ("mail-server", "The internal mail server (groupware)"),
    (
        "smarthost",
        "A mail relay that sends or receives mail for the appliance",
    ),
    ("cluster-peer", "Other appliances of the same cluster"),
    ("syslog-server", "The central syslog server"),
    ("ldap-server", "LDAP or Active Directory servers"),
    (
        "snmp-manager",
        "The monitoring system that polls the appliance or receives its traps",
    ),
    ("ftp-server", "A file server used for backups"),
    ("proxy", "An HTTP proxy the appliance may use"),
];

pub fn builtin_role(name: &str) -> Option<&'static str> {
    BUILTIN_ROLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}

/// Application protocols a flow may name for the prober (issue "probe").
pub const APP_PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "tls",
    "http",
    "https",
    "smtp",
    "submission",
    "ssh",
    "sftp",
    "dns",
    "ntp",
    "icmp",
    "razor",
    "ldap",
    "ldaps",
    "ftp",
    "ftps",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
    "snmp",
    "snmp-trap",
    "syslog",
    "syslog-tls",
    "ike",
    "ipsec-nat-t",
    "nrpe",
    "rsync",
    "msrpc",
    "netbios-ns",
    "netbios-ssn",
    "smb",
    "hkp",
    "sip",
    "activesync",
    "cockpit",
    "ksn",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_by_shape() {
        assert_eq!(Endpoint::parse("appliance"), Ok(Endpoint::Appliance));
        assert_eq!(
            Endpoint::parse("dns-server"),
            Ok(Endpoint::Role("dns-server".into()))
        );
        assert_eq!(
            Endpoint::parse("update.intra2net.com"),
            Ok(Endpoint::Dns("update.intra2net.com".into()))
        );
        assert_eq!(
            Endpoint::parse("*.avcloud.intra2net.com"),
            Ok(Endpoint::Wildcard("*.avcloud.intra2net.com".into()))
        );
        assert!(matches!(
            Endpoint::parse("203.0.113.0/24"),
            Ok(Endpoint::Network(_))
        ));
        assert!(matches!(
            Endpoint::parse("2001:db8::1"),
            Ok(Endpoint::Network(_))
        ));
    }

    #[test]
    fn bad_endpoints_are_rejected_with_reasons() {
        for bad in [
            "*.*.x",
            "a.*.b",
            "*",
            "*.com",
            "10.0.0.300",
            "10.0.0.1/24",
            "Upper.Case.com",
            "a..b",
            "-a.com",
            "role with space",
            "x;y",
            "a\"b",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn wildcard_matching_needs_at_least_one_label() {
        assert!(wildcard_matches(
            "*.avcloud.intra2net.com",
            "x.avcloud.intra2net.com"
        ));
        assert!(wildcard_matches(
            "*.avcloud.intra2net.com",
            "a.b.avcloud.intra2net.com"
        ));
        assert!(!wildcard_matches(
            "*.avcloud.intra2net.com",
            "avcloud.intra2net.com"
        ));
        assert!(!wildcard_matches(
            "*.avcloud.intra2net.com",
            "xavcloud.intra2net.com"
        ));
    }

    #[test]
    fn ranges_merge_when_overlapping_or_adjacent() {
        let r = |a, b| PortRange { low: a, high: b };
        assert_eq!(
            merge_ranges(vec![
                r(443, 443),
                r(80, 80),
                r(81, 90),
                r(85, 100),
                r(5000, 5050)
            ]),
            vec![r(80, 100), r(443, 443), r(5000, 5050)]
        );
    }
}
