//! apply for nftables: `table inet portolan`, replaced in one transaction.

use portolan_core::audit::{self, ruleset::Ruleset};
use portolan_core::diag::Source;
use portolan_core::plan::Plan;
use portolan_core::render::Rendered;
use portolan_net::sets::{run_tool, Sets};
use portolan_net::sync::TABLE;
use serde_json::{json, Value};
use std::process::Command;

use super::{Listing, Way};
use crate::cmd::load;

const MARK: &str = "@@@PORTOLAN-JSON@@@";

/// The nftables way; keeps the new table's JSON listing from the scratch namespace.
#[derive(Default)]
pub(crate) struct Nft {
    new_json: Option<Value>,
}

impl Way for Nft {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn script(&self, plan: &Plan, rendered: &Rendered) -> Result<(String, String), String> {
        let dynamic = load::dynamic_sets(plan, Sets::Nftables);
        let kept = load::current_elements(&dynamic)?;
        Ok((
            format!("{}{}", rendered.text, load::carry_over(&kept)),
            format!("kept {} address(es) in DNS-filled sets", kept.len()),
        ))
    }

    fn scratch(&mut self, script: &str) -> Result<Listing, String> {
        let (text, v) = scratch(script)?;
        self.new_json = Some(v);
        Ok(parse_listing(&text))
    }

    fn check(&self, script: &str, _rendered: &Rendered) -> Result<(), String> {
        run_tool("nft", &["-c", "-f", "-"], script)
            .map_err(|e| format!("nft -c refused the rules against this ruleset: {e}"))
    }

    fn live(&self) -> Result<Listing, String> {
        Ok(parse_listing(
            nft_text(&["-s", "list", "table", "inet", TABLE])?
                .as_deref()
                .unwrap_or(""),
        ))
    }

    fn rulesets(&self) -> Result<(Ruleset, Ruleset), String> {
        let live = nft_text(&["-j", "list", "ruleset"])?
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(json!({"nftables": []}));
        let after = with_table(&live, self.new_json.as_ref());
        Ok((read(&live)?, read(&after)?))
    }

    fn rollback(&self) -> Result<String, String> {
        Ok(rollback_script(
            nft_text(&["list", "table", "inet", TABLE])?.as_deref(),
        ))
    }

    fn run(&self, script: &str) -> Result<(), String> {
        run_tool("nft", &["-f", "-"], script)
    }
}

fn read(v: &Value) -> Result<Ruleset, String> {
    let src = Source::new("ruleset.json", v.to_string());
    audit::parse_ruleset(&src, Some(audit::RulesetFormat::NftJson), None)
        .map_err(|e| format!("cannot read the ruleset back ({} error(s))", e.0.len()))
}

fn parse_listing(text: &str) -> Listing {
    enum In {
        Nothing,
        Set(String),
        Chain(String),
    }
    let mut l = Listing {
        exists: text.contains("table inet"),
        ..Listing::default()
    };
    let mut at = In::Nothing;
    let mut elems: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(acc) = elems.as_mut() {
            acc.push(' ');
            acc.push_str(line);
        } else if let Some(rest) = line.strip_prefix("elements = {") {
            elems = Some(rest.to_string());
        } else if let Some(name) = line.strip_prefix("set ").and_then(|r| r.strip_suffix(" {")) {
            at = In::Set(name.to_string());
            l.sets.entry(name.to_string()).or_default();
            continue;
        } else if let Some(name) = line
            .strip_prefix("chain ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            at = In::Chain(name.to_string());
            l.chains.entry(name.to_string()).or_default();
            continue;
        } else if line == "}" {
            at = In::Nothing;
            continue;
        } else if !line.is_empty() {
            match &at {
                In::Set(s) => l.sets.entry(s.clone()).or_default().push(line.to_string()),
                In::Chain(c) => l
                    .chains
                    .entry(c.clone())
                    .or_default()
                    .push(line.to_string()),
                In::Nothing => {}
            }
            continue;
        }
        // Inside `elements = { ... }`: done at the closing brace.
        if let Some(acc) = &elems {
            if let Some(body) = acc.strip_suffix('}') {
                if let In::Set(s) = &at {
                    let timed = l.sets.get(s).is_some_and(|d| {
                        d.iter()
                            .any(|x| x.starts_with("flags") && x.contains("timeout"))
                    });
                    if !timed {
                        let e = l.elements.entry(s.clone()).or_default();
                        for item in body.split(',') {
                            if let Some(v) = item.split_whitespace().next() {
                                e.insert(v.to_string());
                            }
                        }
                    }
                }
                elems = None;
            }
        }
    }
    l
}

