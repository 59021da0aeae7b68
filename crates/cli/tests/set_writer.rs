//! The set writer (`portolan_net::sets`) against a real kernel, in a namespace of its own:
//! netlink (no `nft`/`ipset` process) writes nftables set elements with timeouts, refreshes
//! them, splits a large update into several transactions, refuses a missing set without
//! writing anything of the transaction, fills ipsets, and skips recent elements only while
//! nobody else has committed.

mod netns;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netns::*;
use portolan_net::sets::{Sets, Writer};
use portolan_net::sync::SetUpdate;

const TABLE: &str = "table inet portolan {
    set dns_a_v4 { type ipv4_addr; flags timeout; }
    set dns_a_v6 { type ipv6_addr; flags timeout; }
}
";

/// A writer in namespace `ns` that records warnings (a warning means it fell back).
fn writer_in(
    ns: &str,
    sets: Sets,
    jobs: Vec<(Vec<SetUpdate>, bool)>,
) -> (Vec<Result<(), String>>, Vec<String>) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w2 = warnings.clone();
    let results = in_ns(ns, move || {
        let mut w = Writer::new(
            sets,
            Box::new(move |m: &str| w2.lock().expect("lock").push(m.to_string())),
        );
        jobs.into_iter()
            .map(|(u, skip)| {
                if u.is_empty() {
                    std::thread::sleep(Duration::from_millis(1500));
                    return Ok(());
                }
                w.write(&u, skip)
            })
            .collect::<Vec<_>>()
    });
    let warnings = warnings.lock().expect("lock").clone();
    (results, warnings)
}

fn update(set: &str, addrs: &[&str], secs: u64) -> SetUpdate {
    SetUpdate {
        set: set.into(),
        addresses: addrs
            .iter()
            .map(|a| a.parse::<IpAddr>().expect("address"))
            .collect(),
        timeout: Duration::from_secs(secs),
    }
}

/// (address, timeout, expires) of each element of a set.
fn elements(topo: &Topology, set: &str) -> Vec<(String, u64, u64)> {
    let out = topo.exec(
        Zone::App,
        &["nft", "-j", "list", "set", "inet", "portolan", set],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut found = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            let e = &e["elem"];
            found.push((
                e["val"].as_str().unwrap_or("").to_string(),
                e["timeout"].as_u64().unwrap_or(0),
                e["expires"].as_u64().unwrap_or(0),
            ));
        }
    }
    found
}

