//! The cell-level heuristics of the importer, each small and named for the phrase it
//! handles, each with a test at the bottom of this file. Layouts (how rows are found) are in
//! [`super::layout`].
//!
//! Cells (row text -> flow parts): [`cell_groups`] (with [`well_known_protocols`] and
//! [`service_protocols`] for rows without a protocol), [`proto_ports`], [`slash_ports`],
//! [`inline_ports`], [`direction_words`], [`direction_clauses`],
//! [`direction_text_override`], [`caption_protocols`], [`dns_names`],
//! [`repeated_label_typo`], [`role_phrases`], [`empty_server_list`], [`or_alternatives`],
//! [`optional_words`], [`section_heading`], [`icmp_words`], [`prose_services`].

use crate::model::{check_dns_name, check_wildcard, IcmpType};

/// Which way a row points, seen from the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    Out,
    In,
    Both,
}

/// Transport protocols of a port group: the model's.
pub use crate::model::Protocol as P;

/// Port groups: (protocols, port ranges) in order of appearance.
pub type Groups = Vec<(Vec<P>, Vec<(u16, u16)>)>;

/// A service by name: (name, protocols, well-known port).
pub type Service = (&'static str, &'static [P], u16);

/// One row of a table (or an equivalent line of a list or prose), with the text of its cells
/// by meaning. Empty fields were not in the layout.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// 1-based line of the row's first text.
    pub line: usize,
    /// Every line the row took.
    pub lines: Vec<usize>,
    /// The layout heuristic that produced it.
    pub layout: &'static str,
    pub peer: String,
    pub source: String,
    pub target: String,
    pub proto: String,
    pub ports: String,
    pub direction: String,
    pub function: String,
    /// The name of the service or feature (a "Service", "Application", "Function/ Feature"
    /// column), put before the description.
    pub label: String,
    /// Which table of the document the row is from (rows of one table share their appliance
    /// name, see `mod.rs`).
    pub table: usize,
    /// The text a table uses for the appliance in its source/target cells, when the table's
    /// rows show it (the one endpoint every row has).
    pub appliance: String,
    /// The line of a caption that gave the protocol (`all TCP ports ...`), when the row gives
    /// none.
    pub proto_from: Option<usize>,
}

// ------------------------------------------------------------------------------------------
// Layouts
// ------------------------------------------------------------------------------------------

