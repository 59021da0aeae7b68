//! The firewalld target, checked by firewalld's own offline tool: for each host case of the
//! golden sites, the rendered script writes its XML files into a scratch `/etc/firewalld`
//! (a tmpfs in a private mount namespace, seeded with the installed defaults), and
//! `firewall-offline-cmd --check-config` must find nothing to complain about; the
//! `firewall-cmd --permanent` commands (`--part commands`, run through firewall-offline-cmd)
//! must produce the same policies and ipsets as the files.

use std::path::Path;
use std::process::Command;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn render(dir: &Path, part: Option<&str>) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portolan"));
    c.args(["render", "--site", "site.toml", "--target", "firewalld"])
        .current_dir(dir);
    if let Some(p) = part {
        c.args(["--part", p]);
    }
    let out = c.output().expect("render");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Run `script` in a private mount namespace with a scratch /etc/firewalld; its output.
fn in_scratch(script: &str) -> (bool, String) {
    let full = format!(
        "set -e\ncp -a /etc/firewalld /tmp/portolan-fw-base-$$\nmount -t tmpfs none /etc/firewalld\ncp -a /tmp/portolan-fw-base-$$/. /etc/firewalld/\nrm -rf /tmp/portolan-fw-base-$$\n{script}"
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &full])
        .output()
        .expect("unshare");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn tools() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let fw = Command::new("sh")
        .args(["-c", "command -v firewall-offline-cmd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && fw) {
        if std::env::var_os("PORTOLAN_SKIP_KERNEL_TESTS").is_some() {
            eprintln!("\n*** SKIPPED: the firewalld check needs root and firewall-offline-cmd (apt-get install firewalld)\n");
            return false;
        }
        panic!("the firewalld check needs root and firewall-offline-cmd (apt-get install firewalld); scripts/test.sh installs it");
    }
    true
}

const MARK: &str = "@@@PORTOLAN-LIST@@@";

/// A listing without log noise and blank lines, rich rules sorted (their order carries no
/// meaning in firewalld).
fn view(t: &str) -> Vec<String> {
    let mut v: Vec<String> = t
        .lines()
        .filter(|l| !l.starts_with("WARNING") && !l.starts_with("ERROR"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

const LIST: &str = "for p in portolan-in portolan-out; do firewall-offline-cmd --policy $p --list-all 2>/dev/null; done; firewall-offline-cmd --get-ipsets 2>/dev/null";

#[test]
fn firewalld_accepts_the_files_and_the_commands_say_the_same() {
    if !tools() {
        return;
    }
    let mut cases: Vec<_> = std::fs::read_dir(root())
        .expect("golden")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("site.toml").exists())
        .filter(|p| {
            !std::fs::read_to_string(p.join("site.toml"))
                .unwrap_or_default()
                .contains("mode = \"gateway\"")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 3, "a host case per seed");
    for dir in cases {
        let script = render(&dir, None);
        let rules = script.matches("<rule family=").count();
        assert!(rules > 0, "{}: no rule", dir.display());
        let (ok, out) = in_scratch(&format!(
            "sh -s <<'PORTOLAN_TEST_END'\n{script}PORTOLAN_TEST_END\nfirewall-offline-cmd --check-config 2>&1\necho {MARK}\n{LIST}"
        ));
        assert!(ok, "{}: {out}", dir.display());
        let (check, files_view) = out.split_once(MARK).expect("marker");
        let complaints: Vec<&str> = check
            .lines()
            .filter(|l| l.starts_with("WARNING") || l.starts_with("ERROR"))
            .collect();
        assert!(
            complaints.is_empty(),
            "{}: firewalld complains:\n{}",
            dir.display(),
            complaints.join("\n")
        );
        let listed = files_view.matches("rule family=").count();
        assert_eq!(listed, rules, "{}: every rule is loaded", dir.display());

        // The same through the commands.
        let commands = render(&dir, Some("commands"))
            .replace("firewall-cmd --permanent ", "firewall-offline-cmd ")
            .replace("firewall-cmd --reload\n", "");
        let (ok, cmd_view) = in_scratch(&format!(
            "sh -s >/dev/null <<'PORTOLAN_TEST_END'\n{commands}PORTOLAN_TEST_END\n{LIST}"
        ));
        assert!(ok, "{}: commands: {cmd_view}", dir.display());
        assert_eq!(
            view(&cmd_view),
            view(files_view),
            "{}: files and commands differ",
            dir.display()
        );
    }
}
