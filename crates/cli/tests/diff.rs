//! `portolan diff` between two versions of a catalog profile, golden-tested: the catalog's
//! intra2net and `tests/diff/intra2net-next.toml` (razor gains a port, avfpc is gone,
//! telemetry is new), bound to the intra2net host site. `BLESS=1 cargo test` rewrites the
//! expected files; review the change in the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn diff(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .current_dir(root())
        .arg("diff")
        .args(args)
        .output()
        .expect("run portolan diff");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn golden(name: &str, got: &str) {
    let path = root().join("tests/diff").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, got).expect("bless");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create it)", path.display()));
    assert_eq!(got, want, "{} differs; BLESS=1 to accept", path.display());
}

#[test]
fn two_versions_of_a_profile_differ_in_flows_and_rules() {
    let site = "tests/golden/intra2net-host/site.toml";
    let next = "tests/diff/intra2net-next.toml";
    for (format, file) in [
        ("markdown", "intra2net-next.md"),
        ("json", "intra2net-next.json"),
    ] {
        let (code, out, err) = diff(&["intra2net", next, "--site", site, "--format", format]);
        assert_eq!(code, Some(1), "differences exit 1: {err}");
        golden(file, &out);
    }
    let (_, json, _) = diff(&["intra2net", next, "--site", site, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["flows"]["added"][0]["id"], "telemetry");
    assert_eq!(v["flows"]["removed"][0]["id"], "avfpc");
    assert_eq!(v["flows"]["changed"][0]["id"], "razor");
    assert_eq!(v["flows"]["changed"][0]["changes"][0]["field"], "ports");
    assert!(v["rules"]["added"].as_array().is_some_and(|a| a
        .iter()
        .any(|l| l.as_str().is_some_and(|l| l.contains("2703-2704")))));
}

#[test]
fn a_profile_against_itself_has_no_difference_and_bad_input_exits_2() {
    let (code, out, _) = diff(&["seppmail", "seppmail"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("No flow added") && out.contains("No rule changes"),
        "{out}"
    );
    let (code, _, err) = diff(&["seppmail", "no-such-profile"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such-profile"), "{err}");
    let (code, _, err) = diff(&["seppmail", "seppmail", "--target", "checkpoint"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid value 'checkpoint'"), "{err}");
}
