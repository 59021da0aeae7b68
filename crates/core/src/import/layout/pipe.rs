//! `pipe`: tables whose cells end with `|`: Markdown (`| a | b |` under a `---|---` line), the
//! cell stream a web page becomes when pasted (a row's cells run over several lines, `||`
//! lines are what merged cells leave), and pipe rows under a header of column words with no
//! separator (what HTML tables become after [`html_leftovers`]).

use std::collections::BTreeSet;

use super::columns::{column_of, grid_rows, set_field, type_columns};
use super::{Doc, Found, Layout};
use crate::import::heuristics::*;

pub struct Pipe;

impl Layout for Pipe {
    fn name(&self) -> &'static str {
        "pipe_table"
    }
    fn find(&self, doc: &Doc) -> Vec<Found> {
        pipe_table(&doc.lines)
            .into_iter()
            .map(|(rows, lines)| Found::new(self.name(), rows, lines))
            .collect()
    }
}

/// `pipe_table`: a table whose cells end with `|`. A header row of known column names, then
/// a `---|---` separator. Two shapes: Markdown (every line a row, `| a | b |`) and a cell
/// stream where a row's cells run over several lines, one or more per line, and `||` lines
/// hold empty cells (what is left of merged cells). Returns rows and the lines it used.
pub fn pipe_table(lines: &[&str]) -> Vec<(Vec<Row>, Vec<usize>)> {
    let mut out = separated_pipe_table(lines);
    let taken: BTreeSet<usize> = out.iter().flat_map(|t| t.1.iter().copied()).collect();
    out.extend(unseparated_pipe_table(lines, &taken));
    out
}

/// A header line of known column names and rows below it, one per line, with no `---`
/// separator (what HTML tables become after [`html_leftovers`]).
fn unseparated_pipe_table(lines: &[&str], taken: &BTreeSet<usize>) -> Vec<(Vec<Row>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if taken.contains(&(i + 1)) || lines[i].matches('|').count() < 2 {
            i += 1;
            continue;
        }
        let lead = lines[i].trim_start().starts_with('|');
        let mut header = split_cells(lines[i], lead);
        // A header split over two lines: the second line's words join the first's.
        let second = lines.get(i + 1).map(|l| split_cells(l, lead));
        let two_lines = second.as_ref().is_some_and(|s| {
            s.len() == header.len()
                && s.iter().any(|c| !c.is_empty())
                && s.iter().all(|c| {
                    c.split_whitespace().count() <= 3 && !c.chars().any(|ch| ch.is_ascii_digit())
                })
                && lines[i + 1].matches('|').count() >= 2
        });
        if two_lines {
            for (h, s) in header.iter_mut().zip(second.unwrap_or_default()) {
                if !s.is_empty() {
                    h.push(' ');
                    h.push_str(&s);
                }
            }
        }
        let cols: Vec<Option<&'static str>> = header.iter().map(|c| column_of(c)).collect();
        if cols.iter().filter(|c| c.is_some()).count() < 2
            || header
                .iter()
                .any(|c| c.chars().any(|ch| ch.is_ascii_digit()))
        {
            i += 1;
            continue;
        }
        let mut used = vec![i + 1];
        let mut k = i + 1;
        if two_lines {
            used.push(k + 1);
            k += 1;
        }
        let mut body: Vec<(Vec<usize>, String)> = Vec::new();
        while k < lines.len() && !taken.contains(&(k + 1)) {
            if lines[k].matches('|').count() >= 2 {
                body.push((vec![k + 1], lines[k].to_string()));
            } else if !continue_row(&mut body, lines[k], k + 1) {
                break;
            }
            used.push(k + 1);
            k += 1;
        }
        let rows = line_rows(&cols, &body, Some(lead));
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
            .collect();
        // A header on one line keeps its empty cells (rows have them in the same places);
        // a header of one cell per line has none.
        let header_cells: Vec<String> = if header_lines.len() == 1 {
            let mut h = header_cells;
            while h.len() > 1 && h.last().is_some_and(|c| c.trim().is_empty()) && {
                // A trailing empty header cell counts only if the rows have it too.
                let first = lines.get(i + 1).map_or(0, |l| l.matches('|').count());
                first < lines[header_lines[0]].matches('|').count()
            } {
                h.pop();
            }
            h
        } else {
            header_cells
                .into_iter()
                .filter(|c| !c.trim().is_empty())
                .collect()
        };
        let cols: Vec<Option<&'static str>> = header_cells.iter().map(|c| column_of(c)).collect();
        if cols.iter().filter(|c| c.is_some()).count() < 2 {
            i += 1;
            continue;
        }
        let n = cols.len();
        let mut used: Vec<usize> = header_lines.clone();
        used.push(i);
        let rows: Vec<Row>;
        let mut k = i + 1;
        if markdown {
            let leading = lines[header_lines[0]].trim_start().starts_with('|');
            let mut body: Vec<(Vec<usize>, String)> = Vec::new();
            while k < lines.len() {
                let row_line = if leading {
                    lines[k].trim_start().starts_with('|')
                } else {
                    lines[k].matches('|').count() >= 2
                };
                if row_line {
                    body.push((vec![k + 1], lines[k].to_string()));
                } else if !continue_row(&mut body, lines[k], k + 1) {
                    break;
                }
                used.push(k);
                k += 1;
            }
            rows = line_rows(&cols, &body, Some(leading));
        } else {
            // Cell stream.
            let mut cells: Vec<(String, usize)> = Vec::new();
            let mut pending = String::new();
            let mut pending_line = 0;
            let mut row_lines: Vec<usize> = Vec::new();
            type Raw = Vec<(Vec<(String, usize)>, Vec<usize>)>;
            let mut raw: Raw = Vec::new();
            let flush =
                |cells: &mut Vec<(String, usize)>, raw: &mut Raw, row_lines: &mut Vec<usize>| {
                    if cells.iter().all(|(c, _)| c.trim().is_empty()) {
                        cells.clear();
                        row_lines.clear();
                        return;
                    }
                    raw.push((cells.clone(), row_lines.clone()));
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
                // Between rows, a line without cells ends the table when it is prose, a
                // heading, or the header of the next table.
                let next_is_separator = lines[k + 1..].iter().take(3).any(|l| sep(l));
                if !t.contains('|')
                    && pending.is_empty()
                    && cells.is_empty()
                    && !raw.is_empty()
                    && (looks_like_prose(t) || section_heading(t).is_some() || next_is_separator)
                {
                    break;
                }
                if sep(l)
                    || (pending.is_empty()
                        && cells.is_empty()
                        && lines.get(k + 1).is_some_and(|n| sep(n)))
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
                        flush(&mut cells, &mut raw, &mut row_lines);
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
                flush(&mut cells, &mut raw, &mut row_lines);
            }
            // Column meanings corrected by the complete rows' cells.
            let full: Vec<Vec<String>> = raw
                .iter()
                .filter(|(c, _)| c.len() == n)
                .map(|(c, _)| c.iter().map(|x| x.0.clone()).collect())
                .collect();
            let typed: Vec<Option<&'static str>> =
                type_columns(&cols, &full).into_iter().map(Some).collect();
            rows = raw.iter().map(|(c, l)| stream_row(&typed, c, l)).collect();
        }
        used.sort_unstable();
        used.dedup();
        out.push((rows, used.iter().map(|u| u + 1).collect()));
        i = k;
    }
    out
}