/// `html_leftovers`: text copied with markup: `<td>`/`<th>` end cells (as ` | `), `<tr>`
/// and `<br>` end lines, other tags go, entities are decoded. Line count is kept where
/// possible (a tag that ends a row adds a newline only where the source had none).
pub fn html_leftovers(text: &str) -> String {
    if !text.contains('<') && !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('&') {
            let end = rest.as_bytes().iter().take(10).position(|&c| c == b';');
            let (rep, n) = match end.map(|e| &rest[..=e]) {
                Some("&amp;") => ("&", 5),
                Some("&lt;") => ("<", 4),
                Some("&gt;") => (">", 4),
                Some("&nbsp;") => (" ", 6),
                Some("&quot;") => ("\"", 6),
                Some("&#39;") => ("'", 5),
                Some("&ndash;") => ("-", 7),
                Some("&mdash;") => ("-", 7),
                Some("&auml;") => ("ä", 6),
                Some("&ouml;") => ("ö", 6),
                Some("&uuml;") => ("ü", 6),
                Some("&szlig;") => ("ß", 7),
                _ => ("&", 1),
            };
            out.push_str(rep);
            rest = &rest[n..];
            continue;
        }
        // A tag: up to '>' on the same line, else keep the '<'.
        match rest
            .find('>')
            .filter(|e| !rest[..*e].contains('\n') && *e < 200)
        {
            Some(e) => {
                let tag = rest[1..e].trim_start_matches('/').to_ascii_lowercase();
                let name: String = tag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                let closing = rest.as_bytes().get(1) == Some(&b'/');
                match name.as_str() {
                    "td" | "th" if closing => out.push_str(" |"),
                    "tr" | "br" | "p" | "li" | "h1" | "h2" | "h3" | "h4" | "div"
                        if (closing || name == "br") && !rest[e + 1..].starts_with('\n') =>
                    {
                        out.push('\n');
                    }
                    "li" if !closing => out.push_str("- "),
                    _ => {}
                }
                rest = &rest[e + 1..];
            }
            None => {
                out.push('<');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `prose_ports`: ports written inside sentences as `443/tcp`, `53/udp+tcp`, `1000-2000/udp`.
/// Returns (protocols, low, high) in order of appearance.
pub fn slash_ports(text: &str) -> Vec<(Vec<P>, u16, u16)> {
    let mut out = Vec::new();
    let low = text.to_lowercase();
    let b = low.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit()
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let lo: Option<u16> = low[s..i].parse().ok();
        let mut hi = lo;
        if i + 1 < b.len() && b[i] == b'-' && b[i + 1].is_ascii_digit() {
            let s2 = i + 1;
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            hi = low[s2..i].parse().ok();
        }
        if i < b.len() && b[i] == b'/' {
            let rest = &low[i + 1..];
            let mut protos = Vec::new();
            let mut r = rest;
            loop {
                let word: String = r.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
                match word.as_str() {
                    "tcp" => protos.push(P::Tcp),
                    "udp" => protos.push(P::Udp),
                    _ => break,
                }
                r = &r[word.len()..];
                // `udp+tcp`, `tcp/udp`: another protocol follows directly.
                match r.strip_prefix('+').or_else(|| r.strip_prefix('/')) {
                    Some(more) if more.starts_with("tcp") || more.starts_with("udp") => r = more,
                    _ => break,
                }
            }
            protos.sort();
            protos.dedup();
            if let (Some(l), Some(h), false) = (lo, hi, protos.is_empty()) {
                if l <= h && l > 0 {
                    out.push((protos, l, h));
                }
            }
        }
    }
    out
}

/// Well-known services by name: (name, protocols, port).
pub const SERVICES: &[(&str, &[P], u16)] = &[
    ("pop3s", &[P::Tcp], 995),
    ("pop3", &[P::Tcp], 110),
    ("imaps", &[P::Tcp], 993),
    ("imap", &[P::Tcp], 143),
    ("smtps", &[P::Tcp], 465),
    ("submission", &[P::Tcp], 587),
    ("smtp", &[P::Tcp], 25),
    ("https", &[P::Tcp], 443),
    ("http", &[P::Tcp], 80),
    ("ftp", &[P::Tcp], 21),
    ("ssh", &[P::Tcp], 22),
    ("ldaps", &[P::Tcp], 636),
    ("ldap", &[P::Tcp], 389),
    ("ntp", &[P::Udp], 123),
];

/// `prose_services`: a sentence listing services by name without ports ("email (POP3 and
/// SMTP) as well as HTTP, HTTPS and FTP"), in a sentence that says they may need opening.
/// Returns the services in order of appearance.
pub fn prose_services(sentence: &str) -> Vec<(&'static str, &'static [P], u16)> {
    let low = sentence.to_lowercase();
    let cue = ["services", "dienste", "service", "dienst"]
        .iter()
        .any(|c| low.contains(c));
    // Only a sentence that asks for them to be opened: a title or an aside naming services
    // gives no port (and a port that came from a name alone is a guess, always marked).
    let opening = [
        "open",
        "allow",
        "permit",
        "possible",
        "need",
        "require",
        "must",
        "freigeb",
        "freischalt",
        "öffne",
        "erlaub",
        "möglich",
        "benötig",
        "erforderlich",
        "schalt",
        "activat",
        "aktivier",
    ]
    .iter()
    .any(|c| low.contains(c));
    if !cue || !opening || !inline_ports(sentence).is_empty() {
        return Vec::new();
    }
    let mut found: Vec<(usize, Service)> = Vec::new();
    for w in words(&low) {
        if let Some(s) = SERVICES.iter().find(|s| s.0 == w.1) {
            if !found.iter().any(|f| f.1 .0 == s.0) {
                found.push((w.0, *s));
            }
        }
    }
    if found.len() < 2 {
        return Vec::new();
    }
    found.sort_by_key(|f| f.0);
    found.into_iter().map(|f| f.1).collect()
}

/// Words with their byte offsets (letters and digits).
pub fn words(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(st) = start.take() {
            out.push((st, &s[st..i]));
        }
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Cells
// ------------------------------------------------------------------------------------------

/// `proto_ports`: protocols and ports from a port cell, with the protocol cell as default.
/// Handles `443 (https)`, `5000 to 5050`, `5000 bis 5050`, `500 and 4500`, `TCP 80/443/ 873/
/// 2703 UDP 24441`, `TCP/UDP 389 (LDAP) and/or TCP/UDP 636 (LDAPS)`, `TCP 8080 (HTTP)
/// and/or TCP 8443 (HTTPS)`, `UDP/TCP`, `TCP und UDP`, `FTP`/`SFTP`/`FTPS` (TCP).
/// Returns groups of (protocols, port ranges); ICMP groups have no ports.
pub fn proto_ports(proto_cell: &str, port_cell: &str) -> Groups {
    let default = protocols_in(proto_cell);
    let mut groups: Groups = Vec::new();
    let mut cur: Option<Vec<P>> = None;
    let mut ports: Vec<(u16, u16)> = Vec::new();
    let low = port_cell.to_lowercase();
    // Drop parenthesised names: "(https)", "(smtp-submission)".
    let mut clean = String::with_capacity(low.len());
    let mut depth = 0;
    for c in low.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = (depth - 1).max(0),
            _ if depth > 0 => {}
            _ => clean.push(c),
        }
    }
    let toks: Vec<(usize, &str)> = words(&clean);
    let mut idx = 0;
    let close = |groups: &mut Groups, cur: &Option<Vec<P>>, ports: &mut Vec<(u16, u16)>| {
        if !ports.is_empty() {
            let p = cur.clone().or_else(|| default.clone()).unwrap_or_default();
            groups.push((p, std::mem::take(ports)));
        }
    };
    while idx < toks.len() {
        let (off, w) = toks[idx];
        match w {
            "tcp" | "udp" | "ftp" | "sftp" | "ftps" => {
                // `tcp/udp`, `tcp und udp`, `udp/tcp`: one protocol set.
                let mut set = vec![if w == "udp" { P::Udp } else { P::Tcp }];
                let mut j = idx + 1;
                while j < toks.len() {
                    let between = &clean[toks[j - 1].0 + toks[j - 1].1.len()..toks[j].0];
                    let joined = between.trim() == "/";
                    let is_and = matches!(toks[j].1, "und" | "and")
                        && toks
                            .get(j + 1)
                            .is_some_and(|t| matches!(t.1, "tcp" | "udp"));
                    if joined && matches!(toks[j].1, "tcp" | "udp") {
                        set.push(if toks[j].1 == "udp" { P::Udp } else { P::Tcp });
                        j += 1;
                    } else if is_and {
                        set.push(if toks[j + 1].1 == "udp" {
                            P::Udp
                        } else {
                            P::Tcp
                        });
                        j += 2;
                    } else {
                        break;
                    }
                }
                close(&mut groups, &cur, &mut ports);
                set.sort();
                set.dedup();
                cur = Some(set);
                idx = j;
                let _ = off;
                continue;
            }
            "icmp" => {
                close(&mut groups, &cur, &mut ports);
                groups.push((vec![P::Icmp], Vec::new()));
                cur = None;
            }
            _ if w.chars().all(|c| c.is_ascii_digit()) => {
                let Ok(lo) = w.parse::<u32>() else {
                    idx += 1;
                    continue;
                };
                let mut hi = lo;
                // Range: "a to b", "a bis b", "a-b", "a:b".
                if let Some(&(noff, nw)) = toks.get(idx + 1) {
                    let between = clean[off + w.len()..noff].trim();
                    if nw.chars().all(|c| c.is_ascii_digit()) && matches!(between, "-" | ":" | "–")
                    {
                        hi = nw.parse().unwrap_or(lo);
                        idx += 1;
                    } else if matches!(nw, "to" | "bis") {
                        if let Some(&(_, w3)) = toks.get(idx + 2) {
                            if let Ok(h) = w3.parse::<u32>() {
                                hi = h;
                                idx += 2;
                            }
                        }
                    }
                }
                if (1..=65535).contains(&lo) && (lo..=65535).contains(&hi) {
                    ports.push((lo as u16, hi as u16));
                }
            }
            _ => {}
        }
        idx += 1;
    }
    close(&mut groups, &cur, &mut ports);
    if groups.is_empty() {
        if let Some(d) = default {
            if d == [P::Icmp] {
                groups.push((d, Vec::new()));
            }
        }
    }
    // Merge groups with the same protocols.
    let mut merged: Groups = Vec::new();
    // Ports already in each merged group (a line with thousands of ports stays linear).
    let mut seen: Vec<std::collections::HashSet<(u16, u16)>> = Vec::new();
    for (p, ps) in groups {
        match merged.iter().position(|(q, _)| *q == p) {
            Some(i) => {
                for x in ps {
                    if seen[i].insert(x) {
                        merged[i].1.push(x);
                    }
                }
            }
            None => {
                seen.push(ps.iter().copied().collect());
                merged.push((p, ps));
            }
        }
    }
    // ICMP never shares a flow with TCP or UDP, and has no ports.
    let mut out: Groups = Vec::new();
    for (p, ps) in merged {
        if p.contains(&P::Icmp) {
            if !out.iter().any(|(q, _)| q == &[P::Icmp]) {
                out.push((vec![P::Icmp], Vec::new()));
            }
            let rest: Vec<P> = p.into_iter().filter(|x| *x != P::Icmp).collect();
            if !rest.is_empty() && !ps.is_empty() {
                out.push((rest, ps));
            }
        } else if !p.is_empty() && !ps.is_empty() {
            out.push((p, ps));
        }
    }
    out
}

/// The transport protocols of a well-known port, for documents that give none.
pub fn well_known_protocols(port: u16) -> &'static [P] {
    match port {
        53 | 88 | 464 => &[P::Tcp, P::Udp],
        67 | 68 | 69 | 123 | 137 | 138 | 161 | 162 | 500 | 514 | 520 | 546 | 547 | 1812 | 1813
        | 1900 | 4500 | 5353 => &[P::Udp],
        _ => &[P::Tcp],
    }
}

