//! The built-in catalog against the seed documents in shared/seeds/: every table row is
//! represented by a flow that cites its line, the cited lines say what the flow says (port,
//! protocol), German texts exist for every Intra2net flow, and the known flaws of the sources
//! are recorded and shown by `portolan check`.

mod seeds;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use portolan_core::catalog;
use portolan_core::model::{Condition, Profile, Protocol};

fn seeds() -> PathBuf {
    seeds::dir()
}

fn doc(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(seeds().join(name)).expect("seed document");
    text.lines().map(str::to_string).collect()
}

fn load(id: &str) -> Profile {
    match catalog::load(id) {
        Some(Ok(p)) => p,
        other => panic!("{id}: {:?}", other.map(|r| r.err().map(|e| e.to_string()))),
    }
}

fn cited(p: &Profile, src: &str) -> BTreeSet<u32> {
    p.flows
        .iter()
        .filter_map(|f| f.source_lines.get(src).copied())
        .collect()
}

#[test]
fn every_catalog_entry_parses_and_names_its_document() {
    for id in catalog::ids() {
        let p = load(id);
        assert_eq!(p.id, id);
        assert!(!p.sources.is_empty(), "{id} names no source document");
        for s in &p.sources {
            let d = s.document.as_deref().expect("document file named");
            assert!(seeds().join(d).exists(), "{id}: {d} not in shared/seeds");
        }
        for f in &p.flows {
            assert!(!f.source_lines.is_empty(), "{id}/{}: no source line", f.id);
        }
    }
}

/// Intra2net: each line with a protocol in either table is a row; both languages are cited.
#[test]
fn intra2net_rows_are_all_represented_in_both_languages() {
    let p = load("intra2net");
    for (src, file) in [
        ("en", "000_00aad6625bd64fff.txt"),
        ("de", "001_6aa6a755a83ef62e.txt"),
    ] {
        let lines = doc(file);
        let rows: BTreeSet<u32> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let l = l.as_str();
                (l.contains("TCP") || l.contains("UDP") || l.contains("ICMP"))
                    && !l.starts_with("Protocol")
                    && !l.starts_with("Protokoll")
                    && !l.contains("Protocol")
                    && !l.contains("Protokoll")
            })
            .map(|(i, _)| i as u32 + 1)
            .collect();
        assert_eq!(
            rows.len(),
            15,
            "{src}: expected 9 outgoing and 6 incoming rows"
        );
        let cited = cited(&p, src);
        let missing: Vec<_> = rows.difference(&cited).collect();
        assert!(
            missing.is_empty(),
            "{src}: rows not in the catalog: {missing:?}"
        );
        // Each cited row names the flow's first port.
        for f in &p.flows {
            let Some(line) = f.source_lines.get(src) else {
                continue;
            };
            let text = &lines[*line as usize - 1];
            if let Some(r) = f.ports.first() {
                if rows.contains(line) {
                    assert!(
                        text.contains(&r.low.to_string()),
                        "{}: line {line} lacks port {}",
                        f.id,
                        r.low
                    );
                }
            }
        }
    }
    for f in &p.flows {
        assert!(f.function_de.is_some(), "{}: no German function text", f.id);
        assert!(
            f.source_lines.contains_key("de"),
            "{}: no line in the German document",
            f.id
        );
    }
}

/// Clearswift: every line that starts a row (a port number first) is cited, and the flow's
/// port and protocol match the row.
#[test]
fn clearswift_rows_are_all_represented() {
    let p = load("clearswift");
    let lines = doc("004_a59427b59fdbda36.txt");
    let rows: BTreeSet<u32> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.split('|').next().is_some_and(|c| {
                !c.trim().is_empty() && c.trim().chars().all(|ch| ch.is_ascii_digit())
            })
        })
        .map(|(i, _)| i as u32 + 1)
        .collect();
    // 48 lines, of which 7 continue a row that was broken over several lines.
    assert_eq!(rows.len(), 41, "the Clearswift table has 41 rows");
    let cited = cited(&p, "en");
    let missing: Vec<_> = rows.difference(&cited).collect();
    assert!(missing.is_empty(), "rows not in the catalog: {missing:?}");
    for f in &p.flows {
        let line = f.source_lines["en"];
        let port: String = lines[line as usize - 1]
            .split('|')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        assert!(
            f.ports.iter().any(|r| r.low.to_string() == port),
            "{}: row {line} is port {port}, flow has {:?}",
            f.id,
            f.ports
        );
        // The row's protocol cell (same line or the next ones) mentions UDP iff the flow is UDP.
        let cell = lines[line as usize - 1..(line as usize + 2).min(lines.len())].join(" ");
        if f.protocols == [Protocol::Udp] {
            assert!(
                cell.contains("UDP"),
                "{}: UDP flow on a row without UDP",
                f.id
            );
        }
    }
    let required: Vec<&str> = p
        .flows
        .iter()
        .filter(|f| f.condition == Condition::Required)
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(required, ["smtp-in", "smtp-out", "dns"]);
}

