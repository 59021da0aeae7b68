//! Import: a vendor's port table, as copied from a web page or PDF, to a draft profile.
//!
//! The pipeline is fixed; the judgement calls are in [`layout`] (how a document holds its
//! table) and [`heuristics`] (what a cell says):
//! 1. clean the text ([`heuristics::html_leftovers`]) and tell the language;
//! 2. let every layout propose its readings and keep the best, line by line
//!    ([`layout::choose`]); every non-empty line no reading used is listed in the report;
//! 3. per table, find the appliance's name in Source/Target cells; split rows that give a
//!    direction per protocol; take a caption's protocol for rows without one; read each
//!    row's cells: protocols and ports (assumed ones with a caveat), direction, peers (DNS
//!    names, roles by phrase, alternatives), optional or required;
//! 4. write the draft in the catalog's format, with a confidence per flow and `# REVIEW`
//!    comments for the doubtful ones ([`emit`]). The draft passes `portolan check`
//!    ([`Draft::check`] runs the same checks without parsing the text again).

pub mod emit;
pub mod heuristics;
pub mod layout;

pub use emit::CHECK_CHUNK_FLOWS;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use heuristics::*;

use crate::diag::Source;
use crate::model::IcmpType;
use crate::profile::RawProfile;

/// Below this, a flow is marked for review in the draft.
pub const REVIEW_BELOW: f32 = 0.6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `None`: detect.
    pub lang: Option<Lang>,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// One flow of the draft.
#[derive(Debug, Clone)]
pub struct DraftFlow {
    pub id: String,
    pub function: String,
    /// Out: the appliance opens; In: the peer opens.
    pub outbound: bool,
    pub peers: Vec<String>,
    pub protocols: Vec<P>,
    pub ports: Vec<(u16, u16)>,
    pub icmp: Option<IcmpType>,
    pub optional: bool,
    pub alternative: Option<String>,
    pub no_tls_interception: bool,
    pub line: usize,
    pub confidence: f32,
    /// Heuristics that made it, and doubts.
    pub why: Vec<String>,
    pub doubts: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lang: String,
    pub lang_reason: String,
    /// (layout, rows, first line)
    pub layouts: Vec<(String, usize, usize)>,
    /// (line, text, why) for every non-empty line no row used.
    pub unplaced: Vec<(usize, String, String)>,
    /// (line, what)
    pub corrections: Vec<(usize, String)>,
    /// Rows that gave no flow: (line, why).
    pub rejected_rows: Vec<(usize, String)>,
    /// Lines some row used.
    pub placed: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
pub struct Draft {
    /// The draft profile's text.
    pub toml: String,
    /// Everything before the first flow, as the checker reads it from `toml` (no flows).
    header: RawProfile,
    /// Where each flow's text starts in `toml`, and where the last one ends.
    flow_at: Vec<usize>,
    lang: Lang,
    pub flows: Vec<DraftFlow>,
    pub report: Report,
    pub id: String,
}

/// Lines some row used, by number (1-based).
struct Used(Vec<bool>);

impl Used {
    fn has(&self, line: usize) -> bool {
        self.0.get(line).copied().unwrap_or(false)
    }
    fn add(&mut self, line: usize) {
        if let Some(u) = self.0.get_mut(line) {
            *u = true;
        }
    }
    fn extend(&mut self, lines: impl IntoIterator<Item = usize>) {
        lines.into_iter().for_each(|l| self.add(l));
    }
    fn lines(&self) -> BTreeSet<usize> {
        (0..self.0.len()).filter(|&l| self.0[l]).collect()
    }
}

/// Languages by cue words.
fn detect_lang(text: &str) -> (Lang, String) {
    // Words are compared without case and without copying the text; no cue word is longer
    // than 12 bytes.
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=12).contains(&w.len()))
        .collect();
    let count = |ws: &[&str]| -> usize {
        words
            .iter()
            .filter(|w| ws.iter().any(|c| c.eq_ignore_ascii_case(w)))
            .count()
    };
    let de = count(&[
        "der",
        "die",
        "das",
        "und",
        "für",
        "mit",
        "sie",
        "ihr",
        "verbindungen",
        "ziel",
        "bis",
        "oder",
        "nicht",
        "ist",
        "werden",
        "eingehende",
        "ausgehende",
    ]);
    let en = count(&[
        "the",
        "and",
        "for",
        "with",
        "you",
        "your",
        "connections",
        "target",
        "to",
        "or",
        "not",
        "is",
        "are",
        "incoming",
        "outgoing",
    ]);
    let lang = if de > en { Lang::De } else { Lang::En };
    (lang, format!("{de} German and {en} English cue words"))
}

