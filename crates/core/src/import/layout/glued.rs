//! `glued`: a table whose cells lost their separators in the copy (PDF text layers do this):
//! a header of column words run together (`PortProtokollRichtungBeschreibung`,
//! `TargetProtocolTarget PortFunction`) and rows like `update.example.comTCP443 (https)System
//! updates`. The header's words come from the column dictionary ([`super::columns`]), so
//! any header made of known column words is recognised, in any order.

use super::columns::glued_columns;
use super::{Doc, Found, Layout};
use crate::import::heuristics::*;

pub struct Glued;

impl Layout for Glued {
    fn name(&self) -> &'static str {
        "glued_table"
    }
    fn find(&self, doc: &Doc) -> Vec<Found> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < doc.lines.len() {
            if let Some(cols) = glued_header(doc.lines[i]) {
                let (rows, used) = glued_table(&doc.lines, i, &cols);
                if !rows.is_empty() {
                    let last = used.iter().copied().max().unwrap_or(i + 1);
                    out.push(Found::new(self.name(), rows, used));
                    i = last;
                    continue;
                }
            }
            i += 1;
        }
        out
    }
}

/// Is the line a header of column words glued together (`TargetProtocolTarget Port /
/// Packet TypeFunction`, `PortProtokollInitiierungBeschreibung`)? Returns the column order.
pub fn glued_header(line: &str) -> Option<Vec<&'static str>> {
    glued_columns(line)
}

/// Words a glued protocol cell is made of, longest first.
const CELL_PROTOCOLS: &[&str] = &[
    "HTTPS", "HTTP", "SFTP", "FTPS", "FTP", "SMTP", "SSH", "TCP", "UDP", "ICMP", "DNS", "NTP",
];

/// Take a glued protocol cell (`HTTP, HTTPS`, `TCP/UDP`) from the start of `s`.
fn take_protocols(s: &str) -> (&str, &str) {
    let mut end = 0;
    let mut rest = s;
    while let Some(w) = CELL_PROTOCOLS.iter().find(|w| rest.starts_with(*w)) {
        end = s.len() - rest.len() + w.len();
        rest = &s[end..];
        match [", ", "/", " / ", " und ", " and ", ","].iter().find(|j| {
            rest.starts_with(*j)
                && CELL_PROTOCOLS
                    .iter()
                    .any(|w| rest[j.len()..].starts_with(w))
        }) {
            Some(j) => rest = &rest[j.len()..],
            None => break,
        }
    }
    (&s[..end], &s[end..])
}

/// Take a glued direction cell (`ausgehend`, `In/Out`) from the start of `s`.
fn take_direction(s: &str) -> (&str, &str) {
    let low = s.to_lowercase();
    for w in [
        "in/out",
        "in / out",
        "eingehend",
        "ausgehend",
        "inbound",
        "outbound",
        "incoming",
        "outgoing",
        "both",
        "beide",
        "in",
        "out",
        "ein",
        "aus",
    ] {
        if low.starts_with(w) && s.is_char_boundary(w.len()) {
            return (&s[..w.len()], &s[w.len()..]);
        }
    }
    ("", s)
}

/// A glued row that starts with its ports (`80, 443HTTP, HTTPSausgehendUpdates`): each
/// column taken in order by what it looks like.
fn port_first_row(l: &str, cols: &[&str]) -> Option<Row> {
    let (ports, mut rest) = split_port_text(l);
    if ports.trim().is_empty() {
        return None;
    }
    let mut row = Row {
        layout: "glued_table",
        ports: ports.trim().to_string(),
        ..Row::default()
    };
    for c in cols.iter().skip(1) {
        match *c {
            "proto" => {
                let (p, r) = take_protocols(rest.trim_start());
                row.proto = p.to_string();
                rest = r;
            }
            "direction" => {
                let (d, r) = take_direction(rest.trim_start());
                row.direction = d.to_string();
                rest = r;
            }
            _ => {}
        }
    }
    row.function = rest.trim().to_string();
    (!row.proto.is_empty() || !row.direction.is_empty()).then_some(row)
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
        if cols.first() == Some(&"ports") {
            match port_first_row(l, cols) {
                Some(mut row) => {
                    row.line = k + 1;
                    row.lines = vec![k + 1];
                    rows.push(row);
                    used.push(k + 1);
                    k += 1;
                    continue;
                }
                None => break,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn glued_rows_that_start_with_the_port() {
        let lines = [
            "PortProtokollInitiierungBeschreibung",
            "80, 443, 8080HTTP, HTTPSausgehendAbfrage des Lizenzservers",
            "465, 587TCPausgehendNur mit E-Mail",
        ];
        let cols = glued_header(lines[0]).expect("header");
        let (rows, used) = glued_table(&lines, 0, &cols);
        assert_eq!(used, [1, 2, 3]);
        assert_eq!(rows[0].ports, "80, 443, 8080");
        assert_eq!(rows[0].proto, "HTTP, HTTPS");
        assert_eq!(rows[0].direction, "ausgehend");
        assert_eq!(rows[0].function, "Abfrage des Lizenzservers");
        assert_eq!(rows[1].proto, "TCP");
    }
}