/// SEPPmail: each description cell is one row; some flow cites a line of that row.
#[test]
fn seppmail_rows_are_all_represented() {
    let p = load("seppmail");
    let lines = doc("003_b145b2f92e3012f7.txt");
    let starts = ["Required", "Enables", "Used", "If ", "For ", "Optional"];
    let descriptions: Vec<u32> = lines
        .iter()
        .enumerate()
        // Below the header (line 7); line 1 is the introduction.
        .filter(|(i, _)| *i >= 7)
        .filter(|(_, l)| starts.iter().any(|s| l.starts_with(s)) || l.starts_with("(new"))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert_eq!(descriptions.len(), 32, "the SEPPmail table has 32 rows");
    let cited = cited(&p, "en");
    for d in descriptions {
        assert!(
            cited.iter().any(|c| *c <= d && d - c <= 5),
            "row with description on line {d} has no flow"
        );
    }
    for f in [
        "licence-support",
        "smtp-from-mail-server",
        "gina",
        "admin-https",
        "dns-internal",
    ] {
        assert!(
            p.flow(f)
                .is_some_and(|f| f.condition == Condition::Required),
            "{f} must be required"
        );
    }
}

/// `portolan check` shows the recorded flaws of each source.
#[test]
fn check_shows_the_source_flaws() {
    let run = |id: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(["check", id])
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        assert_eq!(
            o.status.code(),
            Some(0),
            "check {id} without --strict passes"
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let i = run("intra2net");
    assert!(
        i.contains("*.intra2net.pool.ntp.ntp.org") && i.contains("*.intra2net.pool.ntp.org"),
        "{i}"
    );
    // The source's warning that the addresses behind the names change without notice, and
    // its fallback (wider than the table), are a caveat `check` prints, with the line.
    assert!(
        i.contains("change the IP addresses behind its DNS names")
            && i.contains("never renders it")
            && i.contains("000_00aad6625bd64fff.txt, line 6]"),
        "{i}"
    );
    let c = run("clearswift");
    assert!(
        c.contains("says direction `Out`") && c.contains("SNMP inbound"),
        "{c}"
    );
    assert_eq!(c.matches("were lost from this row").count(), 4, "{c}");
    let s = run("seppmail");
    assert!(s.contains("no function name"), "{s}");
    let strict = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["check", "--strict", "clearswift"])
        .output()
        .expect("run");
    assert_eq!(
        strict.status.code(),
        Some(1),
        "caveats are warnings: --strict exits 1"
    );
}

/// The demo site makes the README's first command work for every catalog entry.
#[test]
fn demo_render_works_for_every_entry_and_target() {
    for id in catalog::ids() {
        for target in ["nftables", "iptables"] {
            let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
                .args([
                    "render",
                    "--profile",
                    id,
                    "--target",
                    target,
                    "--features",
                    "all",
                ])
                .output()
                .expect("run");
            assert_eq!(
                o.status.code(),
                Some(0),
                "{id}/{target}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let text = String::from_utf8_lossy(&o.stdout);
            // Every rule names its flows (host-mode iptables rules RETURN, not ACCEPT).
            assert!(text.contains("\"flows: "), "{id}/{target}: no rules");
            // Documentation addresses only.
            assert!(
                text.contains("192.0.2.") && text.contains("2001:db8:"),
                "{id}/{target}"
            );
        }
    }
}