/// The transport protocols a service name implies (`NTP`, `DNS`, `Mail (SMTP)`), for a short
/// cell only.
pub fn service_protocols(cell: &str) -> Option<Vec<P>> {
    if cell.split_whitespace().count() > 4 {
        return None;
    }
    let low = cell.to_lowercase();
    let mut v: Vec<P> = Vec::new();
    for (_, w) in words(&low) {
        let p: &[P] = match w {
            "dns" | "kerberos" => &[P::Tcp, P::Udp],
            "ntp" | "snmp" | "syslog" | "dhcp" | "dhcpv6" | "tftp" | "radius" | "ike" | "ipsec" => {
                &[P::Udp]
            }
            "smtp" | "smtps" | "submission" | "http" | "https" | "ftp" | "ftps" | "sftp"
            | "ssh" | "imap" | "imaps" | "pop3" | "pop3s" | "ldap" | "ldaps" | "rdp" | "cifs"
            | "smb" | "telnet" | "hkps" | "ews" => &[P::Tcp],
            _ => &[],
        };
        v.extend_from_slice(p);
    }
    v.sort();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

/// Groups of a port cell with its protocol cell, and a caveat for every protocol the
/// document did not give: `443/TCP, 80/TCP` cells; a protocol cell; else the service's
/// protocol (from the protocol cell or the row's label) or the port's well-known one.
pub fn cell_groups(proto_cell: &str, port_cell: &str, label: &str) -> (Groups, Vec<String>) {
    let given = protocols_in(proto_cell);
    let slashed = slash_ports(port_cell);
    if !slashed.is_empty() && given.is_none() {
        let mut g: Groups = Vec::new();
        for (p, lo, hi) in slashed {
            match g.iter_mut().find(|x| x.0 == p) {
                Some(x) => {
                    if !x.1.contains(&(lo, hi)) {
                        x.1.push((lo, hi));
                    }
                }
                None => g.push((p, vec![(lo, hi)])),
            }
        }
        return (g, Vec::new());
    }
    let g = proto_ports(proto_cell, port_cell);
    if !g.is_empty() || given.is_some() {
        return (g, Vec::new());
    }
    // No protocol anywhere: the ports alone.
    let bare: Vec<(u16, u16)> = proto_ports("tcp", port_cell)
        .into_iter()
        .filter(|(p, _)| p != &[P::Icmp])
        .flat_map(|(_, ps)| ps)
        .collect();
    if bare.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let by_name = service_protocols(proto_cell).or_else(|| service_protocols(label));
    let mut g: Groups = Vec::new();
    let mut caveats = Vec::new();
    for (lo, hi) in bare {
        let (protos, why) = match &by_name {
            Some(p) => (p.clone(), "the service named"),
            None => (
                well_known_protocols(lo).to_vec(),
                "the port's well-known protocol",
            ),
        };
        let names: Vec<String> = protos.iter().map(|p| p.to_string()).collect();
        caveats.push(format!(
            "the document gives no protocol for port {}; {} assumed ({why})",
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            },
            names.join("+").to_uppercase()
        ));
        match g.iter_mut().find(|x| x.0 == protos) {
            Some(x) => x.1.push((lo, hi)),
            None => g.push((protos, vec![(lo, hi)])),
        }
    }
    (g, caveats)
}

