//! Pinned diagnostics: every bad input under tests/errors/ gives exit code 2 and exactly the
//! message in its `.stderr` file (file:line:col, what is wrong, what to do). `BLESS=1`
//! rewrites the expectations. No case may make portolan panic.

use std::path::Path;
use std::process::Command;

#[test]
fn bad_inputs_give_pinned_errors_and_exit_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/errors");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/errors exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "too few error cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).expect("name");
        let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(["check", name])
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run portolan");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{name}: exit code {:?}, expected 2",
                out.status.code()
            ));
        }
        if stderr.contains("panicked") {
            failures.push(format!("{name}: panicked:\n{stderr}"));
        }
        if !stderr.contains(&format!("{name}:")) {
            failures.push(format!("{name}: the message does not name the file"));
        }
        let expected_path = case.with_extension("stderr");
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&expected_path, &stderr).expect("write expectation");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => failures.push(format!(
                "{name}: message changed\n--- expected\n{expected}\n--- actual\n{stderr}"
            )),
            Err(_) => failures.push(format!(
                "{name}: no {} (run with BLESS=1)",
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `render -o` must not leave a file behind when the input is bad.
#[test]
fn failed_render_writes_no_output_file() {
    let dir = std::env::temp_dir().join(format!("portolan-noout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let site = dir.join("site.toml");
    std::fs::write(&site, "profile = \"intra2net\"\nfeatures = [\"nope\"]\n[appliance]\naddresses = [\"192.0.2.10\"]\n")
        .expect("write site");
    let out_file = dir.join("fw.nft");
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["render", "--target", "nftables", "--site"])
        .arg(&site)
        .arg("-o")
        .arg(&out_file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !out_file.exists(),
        "a failed render left {} behind",
        out_file.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_target_and_profile_are_clear_errors() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, err) = run(&["render", "--profile", "intra2net", "--target", "checkpoint"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("invalid value 'checkpoint' for '--target <TARGET>'")
            && err.contains("possible values: nftables, iptables"),
        "{err}"
    );
    // A vendor target for the appliance's own host: refused, nothing written.
    let (code, err) = run(&["render", "--profile", "intra2net", "--target", "fortigate"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("target fortigate renders for a firewall in front of the appliance")
            && err.contains("mode = \"gateway\""),
        "{err}"
    );
    let (code, err) = run(&["diff", "seppmail", "seppmail", "--target", "pf"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["plan", "--profile", "fortigate"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no profile `fortigate`") && err.contains("clearswift, intra2net, seppmail"),
        "{err}"
    );
    let (code, err) = run(&[
        "plan",
        "--profile",
        "intra2net",
        "--features",
        "smtp-in,fax",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown feature `fax`"), "{err}");
}

#[test]
fn probe_and_listen_reject_bad_options_with_exit_2() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let cases: &[(&[&str], &str)] = &[
        (
            &["probe", "--profile", "intra2net", "--timeout", "soon"],
            "`soon` is not a duration",
        ),
        (
            &["probe", "--profile", "intra2net", "--timeout", "0s"],
            "is not a duration",
        ),
        (
            &[
                "probe",
                "--profile",
                "intra2net",
                "--resolver",
                "dns.example",
            ],
            "not a resolver address",
        ),
        (
            &[
                "probe",
                "--profile",
                "intra2net",
                "--ca",
                "/nonexistent/ca.pem",
            ],
            "cannot read CA file",
        ),
        (
            &["probe", "--profile", "intra2net", "--flows", "nope"],
            "`nope`, which is not a planned flow",
        ),
        (
            &[
                "probe",
                "--profile",
                "intra2net",
                "--inbound",
                "--target",
                "appliance.local",
            ],
            "not an IP address",
        ),
        (
            &["probe", "--profile", "intra2net", "--concurrency", "0"],
            "at least 1",
        ),
        (
            &["listen", "--profile", "intra2net", "--duration", "forever"],
            "not a duration",
        ),
        (
            &["listen", "--profile", "intra2net"],
            "no inbound TCP or UDP flow",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Regression (issue: each diagnostic copied the whole file, and all were printed: a 1 MB
/// profile with 8,000 errors took 36 s). At most 100 are shown, then a count of the rest.
#[test]
fn thousands_of_errors_show_the_first_hundred_and_a_count() {
    let mut text = String::from("id = \"dup\"\nname = \"Dup\"\nvendor = \"V\"\n");
    for i in 0..4000 {
        text.push_str(&format!(
            "[[flows]]\nid = \"same\"\nfunction = \"f{i}\"\nfrom = \"appliance\"\nto = \"Bad_{i}.example.com\"\nprotocols = [\"tcp\"]\nports = [443]\n\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("portolan-many-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("many.toml");
    std::fs::write(&f, &text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("check")
        .arg(&f)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portolan");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert!((1..=100).contains(&shown), "{shown} shown");
    let last = stderr
        .lines()
        .find(|l| l.starts_with("... and "))
        .unwrap_or_else(|| {
            panic!(
                "no count of the rest:\n{}",
                &stderr[stderr.len().saturating_sub(500)..]
            )
        });
    assert!(last.contains("more diagnostic(s) not shown"), "{last}");
    // 4000 duplicate ids (all but the first) and 4000 bad names: every one counted.
    assert!(last.contains("(7999 error(s)"), "{last}");
}

/// Without --site and --profile, the site comes from $PORTOLAN_SITE (or
/// /etc/portolan/site.toml), and the command says which file it used; with none of them it
/// is exit 2 naming all three.
#[test]
fn the_site_defaults_to_portolan_site_and_says_so() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let site = root.join("tests/golden/intra2net-host/site.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["plan", "--format", "json"])
        .env("PORTOLAN_SITE", &site)
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("using the site file") && err.contains("$PORTOLAN_SITE"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"intra2net\""));
    if std::path::Path::new("/etc/portolan/site.toml").exists() {
        eprintln!("NOTE: /etc/portolan/site.toml exists on this host: the no-site error case is not shown");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("plan")
        .env_remove("PORTOLAN_SITE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--site")
            && err.contains("$PORTOLAN_SITE")
            && err.contains("/etc/portolan/site.toml"),
        "{err}"
    );
}

/// `--color always|never|auto`: escape codes only when asked for (or on a terminal).
#[test]
fn color_is_chosen_with_the_color_option() {
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(extra)
            .args(["check", "/nonexistent-portolan.toml"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    assert!(run(&["--color", "always"]).contains("\u{1b}["));
    assert!(!run(&["--color", "never"]).contains('\u{1b}'));
    assert!(
        !run(&[]).contains('\u{1b}'),
        "not a terminal: no colour by default"
    );
}
