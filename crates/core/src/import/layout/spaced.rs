//! `spaced`: tables whose cells are separated by tabs or runs of spaces, and PDF text where
//! each row starts with its port (`25  TCP  In  Inbound SMTP`, `8200, 8100,` / `8300` /
//! `TCP,` / `UDP` / `Fault Tolerance ...` with the cells wrapped over lines). A port-first
//! row is only a row when a protocol or direction word follows its ports, so numbered
//! prose, page numbers and footnote marks stay out.

use super::columns::{column_of, grid_rows, type_columns};
use super::{Doc, Found, Layout};
use crate::import::heuristics::*;

pub struct Spaced;

impl Layout for Spaced {
    fn name(&self) -> &'static str {
        "spaced_columns"
    }
    fn find(&self, doc: &Doc) -> Vec<Found> {
        let mut out = separated(doc, '\t');
        out.extend(separated(doc, ' '));
        out.extend(port_rows(doc));
        out
    }
}

/// Cells of a line split at tabs, or at runs of two or more spaces.
fn split(line: &str, by: char) -> Vec<String> {
    let t = line.trim();
    if by == '\t' {
        if !t.contains('\t') {
            return Vec::new();
        }
        // A tab is an exact separator: empty cells keep their place.
        let mut cells: Vec<String> = t.split('\t').map(|c| c.trim().to_string()).collect();
        while cells.last().is_some_and(String::is_empty) {
            cells.pop();
        }
        return cells;
    }
    if !t.contains("  ") {
        return Vec::new();
    }
    t.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// Runs of lines with two or more cells; with spaces, only under a header of column words.
fn separated(doc: &Doc, by: char) -> Vec<Found> {
    let mut out = Vec::new();
    let n = doc.lines.len();
    let mut k = 1;
    while k <= n {
        let head = split(doc.free_line(k), by);
        if head.len() < 2 {
            k += 1;
            continue;
        }
        let named: Vec<Option<&'static str>> = head.iter().map(|h| column_of(h)).collect();
        let is_header = named.iter().filter(|c| c.is_some()).count() >= 2
            && !head.iter().any(|h| h.chars().any(|c| c.is_ascii_digit()));
        if by == ' ' && !is_header {
            k += 1;
            continue;
        }
        let mut lines = vec![k];
        let mut grid: Vec<Vec<(String, usize)>> = Vec::new();
        if !is_header {
            grid.push(head.iter().map(|c| (c.clone(), k)).collect());
        }
        let mut j = k + 1;
        while j <= n {
            let line = doc.free_line(j);
            let cells = split(line, by);
            if cells.len() < 2 {
                // A cell wrapped onto a line of its own: it continues the row above.
                let t = line.trim();
                let wrapped = !t.is_empty()
                    && !t.ends_with(':')
                    && !{
                        let low = t.to_lowercase();
                        [
                            "note",
                            "hinweis",
                            "tip",
                            "achtung",
                            "important",
                            "wichtig",
                            "*",
                            "(",
                        ]
                        .iter()
                        .any(|w| low.starts_with(w))
                    }
                    && section_heading(t).is_none()
                    && !is_caption(t)
                    && t.split_whitespace().count() <= 8
                    && grid.last().is_some_and(|r| r.iter().all(|c| c.1 + 2 >= j));
                if !wrapped {
                    break;
                }
                if let Some(last) = grid.last_mut().and_then(|r| r.last_mut()) {
                    last.0.push(' ');
                    last.0.push_str(t);
                }
                lines.push(j);
                j += 1;
                continue;
            }
            grid.push(cells.into_iter().map(|c| (c, j)).collect());
            lines.push(j);
            j += 1;
        }
        let header: Vec<Option<&'static str>> = if is_header { named } else { Vec::new() };
        let texts: Vec<Vec<String>> = grid
            .iter()
            .map(|r| r.iter().map(|c| c.0.clone()).collect())
            .collect();
        let kinds = type_columns(&header, &texts);
        if kinds.contains(&"ports") && !grid.is_empty() {
            out.push(Found::new(
                "spaced_columns",
                grid_rows(&kinds, &grid, "spaced_columns"),
                lines,
            ));
        }
        k = j;
    }
    out
}

/// The port list a line starts with (`8200, 8100,`, `5900 -5964`, `25`), its end, and
/// whether it ends with a comma (the list goes on on the next line).
fn leading_ports(t: &str) -> Option<(usize, bool)> {
    let b = t.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut i = 0;
    let mut end = 0;
    loop {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s || i - s > 5 {
            break;
        }
        end = i;
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && matches!(b[j], b',' | b'-') {
            j += 1;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j == b.len() && b[j - 1] != b'-' {
                return Some((j, true));
            }
            if j < b.len() && b[j].is_ascii_digit() {
                i = j;
                continue;
            }
        }
        break;
    }
    // `25*` (a footnote star) and `25/tcp` stay attached.
    while end < b.len() && matches!(b[end], b'*' | b'/') {
        end += 1;
        while end < b.len() && b[end].is_ascii_alphabetic() {
            end += 1;
        }
    }
    let next = t[end..].chars().next();
    if next.is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    Some((end, false))
}

const PROTO_TOKENS: &[&str] = &[
    "tcp", "udp", "icmp", "tcp/udp", "udp/tcp", "/", "&", "and", "und",
];
const DIR_TOKENS: &[&str] = &[
    "in",
    "out",
    "in/out",
    "inbound",
    "outbound",
    "in/",
    "/out",
    "both",
    "ein",
    "aus",
    "eingehend",
    "ausgehend",
    "incoming",
    "outgoing",
];

/// Rows that start with their port.
fn port_rows(doc: &Doc) -> Vec<Found> {
    let n = doc.lines.len();
    let mut out = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut misses = 0;
    let mut k = 1;
    let flush = |rows: &mut Vec<Row>, lines: &mut Vec<usize>, out: &mut Vec<Found>| {
        if !rows.is_empty() {
            out.push(Found::new(
                "port_rows",
                std::mem::take(rows),
                std::mem::take(lines),
            ));
        }
        lines.clear();
    };
    while k <= n {
        let t = doc.free_line(k).trim();
        // The service's name may come first (`SMTP 25 TCP In ...`): up to three words
        // without digits.
        let (label, t) = name_first(t);
        let Some((end, open)) = leading_ports(t) else {
            k += 1;
            if !t.is_empty() {
                misses += 1;
                if misses > 2 {
                    flush(&mut rows, &mut lines, &mut out);
                }
            }
            continue;
        };
        // Gather the row: the port list (wrapped after a comma), a lone footnote mark,
        // then the cells, then continuation lines up to the next row, a blank line, a
        // caption or a header.
        let mut text = t[..end].trim_end_matches(',').to_string();
        let mut rest = t[end..].trim().to_string();
        let mut used = vec![k];
        let mut j = k + 1;
        let mut open = open;
        while open && j <= n {
            let u = doc.free_line(j).trim();
            match leading_ports(u) {
                Some((e, o)) => {
                    text.push_str(", ");
                    text.push_str(u[..e].trim_end_matches(','));
                    rest = u[e..].trim().to_string();
                    used.push(j);
                    open = o;
                    j += 1;
                }
                None => break,
            }
        }
        if rest.is_empty() {
            // A footnote mark alone on the next line (`25` / `1` / `In/Out TCP ...`).
            let u = doc.free_line(j).trim();
            if !u.is_empty() && u.len() <= 2 && u.chars().all(|c| c.is_ascii_digit()) {
                used.push(j);
                j += 1;
            }
        }
        let mut body = rest;
        while j <= n {
            let u = doc.free_line(j).trim();
            if u.is_empty()
                || leading_ports(name_first(u).1).is_some()
                || section_heading(u).is_some()
                || is_caption(u)
                || header_words(u)
            {
                break;
            }
            if !body.is_empty() {
                body.push(' ');
            }
            body.push_str(u);
            used.push(j);
            j += 1;
            if used.len() > 12 {
                break;
            }
        }
        // Protocol and direction words at the start of the body.
        let mut proto = String::new();
        let mut dir = String::new();
        let mut taken = 0;
        let toks: Vec<&str> = body.split_whitespace().collect();
        for tok in toks.iter().take(6) {
            let low = tok.to_lowercase();
            let w = low.trim_matches(|c: char| c == ',' || c == ';');
            let joiner = matches!(w, "/" | "&" | "and" | "und");
            if PROTO_TOKENS.contains(&w) && (!joiner || !proto.is_empty()) {
                proto.push_str(tok);
                proto.push(' ');
            } else if DIR_TOKENS.contains(&w)
                || w.split('/').all(|x| DIR_TOKENS.contains(&x)) && w.contains('/')
            {
                dir.push_str(tok);
                dir.push(' ');
            } else {
                break;
            }
            taken += 1;
        }
        if proto.trim().is_empty() && dir.trim().is_empty() {
            k += 1;
            misses += 1;
            if misses > 2 {
                flush(&mut rows, &mut lines, &mut out);
            }
            continue;
        }
        misses = 0;
        let function = toks[taken..].join(" ");
        rows.push(Row {
            line: k,
            lines: used.clone(),
            layout: "port_rows",
            label: label.to_string(),
            ports: text,
            proto: proto.trim().trim_end_matches(',').to_string(),
            direction: dir.trim().to_string(),
            function,
            ..Row::default()
        });
        lines.extend(used);
        k = j;
    }
    flush(&mut rows, &mut lines, &mut out);
    out
}

/// A row that names its service before the port: (name, the rest from the port on).
fn name_first(t: &str) -> (&str, &str) {
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        return ("", t);
    }
    let mut at = 0;
    for (n, w) in t.split_whitespace().enumerate() {
        let Some(p) = t[at..].find(w).map(|p| p + at) else {
            break;
        };
        if w.starts_with(|c: char| c.is_ascii_digit()) {
            if n > 0 && leading_ports(&t[p..]).is_some() {
                return (t[..p].trim(), &t[p..]);
            }
            break;
        }
        if n >= 3 || w.chars().any(|c| c.is_ascii_digit()) || w.ends_with(['.', ':', ',']) {
            break;
        }
        at = p + w.len();
    }
    ("", t)
}

