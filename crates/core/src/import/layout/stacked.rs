//! `stacked`: a table pasted so that every cell became its own line (PDF and web copies do
//! this), with blank lines or `|` lines between cells, or `| ` marking where a row starts.
//! The header is the run of column words; a row is found by its port cell (a cell of port
//! numbers only), and the cells before and after it fall into the header's columns in
//! order. Cells beyond the last column (a description broken over lines) join the last one.

use super::columns::{column_of, grid_rows, is_port_cell, type_columns};
use super::{Doc, Found, Layout};

pub struct Stacked;

#[derive(Debug)]
struct Cell<'a> {
    text: &'a str,
    line: usize,
    /// The line started with `|`: a row begins here.
    row_start: bool,
    /// Blank lines before it.
    gap: usize,
}

fn cells<'a>(doc: &Doc<'a>) -> (Vec<Cell<'a>>, Vec<usize>) {
    let mut out = Vec::new();
    let mut pipes = Vec::new();
    let mut gap = 0;
    for n in 1..=doc.lines.len() {
        let l = doc.free_line(n);
        let t = l.trim();
        if t.is_empty() {
            gap += 1;
            continue;
        }
        if t.chars().all(|c| c == '|') {
            pipes.push(n);
            continue;
        }
        let inner = t.trim_start_matches('|').trim_end_matches('|');
        if inner.contains('|') {
            // A line of several cells is another layout's.
            gap = 2;
            continue;
        }
        out.push(Cell {
            text: inner.trim(),
            line: n,
            row_start: t.starts_with('|'),
            gap,
        });
        gap = 0;
    }
    (out, pipes)
}

impl Layout for Stacked {
    fn name(&self) -> &'static str {
        "stacked_cells"
    }

    fn find(&self, doc: &Doc) -> Vec<Found> {
        let (cells, pipes) = cells(doc);
        let mut out = Vec::new();
        let mut i = 0;
        while i < cells.len() {
            // A header: two or more column words in a row, one of them the ports.
            let mut m = 0;
            while i + m < cells.len()
                && m < 12
                && (m == 0 || cells[i + m].gap < 2)
                && column_of(cells[i + m].text).is_some_and(|k| {
                    // A second ports, label or direction column is the first row's cell.
                    // `TCP` alone is a row's cell here, not a matrix column.
                    !k.starts_with("proto:")
                        && (!matches!(k, "ports" | "label" | "direction")
                            || !cells[i..i + m].iter().any(|c| column_of(c.text) == Some(k)))
                })
            {
                m += 1;
            }
            let header: Vec<Option<&'static str>> =
                cells[i..i + m].iter().map(|c| column_of(c.text)).collect();
            let Some(p) = header.iter().position(|h| *h == Some("ports")) else {
                i += 1;
                continue;
            };
            if m < 2 {
                i += 1;
                continue;
            }
            let n = m;
            // The body: up to two blank lines in a row or the next header.
            let start = i + m;
            let mut end = start;
            while end < cells.len() && cells[end].gap < 2 {
                end += 1;
            }
            let body = &cells[start..end];
            let mut grid: Vec<Vec<(String, usize)>> = Vec::new();
            let marked = body.iter().filter(|c| c.row_start).count() >= 2;
            let mut last_used = start;
            if marked {
                let starts: Vec<usize> = (0..body.len()).filter(|&k| body[k].row_start).collect();
                for (s, &a) in starts.iter().enumerate() {
                    let z = starts.get(s + 1).copied().unwrap_or(body.len().min(a + n));
                    grid.push(place(&body[a..z], n));
                    last_used = start + z;
                }
            } else {
                // Anchors: port cells (consecutive ones are one cell).
                let mut anchors: Vec<(usize, usize)> = Vec::new();
                for (k, cell) in body.iter().enumerate() {
                    if is_port_cell(cell.text) && k >= p {
                        match anchors.last_mut() {
                            Some(a) if a.1 + 1 == k => a.1 = k,
                            _ => anchors.push((k, k)),
                        }
                    }
                }
                for (s, &(a, z)) in anchors.iter().enumerate() {
                    let from = a - p;
                    let to = match anchors.get(s + 1) {
                        Some(next) => next.0 - p,
                        None => (z + n - p).min(body.len()),
                    };
                    if from < to && (s == 0 || from >= anchors[s - 1].1) {
                        let mut row: Vec<(String, usize)> = vec![(String::new(), 0); n];
                        for (c, cell) in body[from..a].iter().enumerate() {
                            row[c] = (cell.text.to_string(), cell.line);
                        }
                        let ports: Vec<&str> = body[a..=z].iter().map(|c| c.text).collect();
                        row[p] = (ports.join(" "), body[a].line);
                        for (j, cell) in body[z + 1..to].iter().enumerate() {
                            let c = (p + 1 + j).min(n - 1);
                            if row[c].0.is_empty() {
                                row[c] = (cell.text.to_string(), cell.line);
                            } else {
                                row[c].0.push(' ');
                                row[c].0.push_str(cell.text);
                                row.push((String::new(), cell.line));
                            }
                        }
                        grid.push(row);
                        last_used = start + to;
                    }
                }
            }
            if grid.is_empty() {
                i += 1;
                continue;
            }
            let texts: Vec<Vec<String>> = grid
                .iter()
                .map(|r| r.iter().take(n).map(|c| c.0.clone()).collect())
                .collect();
            let kinds = type_columns(&header, &texts);
            let mut kinds_full = kinds.clone();
            // Extra (line-only) entries of a row carry no meaning.
            kinds_full.resize(grid.iter().map(Vec::len).max().unwrap_or(n), "ignore");
            let rows = grid_rows(&kinds_full, &grid, self.name());
            let first = cells[i].line;
            let last = cells[last_used.saturating_sub(1).max(i)].line;
            let mut lines: Vec<usize> = cells[i..last_used].iter().map(|c| c.line).collect();
            lines.extend(pipes.iter().filter(|&&l| l > first && l < last));
            out.push(Found::new(self.name(), rows, lines));
            i = last_used.max(i + 1);
        }
        out.extend(headerless(&cells));
        out
    }
}

