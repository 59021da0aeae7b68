//! apply for iptables: the `PORTOLAN-*` chains of the filter table (IPv4 and IPv6), the jumps
//! to them from the built-in chains, and the `pt4-*`/`pt6-*` ipsets. Everything is listed with
//! `iptables-save -t filter`, `ip6tables-save -t filter` and `ipset save`, and only those
//! parts are compared, spliced or restored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Command;

use portolan_core::audit::{self, ruleset::Ruleset};
use portolan_core::diag::Source;
use portolan_core::plan::Plan;
use portolan_core::render::{fnv32, Rendered};
use portolan_net::sets::run_tool;

use super::{Listing, Way};

const MARK: &str = "@@@PORTOLAN-PART@@@";
const CHAIN: &str = "PORTOLAN-";

/// What the three listing tools print.
#[derive(Debug, Clone, Default)]
struct Saved {
    v4: String,
    v6: String,
    ipset: String,
}

/// The iptables way; keeps the listing of the new rules from the scratch namespace.
#[derive(Default)]
pub(crate) struct Ipt {
    new: Option<Saved>,
}

fn ours_set(name: &str) -> bool {
    name.starts_with("pt4-") || name.starts_with("pt6-")
}

/// A line of portolan's in a filter table listing: its chains, their rules, jumps to them.
fn ours_line(l: &str) -> bool {
    l.starts_with(&format!(":{CHAIN}"))
        || l.starts_with(&format!("-A {CHAIN}"))
        || (l.starts_with("-A ") && l.contains(&format!(" -j {CHAIN}")))
}

fn save(tool: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

fn live_saved(all_tables: bool) -> Result<Saved, String> {
    let t: &[&str] = if all_tables { &[] } else { &["-t", "filter"] };
    Ok(Saved {
        v4: save("iptables-save", t)?,
        v6: save("ip6tables-save", t)?,
        ipset: save("ipset", &["save"])?,
    })
}

/// The `create` lines of portolan's ipsets, by name, and whether each has timeouts.
fn creates(ipset: &str) -> BTreeMap<&str, &str> {
    ipset
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("create"))
                .then(|| w.next())
                .flatten()
                .filter(|n| ours_set(n))
                .map(|n| (n, l))
        })
        .collect()
}

fn timed(create: &str) -> bool {
    create.split_whitespace().any(|w| w == "timeout")
}

fn listing(s: &Saved) -> Listing {
    let mut l = Listing::default();
    for (fam, text) in [("v4", &s.v4), ("v6", &s.v6)] {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(':') {
                let chain = rest.split_whitespace().next().unwrap_or("");
                if chain.starts_with(CHAIN) {
                    l.exists = true;
                    l.chains.entry(format!("{fam} {chain}")).or_default();
                }
            } else if let Some(rest) = line.strip_prefix("-A ") {
                let chain = rest.split_whitespace().next().unwrap_or("");
                if chain.starts_with(CHAIN) {
                    l.chains
                        .entry(format!("{fam} {chain}"))
                        .or_default()
                        .push(line.to_string());
                } else if ours_line(line) {
                    l.chains
                        .entry(format!("{fam} {chain} (jumps)"))
                        .or_default()
                        .push(line.to_string());
                }
            }
        }
    }
    // Sets count when portolan's rules use them: an ipset left over from earlier rules (the
    // script never destroys one, a DNS-filled one may be needed again) changes nothing.
    let used: BTreeSet<String> = l
        .chains
        .values()
        .flat_map(|rules| rules.iter().flat_map(|r| matched_sets(r)))
        .map(str::to_string)
        .collect();
    let mut creates = creates(&s.ipset);
    creates.retain(|n, _| used.contains(*n));
    for (name, line) in &creates {
        // Type, family and timeouts; not hashsize or initval, which the kernel picks.
        let w: Vec<&str> = line.split_whitespace().collect();
        let mut def = vec![w.get(2).copied().unwrap_or("").to_string()];
        if let Some(i) = w.iter().position(|x| *x == "family") {
            def.push(format!("family {}", w.get(i + 1).unwrap_or(&"")));
        }
        if timed(line) {
            def.push("timeout".into());
        }
        l.sets.insert(name.to_string(), def);
    }
    for line in s.ipset.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let ["add", name, elem, ..] = w[..] {
            if creates.get(name).is_some_and(|c| !timed(c)) {
                l.elements
                    .entry(name.to_string())
                    .or_default()
                    .insert(elem.to_string());
            }
        }
    }
    l
}