/// `Table 83. Incoming ...`, `Tabelle 2: ...`.
fn is_caption(t: &str) -> bool {
    let low = t.to_lowercase();
    ["table ", "tabelle ", "figure ", "abbildung "]
        .iter()
        .any(|p| low.starts_with(p) && low[p.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// A header line of column words (`Port Protocol Service Description`).
fn header_words(t: &str) -> bool {
    let ws: Vec<&str> = t.split_whitespace().collect();
    ws.len() >= 2 && ws.len() <= 8 && ws.iter().all(|w| column_of(w).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_rows_that_start_with_the_port_and_wrap() {
        let t = "Table 1. Incoming Connections\nPort Protocol Service Description\n53 UDP DNS Client DNS client.\n8200, 8100,\n8300\nTCP,\nUDP\nFault Tolerance Traffic between\nhosts.\nTable 2. Outgoing Connections\n427 TCP, UDP CIM SLP Finds servers.\n";
        let f = Spaced.find(&Doc::new(t));
        let rows: Vec<&Row> = f.iter().flat_map(|f| &f.rows).collect();
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(rows[1].ports, "8200, 8100, 8300");
        assert_eq!(rows[1].proto, "TCP, UDP");
        assert_eq!(rows[1].function, "Fault Tolerance Traffic between hosts.");
        assert!(
            !rows[1].lines.contains(&10),
            "the caption is left for the sections"
        );
        assert_eq!(rows[2].proto, "TCP, UDP");
    }

    #[test]
    fn footnote_marks_page_numbers_and_numbered_prose_are_not_rows() {
        let t = "16\nUser's Guide\n1\nWhen behind a firewall, forward port 25.\nPort Direction Protocol Usage\n22 In TCP Remote diagnostics\n25\n1\nIn/Out TCP Email and bounces\n2 servers are needed.\n";
        let f = Spaced.find(&Doc::new(t));
        let rows: Vec<&Row> = f.iter().flat_map(|f| &f.rows).collect();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[1].ports, "25");
        assert_eq!(rows[1].direction, "In/Out");
        assert_eq!(rows[1].function, "Email and bounces");
    }

    #[test]
    fn rows_that_name_the_service_before_the_port() {
        let t = "Service Port Protocol Direction\nSMTP 25 TCP In Mail from the internet\nWeb console 8443 TCP In Administration\nAllow the 2 servers.\n";
        let f = Spaced.find(&Doc::new(t));
        let rows: Vec<&Row> = f.iter().flat_map(|f| &f.rows).collect();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[0].label, "SMTP");
        assert_eq!(rows[1].label, "Web console");
        assert_eq!(rows[1].ports, "8443");
        assert_eq!(rows[1].direction, "In");
    }

    #[test]
    fn tab_rows_with_a_wrapped_last_cell() {
        let t =
            "Port\tProtocol\tDescription\n25\tTCP\tMail from the\ninternet\n443\tTCP\tUpdates\n";
        let f = Spaced.find(&Doc::new(t));
        let r = &f[0].rows;
        assert_eq!(r.len(), 2, "{r:#?}");
        assert_eq!(r[0].function, "Mail from the internet");
        assert_eq!(r[0].lines, [2]);
        assert!(f[0].lines.contains(&3));
    }

    #[test]
    fn tab_separated_table_with_a_header() {
        let t = "Funktion\tPort/Protokoll\nUpdates\t80/TCP, 443/TCP\nZeitserver\t123/UDP\n";
        let f = Spaced.find(&Doc::new(t));
        assert_eq!(f[0].rows.len(), 2);
        assert_eq!(f[0].rows[0].ports, "80/TCP, 443/TCP");
        assert_eq!(f[0].rows[1].function, "Zeitserver");
    }
}
