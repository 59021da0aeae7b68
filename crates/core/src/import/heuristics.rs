//! Every heuristic of the importer, each small and named for the layout or phrase it
//! handles, each with a test at the bottom of this file. A new layout or phrase is an
//! addition here, not a rewrite of the pipeline in `mod.rs`.
//!
//! Layouts (text -> rows): [`html_leftovers`], [`pipe_table`], [`glued_table`],
//! [`bullet_list`], [`prose_ports`], [`prose_services`].
//! Cells (row text -> flow parts): [`proto_ports`], [`direction_words`],
//! [`direction_text_override`], [`dns_names`], [`repeated_label_typo`], [`role_phrases`],
//! [`empty_server_list`], [`or_alternatives`], [`optional_words`], [`section_heading`],
//! [`icmp_words`].

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
    /// Label of the first column when it names the function (SEPPmail's "Function/ Feature").
    pub label: String,
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

/// Column meanings recognised in table headers (English and German).
fn column_of(header: &str) -> Option<&'static str> {
    let h = header.trim().to_lowercase();
    let h = h.trim_matches(|c: char| c == '|' || c.is_whitespace());
    let table: &[(&str, &str)] = &[
        ("target port", "ports"),
        ("destination port", "ports"),
        ("zielport", "ports"),
        ("port", "ports"),
        ("ports", "ports"),
        ("protocol", "proto"),
        ("protokoll", "proto"),
        ("direction", "direction"),
        ("richtung", "direction"),
        ("in/out", "direction"),
        ("source", "source"),
        ("quelle", "source"),
        ("from", "source"),
        ("von", "source"),
        ("target", "target"),
        ("ziel", "target"),
        ("destination", "target"),
        ("to", "target"),
        ("nach", "target"),
        ("host", "peer"),
        ("hosts", "peer"),
        ("server", "peer"),
        ("peer", "peer"),
        ("gegenstelle", "peer"),
        ("function/ feature", "label"),
        ("function", "function"),
        ("funktion", "function"),
        ("description", "function"),
        ("beschreibung", "function"),
        ("required for", "function"),
        ("purpose", "function"),
        ("zweck", "function"),
        ("service", "function"),
        ("dienst", "function"),
    ];
    let h = h.split(" / ").next().unwrap_or(h);
    table
        .iter()
        .find(|(k, _)| h == *k || (k.len() > 4 && h.starts_with(k)))
        .map(|(_, v)| *v)
}

fn set_field(row: &mut Row, col: &str, text: &str) {
    let t = text.trim();
    let f = match col {
        "ports" => &mut row.ports,
        "proto" => &mut row.proto,
        "direction" => &mut row.direction,
        "source" => &mut row.source,
        "target" => &mut row.target,
        "peer" => &mut row.peer,
        "label" => &mut row.label,
        _ => &mut row.function,
    };
    if f.is_empty() {
        *f = t.to_string();
    } else if !t.is_empty() {
        f.push(' ');
        f.push_str(t);
    }
}

/// `pipe_table`: a table whose cells end with `|`. A header row of known column names, then
/// a `---|---` separator. Two shapes: Markdown (every line a row, `| a | b |`) and a cell
/// stream where a row's cells run over several lines, one or more per line, and `||` lines
/// hold empty cells (what is left of merged cells). Returns rows and the lines it used.
pub fn pipe_table(lines: &[&str]) -> Vec<(Vec<Row>, Vec<usize>)> {
    let mut out = separated_pipe_table(lines);
    let taken: std::collections::BTreeSet<usize> =
        out.iter().flat_map(|t| t.1.iter().copied()).collect();
    out.extend(unseparated_pipe_table(lines, &taken));
    out
}

/// A header line of known column names and rows below it, one per line, with no `---`
/// separator (what HTML tables become after [`html_leftovers`]).
fn unseparated_pipe_table(
    lines: &[&str],
    taken: &std::collections::BTreeSet<usize>,
) -> Vec<(Vec<Row>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if taken.contains(&(i + 1)) || lines[i].matches('|').count() < 2 {
            i += 1;
            continue;
        }
        let header = split_cells(lines[i], lines[i].trim_start().starts_with('|'));
        let cols: Vec<Option<&'static str>> = header.iter().map(|c| column_of(c)).collect();
        if cols.iter().filter(|c| c.is_some()).count() < 2
            || header
                .iter()
                .any(|c| c.chars().any(|ch| ch.is_ascii_digit()))
        {
            i += 1;
            continue;
        }
        let mut rows = Vec::new();
        let mut used = vec![i + 1];
        let mut k = i + 1;
        while k < lines.len() && lines[k].matches('|').count() >= 2 && !taken.contains(&(k + 1)) {
            let cells = split_cells(lines[k], lines[k].trim_start().starts_with('|'));
            let mut row = Row {
                line: k + 1,
                lines: vec![k + 1],
                layout: "pipe_table",
                ..Row::default()
            };
            for (c, text) in cols.iter().zip(cells.iter()) {
                set_field(&mut row, c.unwrap_or("function"), text);
            }
            rows.push(row);
            used.push(k + 1);
            k += 1;
        }
        if !rows.is_empty() {
            out.push((rows, used));
        }
        i = k.max(i + 1);
    }
    out
}

