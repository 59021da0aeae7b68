//! Golden files: the exact output of `plan` and `render` for every case under tests/golden/.
//!
//! Each case directory holds a `site.toml`; the test runs the real binary in that directory
//! and compares with `plan.json` and `TARGET.EXT` for every target of the table that renders
//! for the case's placement (`nftables.nft`, `iptables.sh`, `fortigate.conf`, ...). `BLESS=1 cargo test`
//! rewrites them; CI runs without BLESS, so any change of output must be reviewed in the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portolan");
    assert!(
        out.status.success(),
        "portolan {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn compare(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .map_or(
                    expected.lines().count().min(actual.lines().count()) + 1,
                    |i| i + 1,
                );
            failures.push(format!(
                "{}: differs from line {line} on (run `BLESS=1 cargo test --test golden` and review the diff)",
                path.display()
            ));
        }
        Err(_) => failures.push(format!(
            "{}: missing (run with BLESS=1 to create it)",
            path.display()
        )),
    }
}

#[test]
fn golden_outputs_match() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("site.toml").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 6,
        "expected a case per seed and placement, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for dir in &cases {
        let plan = run(dir, &["plan", "--site", "site.toml", "--format", "json"]);
        compare(&dir.join("plan.json"), &plan, &mut failures);
        // Every target of the one table that renders for this placement.
        let site = std::fs::read_to_string(dir.join("site.toml")).expect("site");
        let gateway = site.contains("mode = \"gateway\"");
        for t in portolan_core::render::TARGETS {
            let caps = t.capabilities();
            if !(if gateway { caps.gateway } else { caps.host }) {
                continue;
            }
            let out = run(
                dir,
                &["render", "--site", "site.toml", "--target", t.name()],
            );
            compare(
                &dir.join(format!("{}.{}", t.name(), t.extension())),
                &out,
                &mut failures,
            );
        }
        // The German sheet, for the profile with German texts.
        if dir.ends_with("intra2net-host") {
            let out = run(
                dir,
                &[
                    "render",
                    "--site",
                    "site.toml",
                    "--target",
                    "sheet-markdown",
                    "--lang",
                    "de",
                ],
            );
            compare(&dir.join("sheet-markdown.de.md"), &out, &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ:\n{}",
        failures.join("\n")
    );
}

/// The published JSON Schemas are generated from the types; they must not drift.
#[test]
fn published_schemas_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
    let mut failures = Vec::new();
    for kind in ["profile", "site"] {
        let text = run(&dir, &["schema", kind]);
        compare(
            &dir.join(format!("{kind}.schema.json")),
            &text,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