/// `inline_ports`: ports written in running text or list items, with or without protocol:
/// `443/tcp`, `TCP/2409`, `TCP 25`, `UDP-Port: 9876`, `TCP ports 80, 443`, `25 (TCP)`,
/// `5405-5412 UDP`, `port 443`, `ports 80 and 443`, `port 1024 through 65535`,
/// `port 49152 and higher`, and a list item that starts with its port (`` `143`: IMAP``,
/// `25 - SMTP`). A bare number is never a port: it needs a protocol next to it, the word
/// port before it, or to start a list item. Returns (protocols if given, low, high).
pub fn inline_ports(text: &str) -> Vec<(Option<Vec<P>>, u16, u16)> {
    let low = text.to_lowercase();
    let toks = words(&low);
    let between = |i: usize| -> &str {
        if i >= toks.len() {
            toks.last().map_or("", |t| &low[t.0 + t.1.len()..])
        } else if i == 0 {
            &low[..toks[0].0]
        } else {
            &low[toks[i - 1].0 + toks[i - 1].1.len()..toks[i].0]
        }
    };
    let proto_of = |w: &str| -> Option<P> {
        match w {
            "tcp" => Some(P::Tcp),
            "udp" => Some(P::Udp),
            _ => None,
        }
    };
    let is_num = |w: &str| w.chars().all(|c| c.is_ascii_digit()) && w.len() <= 5;
    let port_word = |w: &str| matches!(w, "port" | "ports" | "anschluss" | "anschlüsse");
    let mut out: Vec<(Option<Vec<P>>, u16, u16)> = Vec::new();
    // Index of the last token of the previous accepted port, and its protocols.
    let mut last: Option<(usize, Option<Vec<P>>)> = None;
    let mut i = 0;
    while i < toks.len() {
        let w = toks[i].1;
        if !is_num(w) {
            i += 1;
            continue;
        }
        let Ok(lo) = w.parse::<u32>() else {
            i += 1;
            continue;
        };
        let sep_before = between(i);
        // Part of a version, a decimal, an address or a word (`v1.2`, `10.0.0.1`, `x64`).
        if sep_before.ends_with('.') && i > 0 && sep_before.trim().len() == 1
            || (i > 0 && sep_before.is_empty())
        {
            i += 1;
            continue;
        }
        let after_end = toks[i].0 + w.len();
        let rest = &low[after_end..];
        if rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit())
            || rest.starts_with(['%', '€', '$'])
        {
            i += 1;
            continue;
        }
        let mut j = i + 1; // next token after the port (and its range)
        let mut hi = lo;
        // Ranges.
        if let Some((_, nw)) = toks.get(i + 1) {
            let sep = between(i + 1).trim();
            if is_num(nw) && matches!(sep, "-" | "–" | ":" | "- ") {
                hi = nw.parse().unwrap_or(lo);
                j = i + 2;
            } else if matches!(*nw, "to" | "bis" | "through" | "thru")
                && toks.get(i + 2).is_some_and(|t| is_num(t.1))
            {
                hi = toks[i + 2].1.parse().unwrap_or(lo);
                j = i + 3;
            } else if matches!(*nw, "and" | "und")
                && toks
                    .get(i + 2)
                    .is_some_and(|t| matches!(t.1, "higher" | "höher" | "above" | "up"))
            {
                hi = 65535;
                j = i + 3;
            }
        }
        if !(1..=65535).contains(&lo) || hi < lo || hi > 65535 {
            i = j;
            continue;
        }
        // A protocol after: `/tcp`, ` tcp`, ` (tcp`, `/tcp/udp`, `/udp+tcp`.
        let mut after: Vec<P> = Vec::new();
        let mut k = j;
        while let Some((_, nw)) = toks.get(k) {
            let sep = between(k).trim();
            match proto_of(nw) {
                Some(p) if matches!(sep, "" | "/" | "(" | "+" | "," | "/ " | "-") => {
                    after.push(p);
                    k += 1;
                }
                _ => break,
            }
            if !after.is_empty() && !matches!(between(k).trim(), "/" | "+" | ",") {
                break;
            }
        }
        // A protocol before: `tcp/443`, `tcp 25`, `tcp-port: 9876`, `tcp ports 80`.
        let mut before: Vec<P> = Vec::new();
        let mut port_ctx = false;
        let mut b = i;
        for _ in 0..4 {
            let Some(pb) = b.checked_sub(1) else { break };
            let sep = between(b).trim();
            if !matches!(sep, "" | "/" | "-" | ":" | "(" | "- " | "-:" | "=") {
                break;
            }
            let pw = toks[pb].1;
            if port_word(pw) {
                port_ctx = true;
            } else if let Some(p) = proto_of(pw) {
                before.push(p);
            } else if !matches!(
                pw,
                "range"
                    | "ranging"
                    | "from"
                    | "between"
                    | "number"
                    | "numbers"
                    | "nummer"
                    | "bereich"
                    | "portbereich"
                    | "von"
                    | "zwischen"
                    | "destination"
                    | "ziel"
                    | "source"
                    | "local"
                    | "remote"
                    | "default"
                    | "standard"
            ) {
                break;
            }
            b = pb;
        }
        // `between 49152 and 65535`.
        if hi == lo
            && i > 0
            && matches!(toks[i - 1].1, "between" | "zwischen")
            && toks
                .get(i + 1)
                .is_some_and(|t| matches!(t.1, "and" | "und"))
            && toks.get(i + 2).is_some_and(|t| is_num(t.1))
        {
            hi = toks[i + 2].1.parse().unwrap_or(lo);
            j = i + 3;
        }
        // A list: `80, 443 and 8080` after an accepted port.
        let listed = last.as_ref().is_some_and(|(li, _)| {
            let gap = &low[toks[*li].0 + toks[*li].1.len()..toks[i].0];
            let g = gap.trim();
            matches!(
                g,
                "," | "/" | "and" | "und" | "or" | "oder" | ", and" | "&" | ";"
            ) || g.chars().all(|c| c == ',' || c == ' ' || c == '/')
        });
        // The first thing of a list item: `` `143`: ``, `25 - `, `25 (`.
        let item_start = i == 0
            && low[..toks[0].0]
                .trim()
                .trim_start_matches(['-', '*', '•', '–'])
                .trim()
                .trim_matches('`')
                .is_empty()
            && {
                let r = rest.trim_start_matches('`').trim_start();
                r.starts_with(':')
                    || r.starts_with("- ")
                    || r.starts_with("– ")
                    || r.starts_with('(')
            };
        let protos: Option<Vec<P>> = if !after.is_empty() {
            Some(after)
        } else if !before.is_empty() {
            Some(before)
        } else if listed {
            last.as_ref().and_then(|l| l.1.clone())
        } else {
            None
        };
        if protos.is_some() || port_ctx || listed || item_start {
            let mut p = protos.clone();
            if let Some(v) = &mut p {
                v.sort();
                v.dedup();
            }
            if !out
                .iter()
                .any(|o| o.0 == p && o.1 == lo as u16 && o.2 == hi as u16)
            {
                out.push((p.clone(), lo as u16, hi as u16));
            }
            last = Some((j.max(i + 1) - 1, p));
        }
        i = j;
    }
    // A protocol written after a list (`ports 80, 443 (TCP)`) applies to the list.
    let tail: Option<Vec<P>> = out.iter().rev().find_map(|o| o.0.clone());
    if let Some(t) = tail {
        let n = out.len();
        for k in (0..n).rev() {
            if out[k].0.is_some() {
                continue;
            }
            if out[k + 1..].iter().any(|o| o.0.as_ref() == Some(&t)) {
                out[k].0 = Some(t.clone());
            }
        }
    }
    out
}

/// Groups of a list item or sentence ([`inline_ports`]); ports given without a protocol take
/// the protocol words of the same text when there are any, else the assumed protocol with a
/// caveat ([`cell_groups`]).
pub fn inline_groups(text: &str) -> (Groups, Vec<String>) {
    let specs = inline_ports(text);
    let words_protos = protocols_in(text).filter(|p| !p.contains(&P::Icmp));
    let mut g: Groups = Vec::new();
    let mut caveats = Vec::new();
    for (p, lo, hi) in specs {
        let protos = match p.or_else(|| words_protos.clone()) {
            Some(p) => p,
            None => {
                let spec = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                };
                let (g2, c) = cell_groups("", &spec, &service_label(text));
                caveats.extend(c);
                match g2.into_iter().next() {
                    Some(x) => x.0,
                    None => continue,
                }
            }
        };
        match g.iter_mut().find(|x| x.0 == protos) {
            Some(x) => {
                if !x.1.contains(&(lo, hi)) {
                    x.1.push((lo, hi))
                }
            }
            None => g.push((protos, vec![(lo, hi)])),
        }
    }
    (g, caveats)
}

/// The service a short text names (`IMAPS (encrypted)`), for the protocol of its port.
fn service_label(text: &str) -> String {
    let low = text.to_lowercase();
    words(&low)
        .into_iter()
        .map(|w| w.1)
        .find(|w| service_protocols(w).is_some())
        .unwrap_or("")
        .to_string()
}