fn separated_pipe_table(lines: &[&str]) -> Vec<(Vec<Row>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // Find a separator line.
        let sep = |l: &str| {
            let t = l.trim();
            t.contains("---") && t.chars().all(|c| matches!(c, '-' | '|' | ':' | ' '))
        };
        if !sep(lines[i]) {
            i += 1;
            continue;
        }
        // Header: the cells before the separator, on the preceding lines that end with `|`.
        let mut header_lines = Vec::new();
        let mut j = i;
        while j > 0 && lines[j - 1].trim_end().ends_with('|') && header_lines.len() < 12 {
            j -= 1;
            header_lines.insert(0, j);
        }
        let markdown =
            header_lines.len() == 1 && lines[header_lines[0]].trim_start().starts_with('|');
        let header_cells: Vec<String> = header_lines
            .iter()
            .flat_map(|&k| split_cells(lines[k], markdown))
            .filter(|c| !c.trim().is_empty())
            .collect();
        let cols: Vec<Option<&'static str>> = header_cells.iter().map(|c| column_of(c)).collect();
        if cols.iter().filter(|c| c.is_some()).count() < 2 {
            i += 1;
            continue;
        }
        let n = cols.len();
        let mut used: Vec<usize> = header_lines.clone();
        used.push(i);
        let mut rows = Vec::new();
        let mut k = i + 1;
        if markdown {
            while k < lines.len() && lines[k].trim_start().starts_with('|') {
                let cells = split_cells(lines[k], true);
                let mut row = Row {
                    line: k + 1,
                    lines: vec![k + 1],
                    layout: "pipe_table",
                    ..Row::default()
                };
                for (c, text) in cols.iter().zip(cells.iter()) {
                    set_field(&mut row, c.unwrap_or("function"), text);
                }
                used.push(k);
                rows.push(row);
                k += 1;
            }
        } else {
            // Cell stream.
            let mut cells: Vec<(String, usize)> = Vec::new();
            let mut pending = String::new();
            let mut pending_line = 0;
            let mut row_lines: Vec<usize> = Vec::new();
            let flush = |cells: &mut Vec<(String, usize)>,
                         rows: &mut Vec<Row>,
                         row_lines: &mut Vec<usize>| {
                if cells.iter().all(|(c, _)| c.trim().is_empty()) {
                    cells.clear();
                    row_lines.clear();
                    return;
                }
                rows.push(stream_row(&cols, cells, row_lines));
                cells.clear();
                row_lines.clear();
            };
            while k < lines.len() {
                let l = lines[k];
                let t = l.trim();
                if t.is_empty() && pending.is_empty() && cells.is_empty() {
                    // A blank line between rows; two in a row end the table.
                    if k + 1 < lines.len() && lines[k + 1].trim().is_empty() {
                        break;
                    }
                    k += 1;
                    continue;
                }
                if !t.contains('|')
                    && pending.is_empty()
                    && cells.is_empty()
                    && !rows.is_empty()
                    && looks_like_prose(t)
                {
                    break;
                }
                row_lines.push(k + 1);
                used.push(k);
                // Once per line, not per separator: a line of 200,000 `|` must stay linear.
                let only_pipes = t.chars().all(|c| c == '|');
                let mut rest = l;
                while let Some(p) = rest.find('|') {
                    if pending.is_empty() {
                        pending_line = k + 1;
                    }
                    pending.push(' ');
                    pending.push_str(&rest[..p]);
                    cells.push((pending.trim().to_string(), pending_line));
                    pending.clear();
                    rest = &rest[p + 1..];
                    // An all-pipes line (`||`) closes the row: its empty cells are what is
                    // left of merged cells.
                    if cells.len() >= n || (only_pipes && rest.trim().is_empty()) {
                        flush(&mut cells, &mut rows, &mut row_lines);
                    }
                }
                if !rest.trim().is_empty() {
                    if pending.is_empty() {
                        pending_line = k + 1;
                    }
                    pending.push(' ');
                    pending.push_str(rest);
                }
                k += 1;
            }
            if !pending.trim().is_empty() {
                cells.push((pending.trim().to_string(), pending_line));
            }
            if !cells.is_empty() {
                flush(&mut cells, &mut rows, &mut row_lines);
            }
        }
        used.sort_unstable();
        used.dedup();
        out.push((rows, used.iter().map(|u| u + 1).collect()));
        i = k;
    }
    out
}