/// `live` (an `iptables-save` of one family) with portolan's lines replaced by those of
/// `new` (the filter table of the scratch namespace). The jumps go first, as the script
/// inserts them at position 1.
fn splice(live: &str, new: &str) -> String {
    let pick = |f: &dyn Fn(&str) -> bool| -> Vec<&str> { new.lines().filter(|l| f(l)).collect() };
    let decls = pick(&|l| l.starts_with(&format!(":{CHAIN}")));
    let rules = pick(&|l| l.starts_with(&format!("-A {CHAIN}")));
    let jumps =
        pick(&|l| ours_line(l) && !l.starts_with(":") && !l.starts_with(&format!("-A {CHAIN}")));
    if !live.lines().any(|l| l == "*filter") {
        // No filter table here yet: it becomes what the scratch namespace has.
        return format!("{live}{new}");
    }
    let mut out = String::new();
    let mut in_filter = false;
    let mut placed_jumps = false;
    for l in live.lines() {
        if l == "*filter" {
            in_filter = true;
            out.push_str(l);
            out.push('\n');
            continue;
        }
        if in_filter {
            if ours_line(l) {
                continue;
            }
            if l.starts_with(':') {
                out.push_str(l);
                out.push('\n');
                continue;
            }
            if !placed_jumps {
                for d in &decls {
                    out.push_str(d);
                    out.push('\n');
                }
                for j in &jumps {
                    out.push_str(j);
                    out.push('\n');
                }
                placed_jumps = true;
            }
            if l == "COMMIT" {
                for r in &rules {
                    out.push_str(r);
                    out.push('\n');
                }
                in_filter = false;
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// `live` (an `ipset save`) with portolan's sets as `new` has them.
fn splice_sets(live: &str, new: &str) -> String {
    let foreign = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|n| !ours_set(n)))
            .map(str::to_string)
            .collect()
    };
    let ours: Vec<String> = new
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(ours_set))
        .map(str::to_string)
        .collect();
    let mut lines = foreign(live);
    lines.extend(ours);
    lines.join("\n") + "\n"
}

fn read(s: &Saved) -> Result<Ruleset, String> {
    let src = Source::new("iptables-save", format!("{}{}", s.v4, s.v6));
    let sets = Source::new("ipset-save", s.ipset.clone());
    audit::parse_ruleset(&src, Some(audit::RulesetFormat::IptablesSave), Some(&sets))
        .map_err(|e| format!("cannot read the ruleset back ({} error(s))", e.0.len()))
}

/// The sets a restore file matches on.
fn matched_sets(text: &str) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    let mut w = text.split_whitespace();
    while let Some(x) = w.next() {
        if x == "--match-set" {
            if let Some(n) = w.next() {
                out.insert(n);
            }
        }
    }
    out
}

impl Way for Ipt {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn script(&self, _plan: &Plan, rendered: &Rendered) -> Result<(String, String), String> {
        Ok((
            rendered.text.clone(),
            "the DNS-filled ipsets keep their addresses (the script never flushes them)".into(),
        ))
    }

    fn scratch(&mut self, script: &str) -> Result<Listing, String> {
        let cmd = format!(
            "sh -s 1>&2 && echo {MARK} && iptables-save -t filter && echo {MARK} && ip6tables-save -t filter && echo {MARK} && ipset save"
        );
        let text = super::in_scratch_namespace(&cmd, script)?;
        let parts: Vec<&str> = text.split(MARK).collect();
        let [_, v4, v6, ipset] = parts[..] else {
            return Err("the scratch namespace printed no listing".into());
        };
        let saved = Saved {
            v4: v4.trim_start().to_string(),
            v6: v6.trim_start().to_string(),
            ipset: ipset.trim_start().to_string(),
        };
        let l = listing(&saved);
        self.new = Some(saved);
        Ok(l)
    }

    fn check(&self, _script: &str, rendered: &Rendered) -> Result<(), String> {
        // The restore files match on ipsets the script creates: checked here only when
        // those exist already (the scratch namespace has checked the whole script).
        let live_sets = save("ipset", &["list", "-n"])?;
        let have: BTreeSet<&str> = live_sets.lines().map(str::trim).collect();
        for (part, tool) in [("v4", "iptables-restore"), ("v6", "ip6tables-restore")] {
            let Some((_, text)) = rendered.parts.iter().find(|(n, _)| n == part) else {
                continue;
            };
            if matched_sets(text).iter().all(|s| have.contains(s)) {
                run_tool(tool, &["--test", "--noflush"], text)
                    .map_err(|e| format!("{tool} --test refused the rules: {e}"))?;
            }
        }
        Ok(())
    }

    fn live(&self) -> Result<Listing, String> {
        Ok(listing(&live_saved(false)?))
    }