/// Protocols named in a protocol cell (`TCP`, `UDP/TCP`, `TCP und UDP`, `FTP`, `ICMP`).
pub fn protocols_in(cell: &str) -> Option<Vec<P>> {
    let low = cell.to_lowercase();
    let mut v = Vec::new();
    for (_, w) in words(&low) {
        match w {
            "tcp" | "ftp" | "ftps" | "sftp" | "ssh" | "http" | "https" | "smtp" => v.push(P::Tcp),
            "udp" => v.push(P::Udp),
            "icmp" | "ping" => v.push(P::Icmp),
            _ => {}
        }
    }
    v.sort();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

/// The application protocol a protocol cell names (`FTP`, `SFTP`, `FTPS`), for peer roles.
pub fn app_in(cell: &str) -> Option<&'static str> {
    let low = cell.to_lowercase();
    words(&low).into_iter().find_map(|(_, w)| match w {
        "sftp" => Some("sftp"),
        "ftps" | "ftp" => Some("ftp"),
        _ => None,
    })
}

/// `icmp_words`: the ICMP type a cell names.
pub fn icmp_words(cell: &str) -> Option<IcmpType> {
    let low = cell.to_lowercase();
    if low.contains("echo-request") || low.contains("echo request") || low.contains("ping") {
        Some(IcmpType::EchoRequest)
    } else if low.contains("echo-reply") {
        Some(IcmpType::EchoReply)
    } else {
        None
    }
}

/// `direction_words`: a direction cell: `In`, `Out`, `In/Out`, `Ein`, `Aus`, `eingehend`,
/// `ausgehend`, `inbound`, `outbound`, `both`, `beide`.
pub fn direction_words(cell: &str) -> Option<Dir> {
    let low = cell.trim().to_lowercase();
    let w: Vec<&str> = low
        .split(|c: char| c == '/' || c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|s| !s.is_empty())
        .collect();
    // German adjectives are inflected (`Eingehendes TCP`), and glued copies end a cell with
    // the word (`HTTPSausgehend`).
    let stem = |x: &str, stems: &[&str]| {
        stems
            .iter()
            .any(|s| x.starts_with(s) || (s.len() >= 8 && x.ends_with(s)))
    };
    let inn = w.iter().any(|x| {
        matches!(
            *x,
            "in" | "ein" | "inbound" | "incoming" | "ingress" | "eingang"
        ) || stem(x, &["eingehend"])
    });
    let out = w.iter().any(|x| {
        matches!(
            *x,
            "out" | "aus" | "outbound" | "outgoing" | "egress" | "ausgang"
        ) || stem(x, &["ausgehend"])
    });
    let both = w
        .iter()
        .any(|x| matches!(*x, "both" | "beide" | "bidirectional" | "bidirektional"));
    match (inn, out, both) {
        (true, true, _) | (_, _, true) => Some(Dir::Both),
        (true, false, _) => Some(Dir::In),
        (false, true, _) => Some(Dir::Out),
        _ => None,
    }
}

/// `direction_clauses`: a cell that gives a direction per protocol (`Eingehendes TCP zum
/// Host, ausgehendes UDP aus dem Host`): (direction, protocols) per clause that names both.
pub fn direction_clauses(cell: &str) -> Vec<(Dir, Vec<P>)> {
    let mut out: Vec<(Dir, Vec<P>)> = Vec::new();
    for clause in cell.split([',', ';']) {
        if let (Some(d), Some(p)) = (direction_words(clause), protocols_in(clause)) {
            if p.iter().all(|x| *x != P::Icmp) {
                out.push((d, p));
            }
        }
    }
    out
}

/// `direction_text_override`: a row whose direction column says one way while its text
/// says the other (`Out | SNMP inbound: ...`). Returns the direction the text says.
pub fn direction_text_override(column: Dir, text: &str) -> Option<Dir> {
    let low = text.to_lowercase();
    let says_in = low.contains("inbound") || low.contains("eingehend");
    let says_out = low.contains("outbound") || low.contains("ausgehend");
    match (column, says_in, says_out) {
        (Dir::Out, true, false) => Some(Dir::In),
        (Dir::In, false, true) => Some(Dir::Out),
        _ => None,
    }
}

/// `section_heading`: a sentence that sets the direction (and peer) of the tables after it:
/// "... establish connections (outgoing connections) to the following targets", "... for
/// incoming connections from the Internet", German "ausgehende" / "eingehende".
pub fn section_heading(line: &str) -> Option<(Dir, Option<&'static str>)> {
    let low = line.to_lowercase();
    let out = low.contains("outgoing") || low.contains("ausgehende") || low.contains("outbound");
    let inn = low.contains("incoming") || low.contains("eingehende") || low.contains("inbound");
    let internet = low.contains("from the internet") || low.contains("aus dem internet");
    match (out, inn) {
        (true, false) => Some((Dir::Out, None)),
        (false, true) => Some((Dir::In, internet.then_some("internet"))),
        _ => None,
    }
}

/// `caption_protocols`: a line above a table that gives the protocol of its ports ("The
/// table below lists all TCP ports", "UDP-Ports:"): the protocols, when the line names ports
/// and exactly one kind of transport protocol, and is not itself a row.
pub fn caption_protocols(line: &str) -> Option<Vec<P>> {
    let low = line.to_lowercase();
    let ws = words(&low);
    if ws.len() > 30 || !inline_ports(line).is_empty() {
        return None;
    }
    let ports_word = ws
        .iter()
        .any(|w| w.1.starts_with("port") || w.1.starts_with("anschl"));
    let mut p: Vec<P> = ws
        .iter()
        .filter_map(|w| match w.1 {
            "tcp" => Some(P::Tcp),
            "udp" => Some(P::Udp),
            _ => None,
        })
        .collect();
    p.sort();
    p.dedup();
    (ports_word && !p.is_empty()).then_some(p)
}