fn split_cells(line: &str, markdown: bool) -> Vec<String> {
    let t = line.trim();
    let t = if markdown {
        t.trim_start_matches('|')
    } else {
        t
    };
    let t = t.strip_suffix('|').unwrap_or(t);
    t.split('|').map(|c| c.trim().to_string()).collect()
}

fn looks_like_prose(t: &str) -> bool {
    t.split_whitespace().count() >= 6 && !t.contains('|')
}

/// Build a row from a stream of cells. With fewer visible cells than columns (merged cells
/// of the previous row), the cells are placed by what they look like; `mod.rs` fills the
/// rest from the previous row (see [`inherit`]).
fn stream_row(cols: &[Option<&'static str>], cells: &[(String, usize)], lines: &[usize]) -> Row {
    let visible: Vec<&(String, usize)> = cells.iter().filter(|(c, _)| !c.is_empty()).collect();
    let mut row = Row {
        line: visible.first().map_or(0, |c| c.1),
        lines: lines.to_vec(),
        layout: "pipe_table",
        ..Row::default()
    };
    if visible.len() >= cols.len()
        || cells.len() <= cols.len() && cells.iter().all(|(c, _)| !c.is_empty())
    {
        for (c, (text, _)) in cols.iter().zip(cells.iter()) {
            set_field(&mut row, c.unwrap_or("function"), text);
        }
        return row;
    }
    // Partial row: the last visible cell is the description; the others by their look.
    let n = visible.len();
    let has = |name: &str| cols.contains(&Some(name));
    for (idx, (text, _)) in visible.iter().enumerate() {
        if idx + 1 == n && has("function") {
            set_field(&mut row, "function", text);
        } else if !proto_ports("", text).is_empty() && has("ports") {
            set_field(&mut row, "ports", text);
        } else if row.source.is_empty() && row.peer.is_empty() {
            row.peer = text.clone();
        } else {
            // Two endpoint cells: source then target.
            row.source = std::mem::take(&mut row.peer);
            row.target = text.clone();
        }
    }
    row.layout = "pipe_table_partial_row";
    row
}

/// Known column words for tables whose cells lost their separators.
const GLUED_HEADERS: &[&str] = &[
    "target port / packet type",
    "zielport / pakettyp",
    "destination port",
    "target",
    "ziel",
    "protocol",
    "protokoll",
    "zielport",
    "function",
    "funktion",
    "port",
    "source",
    "quelle",
];

/// Is the line a header of known column words glued together (`TargetProtocolTarget Port /
/// Packet TypeFunction`)? Returns the column order.
pub fn glued_header(line: &str) -> Option<Vec<&'static str>> {
    let mut rest = line.trim().to_lowercase();
    let mut cols = Vec::new();
    while !rest.is_empty() {
        let hit = GLUED_HEADERS.iter().find(|h| rest.starts_with(*h))?;
        cols.push(match *hit {
            "target port / packet type"
            | "zielport / pakettyp"
            | "destination port"
            | "zielport"
            | "port" => "ports",
            "protocol" | "protokoll" => "proto",
            "target" | "ziel" => "target",
            "source" | "quelle" => "source",
            _ => "function",
        });
        rest = rest[hit.len()..].trim_start().to_string();
    }
    (cols.len() >= 2 && line.split_whitespace().count() < 12).then_some(cols)
}

/// Protocol words that start the protocol cell of a glued row.
const PROTO_WORDS: &[&str] = &[
    "TCP und UDP",
    "TCP and UDP",
    "UDP und TCP",
    "UDP and TCP",
    "TCP/UDP",
    "UDP/TCP",
    "TCP",
    "UDP",
    "ICMP",
];

