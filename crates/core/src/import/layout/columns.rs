//! Column typing, shared by every table layout: a header cell's meaning from a dictionary
//! of English and German column words (matched as whole words, the longest match wins), then
//! corrected by what the cells hold (a "Protocol" column of `SSH`, `SMTP` next to a "Port
//! Type" column of `TCP`), and for tables without a header, typed by content alone.
//! [`grid_rows`] turns any grid of cells into rows.

use crate::import::heuristics::*;

/// Column words: (word, meaning). Meanings: `ports`, `proto`, `direction`, `source`,
/// `target`, `peer` (either end), `label` (the service's name), `function` (the text),
/// `dir:in` / `dir:out` (a matrix column: allowed in that direction?), `proto:tcp` /
/// `proto:udp` (a matrix column: this protocol?), `ignore`.
pub const COLUMN_WORDS: &[(&str, &str)] = &[
    ("port", "ports"),
    ("ports", "ports"),
    ("port number", "ports"),
    ("port numbers", "ports"),
    ("port no", "ports"),
    ("port(s)", "ports"),
    ("portnummer", "ports"),
    ("portnummern", "ports"),
    ("connection port", "ports"),
    ("target port", "ports"),
    ("destination port", "ports"),
    ("dest port", "ports"),
    ("dst port", "ports"),
    ("zielport", "ports"),
    ("default port", "ports"),
    ("standard port", "ports"),
    ("standardport", "ports"),
    ("listening port", "ports"),
    ("local port", "ports"),
    ("remote port", "ports"),
    ("anschluss", "ports"),
    ("anschlussnummer", "ports"),
    ("standardanschlussnummer", "ports"),
    ("port/protocol", "ports"),
    ("port / protocol", "ports"),
    ("port/protokoll", "ports"),
    ("port / protokoll", "ports"),
    ("port (protokoll)", "ports"),
    ("port (protocol)", "ports"),
    ("protocol/port", "ports"),
    ("protokoll/port", "ports"),
    ("target port / packet type", "ports"),
    ("zielport / pakettyp", "ports"),
    ("protocol", "proto"),
    ("protocols", "proto"),
    ("protokoll", "proto"),
    ("protokolle", "proto"),
    ("tcp/udp", "proto"),
    ("udp/tcp", "proto"),
    ("transport", "proto"),
    ("transport protocol", "proto"),
    ("transport layer protocol", "proto"),
    ("network protocol", "proto"),
    ("ip protocol", "proto"),
    ("port type", "proto"),
    ("type", "proto"),
    ("typ", "proto"),
    ("anschlusstyp", "proto"),
    ("direction", "direction"),
    ("richtung", "direction"),
    ("in/out", "direction"),
    ("inbound/outbound", "direction"),
    ("initiierung", "direction"),
    ("verbindungsrichtung", "direction"),
    ("connection direction", "direction"),
    ("traffic type", "direction"),
    ("art des datenverkehrs", "direction"),
    ("source", "source"),
    ("quelle", "source"),
    ("from", "source"),
    ("von", "source"),
    ("client", "source"),
    ("sender", "source"),
    ("absender", "source"),
    ("initiator", "source"),
    ("target", "target"),
    ("ziel", "target"),
    ("destination", "target"),
    ("to", "target"),
    ("nach", "target"),
    ("empfänger", "target"),
    ("host", "peer"),
    ("hosts", "peer"),
    ("hostname", "peer"),
    ("host name", "peer"),
    ("server", "peer"),
    ("servers", "peer"),
    ("peer", "peer"),
    ("gegenstelle", "peer"),
    ("quelle/ziel", "peer"),
    ("source/destination", "peer"),
    ("source/target", "peer"),
    ("remote", "peer"),
    ("remote host", "peer"),
    ("endpoint", "peer"),
    ("address", "peer"),
    ("adresse", "peer"),
    ("url", "peer"),
    ("fqdn", "peer"),
    ("dns name", "peer"),
    ("function/ feature", "label"),
    ("function/feature", "label"),
    ("feature", "label"),
    ("application", "label"),
    ("anwendung", "label"),
    ("component", "label"),
    ("komponente", "label"),
    ("service", "label"),
    ("dienst", "label"),
    ("service name", "label"),
    ("dienstname", "label"),
    ("protocol name", "label"),
    ("application / service protocol", "label"),
    ("function", "function"),
    ("funktion", "function"),
    ("description", "function"),
    ("beschreibung", "function"),
    ("details", "function"),
    ("usage", "function"),
    ("use", "function"),
    ("used for", "function"),
    ("verwendung", "function"),
    ("verwendungszweck", "function"),
    ("purpose", "function"),
    ("zweck", "function"),
    ("required for", "function"),
    ("erforderlich für", "function"),
    ("benötigt für", "function"),
    ("notes", "function"),
    ("note", "function"),
    ("hinweis", "function"),
    ("hinweise", "function"),
    ("bemerkung", "function"),
    ("bemerkungen", "function"),
    ("comment", "function"),
    ("comments", "function"),
    ("kommentar", "function"),
    ("erläuterung", "function"),
    ("inbound", "dir:in"),
    ("incoming", "dir:in"),
    ("eingehend", "dir:in"),
    ("outbound", "dir:out"),
    ("outgoing", "dir:out"),
    ("ausgehend", "dir:out"),
    ("tcp", "proto:tcp"),
    ("udp", "proto:udp"),
    ("source port", "ignore"),
    ("source ports", "ignore"),
    ("src port", "ignore"),
    ("quellport", "ignore"),
    ("quell-port", "ignore"),
    ("maximum encryption level", "ignore"),
    ("encryption", "ignore"),
    ("verschlüsselung", "ignore"),
    ("registry key", "ignore"),
    ("registrierungsschlüssel", "ignore"),
];