/// `live` (`nft -j list ruleset`) with portolan's table replaced by `table` (`nft -j list
/// table`), or removed when `table` is `None`.
fn with_table(live: &Value, table: Option<&Value>) -> Value {
    let ours = |item: &Value| {
        item.as_object()
            .and_then(|o| o.iter().next())
            .is_some_and(|(kind, v)| {
                v["family"] == "inet"
                    && (v["table"] == TABLE || (kind == "table" && v["name"] == TABLE))
            })
    };
    let mut items: Vec<Value> = live["nftables"]
        .as_array()
        .map(|a| a.iter().filter(|i| !ours(i)).cloned().collect())
        .unwrap_or_default();
    if let Some(t) = table {
        items.extend(
            t["nftables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i.get("metainfo").is_none())
                .cloned(),
        );
    }
    json!({ "nftables": items })
}

fn nft_text(args: &[&str]) -> Result<Option<String>, String> {
    let out = Command::new("nft")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(format!("nft {}: {}", args.join(" "), err.trim()));
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).to_string()))
}

/// Load `script` into a scratch network namespace; its listing (text, JSON) there.
fn scratch(script: &str) -> Result<(String, Value), String> {
    let cmd = format!(
        "nft -f - && nft -s list table inet {TABLE} && echo {MARK} && nft -j list table inet {TABLE}"
    );
    let text = super::in_scratch_namespace(&cmd, script)?;
    let (listing, j) = text
        .split_once(MARK)
        .ok_or("nft printed no listing in the scratch namespace")?;
    let v: Value =
        serde_json::from_str(j.trim()).map_err(|e| format!("nft -j: unreadable JSON: {e}"))?;
    Ok((listing.to_string(), v))
}

/// The script that restores the table as it is now: its rules and static sets as listed,
/// DNS-filled elements with the time they have left (never longer).
fn rollback_script(live_full: Option<&str>) -> String {
    let mut s = format!(
        "# portolan apply: the table as it was before\ntable inet {TABLE}\ndelete table inet {TABLE}\n"
    );
    let Some(text) = live_full else {
        return s;
    };
    for line in text.lines() {
        let mut l = line.to_string();
        // `counter packets N bytes M` -> `counter`
        while let Some(i) = l.find("counter packets ") {
            let rest = &l[i + "counter packets ".len()..];
            let mut w = rest.splitn(4, ' ');
            let (_n, _b, _m) = (w.next(), w.next(), w.next());
            let tail = w.next().unwrap_or("");
            l = format!("{}counter {}", &l[..i], tail);
        }
        // `timeout 10m expires 9m58s,` -> `timeout 9m58s,`
        let toks: Vec<&str> = l.split(' ').collect();
        let mut kept: Vec<&str> = Vec::with_capacity(toks.len());
        let mut i = 0;
        while i < toks.len() {
            if toks[i] == "timeout" && toks.get(i + 2) == Some(&"expires") && i + 3 < toks.len() {
                kept.push("timeout");
                kept.push(toks[i + 3]);
                i += 4;
            } else {
                kept.push(toks[i]);
                i += 1;
            }
        }
        let out = kept.join(" ");
        s.push_str(&out);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::apply::compare;

    const LISTED: &str = "table inet portolan {\n\tset dns_a_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 1.2.3.4 timeout 10m expires 9m58s, 5.6.7.8 timeout 10m expires 1m }\n\t}\n\n\tset role_x_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.0.0.0/8,\n\t\t\t     192.0.2.1 }\n\t}\n\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 ip saddr @role_x_v4 counter packets 5 bytes 300 accept comment \"flows: ssh\"\n\t}\n}\n";

    #[test]
    fn listings_compare_by_rule_and_static_element_not_by_dynamic_element() {
        let old = parse_listing(LISTED);
        assert!(old.exists);
        assert_eq!(
            old.elements["role_x_v4"],
            ["10.0.0.0/8", "192.0.2.1"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert!(!old.elements.contains_key("dns_a_v4"));
        assert!(compare(&old, &parse_listing(LISTED)).is_empty());
        let new = LISTED
            .replace("192.0.2.1 }", "192.0.2.2 }")
            .replace("tcp dport 22", "tcp dport 2222");
        let c = compare(&old, &parse_listing(&new));
        assert_eq!(c.elements_added, [("role_x_v4".into(), "192.0.2.2".into())]);
        assert_eq!(
            c.elements_removed,
            [("role_x_v4".into(), "192.0.2.1".into())]
        );
        assert_eq!(c.rules_added.len(), 1);
        assert_eq!(c.rules_removed.len(), 1);
        let none = compare(&Listing::default(), &old);
        assert!(none.table_created && none.sets_added.len() == 2);
    }

    #[test]
    fn rollback_keeps_the_time_left_never_more_and_drops_counters() {
        let s = rollback_script(Some(LISTED));
        assert!(s.starts_with("# portolan apply"));
        assert!(s.contains("delete table inet portolan\n"));
        assert!(
            s.contains("1.2.3.4 timeout 9m58s, 5.6.7.8 timeout 1m }"),
            "{s}"
        );
        assert!(s.contains("@role_x_v4 counter accept"), "{s}");
        assert!(!s.contains("expires") && !s.contains("packets"));
        assert!(rollback_script(None).ends_with("delete table inet portolan\n"));
    }
}
