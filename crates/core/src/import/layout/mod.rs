//! Layouts: how a pasted document holds its table. Each layout is one file with one
//! [`Layout`] implementation and its own tests; each proposes the tables it can read
//! anywhere in the document ([`Found`]: rows and the lines they used), and [`choose`] keeps,
//! by score, the readings that recover the most of each row (ports, protocol, direction,
//! peer, text), so no layout needs to know which vendor wrote the document.
//!
//! Round one reads tables ([`TABLES`]); round two reads the lines no table used as prose
//! ([`prose::Prose`]).

pub mod columns;
pub mod glued;
pub mod list;
pub mod pipe;
pub mod prose;
pub mod spaced;
pub mod stacked;
pub mod wiki;

use std::collections::BTreeSet;

use super::heuristics::{cell_groups, inline_groups, prose_services, Groups, Row};

/// The document as lines (index 0 is line 1), and which lines are still free.
pub struct Doc<'a> {
    pub lines: Vec<&'a str>,
    pub free: Vec<bool>,
}

impl<'a> Doc<'a> {
    pub fn new(text: &'a str) -> Self {
        let lines: Vec<&str> = text.lines().collect();
        let free = vec![true; lines.len()];
        Doc { lines, free }
    }
    /// Line `n` (1-based) if it is free, else "".
    pub fn free_line(&self, n: usize) -> &'a str {
        match n.checked_sub(1) {
            Some(i) if self.free.get(i).copied().unwrap_or(false) => self.lines[i],
            _ => "",
        }
    }
    /// The lines with used ones blanked (0-based, as `lines`).
    pub fn free_lines(&self) -> Vec<&'a str> {
        (1..=self.lines.len()).map(|n| self.free_line(n)).collect()
    }
}

/// A table (or list) one layout read: its rows and every line it used (1-based).
#[derive(Debug, Clone)]
pub struct Found {
    pub layout: &'static str,
    pub rows: Vec<Row>,
    pub lines: Vec<usize>,
    pub score: f32,
}

impl Found {
    pub fn new(layout: &'static str, rows: Vec<Row>, mut lines: Vec<usize>) -> Self {
        lines.sort_unstable();
        lines.dedup();
        let score = rows.iter().map(row_score).sum();
        Found {
            layout,
            rows,
            lines,
            score,
        }
    }
}

/// How much of a flow a row gives: ports first (a row without a readable port gives
/// nothing), then protocol, direction, peer and text.
pub fn row_score(r: &Row) -> f32 {
    let (groups, _) = row_groups(r);
    if groups.is_empty() {
        return 0.0;
    }
    let mut s = 1.0;
    if !r.proto.trim().is_empty() || super::heuristics::protocols_in(&r.ports).is_some() {
        s += 0.5;
    }
    if !r.direction.trim().is_empty() {
        s += 0.5;
    }
    if !r.source.is_empty() || !r.target.is_empty() || !r.peer.is_empty() {
        s += 0.3;
    }
    if !r.function.is_empty() || !r.label.is_empty() {
        s += 0.2;
    }
    s
}

/// The protocols and ports of a row as its layout writes them, and a caveat for every
/// protocol the document did not give.
pub fn row_groups(r: &Row) -> (Groups, Vec<String>) {
    match r.layout {
        "prose_ports" | "list" => inline_groups(&r.ports),
        "prose_services" => (
            // One flow per service: keep them apart.
            prose_services(&r.ports)
                .into_iter()
                .map(|(_, p, port)| (p.to_vec(), vec![(port, port)]))
                .collect(),
            Vec::new(),
        ),
        _ => cell_groups(&r.proto, &r.ports, &r.label),
    }
}

/// A layout: finds tables in the document's free lines.
pub trait Layout: Sync {
    fn name(&self) -> &'static str;
    fn find(&self, doc: &Doc) -> Vec<Found>;
}

/// The table layouts, in order of preference when two readings score the same.
pub const TABLES: &[&dyn Layout] = &[
    &wiki::Wiki,
    &pipe::Pipe,
    &glued::Glued,
    &stacked::Stacked,
    &spaced::Spaced,
    &list::List,
];

/// Every layout's readings, best first; a reading keeps only its rows whose lines no better
/// reading took. Marks the lines used in `doc` and returns the kept readings in line order,
/// prose last.
pub fn choose(doc: &mut Doc) -> Vec<Found> {
    let mut kept = pick(doc, TABLES);
    kept.extend(pick(doc, &[&prose::Prose]));
    kept.sort_by_key(|f| f.rows.first().map_or(0, |r| r.line));
    for (i, f) in kept.iter_mut().enumerate() {
        for r in &mut f.rows {
            r.table = i;
        }
    }
    kept
}

fn pick(doc: &mut Doc, layouts: &[&dyn Layout]) -> Vec<Found> {
    let mut all: Vec<(usize, Found)> = Vec::new();
    for (k, l) in layouts.iter().enumerate() {
        all.extend(l.find(doc).into_iter().map(|f| (k, f)));
    }
    all.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    let mut taken: BTreeSet<usize> = BTreeSet::new();
    let mut kept = Vec::new();
    for (_, f) in all {
        let rows: Vec<Row> = f
            .rows
            .into_iter()
            .filter(|r| r.lines.iter().all(|l| !taken.contains(l)))
            .collect();
        let row_lines: BTreeSet<usize> = rows.iter().flat_map(|r| r.lines.clone()).collect();
        // The reading's other lines (header, separators) unless another reading has them.
        let lines: Vec<usize> = f
            .lines
            .into_iter()
            .filter(|l| !taken.contains(l))
            .chain(row_lines)
            .collect();
        let found = Found::new(f.layout, rows, lines);
        // Rows without ports stay (merged cells take them from the row above, or the report
        // lists them); a reading without any port is no reading.
        if found.score <= 0.0 {
            continue;
        }
        taken.extend(found.lines.iter().copied());
        kept.push(found);
    }
    for l in &taken {
        if let Some(x) = l.checked_sub(1).and_then(|i| doc.free.get_mut(i)) {
            *x = false;
        }
    }
    kept
}