/// A line that is not a row continues the row above when that row is still open (its last
/// cell did not end with `|`): a cell wrapped onto the next line.
fn continue_row(body: &mut [(Vec<usize>, String)], line: &str, n: usize) -> bool {
    let t = line.trim();
    let Some(last) = body.last_mut() else {
        return false;
    };
    if t.is_empty() || last.1.trim_end().ends_with('|') || last.0.len() > 4 {
        return false;
    }
    last.1.push(' ');
    last.1.push_str(t);
    last.0.push(n);
    true
}

/// Rows of a table with one row per line (a wrapped row is one entry with several line
/// numbers), columns typed by header and content.
fn line_rows(
    cols: &[Option<&'static str>],
    body: &[(Vec<usize>, String)],
    leading: Option<bool>,
) -> Vec<Row> {
    let grid: Vec<Vec<(String, usize)>> = body
        .iter()
        .map(|(ns, l)| {
            let lead = leading.unwrap_or_else(|| l.trim_start().starts_with('|'));
            let mut cells: Vec<(String, usize)> = split_cells(l, lead)
                .into_iter()
                .map(|c| (c, ns[0]))
                .collect();
            // The other lines of a wrapped row, so the row lists them.
            cells.extend(ns[1..].iter().map(|&n| (String::new(), n)));
            cells
        })
        .collect();
    let texts: Vec<Vec<String>> = grid
        .iter()
        .map(|r| r.iter().map(|c| c.0.clone()).collect())
        .collect();
    let mut kinds = type_columns(cols, &texts);
    kinds.resize(
        grid.iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(kinds.len()),
        "ignore",
    );
    grid_rows(&kinds, &grid, "pipe_table")
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
    // Complete: every column has its cell, or the cells stand in their places (the port
    // column holds the ports) with some left empty.
    let in_place = cols
        .iter()
        .position(|c| *c == Some("ports"))
        .and_then(|p| cells.get(p))
        .is_some_and(|(c, _)| super::columns::is_port_cell(c) || !proto_ports("tcp", c).is_empty())
        && cells.len() == cols.len();
    if visible.len() >= cols.len()
        || in_place
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn wrapped_cells_and_a_header_over_two_lines() {
        let t = [
            "| Port | Proto- | Direction | Description |",
            "|      | col    |           |             |",
            "| 25 | TCP | In | Mail from the",
            "internet |",
            "| 443 | TCP | Out | Updates |",
            "|  |  |  | from the vendor |",
        ];
        let tables = pipe_table(&t);
        let rows = &tables[0].0;
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[0].proto, "TCP");
        assert_eq!(rows[0].function, "Mail from the internet");
        assert_eq!(rows[0].lines, [3, 4]);
        assert_eq!(rows[1].function, "Updates from the vendor");
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
}