/// A header cell, normalised: lower case, single spaces, a word broken at a hyphen and a
/// line break joined again (`Anschluss- typ` -> `anschlusstyp`).
pub fn normalise_header(cell: &str) -> String {
    let low = cell
        .trim()
        .trim_matches(|c: char| c == '|' || c == '!' || c == ':' || c.is_whitespace())
        .to_lowercase();
    let words: Vec<&str> = low.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if out.ends_with('-') && w.starts_with(|c: char| c.is_lowercase()) {
            out.pop();
        } else if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// The meaning of a header cell: the whole cell as a column word, else the longest column
/// word in it at word boundaries. Long cells are text, not headers.
pub fn column_of(header: &str) -> Option<&'static str> {
    let h = normalise_header(header);
    if h.is_empty() || h.split_whitespace().count() > 5 || h.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if let Some((_, m)) = COLUMN_WORDS.iter().find(|(w, _)| *w == h) {
        return Some(m);
    }
    COLUMN_WORDS
        .iter()
        .filter(|(w, _)| w.len() >= 3 && contains_words(&h, w))
        .max_by_key(|(w, _)| w.len())
        .map(|(_, m)| *m)
}

/// Append a cell's text to the row field its column means.
pub fn set_field(row: &mut Row, col: &str, text: &str) {
    let t = text.trim();
    let f = match col {
        "ports" => &mut row.ports,
        "proto" => &mut row.proto,
        "direction" => &mut row.direction,
        "source" => &mut row.source,
        "target" => &mut row.target,
        "peer" => &mut row.peer,
        "label" => &mut row.label,
        "ignore" => return,
        _ => &mut row.function,
    };
    if f.is_empty() {
        *f = t.to_string();
    } else if !t.is_empty() {
        f.push(' ');
        f.push_str(t);
    }
}

/// A header whose column words were glued together (`PortProtokollRichtungBeschreibung`,
/// `TargetProtocolTarget Port / Packet TypeFunction`): the column meanings in order, found
/// by taking the longest column word at each position. Only words of four letters or more
/// count, and at least two columns, one of them the ports.
pub fn glued_columns(line: &str) -> Option<Vec<&'static str>> {
    let t = line.trim();
    if t.is_empty() || t.split_whitespace().count() >= 12 || t.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = t.to_lowercase();
    let mut cols = Vec::new();
    while !rest.is_empty() {
        let (w, m) = COLUMN_WORDS
            .iter()
            .filter(|(w, m)| w.len() >= 4 && !m.starts_with("dir:") && rest.starts_with(w))
            .max_by_key(|(w, _)| w.len())?;
        cols.push(*m);
        rest = rest[w.len()..].trim_start().to_string();
    }
    (cols.len() >= 2 && cols.contains(&"ports")).then_some(cols)
}