/// `dns_names`: DNS names and `*.wildcards` in a text, lowercased, in order, each checked
/// by the profile's own validator (so `e.g.`, versions and file names fall out).
pub fn dns_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Seen names, so that a text with many names stays linear.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut cur = String::new();
    let mut flush = |cur: &mut String, out: &mut Vec<String>| {
        let c = cur
            .trim_matches(|ch: char| ch == '.' || ch == '-')
            .to_lowercase();
        cur.clear();
        if !c.contains('.') {
            return;
        }
        let last = c.rsplit('.').next().unwrap_or("");
        let tld_ok = last.len() >= 2 && last.chars().all(|ch| ch.is_ascii_lowercase());
        let first = c.trim_start_matches("*.").split('.').next().unwrap_or("");
        if !tld_ok || first.is_empty() || matches!(c.as_str(), "e.g" | "i.e" | "z.b" | "d.h") {
            return;
        }
        // Two labels of ordinary words ("files.Also") are prose, not names.
        let labels = c.split('.').count();
        if labels < 2 {
            return;
        }
        let valid = if c.starts_with("*.") {
            check_wildcard(&c).is_ok()
        } else {
            check_dns_name(&c).is_ok()
        };
        if valid && seen.insert(c.clone()) {
            out.push(c);
        }
    };
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' || (ch == '*' && cur.is_empty()) {
            cur.push(ch);
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    // A name that appears inside a sentence as "word.Word" (no space after a full stop)
    // would look like a name: keep only names whose labels are all lowercase in the text.
    let low = text.to_lowercase();
    out.retain(|n| {
        let Some(i) = low.find(n.as_str()) else {
            return false;
        };
        // Lowercasing can change lengths outside ASCII: then keep the name.
        match text.get(i..i + n.len()) {
            Some(orig) => {
                !orig.chars().any(|c| c.is_ascii_uppercase())
                    || orig.chars().all(|c| !c.is_ascii_lowercase())
            }
            None => true,
        }
    });
    out
}

/// `repeated_label_typo`: a name with the same label twice in a row (`pool.ntp.ntp.org`) is
/// almost always a typo; returns the corrected name.
pub fn repeated_label_typo(name: &str) -> Option<String> {
    let labels: Vec<&str> = name.split('.').collect();
    let dup = labels
        .windows(2)
        .position(|w| w[0] == w[1] && w[0] != "*")?;
    let mut fixed = labels.clone();
    fixed.remove(dup);
    Some(fixed.join("."))
}

/// Roles by phrase, in order of priority. `cell_only`: only in a cell naming the peer, not
/// in a description (where "beyond the firewall" is no peer).
pub const ROLE_PHRASES: &[(&str, &str, bool)] = &[
    ("admin pc", "admin", false),
    ("administrator", "admin", false),
    ("admin-pc", "admin", false),
    ("console", "admin", false),
    ("konsole", "admin", false),
    ("web interface", "admin", false),
    ("cockpit", "admin", false),
    ("name server (external)", "external-dns-server", true),
    ("externe dns", "external-dns-server", true),
    ("external dns", "external-dns-server", true),
    ("ntp server", "ntp-server", false),
    ("ntp-server", "ntp-server", false),
    ("time server", "ntp-server", true),
    ("zeitserver", "ntp-server", true),
    ("dns server", "dns-server", false),
    ("dns-server", "dns-server", false),
    ("name server", "dns-server", false),
    ("nameserver", "dns-server", false),
    ("email server", "mail-server", false),
    ("e-mail server", "mail-server", false),
    ("e-mail-server", "mail-server", false),
    ("mail server", "mail-server", false),
    ("mailserver", "mail-server", false),
    ("smarthost", "smarthost", false),
    ("syslog", "syslog-server", false),
    ("ldap server", "ldap-server", false),
    ("ldap-server", "ldap-server", false),
    ("ldap directory", "ldap-server", false),
    ("directory access", "ldap-server", false),
    ("global catalog", "ldap-server", false),
    ("verzeichnisdienst", "ldap-server", false),
    ("snmp", "snmp-manager", false),
    ("monitoring system", "snmp-manager", false),
    ("ntlm", "domain-controller", false),
    ("domain controller", "domain-controller", false),
    ("sftp server", "sftp-server", false),
    ("ftp server", "ftp-server", false),
    ("ftp-server", "ftp-server", false),
    ("two appliances", "cluster-peer", false),
    ("other appliances", "cluster-peer", false),
    ("between appliances", "cluster-peer", false),
    ("peer", "cluster-peer", false),
    ("cluster", "cluster-peer", true),
    ("internal network", "internal", true),
    ("internes netz", "internal", true),
    ("lan", "internal", true),
    ("internal", "internal", true),
    ("intern", "internal", true),
    ("firewall", "firewall", true),
    ("gina frontend", "appliance", true),
    ("frontend", "frontend", true),
    ("backend", "backend", true),
    ("multiple servers", "internet", false),
    ("mehrere server", "internet", false),
    ("various servers", "internet", false),
    ("the internet", "internet", false),
    ("dem internet", "internet", false),
    ("internet", "internet", true),
    ("appliance", "appliance", true),
    ("gateway", "appliance", true),
];

/// `role_phrases`: the role a text names, by the first phrase of [`ROLE_PHRASES`] found
/// (as whole words). `cell` says the text is a peer cell, not a description.
pub fn role_phrases(text: &str, cell: bool) -> Option<&'static str> {
    let low = text.to_lowercase();
    ROLE_PHRASES
        .iter()
        .filter(|(_, _, cell_only)| cell || !cell_only)
        .find(|(p, _, _)| contains_words(&low, p))
        .map(|(_, r, _)| *r)
}

/// `needle` in `hay` at word boundaries.
pub fn contains_words(hay: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(p) = hay[from..].find(needle) {
        let at = from + p;
        let before = hay[..at].chars().next_back();
        let tail = &hay[at + needle.len()..];
        // A plural `s` still ends the word ("DNS servers").
        let tail = tail.strip_prefix('s').unwrap_or(tail);
        let after = tail.chars().next();
        let edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if edge(before) && edge(after) {
            return true;
        }
        from = at + needle.len();
    }
    false
}

/// `empty_server_list`: "Sophos update servers: Avira update servers: a.example, b.example
/// Kaspersky update servers:" names groups whose members were lost. Returns the labels that
/// are followed by no name, as role names (`sophos-update-servers`).
pub fn empty_server_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = text.split(':').collect();
    for i in 0..parts.len().saturating_sub(1) {
        // The label: the words before the colon that end in "server(s)".
        let before = parts[i];
        let low = before.to_lowercase();
        if !(low.trim_end().ends_with("servers") || low.trim_end().ends_with("server")) {
            continue;
        }
        let ws: Vec<&str> = before.split_whitespace().collect();
        let take = ws.len().min(3);
        let label = ws[ws.len() - take..].join(" ");
        // The list after it: empty when the next part has no DNS name before the next label.
        let after = parts[i + 1].to_lowercase();
        let next_label_at = after
            .rfind("server")
            .filter(|_| i + 2 < parts.len())
            .unwrap_or(after.len());
        if dns_names(&after[..next_label_at]).is_empty() {
            let slug = slug(&label);
            if slug.split('-').count() >= 2 && !out.contains(&slug) {
                out.push(slug);
            }
        }
    }
    out
}