/// Import a document.
pub fn import(src: &Source, opts: &Options) -> Draft {
    let text = html_leftovers(&src.text);
    let lines: Vec<&str> = text.lines().collect();
    let (detected, why) = detect_lang(&text);
    let lang = opts.lang.unwrap_or(detected);
    let mut report = Report {
        lang: lang.code().into(),
        lang_reason: if opts.lang.is_some() {
            "given".into()
        } else {
            why
        },
        ..Report::default()
    };

    // Rows from every layout; a line belongs to at most one reading, the best by score.
    let mut doc = layout::Doc::new(&text);
    let found = layout::choose(&mut doc);
    let mut used = Used(vec![false; lines.len() + 1]);
    let mut rows: Vec<Row> = Vec::new();
    let mut per_layout: Vec<(String, usize, usize)> = Vec::new();
    for f in found {
        used.extend(f.lines.iter().copied());
        let first = f.lines.first().copied().unwrap_or(0);
        // One report line per table; list items and sentences (a reading each) per run.
        let single = f.layout == "list" || f.layout.starts_with("prose");
        match per_layout.last_mut() {
            Some(l) if single && l.0 == f.layout => l.1 += f.rows.len(),
            _ => per_layout.push((f.layout.to_string(), f.rows.len(), first)),
        }
        let mut table_rows = f.rows;
        mark_appliance(&mut table_rows);
        rows.extend(table_rows);
    }
    report.layouts = per_layout;
    // Rows whose direction cell gives a direction per protocol become one row per clause.
    let rows: Vec<Row> = rows.into_iter().flat_map(split_direction_clauses).collect();
    let mut rows = rows;
    rows.sort_by_key(|r| r.line);

    // Sections: direction (and peer, and optional) from headings, by line.
    let mut sections: Vec<(usize, Dir, Option<&'static str>, bool)> = Vec::new();
    for (k, l) in lines.iter().enumerate() {
        if used.has(k + 1) {
            continue;
        }
        if let Some((d, peer)) = section_heading(l) {
            sections.push((k + 1, d, peer, optional_words(l)));
        }
    }
    // Captions that give the protocol, for rows that give none.
    let mut captions: Vec<(usize, Vec<P>)> = Vec::new();
    for (k, l) in lines.iter().enumerate() {
        if !used.has(k + 1) {
            if let Some(p) = caption_protocols(l) {
                captions.push((k + 1, p));
            }
        }
    }
    for row in &mut rows {
        let n = captions.partition_point(|c| c.0 < row.line);
        let Some((at, protos)) = n.checked_sub(1).map(|i| &captions[i]) else {
            continue;
        };
        let table = !(row.layout == "list" || row.layout.starts_with("prose"));
        if table
            && row.line - at <= 60
            && row.proto.trim().is_empty()
            && protocols_in(&row.ports).is_none()
        {
            row.proto = protos
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("/");
            row.proto_from = Some(*at);
        }
    }
    // Sections are in line order: the last one before a line, by binary search.
    let section_at = |line: usize| {
        let n = sections.partition_point(|s| s.0 < line);
        n.checked_sub(1).map(|i| sections[i])
    };

    // Rows to flows. Merged cells are inherited first, in order; then the rows are read on
    // two threads (each row on its own), and the results joined in order.
    let mut prepared: Vec<(Row, bool)> = Vec::with_capacity(rows.len());
    let mut prev: Option<Row> = None;
    for mut row in rows {
        let mut inherited = false;
        if row.layout == "pipe_table_partial_row" {
            if let Some(p) = &prev {
                inherit(&mut row, p);
                inherited = true;
            }
        }
        if row.layout.starts_with("pipe_table") {
            prev = Some(row.clone());
        }
        prepared.push((row, inherited));
    }
    drop(prev);
    let read = |part: &[(Row, bool)]| {
        let mut part_report = Report::default();
        let mut flows: Vec<DraftFlow> = Vec::new();
        for (row, inherited) in part {
            if row.direction.trim() == "deny" {
                part_report.rejected_rows.push((
                    row.line,
                    "denied in every direction: an explicit non-flow, left out".into(),
                ));
                continue;
            }
            let made = row_flows(row, section_at(row.line), &mut part_report, *inherited);
            if made.is_empty() {
                part_report.rejected_rows.push((
                    row.line,
                    "no port or protocol could be read from this row".into(),
                ));
            }
            flows.extend(made);
        }
        (flows, part_report)
    };
    let (first, second) = prepared.split_at(prepared.len() / 2);
    let ((mut flows, r1), (more, r2)) = std::thread::scope(|s| {
        let other = s.spawn(|| read(second));
        let mine = read(first);
        let theirs = other
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (mine, theirs)
    });
    flows.extend(more);
    for r in [r1, r2] {
        report.corrections.extend(r.corrections);
        report.rejected_rows.extend(r.rejected_rows);
    }
    drop(prepared);
    for (k, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.is_empty() || used.has(k + 1) {
            continue;
        }
        let why = if section_heading(t).is_some() {
            "section heading: sets the direction of the rows after it"
        } else if t.to_lowercase().starts_with("note")
            || t.to_lowercase().starts_with("hinweis")
            || t.starts_with('[')
        {
            "note: no ports"
        } else {
            "no ports: heading or prose"
        };
        report
            .unplaced
            .push((k + 1, t.chars().take(160).collect(), why.into()));
    }

    report.placed = used.lines();
    unique_ids(&mut flows);
    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| guess_id(src.name.as_ref()));
    let doc = std::path::Path::new(src.name.as_ref())
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = opts.name.clone().unwrap_or_else(|| {
        src.text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map_or_else(|| id.clone(), |l| l.chars().take(80).collect())
    });
    Draft::new(&doc, &name, lang, &id, flows, report)
}