fn load_table(topo: &Topology) {
    let path = std::env::temp_dir().join(format!("{}-table.nft", topo.id));
    std::fs::write(&path, TABLE).expect("write");
    let out = topo.exec(Zone::App, &["nft", "-f", path.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn netlink_writes_refreshes_and_splits_nftables_elements() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[]);
    load_table(&topo);
    let ns = topo.ns(Zone::App);
    let many: Vec<String> = (0..20_000u32)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string())
        .collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let (results, warnings) = writer_in(
        &ns,
        Sets::Nftables,
        vec![
            (
                vec![
                    update("dns_a_v4", &["192.0.2.1", "192.0.2.2"], 100),
                    update("dns_a_v6", &["2001:db8::1"], 100),
                ],
                false,
            ),
            // The same again with a longer timeout, asked for twice (as merged requests
            // may): refreshed to the longer one, not duplicated.
            (
                vec![
                    update("dns_a_v4", &["192.0.2.1"], 300),
                    update("dns_a_v4", &["192.0.2.1"], 250),
                ],
                false,
            ),
        ],
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(warnings.is_empty(), "netlink must be used: {warnings:?}");
    let v4 = elements(&topo, "dns_a_v4");
    assert_eq!(v4.len(), 2, "{v4:?}");
    let one = v4.iter().find(|e| e.0 == "192.0.2.1").expect("192.0.2.1");
    assert_eq!(one.1, 300, "the timeout is refreshed: {v4:?}");
    let two = v4.iter().find(|e| e.0 == "192.0.2.2").expect("192.0.2.2");
    assert_eq!(two.1, 100, "{v4:?}");
    assert_eq!(elements(&topo, "dns_a_v6")[0].0, "2001:db8::1");

    // 20,000 elements: more than one message and one transaction hold.
    let (results, warnings) = writer_in(
        &ns,
        Sets::Nftables,
        vec![(vec![update("dns_a_v4", &many_refs, 600)], false)],
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(elements(&topo, "dns_a_v4").len(), 20_002);
}

#[test]
fn a_missing_set_fails_the_whole_transaction_and_is_named() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[]);
    load_table(&topo);
    // (The writer's first write also writes its first element on its own, to find out how
    // this kernel refreshes timeouts; the transactions after it are all or nothing.)
    let (results, warnings) = writer_in(
        &topo.ns(Zone::App),
        Sets::Nftables,
        vec![
            (vec![update("dns_a_v6", &["2001:db8::7"], 100)], false),
            (
                vec![
                    update("dns_a_v4", &["192.0.2.7"], 100),
                    update("dns_missing_v4", &["192.0.2.8"], 100),
                ],
                false,
            ),
        ],
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(results[0].is_ok(), "{results:?}");
    let e = results[1].as_ref().expect_err("refused");
    assert!(e.contains("dns_missing_v4"), "{e}");
    assert!(e.contains("No such file") || e.contains("no such"), "{e}");
    assert!(
        elements(&topo, "dns_a_v4").is_empty(),
        "nothing of a failed transaction is written"
    );
}

#[test]
fn recent_elements_are_skipped_only_while_nobody_else_commits() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[]);
    load_table(&topo);
    let ns = topo.ns(Zone::App);
    // Written, then (1.5 s later) asked again with skip: left alone, so `expires` has run
    // down below the timeout.
    let (results, _) = writer_in(
        &ns,
        Sets::Nftables,
        vec![
            (vec![update("dns_a_v4", &["192.0.2.20"], 300)], true),
            (vec![], true),
            (vec![update("dns_a_v4", &["192.0.2.20"], 300)], true),
        ],
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let e = elements(&topo, "dns_a_v4");
    // (The first write may add a second to one element: the writer's check of whether a
    // plain add refreshes timeouts in this kernel.)
    assert!(e[0].2 + 1 < e[0].1, "skipped, so not refreshed: {e:?}");

    // Someone else commits (here: flushes the set, as a reload would): the writer notices
    // the new generation and writes again, although the element is recent.
    let ns2 = ns.clone();
    let flush = move || {
        let out = sh(&[
            "ip", "netns", "exec", &ns2, "nft", "flush", "set", "inet", "portolan", "dns_a_v4",
        ]);
        assert!(out.status.success());
    };
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w2 = warnings.clone();
    let results = in_ns(&ns, move || {
        let mut w = Writer::new(
            Sets::Nftables,
            Box::new(move |m: &str| w2.lock().expect("lock").push(m.to_string())),
        );
        let a = w.write(&[update("dns_a_v4", &["192.0.2.21"], 300)], true);
        flush();
        let b = w.write(&[update("dns_a_v4", &["192.0.2.21"], 300)], true);
        vec![a, b]
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let e = elements(&topo, "dns_a_v4");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "192.0.2.21", "written again after the flush: {e:?}");
}

#[test]
fn ipsets_are_filled_and_refreshed_over_netlink() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[]);
    for (name, fam) in [("pt4-dns-a", "inet"), ("pt6-dns-a", "inet6")] {
        let out = topo.exec(
            Zone::App,
            &[
                "ipset", "create", name, "hash:ip", "family", fam, "timeout", "0",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (results, warnings) = writer_in(
        &topo.ns(Zone::App),
        Sets::Ipset,
        vec![
            (
                vec![
                    update("pt4-dns-a", &["198.51.100.1", "198.51.100.2"], 100),
                    update("pt6-dns-a", &["2001:db8::2"], 100),
                ],
                false,
            ),
            (vec![update("pt4-dns-a", &["198.51.100.1"], 500)], false),
            (vec![update("pt4-missing", &["198.51.100.3"], 100)], false),
        ],
    );
    assert!(warnings.is_empty(), "netlink must be used: {warnings:?}");
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    let e = results[2].as_ref().expect_err("missing ipset");
    assert!(e.contains("pt4-missing"), "{e}");
    let list = |name: &str| {
        let out = topo.exec(Zone::App, &["ipset", "list", name]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let v4 = list("pt4-dns-a");
    let timeout_of = |text: &str, addr: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(addr))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        (490..=500).contains(&timeout_of(&v4, "198.51.100.1 ")),
        "{v4}"
    );
    assert!(
        (90..=100).contains(&timeout_of(&v4, "198.51.100.2 ")),
        "{v4}"
    );
    assert!(list("pt6-dns-a").contains("2001:db8::2"));
}

/// The fallback (no netlink): the same elements and timeouts through `nft` and `ipset`, with
/// one warning.
#[test]
fn the_command_line_fallback_writes_the_same() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[]);
    load_table(&topo);
    let out = topo.exec(
        Zone::App,
        &[
            "ipset",
            "create",
            "pt4-dns-b",
            "hash:ip",
            "family",
            "inet",
            "timeout",
            "0",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let (w2, w3) = (warnings.clone(), warnings.clone());
    let results = in_ns(&topo.ns(Zone::App), move || {
        let mut nft = Writer::tools_only(
            Sets::Nftables,
            Box::new(move |m: &str| w2.lock().expect("lock").push(m.to_string())),
        );
        let mut ipset = Writer::tools_only(
            Sets::Ipset,
            Box::new(move |m: &str| w3.lock().expect("lock").push(m.to_string())),
        );
        vec![
            nft.write(&[update("dns_a_v4", &["192.0.2.30"], 100)], false),
            nft.write(&[update("dns_a_v4", &["192.0.2.30"], 200)], false),
            ipset.write(&[update("pt4-dns-b", &["192.0.2.31"], 100)], false),
            nft.write(&[update("dns_nothere_v4", &["192.0.2.32"], 100)], false),
        ]
    });
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert!(
        results[3].as_ref().is_err_and(|e| e.contains("nft")),
        "{results:?}"
    );
    let e = elements(&topo, "dns_a_v4");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0.as_str(), e[0].1), ("192.0.2.30", 200), "{e:?}");
    let list = topo.exec(Zone::App, &["ipset", "list", "pt4-dns-b"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("192.0.2.31 timeout"));
    let w = warnings.lock().expect("lock");
    assert_eq!(w.len(), 2, "one warning per writer: {w:?}");
    assert!(w.iter().all(|m| m.contains("instead")), "{w:?}");
}

/// `portolan load` without the right to change the firewall: exit 3 (refused), not 2 (bad
/// input), with the tool's own words and what to do.
#[test]
fn load_without_privilege_is_refused_with_exit_3() {
    if !require_root_tools() {
        return;
    }
    // A copy nobody can run, outside the build directory.
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("portolan");
    std::fs::copy(env!("CARGO_BIN_EXE_portolan"), &bin).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), bin.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .args(["load", "--profile", "intra2net"])
        .env("NO_COLOR", "1")
        .output()
        .expect("runuser");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("Operation not permitted") && err.contains("root"),
        "{err}"
    );
}