/// What a cell of a table without a header holds, by its look.
fn kind_of(cell: &str) -> &'static str {
    let words = cell.split_whitespace().count();
    if is_port_cell(cell) {
        "ports"
    } else if words <= 4 && {
        let low = cell.to_lowercase();
        crate::import::heuristics::words(&low)
            .iter()
            .any(|w| matches!(w.1, "tcp" | "udp" | "icmp"))
    } {
        "proto"
    } else if words <= 3 && crate::import::heuristics::direction_words(cell).is_some() {
        "direction"
    } else if !crate::import::heuristics::dns_names(cell).is_empty() && words <= 3 {
        "peer"
    } else if words <= 3 && !cell.ends_with('.') {
        "label"
    } else {
        "function"
    }
}

/// Cells without a header: a row per block of lines (blocks between blank lines that hold
/// one port cell each), or from one port cell to the next; each cell typed by its look.
fn headerless(cells: &[Cell]) -> Vec<Found> {
    let mut out = Vec::new();
    // Runs of cells without a gap of two blank lines.
    let mut start = 0;
    while start < cells.len() {
        let mut end = start + 1;
        while end < cells.len() && cells[end].gap < 2 {
            end += 1;
        }
        let run = &cells[start..end];
        start = end;
        let ports: Vec<usize> = (0..run.len())
            .filter(|&k| is_port_cell(run[k].text))
            .collect();
        if ports.len() < 2 {
            continue;
        }
        // Blocks between blank lines, each with exactly one port cell?
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        let mut b = 0;
        for k in 1..=run.len() {
            if k == run.len() || run[k].gap >= 1 {
                blocks.push((b, k));
                b = k;
            }
        }
        let one_each = blocks.len() >= 2
            && blocks
                .iter()
                .all(|&(a, z)| (a..z).filter(|k| ports.contains(k)).count() == 1);
        let spans: Vec<(usize, usize)> = if one_each {
            blocks
        } else {
            ports
                .iter()
                .enumerate()
                .map(|(i, &p)| (p, ports.get(i + 1).copied().unwrap_or(run.len())))
                .collect()
        };
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for (a, z) in spans {
            let row_cells = &run[a..z];
            if row_cells.len() < 2 || row_cells.len() > 8 {
                continue;
            }
            let mut row = crate::import::heuristics::Row {
                line: row_cells[0].line,
                lines: row_cells.iter().map(|c| c.line).collect(),
                layout: "stacked_cells",
                ..Default::default()
            };
            for c in row_cells {
                let k = match kind_of(c.text) {
                    "label" if !row.label.is_empty() => "function",
                    k => k,
                };
                super::columns::set_field(&mut row, k, c.text);
            }
            // Without a header, only a protocol or a direction next to the number makes it
            // a port (page numbers and footnote marks are numbers on their own line too).
            if row.proto.is_empty() && row.direction.is_empty() {
                continue;
            }
            lines.extend(row.lines.iter().copied());
            rows.push(row);
        }
        if rows.len() >= 2 {
            out.push(Found::new("stacked_cells", rows, lines));
        }
    }
    out
}

