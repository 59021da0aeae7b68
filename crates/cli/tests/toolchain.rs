//! The declared minimum Rust version (`rust-version` in the workspace) must be true: no
//! dependency may need a newer compiler. (Regression: it said 1.85 while hickory-proto 0.26
//! needs 1.88.) Our own use of the standard library is checked against it by clippy's
//! `incompatible_msrv` lint, which CI runs with `-D warnings`, and by `cargo +1.88 check` of
//! every target in scripts/test.sh.

use std::process::Command;

/// `1.88` and `1.88.0` are the same version.
fn version(v: &str) -> [u64; 3] {
    let mut out = [0; 3];
    for (slot, part) in out.iter_mut().zip(v.split('.')) {
        *slot = part.parse().unwrap_or(0);
    }
    out
}

#[test]
fn declared_rust_version_covers_every_dependency() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = m["packages"].as_array().expect("packages");
    let ours: Vec<&serde_json::Value> = packages.iter().filter(|p| p["source"].is_null()).collect();
    assert!(ours.len() >= 3, "the workspace crates");
    let declared = ours[0]["rust_version"]
        .as_str()
        .expect("the workspace declares rust-version")
        .to_string();
    for p in &ours {
        assert_eq!(
            p["rust_version"].as_str(),
            Some(declared.as_str()),
            "{} must inherit the workspace rust-version",
            p["name"]
        );
    }
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let need = p["rust_version"].as_str()?;
            (version(need) > version(&declared))
                .then(|| format!("{} {} needs Rust {need}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version = {declared} is untrue:\n{}",
        too_new.join("\n")
    );
}
