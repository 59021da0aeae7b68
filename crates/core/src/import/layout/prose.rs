//! `prose`: ports and services named in sentences (`... using 8443/tcp, and it fetches
//! from b.example over port 443.`, "services such as POP3, SMTP and HTTPS"). Runs on the
//! lines no table took; each sentence (or clause at `, and` / `;`) that names ports is a row.

use super::{Doc, Found, Layout};
use crate::import::heuristics::*;

pub struct Prose;

impl Layout for Prose {
    fn name(&self) -> &'static str {
        "prose"
    }

    fn find(&self, doc: &Doc) -> Vec<Found> {
        let lines = doc.free_lines();
        let mut out = Vec::new();
        let mut k = 0;
        while k < lines.len() {
            if lines[k].trim().is_empty() {
                k += 1;
                continue;
            }
            let mut para: Vec<(usize, &str)> = Vec::new();
            while k < lines.len() && !lines[k].trim().is_empty() {
                para.push((k + 1, lines[k].trim()));
                k += 1;
            }
            // One reading per paragraph: its sentences may share a line.
            let mut rows = Vec::new();
            let mut lines = Vec::new();
            for (layout, clause, clause_lines) in prose_clauses(&para) {
                lines.extend(clause_lines.iter().copied());
                rows.push(Row {
                    line: clause_lines[0],
                    lines: clause_lines,
                    layout,
                    ports: clause.clone(),
                    peer: clause.clone(),
                    function: clause,
                    ..Row::default()
                });
            }
            if let Some(first) = rows.first() {
                let layout = first.layout;
                out.push(Found::new(layout, rows, lines));
            }
        }
        out
    }
}

/// Sentences of a paragraph, split into clauses at `, and` and `;`, that name ports
/// ([`slash_ports`]) or services ([`prose_services`]): (layout, text, lines).
fn prose_clauses(para: &[(usize, &str)]) -> Vec<(&'static str, String, Vec<usize>)> {
    // Join, remembering where each line starts.
    let mut text = String::new();
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for (line, l) in para {
        if !text.is_empty() {
            text.push(' ');
        }
        starts.push((text.len(), *line));
        text.push_str(l);
    }
    // The line a byte offset is on: the last line start at or before it (binary search, so
    // a long paragraph with many sentences stays linear).
    let line_at = |off: usize| {
        let n = starts.partition_point(|(o, _)| *o <= off);
        n.checked_sub(1).map_or(0, |i| starts[i].1)
    };
    // Sentence ends: ". " followed by an upper-case letter, or the end.
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    let mut begin = 0;
    let b = text.as_bytes();
    for i in 0..b.len() {
        let end_sentence = (b[i] == b'.' || b[i] == b';')
            && (i + 1 == b.len()
                || (b[i + 1] == b' '
                    && text[i + 1..]
                        .trim_start()
                        .starts_with(|c: char| c.is_uppercase()))
                || b[i] == b';');
        let clause = b[i..].starts_with(b", and ");
        if end_sentence || clause {
            pieces.push((begin, i));
            begin = i + 1;
        }
    }
    if begin < text.len() {
        pieces.push((begin, text.len()));
    }
    let mut out = Vec::new();
    for (a, z) in pieces {
        let t = text[a..z]
            .trim()
            .trim_start_matches("and ")
            .trim()
            .to_string();
        if t.is_empty() {
            continue;
        }
        let layout = if !inline_ports(&t).is_empty() {
            "prose_ports"
        } else if !prose_services(&t).is_empty() {
            "prose_services"
        } else {
            continue;
        };
        let (first, last) = (line_at(a + 1), line_at(z.saturating_sub(1)));
        out.push((layout, t, (first..=last).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_split_at_sentences_and_and() {
        let para = [
            (3, "It sends to a.example using 8443/tcp, and it fetches"),
            (4, "from b.example over 443/tcp. No ports here."),
        ];
        let c = prose_clauses(&para);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].2, vec![3]);
        assert_eq!(c[1].2, vec![3, 4]);
    }

    #[test]
    fn ports_without_a_slash_in_sentences() {
        let para = [(
            1,
            "Time needs port 123 open for inbound and outbound UDP traffic.",
        )];
        let c = prose_clauses(&para);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "prose_ports");
    }
}