/// The text a table uses for the appliance: the one endpoint that every row with a source
/// and a target has on one side (`SERVER` in a table of `SERVER -> ANY` and `ANY -> SERVER`
/// rows). Needs three such rows; a phrase naming the appliance is found by
/// [`role_phrases`] anyway.
fn mark_appliance(rows: &mut [Row]) {
    let ends: Vec<(String, String)> = rows
        .iter()
        .filter(|r| !r.source.trim().is_empty() && !r.target.trim().is_empty())
        .map(|r| {
            (
                r.source.trim().to_lowercase(),
                r.target.trim().to_lowercase(),
            )
        })
        .collect();
    if ends.len() < 3 {
        return;
    }
    let mut candidates: Vec<&String> = vec![&ends[0].0, &ends[0].1];
    candidates.retain(|c| ends.iter().all(|(s, t)| s == *c || t == *c));
    if let Some(c) = candidates.first() {
        let c = (*c).clone();
        for r in rows.iter_mut() {
            r.appliance = c.clone();
        }
    }
}

/// A row whose direction cell gives a direction per protocol (`Eingehendes TCP zum Host,
/// ausgehendes UDP aus dem Host`) and whose table has no protocol column: one row per
/// clause.
fn split_direction_clauses(row: Row) -> Vec<Row> {
    if !row.proto.trim().is_empty() {
        return vec![row];
    }
    let clauses = direction_clauses(&row.direction);
    if clauses.is_empty() {
        return vec![row];
    }
    clauses
        .into_iter()
        .map(|(d, protos)| {
            let mut r = row.clone();
            r.direction = match d {
                Dir::In => "in",
                Dir::Out => "out",
                Dir::Both => "in/out",
            }
            .to_string();
            r.proto = protos
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("/");
            r
        })
        .collect()
}

/// The function of a prose or bullet row: the words in parentheses, or the text without
/// its port specifications.
fn prose_function(text: &str) -> String {
    let parens = match (text.find('('), text.rfind(')')) {
        (Some(a), Some(z)) if a < z => Some((a, z)),
        _ => None,
    };
    if let Some((a, z)) = parens {
        let inner = text[a + 1..z].trim();
        let inner = inner
            .trim_end_matches(", optional")
            .trim_end_matches("optional")
            .trim_end_matches(',')
            .trim();
        if inner.chars().any(char::is_alphabetic) {
            return inner.to_string();
        }
    }
    let mut words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| slash_ports(w).is_empty())
        .collect();
    // Words left dangling where the ports stood ("... using", "over and").
    while words.last().is_some_and(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "using"
                | "uses"
                | "over"
                | "and"
                | "via"
                | "on"
                | "to"
                | "towards"
                | "with"
                | "at"
                | "und"
                | "über"
                | "mit"
        )
    }) {
        words.pop();
    }
    words
        .join(" ")
        .trim_start_matches(['-', '*', '•'])
        .trim()
        .to_string()
}