/// `or_alternatives`: a peer cell naming alternatives (`*.pool.example.org or NTP server of
/// choice`, German `oder`). Returns the parts.
pub fn or_alternatives(cell: &str) -> Vec<String> {
    for sep in [" or ", " oder "] {
        if cell.contains(sep) {
            return cell
                .split(sep)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    vec![cell.trim().to_string()]
}

/// `optional_words`: does the text mark the row as optional?
pub fn optional_words(text: &str) -> bool {
    let low = text.to_lowercase();
    [
        "optional",
        "if you use",
        "if you are using",
        "if using",
        "if configured",
        "falls",
        "wenn sie",
        "if you want",
        "possible services",
        "freizuschaltende",
    ]
    .iter()
    .any(|w| low.contains(w))
}

/// A valid profile id from free text: lowercase words joined by `-`, at most `max` words.
pub fn slug(text: &str) -> String {
    // Only the first 48 characters of the result are kept, so the text is read only as far
    // as that takes (a whole paragraph as a function must not cost more than its start).
    let mut out = String::new();
    let mut dash = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let piece = match c {
            'ä' => "ae",
            'ö' => "oe",
            'ü' => "ue",
            'ß' => "ss",
            _ => "",
        };
        if piece.is_empty() && !c.is_ascii_alphanumeric() {
            dash = true;
            continue;
        }
        if dash && !out.is_empty() {
            out.push('-');
        }
        dash = false;
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
        if out.len() > 50 {
            break;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'p');
    }
    out.truncate(48);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_leftovers_turns_cells_into_pipes() {
        let t = html_leftovers("<table><tr><td>443</td><td>TCP &amp; UDP</td></tr>\n</table>");
        assert!(t.contains("443 |TCP & UDP |"), "{t}");
    }

    #[test]
    fn prose_ports_with_slashes() {
        let p = slash_ports("open 443/tcp, 80/tcp and 53/udp+tcp, plus 10000-10100/udp");
        assert_eq!(p.len(), 4);
        assert_eq!(p[2].0, vec![P::Tcp, P::Udp]);
        assert_eq!((p[3].1, p[3].2), (10000, 10100));
    }

    #[test]
    fn prose_services_by_name() {
        let s = prose_services(
            "Other possible services are email (POP3 and SMTP) as well as HTTP, HTTPS and FTP.",
        );
        let names: Vec<&str> = s.iter().map(|x| x.0).collect();
        assert_eq!(names, ["pop3", "smtp", "http", "https", "ftp"]);
        assert!(prose_services("We use HTTP.").is_empty());
    }

    #[test]
    fn proto_ports_cases() {
        assert_eq!(
            proto_ports("TCP", "443 (https)"),
            vec![(vec![P::Tcp], vec![(443, 443)])]
        );
        assert_eq!(
            proto_ports("TCP", "5000 bis 5050"),
            vec![(vec![P::Tcp], vec![(5000, 5050)])]
        );
        assert_eq!(
            proto_ports("UDP", "500 und 4500"),
            vec![(vec![P::Udp], vec![(500, 500), (4500, 4500)])]
        );
        assert_eq!(
            proto_ports("TCP und UDP", "53 (dns)"),
            vec![(vec![P::Tcp, P::Udp], vec![(53, 53)])]
        );
        assert_eq!(
            proto_ports("", "TCP 80/443/ 873/ 2703 UDP 24441"),
            vec![
                (
                    vec![P::Tcp],
                    vec![(80, 80), (443, 443), (873, 873), (2703, 2703)]
                ),
                (vec![P::Udp], vec![(24441, 24441)])
            ]
        );
        assert_eq!(
            proto_ports("", "TCP/UDP 389 (LDAP) and/or TCP/UDP 636 (LDAPS)"),
            vec![(vec![P::Tcp, P::Udp], vec![(389, 389), (636, 636)])]
        );
        assert_eq!(
            proto_ports("", "TCP 8080 (HTTP) and/or TCP 8443 (HTTPS)"),
            vec![(vec![P::Tcp], vec![(8080, 8080), (8443, 8443)])]
        );
        assert_eq!(
            proto_ports("FTPS (exp)", "21"),
            vec![(vec![P::Tcp], vec![(21, 21)])]
        );
        assert_eq!(
            proto_ports("UDP/TCP", "53"),
            vec![(vec![P::Tcp, P::Udp], vec![(53, 53)])]
        );
        assert_eq!(
            proto_ports("ICMP", "Echo-Request (Ping)"),
            vec![(vec![P::Icmp], vec![])]
        );
        assert!(proto_ports("TCP", "99999").is_empty());
    }

    #[test]
    fn direction_words_and_override() {
        assert_eq!(direction_words("In/Out"), Some(Dir::Both));
        assert_eq!(direction_words("Out"), Some(Dir::Out));
        assert_eq!(direction_words("eingehend"), Some(Dir::In));
        assert_eq!(
            direction_text_override(Dir::Out, "SNMP inbound: the port"),
            Some(Dir::In)
        );
        assert_eq!(direction_text_override(Dir::In, "Inbound SMTP"), None);
    }

    /// The general rules behind phrases first met in the seeds, on other vendors' wording.
    #[test]
    fn seed_born_rules_hold_on_other_documents() {
        // A direction column contradicted by the row's own words.
        assert_eq!(
            direction_text_override(Dir::In, "Outbound syslog to the collector"),
            Some(Dir::Out)
        );
        assert_eq!(
            direction_text_override(Dir::Out, "Eingehende Verbindungen der Konsole"),
            Some(Dir::In)
        );
        // A label doubled by a copy error, anywhere in a name.
        assert_eq!(
            repeated_label_typo("update.update.vendor.example").as_deref(),
            Some("update.vendor.example")
        );
        // A list whose members were lost in the copy.
        let r = empty_server_list("Licence servers: Mirror servers: m1.example.org");
        assert_eq!(r, ["licence-servers"]);
        // Services named in a sentence that asks for them to be opened, and only then.
        let s = prose_services("The following services must be allowed: SSH, HTTPS and SMTP.");
        let names: Vec<&str> = s.iter().map(|x| x.0).collect();
        assert_eq!(names, ["ssh", "https", "smtp"]);
        assert!(prose_services("SMTP and IMAP servers and ports of email services").is_empty());
        assert!(
            prose_services("Allow the services HTTP and FTP (port 21 and port 32119).").is_empty()
        );
    }

    #[test]
    fn inline_port_forms() {
        let p = |t: &str| -> Vec<(Option<Vec<P>>, u16, u16)> { inline_ports(t) };
        let tcp = Some(vec![P::Tcp]);
        let udp = Some(vec![P::Udp]);
        assert_eq!(p("UDP/2409 to a.example"), vec![(udp.clone(), 2409, 2409)]);
        assert_eq!(p("Server UDP-Port: 9876"), vec![(udp.clone(), 9876, 9876)]);
        assert_eq!(
            p("TCP ports 80, 443"),
            vec![(tcp.clone(), 80, 80), (tcp.clone(), 443, 443)]
        );
        assert_eq!(p("25 (TCP)"), vec![(tcp.clone(), 25, 25)]);
        assert_eq!(
            p("corosync: 5405-5412 UDP"),
            vec![(udp.clone(), 5405, 5412)]
        );
        assert_eq!(p("over HTTPS (port 443)"), vec![(None, 443, 443)]);
        assert_eq!(p("ports 1024 through 65535"), vec![(None, 1024, 65535)]);
        assert_eq!(p("port 49152 and higher"), vec![(None, 49152, 65535)]);
        assert_eq!(p("ports between 5000 and 5100"), vec![(None, 5000, 5100)]);
        assert_eq!(
            p("destination port ranging from 10001 to 15000"),
            vec![(None, 10001, 15000)]
        );
        assert_eq!(
            p("ports=25,80,7071/tcp"),
            vec![
                (tcp.clone(), 25, 25),
                (tcp.clone(), 80, 80),
                (tcp.clone(), 7071, 7071)
            ]
        );
        assert_eq!(p("* `143`: IMAP"), vec![(None, 143, 143)]);
        // Numbers that are not ports.
        for t in [
            "up to 1 GB",
            "version 3.3.5",
            "Table 34",
            "Page 68",
            "10.0.0.1",
            "in 2024",
            "x64",
        ] {
            assert!(p(t).is_empty(), "{t}: {:?}", p(t));
        }
    }

    #[test]
    fn assumed_protocols_carry_a_caveat() {
        let (g, c) = cell_groups("", "123", "");
        assert_eq!(g, vec![(vec![P::Udp], vec![(123, 123)])]);
        assert!(c[0].contains("UDP assumed"), "{c:?}");
        let (g, c) = cell_groups("", "53", "");
        assert_eq!(g, vec![(vec![P::Tcp, P::Udp], vec![(53, 53)])]);
        assert_eq!(c.len(), 1);
        let (g, _) = cell_groups("", "5480", "NTP");
        assert_eq!(g[0].0, vec![P::Udp], "the service named decides");
        let (g, c) = cell_groups("TCP", "5480", "");
        assert_eq!(g[0].0, vec![P::Tcp]);
        assert!(c.is_empty());
        let (g, c) = cell_groups("", "80/TCP, 443/TCP", "");
        assert_eq!(g, vec![(vec![P::Tcp], vec![(80, 80), (443, 443)])]);
        assert!(c.is_empty());
    }

    #[test]
    fn directions_per_protocol_and_captions() {
        assert_eq!(
            direction_clauses("Eingehendes TCP zum Host, ausgehendes UDP aus dem Host"),
            vec![(Dir::In, vec![P::Tcp]), (Dir::Out, vec![P::Udp])]
        );
        assert_eq!(direction_words("HTTPSausgehend"), Some(Dir::Out));
        assert_eq!(
            caption_protocols("The table below lists all TCP ports that must be opened."),
            Some(vec![P::Tcp])
        );
        assert_eq!(caption_protocols("UDP-Ports:"), Some(vec![P::Udp]));
        assert_eq!(caption_protocols("Open 443/tcp for updates."), None);
        assert_eq!(caption_protocols("TCP is reliable."), None);
    }

    #[test]
    fn section_headings() {
        assert_eq!(
            section_heading("must be able to establish connections (outgoing connections) to:"),
            Some((Dir::Out, None))
        );
        assert_eq!(
            section_heading("open the ports for incoming connections from the Internet:"),
            Some((Dir::In, Some("internet")))
        );
        assert_eq!(
            section_heading("für aus dem Internet eingehende Verbindungen öffnen:"),
            Some((Dir::In, Some("internet")))
        );
    }

    #[test]
    fn dns_names_found_and_prose_left_out() {
        assert_eq!(
            dns_names("servers: ksn1.kaspersky-labs.com, *.apc.avira.com and www.example.org."),
            [
                "ksn1.kaspersky-labs.com",
                "*.apc.avira.com",
                "www.example.org"
            ]
        );
        assert!(dns_names("e.g. version 13.0.0 of file.txt1").is_empty());
        assert!(dns_names("Backup & Restore and Transaction Logging.Also").is_empty());
    }

    #[test]
    fn repeated_label_typos() {
        assert_eq!(
            repeated_label_typo("*.intra2net.pool.ntp.ntp.org").as_deref(),
            Some("*.intra2net.pool.ntp.org")
        );
        assert_eq!(repeated_label_typo("a.b.example.com"), None);
    }

    #[test]
    fn role_phrase_table() {
        assert_eq!(role_phrases("Your DNS Server", true), Some("dns-server"));
        assert_eq!(role_phrases("Ihr DNS-Server", true), Some("dns-server"));
        assert_eq!(role_phrases("Admin PC (Internet)", true), Some("admin"));
        assert_eq!(
            role_phrases("Name server (external)", true),
            Some("external-dns-server")
        );
        assert_eq!(
            role_phrases(
                "DNS requests, if using DNS servers beyond the firewall",
                false
            ),
            Some("dns-server")
        );
        assert_eq!(role_phrases("beyond the firewall", false), None);
        assert_eq!(role_phrases("Mehrere Server", true), Some("internet"));
        assert_eq!(role_phrases("internal network", true), Some("internal"));
    }

    #[test]
    fn empty_server_lists_become_roles() {
        let r = empty_server_list("Sophos update servers: Avira update servers: aav-1.example.net, *.apc.example.com Kaspersky update servers:");
        assert_eq!(r, ["sophos-update-servers", "kaspersky-update-servers"]);
    }

    #[test]
    fn or_alternative_cells() {
        assert_eq!(
            or_alternatives("*.pool.example.org or NTP server of choice").len(),
            2
        );
        assert_eq!(
            or_alternatives("*.pool.example.org oder von Ihnen gewählte NTP-Server").len(),
            2
        );
        assert_eq!(or_alternatives("update.example.com").len(), 1);
    }

    #[test]
    fn optional_markers_and_slugs() {
        assert!(optional_words("Fetchmail (optional)"));
        assert!(optional_words(
            "LDAP directory access (if you use LDAP servers beyond the firewall)"
        ));
        assert!(!optional_words("Inbound SMTP"));
        assert_eq!(
            slug("Time synchronisation (optional, mandatory)"),
            "time-synchronisation-optional-mandatory"
        );
        assert_eq!(slug("Zeitabgleich für Geräte"), "zeitabgleich-fuer-geraete");
        assert_eq!(slug("3rd party"), "p3rd-party");
    }

    #[test]
    fn icmp_and_app_words() {
        assert_eq!(
            icmp_words("Echo-Request (Ping)"),
            Some(IcmpType::EchoRequest)
        );
        assert_eq!(app_in("SFTP"), Some("sftp"));
        assert_eq!(app_in("FTPS (exp)"), Some("ftp"));
    }
}
