//! The Python tools the tests check outputs with (Aerleon, cfn-lint, checkov, Azure's SDK),
//! from the virtual environment `scripts/tool-venv.sh` makes (the README's test command runs
//! it before the tests; the tests themselves never reach the network).

// Each test crate that includes this module uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The environment: `$PORTOLAN_TOOL_VENV`, else `target/tool-venv`.
pub fn venv() -> PathBuf {
    std::env::var_os("PORTOLAN_TOOL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../tool-venv"))
}

/// A program of the environment, or None (said loudly, and counted as skipped) when the
/// environment could not be made and `PORTOLAN_SKIP_TOOL_TESTS` says so; a test that needs it
/// fails otherwise.
pub fn bin(name: &str) -> Option<PathBuf> {
    let p = venv().join("bin").join(name);
    if p.exists() {
        return Some(p);
    }
    let msg = format!(
        "the tool check needs {} (run scripts/tool-venv.sh: it installs them from PyPI; the README's test command does)",
        p.display()
    );
    if std::env::var_os("PORTOLAN_SKIP_TOOL_TESTS").is_none() {
        panic!("{msg}; set PORTOLAN_SKIP_TOOL_TESTS=1 to skip it explicitly");
    }
    eprintln!("\n!!!!! SKIPPED: {msg}\n");
    if let Some(log) = std::env::var_os("PORTOLAN_SKIPPED_LOG") {
        use std::io::Write;
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_default();
        let name = format!(
            "{exe}::{}",
            std::thread::current().name().unwrap_or("unnamed test")
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
        {
            let _ = writeln!(f, "{name}");
        }
    }
    None
}
