//! `wiki`: MediaWiki table markup (`{|` ... `|}`, `!` header cells, `|-` between rows,
//! `|` or `||` between cells, `align="center" |` attributes before a cell's text).

use super::columns::{column_of, grid_rows, type_columns};
use super::{Doc, Found, Layout};

pub struct Wiki;

/// A cell's text without its attributes and bold/italic quotes.
fn cell_text(c: &str) -> String {
    let c = match c.find('|') {
        Some(k) if c[..k].contains('=') => &c[k + 1..],
        _ => c,
    };
    c.replace("'''", "").replace("''", "").trim().to_string()
}

impl Layout for Wiki {
    fn name(&self) -> &'static str {
        "wiki_table"
    }

    fn find(&self, doc: &Doc) -> Vec<Found> {
        let mut out = Vec::new();
        let n = doc.lines.len();
        let mut k = 1;
        while k <= n {
            if !doc.free_line(k).trim_start().starts_with("{|") {
                k += 1;
                continue;
            }
            let mut lines = vec![k];
            let mut header: Vec<String> = Vec::new();
            let mut grid: Vec<Vec<(String, usize)>> = Vec::new();
            let mut row: Vec<(String, usize)> = Vec::new();
            let mut j = k + 1;
            while j <= n {
                let t = doc.free_line(j).trim();
                if t.starts_with("|}") {
                    lines.push(j);
                    break;
                }
                lines.push(j);
                if t.starts_with("|-") {
                    if !row.is_empty() {
                        grid.push(std::mem::take(&mut row));
                    }
                } else if let Some(h) = t.strip_prefix('!') {
                    header.extend(h.split("!!").map(cell_text));
                } else if let Some(c) = t.strip_prefix('|') {
                    row.extend(c.split("||").map(|x| (cell_text(x), j)));
                } else if t.starts_with("|+") || t.is_empty() {
                } else if let Some(last) = row.last_mut() {
                    // A cell's text continued on the next line.
                    last.0.push(' ');
                    last.0.push_str(t);
                } else if !t.is_empty() {
                    lines.pop();
                }
                j += 1;
            }
            if !row.is_empty() {
                grid.push(row);
            }
            let named: Vec<Option<&'static str>> = header.iter().map(|h| column_of(h)).collect();
            let texts: Vec<Vec<String>> = grid
                .iter()
                .map(|r| r.iter().map(|c| c.0.clone()).collect())
                .collect();
            let kinds = type_columns(&named, &texts);
            if kinds.contains(&"ports") {
                let rows = grid_rows(&kinds, &grid, self.name());
                out.push(Found::new(self.name(), rows, lines));
            }
            k = j + 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiki_markup_rows_with_attributes() {
        let t = "{| class=\"wikitable\"\n! Port !! Source !! Target !! Description\n|-\n| align=\"center\" | 443\n| align=\"center\" | SERVER\n| align=\"center\" | my.example.com\n| '''Activation''' of the\nlicence.\n|-\n| 587 || SERVER || ANY || Reports.\n|}\n";
        let f = Wiki.find(&Doc::new(t));
        let r = &f[0].rows;
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ports, "443");
        assert_eq!(r[0].target, "my.example.com");
        assert_eq!(r[0].function, "Activation of the licence.");
        assert_eq!(r[1].source, "SERVER");
    }
}
