//! Completions and man pages come from the clap definitions: every subcommand appears, the
//! bash script is valid bash, the man page is roff with a title and every command.

use std::process::Command;

fn portolan(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .output()
        .expect("run portolan");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

const COMMANDS: &[&str] = &[
    "catalog",
    "check",
    "plan",
    "render",
    "load",
    "probe",
    "listen",
    "sync",
    "dns-proxy",
    "audit",
    "import",
    "report",
    "diff",
    "schema",
];

#[test]
fn completions_name_every_command_and_bash_parses_them() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, text) = portolan(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}");
        for c in COMMANDS {
            assert!(text.contains(c), "{shell} completions lack {c}");
        }
    }
    let (_, bash) = portolan(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("portolan.bash");
    std::fs::write(&f, bash).expect("write");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&f)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_pages_cover_the_tool_and_each_command() {
    let (code, page) = portolan(&["man"]);
    assert_eq!(code, Some(0));
    assert!(page.contains(".TH portolan 1"), "{page}");
    for c in COMMANDS {
        // roff escapes the hyphen.
        assert!(
            page.contains(&c.replace('-', "\\-")),
            "the man page lacks {c}"
        );
    }
    let (code, sync) = portolan(&["man", "sync"]);
    assert_eq!(code, Some(0));
    assert!(
        sync.contains(".TH portolan-sync 1") && sync.contains("min\\-refresh"),
        "{sync}"
    );
    let (code, _) = portolan(&["man", "no-such-command"]);
    assert_eq!(code, Some(2));
}
