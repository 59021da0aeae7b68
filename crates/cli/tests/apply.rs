//! `portolan apply` on a real kernel, in network namespaces (the appliance's namespace is the
//! host apply runs on; management connections come from the admin zone through the
//! firewall namespace):
//! - an apply that is not confirmed rolls back within the window plus 2 s, also when the
//!   apply process is killed with SIGKILL; a confirmed one stays;
//! - an apply whose rules would drop the connection managing the host (SSH_CONNECTION, or an
//!   established connection to a port a process called `sshd` listens on) is refused, the
//!   connection still works, and with --force the same rules do drop new connections (so the
//!   refusal was right);
//! - applying the same site twice changes nothing and keeps what sync put into DNS sets;
//!   --dry-run exits 0 without and 1 with changes.

mod netns;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use netns::*;

const APP: &str = "192.0.2.10";
const ADMIN: &str = "198.51.100.130";

const PROFILE: &str = r#"
id = "apply-test"
name = "Apply test appliance"
vendor = "portolan tests"
[features.remote-admin]
description = "administration from the admin network"
[[flows]]
id = "admin-ssh"
function = "administration"
from = "admin"
to = "appliance"
protocols = ["tcp"]
ports = [2222]
feature = "remote-admin"
[[flows]]
id = "updates"
function = "updates"
from = "appliance"
to = "update.vendor.example"
protocols = ["tcp"]
ports = [443]
[[flows]]
id = "smtp-in"
function = "mail"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [25]
"#;

const SITE: &str = "profile = \"profile.toml\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n[roles]\nadmin = [\"198.51.100.128/25\"]\n";

struct Lab {
    topo: Topology,
    dir: PathBuf,
    /// `nftables` or `iptables`.
    target: &'static str,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lab(target: &'static str) -> Option<Lab> {
    if !require_root_tools() {
        return None;
    }
    let mut topo = Topology::build(&[]);
    topo.add_addr(APP.parse().expect("ip"), Zone::App);
    topo.add_addr(ADMIN.parse().expect("ip"), Zone::Adm);
    let dir = std::env::temp_dir().join(format!("portolan-apply-{}", topo.id));
    std::fs::create_dir_all(dir.join("run")).expect("dir");
    std::fs::write(dir.join("site.toml"), SITE).expect("site");
    std::fs::write(dir.join("profile.toml"), PROFILE).expect("profile");
    Some(Lab { topo, dir, target })
}