/// `glued_table`: rows after a [`glued_header`], cells glued together
/// (`update.intra2net.comTCP443 (https)System updates`). The protocol word is the anchor:
/// what comes before it is the target, then the port (or ICMP type), then the function.
/// A row without a function takes the next paragraph (a common copy artifact).
pub fn glued_table(lines: &[&str], start: usize, cols: &[&str]) -> (Vec<Row>, Vec<usize>) {
    let mut rows: Vec<Row> = Vec::new();
    let mut used = vec![start + 1];
    let mut k = start + 1;
    while k < lines.len() {
        let l = lines[k].trim();
        if l.is_empty() {
            k += 1;
            continue;
        }
        let Some((target, proto, rest)) = split_glued(l) else {
            // A paragraph: the function of a row that had none, a note (left for the
            // report), or the end of the table.
            if let Some(last) = rows.last_mut() {
                if last.function.is_empty() && !is_note(l) {
                    last.function = l.to_string();
                    last.lines.push(k + 1);
                    used.push(k + 1);
                    k += 1;
                    continue;
                }
            }
            if is_note(l) && !rows.is_empty() {
                k += 1;
                continue;
            }
            break;
        };
        if !cols.contains(&"target") && !target.is_empty() {
            break;
        }
        let (ports, function) = split_port_text(rest);
        rows.push(Row {
            line: k + 1,
            lines: vec![k + 1],
            layout: "glued_table",
            target: target.to_string(),
            proto: proto.to_string(),
            ports: ports.to_string(),
            function: function.trim().to_string(),
            ..Row::default()
        });
        used.push(k + 1);
        k += 1;
    }
    (rows, used)
}

fn is_note(l: &str) -> bool {
    let low = l.to_lowercase();
    low.starts_with("note") || low.starts_with("hinweis") || low.starts_with("[")
}

/// Split `targetPROTOrest` at the first protocol word glued to a digit or a capital.
fn split_glued(l: &str) -> Option<(&str, &str, &str)> {
    let mut best: Option<(usize, &str)> = None;
    for w in PROTO_WORDS {
        let mut from = 0;
        while let Some(p) = l[from..].find(w) {
            let at = from + p;
            let after = l[at + w.len()..].chars().next();
            let ok_after = after.is_some_and(|c| c.is_ascii_digit() || c.is_uppercase());
            if ok_after && best.is_none_or(|(b, bw)| at < b || (at == b && w.len() > bw.len())) {
                best = Some((at, w));
            }
            from = at + w.len();
        }
    }
    let (at, w) = best?;
    Some((l[..at].trim(), w, &l[at + w.len()..]))
}

/// `443 (https)System updates` -> (`443 (https)`, `System updates`); `5000 to 5050Manufacturer`
/// -> (`5000 to 5050`, `Manufacturer`); `Echo-Request (Ping)Connection` likewise.
fn split_port_text(rest: &str) -> (&str, &str) {
    let mut end = 0;
    let b = rest.as_bytes();
    let mut i = 0;
    loop {
        // number
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            // ICMP type words.
            let low = rest[i..].to_lowercase();
            if let Some(w) = ["echo-request", "echo request", "echo-reply"]
                .iter()
                .find(|w| low.starts_with(*w))
            {
                i += w.len();
                end = i;
            } else {
                break;
            }
        } else {
            end = i;
        }
        // optional " (name)"
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'(' {
            if let Some(c) = rest[j..].find(')') {
                i = j + c + 1;
                end = i;
            }
        }
        // joiner: " to ", " bis ", " and ", " und ", ", ", "-"
        let tail = &rest[end..];
        let joiners = [
            " to ", " bis ", " and ", " und ", ", ", ",", "-", " - ", " oder ", " or ",
        ];
        match joiners.iter().find(|jn| {
            tail.starts_with(*jn) && tail[jn.len()..].starts_with(|c: char| c.is_ascii_digit())
        }) {
            Some(jn) => i = end + jn.len(),
            None => break,
        }
    }
    (&rest[..end], &rest[end..])
}