/// A cell that holds only port numbers (and protocol words, service names in parentheses,
/// "Standard"/"default" marks): what begins a row in layouts without cell borders.
pub fn is_port_cell(cell: &str) -> bool {
    let t = cell.trim().trim_matches('`');
    if t.is_empty() || t.len() > 60 || !t.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    // Without the parentheses.
    let mut clean = String::new();
    let mut depth = 0i32;
    for c in t.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = (depth - 1).max(0),
            _ if depth > 0 => {}
            _ => clean.push(c),
        }
    }
    let low = clean.to_lowercase();
    let ok_words = [
        "tcp",
        "udp",
        "and",
        "or",
        "to",
        "und",
        "oder",
        "bis",
        "through",
        "dynamic",
        "dynamisch",
        "default",
        "standard",
        "usually",
        "higher",
        "höher",
    ];
    let mut numbers = 0;
    for w in words(&low) {
        if w.1.chars().all(|c| c.is_ascii_digit()) {
            match w.1.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => numbers += 1,
                _ => return false,
            }
        } else if !ok_words.contains(&w.1) {
            return false;
        }
    }
    numbers > 0
}

/// Share of a column's non-empty cells for which `f` holds.
fn share(cells: &[&str], f: impl Fn(&str) -> bool) -> f32 {
    let filled: Vec<&&str> = cells.iter().filter(|c| !c.trim().is_empty()).collect();
    if filled.is_empty() {
        return 0.0;
    }
    filled.iter().filter(|c| f(c)).count() as f32 / filled.len() as f32
}

fn proto_cell(c: &str) -> bool {
    c.split_whitespace().count() <= 4 && {
        let low = c.to_lowercase();
        words(&low)
            .iter()
            .any(|w| matches!(w.1, "tcp" | "udp" | "icmp" | "sctp"))
    }
}

