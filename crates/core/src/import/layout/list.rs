//! `list`: one port statement per line, bulleted or not: `- 443/tcp to updates.example.net`,
//! `* Web interface: 8006 (TCP, HTTP/1.1 over TLS)`, `` * `143`: IMAP ``, `Server UDP-Port:
//! 9876`, `SMTP - smtp.example.com (TLS, port 587)`, `- Port 902` with its description on
//! the lines below. Ports are read by [`inline_ports`]; long lines that are not list items
//! are left to the prose layout.

use super::{Doc, Found, Layout};
use crate::import::heuristics::*;

pub struct List;

const BULLETS: &[&str] = &["- ", "* ", "• ", "– ", "· ", "+ ", "▪ "];

/// The item's text without its bullet, and whether it had one.
fn item(line: &str) -> (&str, bool) {
    let t = line.trim_start();
    match BULLETS.iter().find_map(|b| t.strip_prefix(b)) {
        Some(body) => (body.trim(), true),
        None => (t.trim(), false),
    }
}

/// A line without a bullet is an item only where it stands on its own: after a blank line,
/// an introduction ending with `:` or another item, and not running on into a line with
/// more ports (then it is a sentence of a paragraph, for the prose layout).
fn standalone(doc: &Doc, k: usize, rows: &[Row]) -> bool {
    let prev = if k > 1 { doc.lines[k - 2].trim() } else { "" };
    let after_break = prev.is_empty()
        || prev.ends_with(':')
        || rows.last().is_some_and(|r| r.lines.contains(&(k - 1)));
    let here = doc.lines[k - 1].trim();
    let next = doc.lines.get(k).map_or("", |l| l.trim());
    let last_is_port = here.split_whitespace().last().is_some_and(|w| {
        w.trim_end_matches(['.', ','])
            .chars()
            .all(|c| c.is_ascii_digit())
    });
    let ends = here.ends_with(['.', ':', ')', ';'])
        || last_is_port
        || next.is_empty()
        || item(next).1
        || (inline_ports(next).is_empty() && next.split_whitespace().count() <= 10);
    after_break && ends
}

impl Layout for List {
    fn name(&self) -> &'static str {
        "list"
    }

    fn find(&self, doc: &Doc) -> Vec<Found> {
        let n = doc.lines.len();
        let mut rows: Vec<Row> = Vec::new();
        let mut k = 1;
        while k <= n {
            let (body, bullet) = item(doc.free_line(k));
            let ports = inline_ports(body);
            let words = body.split_whitespace().count();
            if ports.is_empty() || (!bullet && (words > 14 || !standalone(doc, k, &rows))) {
                k += 1;
                continue;
            }
            let mut lines = vec![k];
            let mut text = body.to_string();
            // A heading-like item (`Port 902`) takes the lines below as its description;
            // an item cut at a line break takes its continuation.
            let heading = words <= 3;
            let mut j = k + 1;
            while j <= n && lines.len() < 4 {
                let u = doc.free_line(j).trim();
                let (_, b) = item(u);
                let cont = !u.is_empty()
                    && !b
                    && inline_ports(u).is_empty()
                    && (heading || !text.ends_with(['.', ':', ')', ';']));
                if !cont {
                    break;
                }
                text.push(' ');
                text.push_str(u);
                lines.push(j);
                j += 1;
            }
            rows.push(Row {
                line: k,
                lines: lines.clone(),
                layout: "list",
                ports: text.clone(),
                peer: text.clone(),
                function: text,
                ..Row::default()
            });
            k = j;
        }
        // Each row is its own reading: a list item competes with the table layouts line by
        // line.
        rows.into_iter()
            .map(|r| {
                let lines = r.lines.clone();
                Found::new(self.name(), vec![r], lines)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &str) -> Vec<Row> {
        List.find(&Doc::new(t))
            .into_iter()
            .flat_map(|f| f.rows)
            .collect()
    }

    #[test]
    fn items_in_many_spellings() {
        let r = rows("Ports:\n* Web interface: 8006 (TCP, HTTP/1.1 over TLS)\n* `143`: IMAP\n- 443/tcp to updates.example.net\nServer UDP-Port: 9876\n* nothing here 2024\n");
        assert_eq!(r.len(), 4, "{r:#?}");
        assert_eq!(r[1].line, 3);
    }

    #[test]
    fn a_heading_item_takes_its_description() {
        let r = rows("- Port 902\nThe server sends data on this port.\n- Port 903\nConsoles.\n");
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].function,
            "Port 902 The server sends data on this port."
        );
        assert_eq!(r[1].lines, [3, 4]);
    }
}