/// Direction of a prose or bullet text: incoming/outgoing words; `from` (but "fetches from"
/// is the appliance fetching); `to`/`towards`.
fn prose_direction(text: &str) -> Option<Dir> {
    let l = format!(" {} ", text.to_lowercase());
    let inn = l.contains("incoming") || l.contains("inbound") || l.contains("eingehend");
    let out = l.contains("outgoing") || l.contains("outbound") || l.contains("ausgehend");
    match (inn, out) {
        (true, true) => return Some(Dir::Both),
        (true, false) => return Some(Dir::In),
        (false, true) => return Some(Dir::Out),
        _ => {}
    }
    if let Some(p) = l.find(" from ") {
        let before = &l[..p];
        let fetch = [
            "fetch", "download", "get ", "gets ", "pull", "retriev", "update",
        ]
        .iter()
        .any(|v| before.contains(v));
        return Some(if fetch { Dir::Out } else { Dir::In });
    }
    if l.contains(" to ")
        || l.contains(" towards ")
        || l.contains(" sends ")
        || l.contains(" an ")
        || l.contains(" zu ")
    {
        return Some(Dir::Out);
    }
    None
}

/// A row made of merged cells takes what it lacks from the row above it: the label and the
/// ports, and the endpoint it does not name (a lone endpoint cell replaces the peer side,
/// the appliance side stays).
fn inherit(row: &mut Row, prev: &Row) {
    if row.label.is_empty() {
        row.label = prev.label.clone();
    }
    if row.ports.is_empty() {
        row.ports = prev.ports.clone();
        row.proto = prev.proto.clone();
    }
    let app = |t: &str| role_phrases(t, true) == Some("appliance");
    if !row.source.is_empty() || !row.target.is_empty() {
        return;
    }
    if row.peer.is_empty() {
        row.source = prev.source.clone();
        row.target = prev.target.clone();
    } else if app(&prev.source) {
        row.source = prev.source.clone();
        row.target = std::mem::take(&mut row.peer);
    } else {
        row.target = prev.target.clone();
        row.source = std::mem::take(&mut row.peer);
    }
}

