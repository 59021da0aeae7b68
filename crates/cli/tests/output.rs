//! `-o FILE`: only regular files are replaced, atomically; `-o -` is standard output.
//!
//! Regression (issue: `import -o /dev/null` as root replaced /dev/null with a regular file):
//! the old writer used a predictable temporary name and renamed over anything.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("portolan-output-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn render_to(out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args([
            "render",
            "--profile",
            "intra2net",
            "--target",
            "nftables",
            "-o",
        ])
        .arg(out)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portolan")
}

fn import_to(out: &Path) -> Output {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/import/kobalt-glued-en.txt");
    Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("import")
        .arg(doc)
        .arg("-o")
        .arg(out)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portolan")
}

fn no_temporaries_left(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn a_device_is_never_replaced() {
    let d = scratch("device");
    let dev = d.join("null");
    // A character device like /dev/null (needs root; the test command runs as root).
    let made = Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        made,
        "mknod failed: this test needs root (the README's test command runs as root)"
    );
    for out in [import_to(&dev), render_to(&dev)] {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{err}");
    }
    let ft = std::fs::symlink_metadata(&dev).expect("meta").file_type();
    assert!(ft.is_char_device(), "the device node was replaced");
    no_temporaries_left(&d);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_symbolic_link_or_directory_is_refused_and_its_target_untouched() {
    let d = scratch("link");
    let target = d.join("precious.conf");
    std::fs::write(&target, "keep me\n").expect("write");
    let link = d.join("link.nft");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = render_to(&link);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me\n");
    assert!(std::fs::symlink_metadata(&link)
        .expect("meta")
        .file_type()
        .is_symlink());
    let sub = d.join("sub");
    std::fs::create_dir(&sub).expect("dir");
    let out = render_to(&sub);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a directory"));
    no_temporaries_left(&d);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_regular_file_is_replaced_whole_and_dash_is_stdout() {
    use std::os::unix::fs::PermissionsExt;
    let d = scratch("regular");
    let f = d.join("rules.nft");
    std::fs::write(&f, "old\n").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = render_to(&f);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&f).expect("read");
    assert!(text.contains("table inet portolan"), "{text}");
    assert_eq!(
        std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777,
        0o640,
        "the mode of the replaced file is kept"
    );
    let fresh = d.join("new.nft");
    assert_eq!(render_to(&fresh).status.code(), Some(0));
    assert_eq!(
        std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    let stdout = render_to(Path::new("-"));
    assert_eq!(stdout.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&stdout.stdout).contains("table inet portolan"));
    assert!(
        !Path::new("-").exists(),
        "`-o -` must not create a file named -"
    );
    no_temporaries_left(&d);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--format json` of render and import carries exactly what the text output is, plus the
/// diagnostics (render) or the report (import).
#[test]
fn render_and_import_json_carry_the_text_output() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portolan"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args(args)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = run(&["render", "--profile", "intra2net", "--target", "iptables"]);
    let json = run(&[
        "render",
        "--profile",
        "intra2net",
        "--target",
        "iptables",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["text"], text.as_str());
    assert_eq!(v["target"], "iptables");
    assert!(v["parts"]["v4"]
        .as_str()
        .is_some_and(|p| p.contains("PORTOLAN-OUTPUT")));
    assert!(v["diagnostics"].as_array().is_some_and(|d| !d.is_empty()));
    let doc = "tests/import/nimbus-bullets-en.txt";
    let draft = run(&["import", doc]);
    let json = run(&["import", doc, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["profile"], draft.as_str());
    assert_eq!(v["report"]["lang"], "en");
    assert!(v["flows"].as_array().is_some_and(|f| !f.is_empty()));
}

/// Regression: `portolan check ... --format json | head -c1` (and apply's listing) used
/// `println!`, which panicked when the reader had closed the pipe.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::Read;
    // More than a pipe holds (64 KiB), so the writer meets the closed pipe.
    let mut check = vec!["check"];
    check.extend(std::iter::repeat_n("clearswift", 60));
    check.extend(["--format", "json"]);
    for args in [
        &check[..],
        &[
            "render",
            "--profile",
            "clearswift",
            "--features",
            "all",
            "--target",
            "nftables",
        ][..],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Read one byte, then close the pipe.
        let mut out = child.stdout.take().expect("stdout");
        let mut b = [0u8; 1];
        let _ = out.read(&mut b);
        drop(out);
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        let status = child.wait().expect("wait");
        assert_ne!(status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