/// A marked row's cells by position; cells beyond the last column join it.
fn place(cells: &[Cell], n: usize) -> Vec<(String, usize)> {
    let mut row: Vec<(String, usize)> = vec![(String::new(), 0); n];
    for (k, c) in cells.iter().enumerate() {
        let at = k.min(n - 1);
        if row[at].0.is_empty() {
            row[at] = (c.text.to_string(), c.line);
        } else {
            row[at].0.push(' ');
            row[at].0.push_str(c.text);
            row.push((String::new(), c.line));
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Found> {
        Stacked.find(&Doc::new(text))
    }

    #[test]
    fn cells_separated_by_blank_lines_with_a_name_before_the_port() {
        let t = "Intro\n\nApplication\n\nPort\n\nDescription\n\nIMAP\n\n143\n\nRead mail.\n\nMail (SMTP)\n\n25\n\nSend mail.\n";
        let f = read(t);
        let r = &f[0].rows;
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].label.as_str(), r[0].ports.as_str()), ("IMAP", "143"));
        assert_eq!(r[1].label, "Mail (SMTP)");
        assert_eq!(r[1].function, "Send mail.");
        assert!(!f[0].lines.contains(&1));
    }

    #[test]
    fn several_port_cells_and_a_description_over_two_cells() {
        let t = "Protocol\nPort\nDetails\nTCP\n5718/TCP\n5719/TCP\nData channel,\nboth ways.\nDNS\n53/UDP\nNames.\n";
        let r = &read(t)[0].rows;
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ports, "5718/TCP 5719/TCP");
        assert_eq!(r[0].function, "Data channel, both ways.");
        assert_eq!(r[1].ports, "53/UDP");
    }

    #[test]
    fn cells_without_a_header_by_blocks_or_by_the_next_port() {
        let t = "Ports\n\n\n25\nTCP\nInbound\nMail from the internet.\n\n443\nTCP\nOutbound\nupdates.example.com\n";
        let r = &read(t)[0].rows;
        assert_eq!(r.len(), 2, "{r:#?}");
        assert_eq!(r[0].direction, "Inbound");
        assert_eq!(r[0].function, "Mail from the internet.");
        assert_eq!(r[1].peer, "updates.example.com");
        let t = "SMTP\n25\nTCP\nIn\nHTTPS\n443\nTCP\nOut\n";
        let r = &read(t)[0].rows;
        assert_eq!(r.len(), 2, "{r:#?}");
        assert_eq!(r[1].proto, "TCP");
    }

    #[test]
    fn pipe_terminated_cells_and_row_marks() {
        let t = "| Service |\nFrom |\nTo |\nPort |\n| Mail |\nInternet |\nGateway |\n25 |\n| Mail |\nGateway |\nInternet |\n25 |\n";
        let r = &read(t)[0].rows;
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].source, "Gateway");
        assert_eq!(r[1].target, "Internet");
        let t = "Port Number\n|\nComponent\n|\n80\n|\nTraffic\n|\n123\n|\nNTP\n|\n";
        let f = read(t);
        assert_eq!(f[0].rows.len(), 2);
        assert_eq!(f[0].rows[1].label, "NTP");
    }
}