/// `bullet_list`: lines starting with `-`, `*`, `•` or `–` that name ports, e.g.
/// `- 443/tcp to updates.example.net: signature updates` or `* TCP 25 from the Internet`.
pub fn bullet_list(lines: &[&str]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let Some(body) = ["- ", "* ", "• ", "– "]
            .iter()
            .find_map(|b| t.strip_prefix(b))
        else {
            continue;
        };
        if slash_ports(body).is_empty() && proto_ports("", body).is_empty() {
            continue;
        }
        rows.push(Row {
            line: i + 1,
            lines: vec![i + 1],
            layout: "bullet_list",
            ports: body.to_string(),
            peer: body.to_string(),
            function: body.to_string(),
            ..Row::default()
        });
    }
    rows
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
    if !cue || !slash_ports(sentence).is_empty() {
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
fn words(s: &str) -> Vec<(usize, &str)> {
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

/// Protocols named in a protocol cell (`TCP`, `UDP/TCP`, `TCP und UDP`, `FTP`, `ICMP`).
fn protocols_in(cell: &str) -> Option<Vec<P>> {
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
        .split(|c: char| c == '/' || c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .collect();
    let inn = w
        .iter()
        .any(|x| matches!(*x, "in" | "ein" | "eingehend" | "inbound" | "incoming"));
    let out = w
        .iter()
        .any(|x| matches!(*x, "out" | "aus" | "ausgehend" | "outbound" | "outgoing"));
    let both = w
        .iter()
        .any(|x| matches!(*x, "both" | "beide" | "bidirectional"));
    match (inn, out, both) {
        (true, true, _) | (_, _, true) => Some(Dir::Both),
        (true, false, _) => Some(Dir::In),
        (false, true, _) => Some(Dir::Out),
        _ => None,
    }
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
fn contains_words(hay: &str, needle: &str) -> bool {
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
    fn pipe_table_markdown_and_stream() {
        let md = [
            "| Port | Protocol | Direction | Purpose |",
            "|---|---|---|---|",
            "| 443 | TCP | Out | Updates |",
        ];
        let t = pipe_table(&md);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0[0].ports, "443");
        assert_eq!(t[0].0[0].direction, "Out");
        let stream = [
            "Port | Protocol | Direction | Required for |",
            "---|---|---|---|---|",
            "80 | TCP |",
            "Out |",
            "Updates from repo.example.net |",
            "25 | TCP | In | Inbound SMTP |",
        ];
        let t = pipe_table(&stream);
        assert_eq!(t[0].0.len(), 2);
        assert_eq!(t[0].0[0].function, "Updates from repo.example.net");
        assert_eq!(t[0].0[0].line, 3);
        assert_eq!(t[0].0[1].direction, "In");
    }

    #[test]
    fn pipe_table_without_separator_after_html() {
        let t = html_leftovers("<tr><th>Port</th><th>Richtung</th><th>Zweck</th></tr>\n<tr><td>443</td><td>Aus</td><td>Updates</td></tr>\n");
        let lines: Vec<&str> = t.lines().collect();
        let tables = pipe_table(&lines);
        assert_eq!(tables.len(), 1, "{t}");
        assert_eq!(tables[0].0[0].ports, "443");
        assert_eq!(tables[0].0[0].direction, "Aus");
    }

    #[test]
    fn pipe_table_partial_rows_from_merged_cells() {
        let s = [
            "Function |",
            "Port |",
            "Source |",
            "Target |",
            "Description |",
            "---|---|---|---|---|",
            "Mail |",
            "TCP 25 (SMTP) |",
            "Internet |",
            "Appliance |",
            "Receive mail. |",
            "Smarthost |",
            "Receive via a smarthost. |",
            "|||",
        ];
        let t = pipe_table(&s);
        let rows = &t[0].0;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].peer, "Smarthost");
        assert_eq!(rows[1].function, "Receive via a smarthost.");
        assert_eq!(rows[1].layout, "pipe_table_partial_row");
    }

    #[test]
    fn glued_table_splits_at_the_protocol() {
        let h = glued_header("TargetProtocolTarget Port / Packet TypeFunction").expect("header");
        assert_eq!(h, ["target", "proto", "ports", "function"]);
        assert!(glued_header("ZielProtokollZielport / PakettypFunktion").is_some());
        let lines = [
            "TargetProtocolTarget Port / Packet TypeFunction",
            "support.example.comTCP5000 to 5050Remote maintenance",
            "Your DNS ServerTCP and UDP53 (dns)Name Resolution",
            "Multiple ServersICMPEcho-Request (Ping)Monitoring",
        ];
        let (rows, _) = glued_table(&lines, 0, &h);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].target, "support.example.com");
        assert_eq!(rows[0].ports, "5000 to 5050");
        assert_eq!(rows[0].function, "Remote maintenance");
        assert_eq!(rows[1].proto, "TCP and UDP");
        assert_eq!(rows[2].ports, "Echo-Request (Ping)");
    }

    #[test]
    fn bullet_list_rows() {
        let r = bullet_list(&[
            "Intro",
            "- 443/tcp to updates.example.net",
            "* nothing here",
        ]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].line, 2);
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
