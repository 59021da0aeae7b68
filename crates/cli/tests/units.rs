//! The systemd units in contrib/ pass systemd's own validator (`systemd-analyze verify`,
//! with no complaint at all), and every option they give portolan exists.

use std::path::Path;
use std::process::Command;

fn units() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("contrib/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    v.sort();
    assert!(v.len() >= 2, "{v:?}");
    v
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let tool = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        tool.is_ok_and(|o| o.status.success()),
        "systemd-analyze is needed (apt-get install systemd; the README's test command does)"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let mut paths = Vec::new();
    for u in units() {
        // The binary where the test built it; everything else as shipped.
        let text = std::fs::read_to_string(&u)
            .expect("read")
            .replace("/usr/local/bin/portolan", env!("CARGO_BIN_EXE_portolan"));
        let p = dir.path().join(u.file_name().expect("name"));
        std::fs::write(&p, text).expect("write");
        paths.push(p);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("run systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

#[test]
fn every_portolan_option_in_the_units_exists() {
    for u in units() {
        let text = std::fs::read_to_string(&u).expect("read");
        for line in text.lines().filter(|l| l.starts_with("Exec")) {
            let cmd = line.split_once('=').map(|x| x.1).unwrap_or("");
            let words: Vec<&str> = cmd.split_whitespace().collect();
            assert!(words[0].ends_with("/portolan"), "{line}");
            let sub = words[1];
            let help = Command::new(env!("CARGO_BIN_EXE_portolan"))
                .args([sub, "--help"])
                .output()
                .expect("help");
            assert!(
                help.status.success(),
                "{}: no subcommand {sub}",
                u.display()
            );
            let help = String::from_utf8_lossy(&help.stdout);
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                assert!(
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                    "{}: `portolan {sub}` has no option {flag}",
                    u.display()
                );
            }
        }
    }
}
