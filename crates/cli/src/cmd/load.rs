//! `portolan load`: render and load the rules in one step, keeping what `sync` and
//! `dns-proxy` put into the DNS-filled sets.
//!
//! nftables: the rendered script replaces `table inet portolan` in one transaction; the
//! addresses currently in its DNS-filled sets (read just before, with their remaining
//! lifetime) are added back inside that same transaction, so no packet ever sees an empty
//! set. iptables: the rendered script never flushes the ipsets of DNS names (it creates them
//! with `-exist`), so their elements survive as they are.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use portolan_core::diag::Diagnostic;
use portolan_core::render;
use portolan_net::sets::Sets;
use portolan_net::{dns_proxy, sync};

use crate::args::{LoadArgs, SetTarget};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_REFUSED};

/// An address kept across the reload: (set, address, seconds left).
pub(crate) type Kept = (String, IpAddr, Option<u64>);

/// The DNS-filled sets of the plan, as the target names them.
pub(crate) fn dynamic_sets(plan: &portolan_core::plan::Plan, sets: Sets) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for t in sync::targets(plan, sets) {
        names.extend(t.sets_v4);
        names.extend(t.sets_v6);
    }
    for w in dns_proxy::wildcards(plan, sets) {
        names.extend(w.sets_v4);
        names.extend(w.sets_v6);
    }
    names
}

/// The elements of `sets` in the loaded table, from `nft -j list table` (none if there is
/// no table yet).
pub(crate) fn current_elements(sets: &BTreeSet<String>) -> Result<Vec<Kept>, String> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", sync::TABLE])
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(Vec::new());
        }
        return Err(format!("nft list table: {}", err.trim()));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("nft list table: unreadable JSON: {e}"))?;
    let mut kept = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        let set = &item["set"];
        let Some(name) = set["name"].as_str() else {
            continue;
        };
        if !sets.contains(name) || set["table"] != sync::TABLE {
            continue;
        }
        for e in set["elem"].as_array().into_iter().flatten() {
            // A plain address, or {"elem": {"val": ..., "timeout": s, "expires": s}}.
            let (val, left) = match e {
                serde_json::Value::String(s) => (s.as_str(), None),
                other => (
                    other["elem"]["val"].as_str().unwrap_or(""),
                    other["elem"]["expires"].as_u64(),
                ),
            };
            // Only what parses as an address goes back into the ruleset.
            if let Ok(a) = val.parse::<IpAddr>() {
                kept.push((name.to_string(), a, left));
            }
        }
    }
    Ok(kept)
}

/// The `add element` lines for the kept addresses.
pub(crate) fn carry_over(kept: &[Kept]) -> String {
    let mut s = String::new();
    if kept.is_empty() {
        return s;
    }
    s.push_str("\n# Addresses that sync and dns-proxy had put into the DNS-filled sets, with the\n# time they had left: added back in the same transaction.\n");
    let mut by_set: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (set, a, left) in kept {
        let e = match left {
            Some(l) => format!("{a} timeout {}s", (*l).max(1)),
            None => a.to_string(),
        };
        by_set.entry(set).or_default().push(e);
    }
    for (set, elems) in by_set {
        for chunk in elems.chunks(500) {
            s.push_str(&format!(
                "add element inet {} {set} {{ {} }}\n",
                sync::TABLE,
                chunk.join(", ")
            ));
        }
    }
    s
}

pub fn run(args: &LoadArgs, rep: &mut Reporter) -> i32 {
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    rep.emit_all(&loaded.plan.warnings);
    let name = match args.target {
        SetTarget::Nftables => "nftables",
        SetTarget::Iptables => "iptables",
    };
    let Some(target) = render::target(name) else {
        rep.emit(&Diagnostic::error(format!("target {name} is not built in")));
        return EXIT_ERROR;
    };
    let out = render::render(&loaded.plan, target);
    rep.emit_all(&out.warnings);
    let sets = args.target.sets();
    let dynamic = dynamic_sets(&loaded.plan, sets);
    let (script, kept) = match args.target {
        SetTarget::Nftables => {
            let kept = match current_elements(&dynamic) {
                Ok(k) => k,
                Err(e) => {
                    rep.emit(&Diagnostic::error(e).with_help(
                        "run as root (CAP_NET_ADMIN) on the host whose firewall this is",
                    ));
                    return EXIT_REFUSED;
                }
            };
            (format!("{}{}", out.text, carry_over(&kept)), kept.len())
        }
        SetTarget::Iptables => (out.text, 0),
    };
    if args.dry_run {
        return match crate::output::write(None, &script) {
            Ok(()) => EXIT_OK,
            Err(d) => {
                rep.emit(&d);
                EXIT_ERROR
            }
        };
    }
    let result = match args.target {
        SetTarget::Nftables => portolan_net::sets::run_tool("nft", &["-f", "-"], &script),
        SetTarget::Iptables => portolan_net::sets::run_tool("sh", &["-s"], &script),
    };
    match result {
        Ok(()) => {
            let what = match args.target {
                SetTarget::Nftables => format!(
                    "loaded table inet {} in one transaction; kept {kept} address(es) in {} DNS-filled set(s)",
                    sync::TABLE,
                    dynamic.len()
                ),
                SetTarget::Iptables => format!(
                    "loaded the PORTOLAN chains and ipsets; the {} DNS-filled ipset(s) keep their addresses",
                    dynamic.len()
                ),
            };
            eprintln!("{what}");
            EXIT_OK
        }
        Err(e) => {
            let help = match args.target {
                SetTarget::Nftables => {
                    "nothing was changed (the load is one transaction); --dry-run shows the script"
                }
                SetTarget::Iptables => {
                    "the script stops at the first failing step (set -eu); --dry-run shows it"
                }
            };
            rep.emit(&Diagnostic::error(e).with_help(help));
            EXIT_REFUSED
        }
    }
}