/// Flows of one row.
fn row_flows(
    row: &Row,
    section: Option<(usize, Dir, Option<&'static str>, bool)>,
    report: &mut Report,
    inherited: bool,
) -> Vec<DraftFlow> {
    let mut why: Vec<String> = vec![row.layout.to_string()];
    let mut doubts: Vec<String> = Vec::new();
    let mut conf: f32 = 0.9;
    if inherited {
        why.push("merged cells taken from the row above".into());
        conf -= 0.1;
    }
    if row.layout.starts_with("prose") {
        conf -= 0.3;
        doubts.push("read from prose, not from a table".into());
    }

    // Protocols and ports.
    let (mut groups, caveats) = layout::row_groups(row);
    if let Some(at) = row.proto_from {
        why.push(format!("protocol from the caption at line {at}"));
    }
    if groups.is_empty() && row.proto.to_lowercase().contains("icmp") {
        groups.push((vec![P::Icmp], Vec::new()));
    }
    if groups.iter().any(|g| g.0.is_empty()) {
        return Vec::new();
    }
    if !caveats.is_empty() {
        conf -= 0.15;
        doubts.extend(caveats);
    }
    let icmp = icmp_words(&row.ports).or_else(|| icmp_words(&row.function));

    let function = if row.layout.starts_with("prose_ports") || row.layout == "list" {
        clean_function(&prose_function(&row.function))
    } else {
        clean_function(if row.function.is_empty() {
            &row.label
        } else {
            &row.function
        })
    };
    let function = if !row.label.is_empty()
        && !row.function.is_empty()
        && !row.function.starts_with(&row.label)
    {
        format!("{}: {}", clean_function(&row.label), function)
    } else {
        function
    };
    let function = if function.is_empty() {
        format!("row at line {} (no description)", row.line)
    } else {
        function
    };
    if function.ends_with(" the")
        || function.ends_with(" to the")
        || function.ends_with(" connect the")
    {
        doubts.push("the text looks cut off".into());
        conf -= 0.2;
    }
    let optional = optional_words(&row.function)
        || optional_words(&row.label)
        || section.is_some_and(|s| s.3)
        || row.layout == "prose_services";
    let no_tls = {
        let l = row.function.to_lowercase();
        l.contains("ssl proxy") || l.contains("ssl-proxy") || l.contains("tls proxy")
    };

    // Direction and peer text.
    let app = |t: &str| {
        role_phrases(t, true) == Some("appliance")
            || (!row.appliance.is_empty() && t.trim().to_lowercase() == row.appliance)
    };
    // (outbound, peer text, is a peer cell)
    let mut ends: Vec<(bool, String, bool)> = Vec::new();
    if !row.source.is_empty() && !row.target.is_empty() {
        let (s, t) = (row.source.as_str(), row.target.as_str());
        match (app(s), app(t)) {
            (true, true) => {
                why.push("appliance to appliance: a cluster peer both ways".into());
                ends.push((true, "cluster-peer".into(), true));
                ends.push((false, "cluster-peer".into(), true));
            }
            (true, false) => ends.push((true, t.to_string(), true)),
            (false, true) => ends.push((false, s.to_string(), true)),
            (false, false) => {
                // Neither end is the appliance: it plays one of the roles (frontend and
                // backend of a cluster). Both readings.
                why.push("neither end is the appliance: it may play either".into());
                conf -= 0.2;
                ends.push((true, t.to_string(), true));
                ends.push((false, s.to_string(), true));
            }
        }
    } else {
        let mut dir = direction_words(&row.direction);
        if let Some(d) = dir {
            if let Some(o) = direction_text_override(d, &row.function) {
                doubts.push(format!(
                    "the direction column says {:?} but the text says {:?}; the text is followed",
                    d, o
                ));
                report.corrections.push((
                    row.line,
                    format!("direction {d:?} read as {o:?} (the row's text says so)"),
                ));
                conf -= 0.3;
                dir = Some(o);
            }
        }
        let free_text = row.layout.starts_with("prose") || row.layout == "list";
        // The text's own words (`SMTP from the internet`); in a table only when no column
        // and no heading gives the direction.
        let text_dir = if free_text || (section.is_none() && row.source.is_empty()) {
            prose_direction(&row.function)
        } else {
            None
        };
        // A table with only a source column lists who connects to the appliance.
        let only_source = (!row.source.is_empty()).then_some(Dir::In);
        let dir = dir
            .or(only_source)
            .or(text_dir)
            .or_else(|| section.map(|s| s.1))
            .unwrap_or_else(|| {
                doubts.push("no direction given; outgoing assumed".into());
                conf -= 0.3;
                Dir::Out
            });
        let (text, cell) = if !row.target.is_empty() {
            (row.target.clone(), true)
        } else if !row.source.is_empty() {
            (row.source.clone(), true)
        } else if !row.peer.is_empty() && !free_text {
            (row.peer.clone(), true)
        } else if let Some(p) = section
            .and_then(|s| s.2)
            .filter(|_| row.layout == "glued_table")
        {
            (p.to_string(), true)
        } else {
            (row.function.clone(), false)
        };
        for o in match dir {
            Dir::Out => vec![true],
            Dir::In => vec![false],
            Dir::Both => vec![true, false],
        } {
            ends.push((o, text.clone(), cell));
        }
    }

    // Peers of each end.
    let mut out = Vec::new();
    for (outbound, text, cell) in ends {
        let (alts, pwhy, pconf) = peers(&text, cell, &row.function, &row.proto, row.line, report);
        let base = if !row.label.is_empty() {
            &row.label
        } else {
            &function
        };
        let alt_group = (alts.len() > 1).then(|| format!("{}-choice", short_slug(base, 3)));
        for peers in alts {
            for (protos, ports) in &groups {
                let icmp_type = if protos == &[P::Icmp] {
                    Some(icmp.unwrap_or(IcmpType::EchoRequest))
                } else {
                    None
                };
                let mut w = why.clone();
                w.extend(pwhy.iter().cloned());
                out.push(DraftFlow {
                    id: short_slug(base, 3),
                    function: function.clone(),
                    outbound,
                    peers: peers.clone(),
                    protocols: protos.clone(),
                    ports: ports.clone(),
                    icmp: icmp_type,
                    optional,
                    alternative: alt_group.clone(),
                    no_tls_interception: no_tls,
                    line: row.line,
                    confidence: (conf + pconf).clamp(0.05, 0.95),
                    why: w,
                    doubts: doubts.clone(),
                });
            }
        }
    }
    // Rows that are In/Out get direction suffixes.
    let dirs: BTreeSet<bool> = out.iter().map(|f| f.outbound).collect();
    if dirs.len() == 2 {
        for f in &mut out {
            f.id = format!("{}-{}", f.id, if f.outbound { "out" } else { "in" });
        }
    }
    if row.layout == "prose_services" {
        for f in &mut out {
            let port = f.ports.first().map_or(0, |p| p.0);
            let svc = SERVICES
                .iter()
                .find(|s| s.2 == port)
                .map_or("service", |s| s.0);
            f.id = format!("{}-{svc}", f.id);
            f.why
                .push(format!("service {svc} named: its well-known port {port}"));
        }
    }
    out
}

/// Peers named by a text: alternatives, each a list of endpoints. Returns (alternatives,
/// heuristics used, confidence change).
fn peers(
    text: &str,
    cell: bool,
    function: &str,
    proto: &str,
    line: usize,
    report: &mut Report,
) -> (Vec<Vec<String>>, Vec<String>, f32) {
    let mut why = Vec::new();
    let mut conf = 0.0;
    let parts = if cell {
        or_alternatives(text)
    } else {
        vec![text.to_string()]
    };
    if parts.len() > 1 {
        why.push("or_alternatives".into());
    }
    let mut alts: Vec<Vec<String>> = Vec::new();
    for part in &parts {
        let mut eps: Vec<String> = Vec::new();
        for n in dns_names(part) {
            match repeated_label_typo(&n) {
                Some(fixed) => {
                    report.corrections.push((
                        line,
                        format!("`{n}` read as `{fixed}` (a label repeated twice: a typo)"),
                    ));
                    why.push("repeated_label_typo".into());
                    conf -= 0.2;
                    eps.push(fixed);
                }
                None => eps.push(n),
            }
        }
        if !eps.is_empty() {
            why.push("dns_names".into());
        }
        let listed = empty_server_list(part);
        if !listed.is_empty() {
            why.push("empty_server_list".into());
            eps.extend(listed);
        }
        if eps.is_empty() {
            if cell {
                if let Some(r) = role_phrases(part, true) {
                    why.push(format!("role_phrases: {r}"));
                    eps.push(r.to_string());
                }
            } else {
                // A description may name several peers ("web interface ... Peer").
                let mut rest = part.to_lowercase();
                while let Some(r) = role_phrases(&rest, false) {
                    if !eps.contains(&r.to_string()) {
                        eps.push(r.to_string());
                    }
                    // Remove the phrases of this role and look again.
                    for (p, role, _) in ROLE_PHRASES {
                        if *role == r {
                            rest = rest.replace(p, " ");
                        }
                    }
                }
                if !eps.is_empty() {
                    why.push(format!("role_phrases: {}", eps.join(", ")));
                }
            }
        }
        eps.retain(|e| e != "appliance");
        alts.push(eps);
    }
    // A cell that named nothing: try the description, then the application protocol.
    for eps in &mut alts {
        if eps.is_empty() && cell && !function.is_empty() {
            if let Some(r) = role_phrases(function, false) {
                why.push(format!("role from the description: {r}"));
                conf -= 0.1;
                eps.push(r.to_string());
            }
        }
        if eps.is_empty() {
            if let Some(app) = app_in(proto) {
                let r = if app == "sftp" {
                    "sftp-server"
                } else {
                    "ftp-server"
                };
                why.push(format!("role from the protocol {app}: {r}"));
                conf -= 0.2;
                eps.push(r.to_string());
            }
        }
        if eps.is_empty() {
            why.push("no peer named: internet assumed".into());
            conf -= 0.4;
            eps.push("internet".to_string());
        }
    }
    (alts, why, conf)
}

fn clean_function(s: &str) -> String {
    let t = s.trim().trim_end_matches('|').trim();
    let mut out: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > 300 {
        let mut cut = 300;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// An id from the first words of a text.
fn short_slug(text: &str, words: usize) -> String {
    let s = slug(text);
    let mut parts: Vec<&str> = s
        .split('-')
        .filter(|w| {
            !matches!(
                *w,
                "the" | "of" | "to" | "and" | "der" | "die" | "das" | "und" | "for" | "a"
            )
        })
        .collect();
    parts.truncate(words.max(1));
    let out = parts.join("-");
    if out.is_empty() || !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        format!("flow-{out}").trim_end_matches('-').to_string()
    } else {
        out
    }
}

fn unique_ids(flows: &mut [DraftFlow]) {
    // Final ids taken so far, and the next suffix to try for each base: `x`, `x-2`, `x-3`...
    // skipping any that another flow already has (a flow may be called `x-2` itself).
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut next: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in flows.iter_mut() {
        let mut id = f.id.clone();
        id.truncate(55);
        while id.ends_with('-') {
            id.pop();
        }
        let n = next.entry(id.clone()).or_insert(1);
        let mut candidate = if *n == 1 {
            id.clone()
        } else {
            format!("{id}-{n}")
        };
        while taken.contains(&candidate) {
            *n += 1;
            candidate = format!("{id}-{n}");
        }
        *n += 1;
        taken.insert(candidate.clone());
        f.id = candidate;
    }
}

fn guess_id(file: &str) -> String {
    let base = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let s = short_slug(&base, 4);
    if s.starts_with("flow") {
        "imported".into()
    } else {
        s
    }
}

/// The report as text.
pub fn report_text(d: &Draft, file: &str) -> String {
    let r = &d.report;
    let mut t = String::new();
    let _ = writeln!(t, "portolan import report for {file}");
    let _ = writeln!(t, "language: {} ({})", r.lang, r.lang_reason);
    for (l, n, at) in &r.layouts {
        let _ = writeln!(t, "layout: {l}, {n} row(s), from line {at}");
    }
    let review = d
        .flows
        .iter()
        .filter(|f| f.confidence < REVIEW_BELOW)
        .count();
    let _ = writeln!(t, "\nflows: {} ({} for review)", d.flows.len(), review);
    for f in &d.flows {
        let _ = writeln!(
            t,
            "  line {:>4}  {:<36} {:.2}{}  {}",
            f.line,
            f.id,
            f.confidence,
            if f.confidence < REVIEW_BELOW {
                " REVIEW"
            } else {
                ""
            },
            f.why
                .iter()
                .chain(&f.doubts)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if !r.corrections.is_empty() {
        let _ = writeln!(t, "\ncorrections:");
        for (l, w) in &r.corrections {
            let _ = writeln!(t, "  line {l}: {w}");
        }
    }
    if !r.rejected_rows.is_empty() {
        let _ = writeln!(t, "\nrows that gave no flow:");
        for (l, w) in &r.rejected_rows {
            let _ = writeln!(t, "  line {l}: {w}");
        }
    }
    let _ = writeln!(t, "\nnot placed ({} line(s)):", r.unplaced.len());
    for (l, text, why) in &r.unplaced {
        let _ = writeln!(t, "  line {l}: {why}: {text}");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `x`, `x`, `x-2` used to give `x`, `x-2`, `x-2` (a draft that fails its
    /// own check).
    #[test]
    fn ids_stay_unique_when_a_flow_is_already_called_like_a_suffix() {
        let flow = |id: &str| DraftFlow {
            id: id.into(),
            function: String::new(),
            outbound: true,
            peers: vec![],
            protocols: vec![],
            ports: vec![],
            icmp: None,
            optional: false,
            alternative: None,
            no_tls_interception: false,
            line: 1,
            confidence: 1.0,
            why: vec![],
            doubts: vec![],
        };
        let mut flows = vec![flow("x"), flow("x"), flow("x-2"), flow("x")];
        unique_ids(&mut flows);
        let ids: Vec<&str> = flows.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["x", "x-2", "x-2-2", "x-3"]);
    }

    #[test]
    fn prose_function_and_direction() {
        assert_eq!(prose_function("443/tcp to a.example (updates)"), "updates");
        // A closing parenthesis before the opening one (found by fuzzing).
        assert_eq!(
            prose_function("x) uses 443/tcp (y"),
            "x) uses 443/tcp (y".replace(" 443/tcp", "")
        );
        assert_eq!(
            prose_direction("it fetches updates from get.example"),
            Some(Dir::Out)
        );
        assert_eq!(
            prose_direction("allow incoming 22/tcp from the admin"),
            Some(Dir::In)
        );
        assert_eq!(prose_direction("mail from the Internet"), Some(Dir::In));
        assert_eq!(
            prose_direction("sends backups to the vault"),
            Some(Dir::Out)
        );
    }
}