impl Lab {
    fn site(&self) -> String {
        self.dir.join("site.toml").to_string_lossy().to_string()
    }
    /// `portolan apply` in the appliance namespace, with this lab's run directory and no
    /// SSH_CONNECTION from whoever runs the tests.
    fn apply_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.topo.ns(Zone::App)])
            .arg(env!("CARGO_BIN_EXE_portolan"))
            .arg("apply")
            .args(args)
            .args(if args.contains(&"--confirm-now") {
                vec![]
            } else {
                vec!["--target", self.target]
            })
            .env("PORTOLAN_RUN_DIR", self.dir.join("run"))
            .env_remove("SSH_CONNECTION")
            .stdin(Stdio::null());
        c
    }
    fn apply(&self, args: &[&str]) -> Output {
        self.apply_cmd(args).output().expect("run apply")
    }
    /// What is loaded: portolan's nftables table, or the filter tables (without the
    /// timestamp comments of iptables-save).
    fn table(&self) -> String {
        let o = if self.target == "nftables" {
            self.topo.exec(
                Zone::App,
                &["nft", "-s", "list", "table", "inet", "portolan"],
            )
        } else {
            self.topo.exec(
                Zone::App,
                &[
                    "sh",
                    "-c",
                    "iptables-save -t filter; ip6tables-save -t filter",
                ],
            )
        };
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }
    fn connect(&self, port: u16) -> Option<TcpStream> {
        let sa = SocketAddr::new(APP.parse().expect("ip"), port);
        in_ns(&self.topo.ns(Zone::Adm), move || {
            TcpStream::connect_timeout(&sa, Duration::from_secs(1)).ok()
        })
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The admin flow (port 2222) is on with `--features all`, off with the site's own list.
const WITH_ADMIN: &[&str] = &["--features", "all"];

#[test]
fn unconfirmed_apply_rolls_back_in_time_even_when_killed_and_a_confirmed_one_stays_nftables() {
    rollback_case("nftables");
}

#[test]
fn unconfirmed_apply_rolls_back_in_time_even_when_killed_and_a_confirmed_one_stays_iptables() {
    rollback_case("iptables");
}

fn rollback_case(target: &'static str) {
    let Some(lab) = lab(target) else {
        return;
    };
    let site = lab.site();
    let o = lab.apply(&["--site", &site]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!lab.table().contains("2222"), "the admin flow is off");

    // Not confirmed: the apply waits, sees the rollback, exits 1.
    let start = Instant::now();
    let o = lab.apply(&["--site", &site, "--features", "all", "--confirm", "2s"]);
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("previous rules are back"),
        "{}",
        text(&o)
    );
    assert!(!lab.table().contains("2222"), "rolled back");
    assert!(took < Duration::from_secs(4), "rolled back after {took:?}");

    // Killed with SIGKILL while waiting: the helper still rolls back within 2 s + 2 s.
    let start = Instant::now();
    let mut child = lab
        .apply_cmd(&["--site", &site, "--features", "all", "--confirm", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn apply");
    let loaded = wait_until(Duration::from_secs(10), || lab.table().contains("2222"));
    assert!(loaded.is_some(), "the new rules were loaded");
    // `ip netns exec` execs portolan: the child is the apply process itself.
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let back = wait_until(Duration::from_secs(8), || !lab.table().contains("2222"));
    let since_start = start.elapsed();
    assert!(back.is_some(), "no rollback after the apply was killed");
    assert!(
        since_start < Duration::from_secs(4) + Duration::from_millis(500),
        "rolled back {since_start:?} after the apply started (window 2 s)"
    );

    // Confirmed from elsewhere: stays after the window.
    let o = lab.apply(&[
        "--site",
        &site,
        "--features",
        "all",
        "--confirm",
        "2s",
        "--no-wait",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = lab.apply(&["--site", &site]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "a second apply while one awaits confirmation is refused: {}",
        text(&o)
    );
    let o = lab.apply(&["--confirm-now"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::thread::sleep(Duration::from_millis(2600));
    assert!(lab.table().contains("2222"), "a confirmed apply stays");
    let o = lab.apply(&["--confirm-now"]);
    assert_eq!(o.status.code(), Some(1), "nothing left to confirm");
}

/// A process named `sshd` listening on the admin port: `sleep`, copied under that name, holding
/// a listening socket made here as its standard input. It never accepts, so connections to it
/// stay established (in its queue) for as long as the test needs them.
fn fake_sshd(lab: &Lab) -> std::process::Child {
    let bin = lab.dir.join("sshd");
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("sleep");
    std::fs::copy(sleep, &bin).expect("copy");
    let sa = SocketAddr::new(APP.parse().expect("ip"), 2222);
    let listener = in_ns(&lab.topo.ns(Zone::App), move || {
        std::net::TcpListener::bind(sa).expect("listen 2222")
    });
    let fd: std::os::fd::OwnedFd = listener.into();
    let child = Command::new(&bin)
        .arg("60")
        .stdin(Stdio::from(fd))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fake sshd");
    let up = wait_until(Duration::from_secs(10), || {
        let o = lab
            .topo
            .exec(Zone::App, &["ss", "-Htlnp", "sport", "= :2222"]);
        String::from_utf8_lossy(&o.stdout).contains("\"sshd\"")
    });
    assert!(up.is_some(), "the fake sshd listens on 2222");
    child
}

#[test]
fn an_apply_that_would_lock_out_the_management_connection_is_refused_nftables() {
    lockout_case("nftables");
}

#[test]
fn an_apply_that_would_lock_out_the_management_connection_is_refused_iptables() {
    lockout_case("iptables");
}

fn lockout_case(target: &'static str) {
    let Some(lab) = lab(target) else {
        return;
    };
    let site = lab.site();
    let mut args = vec!["--site", site.as_str()];
    args.extend(WITH_ADMIN);
    let o = lab.apply(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut sshd = fake_sshd(&lab);
    let _stop = Stop(&mut sshd);
    let mut session = lab.connect(2222).expect("admin connects");

    // Found through sshd's listening port: refused, nothing changed.
    let o = lab.apply(&["--site", &site]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(ADMIN) && err.contains("tcp port 2222") && err.contains("sshd"),
        "{err}"
    );
    assert!(
        err.contains("flow `admin-ssh` (feature `remote-admin`) would allow it"),
        "the error names the missing flow: {err}"
    );
    assert!(lab.table().contains("2222"), "nothing was applied");
    session
        .write_all(b"still here\n")
        .expect("the session works");
    assert!(lab.connect(2222).is_some(), "new connections still pass");

    // Found through SSH_CONNECTION (the session running apply): refused as well.
    let o = lab
        .apply_cmd(&["--site", &site])
        .env("SSH_CONNECTION", format!("{ADMIN} 50000 {APP} 2222"))
        .output()
        .expect("apply");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SSH_CONNECTION"),
        "{}",
        text(&o)
    );

    // The dry run says what it found, changes nothing, and exits 1 (there are changes).
    let o = lab
        .apply_cmd(&["--site", &site, "--dry-run", "--format", "json"])
        .env("SSH_CONNECTION", format!("{ADMIN} 50000 {APP} 2222"))
        .output()
        .expect("apply");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["management"][0]["verdict"], "dropped", "{doc}");
    assert_eq!(doc["outcome"], "dry-run");

    // With --force it goes through, and new admin connections are indeed dropped.
    let o = lab
        .apply_cmd(&["--site", &site, "--force"])
        .env("SSH_CONNECTION", format!("{ADMIN} 50000 {APP} 2222"))
        .output()
        .expect("apply");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        lab.connect(2222).is_none(),
        "the refused rules would have locked the admin out"
    );
    let mut buf = [0u8; 1];
    session
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    // The established session is not reset by the new rules (replies pass).
    let r = session.read(&mut buf);
    assert!(
        !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
}

/// Kills the fake sshd when the test ends, passed or not.
struct Stop<'a>(&'a mut std::process::Child);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The DNS-filled set (nftables) or ipset (iptables) of the IPv4 flow to update.vendor.example.
fn dns_set(lab: &Lab) -> String {
    if lab.target == "iptables" {
        let o = lab.topo.exec(Zone::App, &["ipset", "list", "-n"]);
        return String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|n| n.starts_with("pt4-dns-"))
            .expect("a DNS ipset")
            .to_string();
    }
    let o = lab.topo.exec(
        Zone::App,
        &["nft", "-j", "list", "table", "inet", "portolan"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["set"]["name"].as_str())
        .find(|n| n.starts_with("dns_") && n.ends_with("_v4"))
        .expect("a DNS set")
        .to_string()
}

fn set_has(lab: &Lab, set: &str, addr: &str) -> bool {
    let o = if lab.target == "iptables" {
        lab.topo.exec(Zone::App, &["ipset", "list", set])
    } else {
        lab.topo
            .exec(Zone::App, &["nft", "list", "set", "inet", "portolan", set])
    };
    String::from_utf8_lossy(&o.stdout).contains(addr)
}

/// What sync would have written.
fn add_dns_element(lab: &Lab, set: &str, addr: &str) {
    let o = if lab.target == "iptables" {
        lab.topo
            .exec(Zone::App, &["ipset", "add", set, addr, "timeout", "600"])
    } else {
        let e = format!("{{ {addr} timeout 600s }}");
        lab.topo.exec(
            Zone::App,
            &["nft", "add", "element", "inet", "portolan", set, &e],
        )
    };
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn applying_the_same_site_twice_changes_nothing_and_keeps_dns_elements_nftables() {
    idempotence_case("nftables");
}

#[test]
fn applying_the_same_site_twice_changes_nothing_and_keeps_dns_elements_iptables() {
    idempotence_case("iptables");
}

fn idempotence_case(target: &'static str) {
    let Some(lab) = lab(target) else {
        return;
    };
    let site = lab.site();
    let o = lab.apply(&["--site", &site, "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "changes to make: {}", text(&o));
    let o = lab.apply(&["--site", &site]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let set = dns_set(&lab);
    add_dns_element(&lab, &set, "203.0.113.80");
    let before = lab.table();

    let o = lab.apply(&["--site", &site, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "no change: {}", text(&o));
    let o = lab.apply(&["--site", &site]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no change"),
        "{}",
        text(&o)
    );
    let o = lab.apply(&["--site", &site, "--strict"]);
    assert_eq!(o.status.code(), Some(1), "--strict: {}", text(&o));
    assert_eq!(lab.table(), before, "nothing was reloaded");
    assert!(set_has(&lab, &set, "203.0.113.80"));

    // A real change reloads the table and still keeps the element.
    let o = lab.apply(&["--site", &site, "--features", "all", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["outcome"], "applied");
    if target == "nftables" {
        assert_eq!(doc["kept"], "kept 1 address(es) in DNS-filled sets");
    }
    assert!(
        doc["changes"]["rules_added"].as_array().is_some_and(|a| a
            .iter()
            .any(|r| r[1].as_str().is_some_and(|t| t.contains("2222")))),
        "{doc}"
    );
    assert!(
        set_has(&lab, &set, "203.0.113.80"),
        "kept across the reload"
    );
}