    fn rulesets(&self) -> Result<(Ruleset, Ruleset), String> {
        let live = live_saved(true)?;
        let new = self.new.clone().unwrap_or_default();
        let after = Saved {
            v4: splice(&live.v4, &new.v4),
            v6: splice(&live.v6, &new.v6),
            ipset: splice_sets(&live.ipset, &new.ipset),
        };
        Ok((read(&live)?, read(&after)?))
    }

    fn rollback(&self) -> Result<String, String> {
        let old = live_saved(false)?;
        let new = self.new.clone().unwrap_or_default();
        Ok(rollback_script(&old, &new))
    }

    fn run(&self, script: &str) -> Result<(), String> {
        run_tool("sh", &["-s"], script)
    }
}

/// A shell script that brings back `old` after `new` was loaded: portolan's chains with their
/// old rules (declaring a chain in `--noflush` mode empties it), the old jumps, chains and
/// jumps only `new` has removed, static ipsets swapped back to their old content. DNS-filled
/// ipsets are left as they are.
fn rollback_script(old: &Saved, new: &Saved) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# portolan apply: portolan's iptables chains and ipsets as they were before\nset -u\n",
    );
    let old_sets = creates(&old.ipset);
    let mut tmp = Vec::new();
    s.push_str("ipset -exist restore <<'PORTOLAN_IPSET_END'\n");
    for (name, create) in old_sets.iter().filter(|(_, c)| !timed(c)) {
        let t = format!("portolan-rb-{:08x}", fnv32(name));
        let _ = writeln!(s, "{create}");
        let _ = writeln!(s, "{}", create.replacen(name, &t, 1));
        let _ = writeln!(s, "flush {t}");
        for l in old.ipset.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if let ["add", n, elem, ..] = w[..] {
                if n == *name {
                    let _ = writeln!(s, "add {t} {elem}");
                }
            }
        }
        let _ = writeln!(s, "swap {t} {name}");
        tmp.push(t);
    }
    s.push_str("PORTOLAN_IPSET_END\n");
    for (fam_old, fam_new, restore, tool) in [
        (&old.v4, &new.v4, "iptables-restore", "iptables"),
        (&old.v6, &new.v6, "ip6tables-restore", "ip6tables"),
    ] {
        let old_chains: Vec<&str> = fam_old
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .filter_map(|r| r.split_whitespace().next())
            .filter(|c| c.starts_with(CHAIN))
            .collect();
        let _ = writeln!(s, "{restore} --noflush <<'PORTOLAN_RULES_END'\n*filter");
        for c in &old_chains {
            let _ = writeln!(s, ":{c} - [0:0]");
        }
        for l in fam_old
            .lines()
            .filter(|l| l.starts_with(&format!("-A {CHAIN}")))
        {
            let _ = writeln!(s, "{l}");
        }
        s.push_str("COMMIT\nPORTOLAN_RULES_END\n");
        // Jumps the new rules added and the old did not have; then the old ones, in place.
        let jumps = |text: &str| -> BTreeSet<(String, String)> {
            text.lines()
                .filter(|l| {
                    ours_line(l) && l.starts_with("-A ") && !l.starts_with(&format!("-A {CHAIN}"))
                })
                .filter_map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    let j = w.iter().position(|x| *x == "-j")?;
                    Some((w.get(1)?.to_string(), w.get(j + 1)?.to_string()))
                })
                .collect()
        };
        let (oj, nj) = (jumps(fam_old), jumps(fam_new));
        for (from, to) in nj.difference(&oj) {
            let _ = writeln!(s, "while {tool} -D {from} -j {to} 2>/dev/null; do :; done");
        }
        for (from, to) in &oj {
            let _ = writeln!(
                s,
                "{tool} -C {from} -j {to} 2>/dev/null || {tool} -I {from} 1 -j {to}"
            );
        }
        let new_only: BTreeSet<&str> = fam_new
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .filter_map(|r| r.split_whitespace().next())
            .filter(|c| c.starts_with(CHAIN) && !old_chains.contains(c))
            .collect();
        for c in new_only {
            let _ = writeln!(s, "{tool} -F {c} 2>/dev/null; {tool} -X {c} 2>/dev/null");
        }
    }
    for t in tmp {
        let _ = writeln!(s, "ipset destroy {t} 2>/dev/null");
    }
    s.push_str("true\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:PORTOLAN-INPUT - [0:0]\n:ADMIN - [0:0]\n-A INPUT -j PORTOLAN-INPUT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A PORTOLAN-INPUT -m set --match-set pt4-role-admin src -p tcp -m tcp --dport 8443 -j RETURN\n-A PORTOLAN-INPUT -m set --match-set pt4-dns-x src -p tcp -m tcp --dport 443 -j RETURN\n-A PORTOLAN-INPUT -j DROP\nCOMMIT\n";
    const SETS: &str = "create pt4-role-admin hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1234\nadd pt4-role-admin 192.0.2.0/24\ncreate pt4-dns-x hash:ip family inet hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0x99\nadd pt4-dns-x 203.0.113.5 timeout 500\ncreate other hash:ip family inet\ncreate pt4-left-over hash:net family inet\nadd pt4-left-over 10.0.0.0/8\n";

    #[test]
    fn listing_takes_portolans_chains_jumps_and_static_sets_only() {
        let l = listing(&Saved {
            v4: V4.into(),
            v6: String::new(),
            ipset: SETS.into(),
        });
        assert!(l.exists);
        assert_eq!(l.chains["v4 PORTOLAN-INPUT"].len(), 3);
        assert_eq!(l.chains["v4 INPUT (jumps)"], ["-A INPUT -j PORTOLAN-INPUT"]);
        assert!(!l.chains.contains_key("v4 ADMIN"));
        assert_eq!(l.sets["pt4-role-admin"], ["hash:net", "family inet"]);
        assert_eq!(l.sets["pt4-dns-x"], ["hash:ip", "family inet", "timeout"]);
        assert!(!l.sets.contains_key("other"));
        assert!(
            !l.sets.contains_key("pt4-left-over"),
            "a set no rule uses is no part of what is loaded"
        );
        assert!(l.elements["pt4-role-admin"].contains("192.0.2.0/24"));
        assert!(
            !l.elements.contains_key("pt4-dns-x"),
            "DNS-filled: not compared"
        );
    }

    #[test]
    fn splice_replaces_only_portolans_lines_and_keeps_the_admins() {
        let new = "*filter\n:INPUT ACCEPT [0:0]\n:PORTOLAN-INPUT - [0:0]\n:PORTOLAN-OUTPUT - [0:0]\n-A INPUT -j PORTOLAN-INPUT\n-A OUTPUT -j PORTOLAN-OUTPUT\n-A PORTOLAN-INPUT -j DROP\nCOMMIT\n";
        let out = splice(V4, new);
        assert!(out.contains("-A INPUT -p tcp --dport 22 -j ACCEPT"));
        assert!(out.contains(":ADMIN - [0:0]"));
        assert!(
            !out.contains("8443"),
            "the old PORTOLAN rules are gone: {out}"
        );
        assert!(out.contains(":PORTOLAN-OUTPUT - [0:0]"));
        let jump = out.find("-A INPUT -j PORTOLAN-INPUT").expect("jump");
        let admin = out.find("-A INPUT -p tcp --dport 22").expect("admin rule");
        assert!(jump < admin, "the jump comes first: {out}");
        assert_eq!(out.matches("-A INPUT -j PORTOLAN-INPUT").count(), 1);
        assert!(out.contains("-A PORTOLAN-INPUT -j DROP\nCOMMIT"));
        // No filter table yet: the scratch one is taken as it is.
        assert_eq!(splice("", new), new);
    }

    #[test]
    fn rollback_restores_old_chains_and_sets_and_removes_what_only_the_new_had() {
        let old = Saved {
            v4: V4.into(),
            v6: String::new(),
            ipset: SETS.into(),
        };
        let new = Saved {
            v4: "*filter\n:PORTOLAN-INPUT - [0:0]\n:PORTOLAN-FORWARD - [0:0]\n-A INPUT -j PORTOLAN-INPUT\n-A FORWARD -j PORTOLAN-FORWARD\nCOMMIT\n".into(),
            v6: String::new(),
            ipset: String::new(),
        };
        let s = rollback_script(&old, &new);
        assert!(
            s.contains(":PORTOLAN-INPUT - [0:0]\n-A PORTOLAN-INPUT -m set"),
            "{s}"
        );
        assert!(
            s.contains("while iptables -D FORWARD -j PORTOLAN-FORWARD"),
            "{s}"
        );
        assert!(
            s.contains("iptables -F PORTOLAN-FORWARD 2>/dev/null; iptables -X PORTOLAN-FORWARD")
        );
        assert!(s.contains("iptables -C INPUT -j PORTOLAN-INPUT 2>/dev/null || iptables -I INPUT 1 -j PORTOLAN-INPUT"));
        assert!(s.contains("add portolan-rb-") && s.contains(" 192.0.2.0/24\nswap portolan-rb-"));
        assert!(
            !s.contains("203.0.113.5"),
            "DNS-filled ipsets are left alone"
        );
    }
}