/// Column meanings from the header's (where there is one) corrected by the cells: a table
/// whose "Protocol" column names applications and whose "Port Type" column says TCP has
/// them the other way round; a column of port numbers is the ports even unnamed.
pub fn type_columns(header: &[Option<&'static str>], rows: &[Vec<String>]) -> Vec<&'static str> {
    let n = header
        .len()
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let col = |i: usize| -> Vec<&str> {
        rows.iter()
            .map(|r| r.get(i).map_or("", String::as_str))
            .collect()
    };
    let mut kinds: Vec<Option<&'static str>> =
        (0..n).map(|i| header.get(i).copied().flatten()).collect();
    let port_share: Vec<f32> = (0..n).map(|i| share(&col(i), is_port_cell)).collect();
    let proto_share: Vec<f32> = (0..n).map(|i| share(&col(i), proto_cell)).collect();
    let dir_share: Vec<f32> = (0..n)
        .map(|i| share(&col(i), |c| direction_words(c).is_some() && c.len() < 40))
        .collect();
    if !kinds.contains(&Some("ports")) {
        if let Some(i) = (0..n)
            .filter(|&i| port_share[i] >= 0.6)
            .max_by(|&a, &b| port_share[a].total_cmp(&port_share[b]))
        {
            kinds[i] = Some("ports");
        }
    }
    // A protocol column that holds no protocol, next to one that does.
    let named_proto = (0..n).find(|&i| kinds[i] == Some("proto"));
    let by_content = (0..n)
        .filter(|&i| kinds[i] != Some("ports") && proto_share[i] >= 0.6)
        .max_by(|&a, &b| proto_share[a].total_cmp(&proto_share[b]));
    match (named_proto, by_content) {
        (Some(p), Some(c)) if p != c && proto_share[p] < 0.5 => {
            kinds[p] = Some("label");
            kinds[c] = Some("proto");
        }
        (None, Some(c))
            if kinds[c].is_none_or(|k| k == "function" || k == "label")
                && proto_share[c] >= 0.8 =>
        {
            kinds[c] = Some("proto");
        }
        _ => {}
    }
    if !kinds.contains(&Some("direction"))
        && !kinds
            .iter()
            .any(|k| k.is_some_and(|k| k.starts_with("dir:")))
    {
        if let Some(i) = (0..n).find(|&i| kinds[i].is_none() && dir_share[i] >= 0.6) {
            kinds[i] = Some("direction");
        }
    }
    // The rest: the first short unnamed text column names the service, others are text.
    let mut out = Vec::with_capacity(n);
    let mut label_given = kinds.contains(&Some("label"));
    for (i, k) in kinds.iter().enumerate() {
        out.push(match k {
            Some(k) => *k,
            None => {
                let short = col(i)
                    .iter()
                    .all(|c| c.split_whitespace().count() <= 3 && dns_names(c).is_empty());
                if short && !label_given && header.get(i).is_none() {
                    label_given = true;
                    "label"
                } else {
                    "function"
                }
            }
        });
    }
    out
}

/// Allow/deny cells of a matrix column: allowed, denied, or neither.
fn allow_cell(c: &str) -> Option<bool> {
    let low = c.trim().to_lowercase();
    match low.as_str() {
        "allow" | "allowed" | "yes" | "ja" | "x" | "✓" | "✔" | "erlaubt" | "open" | "offen"
        | "required" | "erforderlich" | "permit" => Some(true),
        "deny" | "denied" | "no" | "nein" | "-" | "–" | "block" | "blocked" | "verboten"
        | "gesperrt" | "closed" | "geschlossen" | "drop" | "reject" => Some(false),
        _ => None,
    }
}

/// Rows from a grid of cells (text, line) under column meanings. Rows whose port cell is
/// empty continue the row above (a merged cell): they take its ports and protocol. A matrix
/// (`dir:in`/`dir:out` columns) gives the direction from the allowing cells; a row denied
/// both ways is returned with `direction` = "deny" (an explicit non-flow, reported).
pub fn grid_rows(
    kinds: &[&'static str],
    grid: &[Vec<(String, usize)>],
    layout: &'static str,
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for cells in grid {
        let lines: Vec<usize> = cells.iter().map(|c| c.1).filter(|&l| l > 0).collect();
        if lines.is_empty() || cells.iter().all(|c| c.0.trim().is_empty()) {
            continue;
        }
        let mut row = Row {
            line: lines.iter().copied().min().unwrap_or(0),
            lines: {
                let mut l = lines.clone();
                l.sort_unstable();
                l.dedup();
                l
            },
            layout,
            ..Row::default()
        };
        let (mut inn, mut out, mut matrix) = (false, false, false);
        for (k, (text, _)) in kinds.iter().zip(cells) {
            match *k {
                "proto:tcp" | "proto:udp" => {
                    let t = text.trim();
                    if !t.is_empty() && allow_cell(t) != Some(false) {
                        set_field(&mut row, "proto", &k[6..]);
                    }
                }
                "dir:in" | "dir:out" => {
                    matrix = true;
                    if allow_cell(text) == Some(true) {
                        if *k == "dir:in" {
                            inn = true;
                        } else {
                            out = true;
                        }
                    }
                }
                _ => set_field(&mut row, k, text),
            }
        }
        if matrix {
            row.direction = match (inn, out) {
                (true, true) => "in/out".into(),
                (true, false) => "in".into(),
                (false, true) => "out".into(),
                (false, false) => "deny".into(),
            };
        }
        // A row of text only continues the row above (a cell wrapped onto the next line).
        let text_only = row.ports.trim().is_empty()
            && row.proto.is_empty()
            && row.direction.is_empty()
            && row.source.is_empty()
            && row.target.is_empty()
            && row.peer.is_empty();
        if text_only {
            if let Some(prev) = rows.last_mut() {
                for (field, add) in [
                    (&mut prev.function, &row.function),
                    (&mut prev.label, &row.label),
                ] {
                    if !add.is_empty() {
                        if !field.is_empty() {
                            field.push(' ');
                        }
                        field.push_str(add);
                    }
                }
                prev.lines.extend(row.lines.iter().copied());
                continue;
            }
        }
        if row.ports.trim().is_empty() {
            if let Some(prev) = rows.last() {
                row.ports = prev.ports.clone();
                if row.proto.is_empty() {
                    row.proto = prev.proto.clone();
                }
                if row.label.is_empty() {
                    row.label = prev.label.clone();
                }
            }
        }
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_words_by_whole_words_and_longest_match() {
        assert_eq!(column_of("Connection port"), Some("ports"));
        assert_eq!(column_of("TCP/UDP"), Some("proto"));
        assert_eq!(column_of("Port (Protokoll)"), Some("ports"));
        assert_eq!(column_of("Dienst"), Some("label"));
        assert_eq!(column_of("Richtung"), Some("direction"));
        assert_eq!(column_of("Quelle/Ziel"), Some("peer"));
        assert_eq!(column_of("Port Type"), Some("proto"));
        assert_eq!(column_of("Transport Layer Protocol"), Some("proto"));
        assert_eq!(column_of("Standardanschluss- nummer"), Some("ports"));
        assert_eq!(column_of("Anschluss- typ"), Some("proto"));
        assert_eq!(column_of("Source Port"), Some("ignore"));
        assert_eq!(column_of("Destination Port"), Some("ports"));
        assert_eq!(column_of("Reporting"), None, "no word boundary");
        assert_eq!(
            column_of("Used between DPM and the domain controller"),
            None
        );
        assert_eq!(column_of("443"), None);
    }

    #[test]
    fn glued_headers_from_the_dictionary() {
        assert_eq!(
            glued_columns("PortProtokollInitiierungBeschreibung"),
            Some(vec!["ports", "proto", "direction", "function"])
        );
        assert_eq!(
            glued_columns("TargetProtocolTarget Port / Packet TypeFunction"),
            Some(vec!["target", "proto", "ports", "function"])
        );
        assert_eq!(glued_columns("Welcome to the manual"), None);
    }

    #[test]
    fn port_cells() {
        for c in [
            "443",
            "443 (Standard)",
            "5900 -5964",
            "135/TCP",
            "88/UDP 88/TCP",
            "`143`",
        ] {
            assert!(is_port_cell(c), "{c}");
        }
        for c in [
            "Page 68",
            "Version 3.3.5",
            "100000",
            "Traffic",
            "25 servers are used",
        ] {
            assert!(!is_port_cell(c), "{c}");
        }
    }

    #[test]
    fn columns_corrected_by_content() {
        let header = [
            Some("ports"),
            Some("proto"),
            Some("proto"),
            Some("function"),
        ];
        let rows: Vec<Vec<String>> = [
            ["22", "SSH", "TCP", "Console"],
            ["53", "DNS", "UDP/TCP", "Names"],
        ]
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
        // "Protocol" (applications) then "Port Type" (TCP): the second is the protocol.
        let kinds = type_columns(&header, &rows);
        assert_eq!(kinds, ["ports", "label", "proto", "function"]);
        // No header at all: typed by content.
        let kinds = type_columns(&[], &rows);
        assert_eq!(kinds, ["ports", "label", "proto", "function"]);
    }

    #[test]
    fn wrapped_cells_join_the_row_above_and_protocol_matrices() {
        let kinds = ["ports", "proto:tcp", "proto:udp", "function"];
        let cell = |s: &str, l: usize| (s.to_string(), l);
        let grid = vec![
            vec![cell("53", 2), cell("x", 2), cell("x", 2), cell("Name", 2)],
            vec![cell("", 3), cell("", 3), cell("", 3), cell("resolution", 3)],
            vec![cell("123", 4), cell("", 4), cell("x", 4), cell("Time", 4)],
        ];
        let rows = grid_rows(&kinds, &grid, "test");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].function, "Name resolution");
        assert_eq!(rows[0].lines, [2, 3]);
        assert_eq!(rows[0].proto, "tcp udp");
        assert_eq!(rows[1].proto, "udp");
        assert_eq!(column_of("TCP"), Some("proto:tcp"));
    }

    #[test]
    fn matrix_columns_give_direction_and_explicit_denials() {
        let kinds = ["ports", "dir:in", "dir:out", "function"];
        let grid = vec![
            vec![
                ("25".to_string(), 2),
                ("allow".to_string(), 2),
                ("deny".to_string(), 2),
                ("SMTP".to_string(), 2),
            ],
            vec![
                ("23".to_string(), 3),
                ("deny".to_string(), 3),
                ("deny".to_string(), 3),
                ("Telnet".to_string(), 3),
            ],
        ];
        let rows = grid_rows(&kinds, &grid, "test");
        assert_eq!(rows[0].direction, "in");
        assert_eq!(rows[1].direction, "deny");
    }
}
