//! What changes between two versions of a profile: flows added, removed and changed (by id),
//! and, for a site and a target, the rule lines that appear and disappear.
//!
//! Flows are matched by their id, the profile's stable name for a requirement. A changed
//! flow lists each field that differs (ports, protocols, peers, ICMP type, whether it is
//! required or behind a feature, its alternative, flags, what it is for). Rules are compared
//! as lines of the rendered configuration without comments, order aside: every rule of a
//! portolan chain accepts, so their order does not change what passes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Condition, Flow, Profile};

/// One field of a flow that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

/// A flow in one line: what it is for, who talks to whom over what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowLine {
    pub id: String,
    pub function: String,
    pub summary: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProfileDiff {
    pub added: Vec<FlowLine>,
    pub removed: Vec<FlowLine>,
    pub changed: Vec<ChangedFlow>,
}

/// A flow in both versions, and what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFlow {
    pub id: String,
    pub changes: Vec<FieldChange>,
}

impl ProfileDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::Required => "required".into(),
        Condition::Feature(f) => format!("feature {f}"),
    }
}

/// `appliance -> update.example.com tcp 443 (required)`.
fn summary(f: &Flow) -> String {
    let what = if f.ports.is_empty() {
        match f.icmp_type {
            Some(t) => format!("{} {}", join(&f.protocols), t.name()),
            None => join(&f.protocols),
        }
    } else {
        format!("{} {}", join(&f.protocols), join(&f.ports))
    };
    format!(
        "{} -> {} {what} ({})",
        join(&f.from),
        join(&f.to),
        condition(&f.condition)
    )
}

fn line(f: &Flow) -> FlowLine {
    FlowLine {
        id: f.id.clone(),
        function: f.function.clone(),
        summary: summary(f),
    }
}

/// The fields of two versions of a flow that differ.
fn flow_changes(a: &Flow, b: &Flow) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut field = |name: &'static str, old: String, new: String| {
        if old != new {
            out.push(FieldChange {
                field: name,
                old,
                new,
            });
        }
    };
    field("from", join(&a.from), join(&b.from));
    field("to", join(&a.to), join(&b.to));
    field("protocols", join(&a.protocols), join(&b.protocols));
    field("ports", join(&a.ports), join(&b.ports));
    field(
        "icmp_type",
        a.icmp_type
            .map(|t| t.name().to_string())
            .unwrap_or_default(),
        b.icmp_type
            .map(|t| t.name().to_string())
            .unwrap_or_default(),
    );
    field(
        "condition",
        condition(&a.condition),
        condition(&b.condition),
    );
    field(
        "alternative",
        a.alternative.clone().unwrap_or_default(),
        b.alternative.clone().unwrap_or_default(),
    );
    let flags = |f: &Flow| {
        f.flags
            .iter()
            .map(|x| {
                serde_json::to_value(x)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    field("flags", flags(a), flags(b));
    field("function", a.function.clone(), b.function.clone());
    out
}

/// Flows added, removed and changed from `old` to `new`, each list in id order.
pub fn profiles(old: &Profile, new: &Profile) -> ProfileDiff {
    let a: BTreeMap<&str, &Flow> = old.flows.iter().map(|f| (f.id.as_str(), f)).collect();
    let b: BTreeMap<&str, &Flow> = new.flows.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut d = ProfileDiff::default();
    for (id, f) in &b {
        match a.get(id) {
            None => d.added.push(line(f)),
            Some(o) => {
                let c = flow_changes(o, f);
                if !c.is_empty() {
                    d.changed.push(ChangedFlow {
                        id: id.to_string(),
                        changes: c,
                    });
                }
            }
        }
    }
    for (id, f) in &a {
        if !b.contains_key(id) {
            d.removed.push(line(f));
        }
    }
    d
}

/// Rule lines that appear (`added`) and disappear (`removed`) between two renderings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RulesDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// The lines of a rendering that configure something: no comments, no blank lines.
fn config_lines(text: &str) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

/// Compare two renderings line by line, order aside (each line counted).
pub fn rules(old: &str, new: &str) -> RulesDiff {
    let (a, b) = (config_lines(old), config_lines(new));
    let mut d = RulesDiff::default();
    for (l, n) in &b {
        let before = a.get(l).copied().unwrap_or(0);
        d.added
            .extend(std::iter::repeat_n(l.to_string(), n.saturating_sub(before)));
    }
    for (l, n) in &a {
        let after = b.get(l).copied().unwrap_or(0);
        d.removed
            .extend(std::iter::repeat_n(l.to_string(), n.saturating_sub(after)));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines_are_compared_as_counted_sets_without_comments() {
        let d = rules("# a\nx\ny\ny\n", "# b\ny\nz\n");
        assert_eq!(d.added, ["z"]);
        assert_eq!(d.removed, ["x", "y"]);
        assert!(rules("x\n# one\n", "x\n# two\n").added.is_empty());
    }
}
