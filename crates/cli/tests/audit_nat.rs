//! The audit against a real kernel where rulesets rewrite or hide things: a perimeter
//! gateway that forwards public ports to the appliance with DNAT (internet -> firewall ->
//! appliance, three namespaces), a ruleset with `notrack`, and a ruleset loaded with
//! iptables-nft, which `nft -j` shows as opaque `xt` expressions. Each audit verdict is
//! checked against real connections.

mod netns;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use netns::*;
use serde_json::Value;

const APP: &str = "192.0.2.10";
const OUTSIDE: &str = "203.0.113.10";
const ADMIN: &str = "198.51.100.140";
/// The firewall's own address on the internet side, which the perimeter translates.
const PUBLIC: &str = "203.0.113.1";

const PROFILE: &str = r#"
id = "nat-test"
name = "Appliance behind a DNAT perimeter"
vendor = "portolan tests"

[[flows]]
id = "smtp-in"
function = "mail from the internet"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [25]

[[flows]]
id = "https-in"
function = "web access from the internet"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [443]

[[flows]]
id = "imaps-in"
function = "IMAPS from the internet"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [993]

[[flows]]
id = "ssh-in"
function = "SSH from the admins"
from = "admin"
to = "appliance"
protocols = ["tcp"]
ports = [22]
"#;

fn site(topo: &Topology) -> String {
    format!(
        r#"
profile = "nat-test.toml"
[appliance]
addresses = ["{APP}"]
public = ["{PUBLIC}"]
[roles]
internal = ["192.0.2.0/24", "198.51.100.0/24"]
admin = ["198.51.100.128/25"]
[placement]
mode = "gateway"
appliance_interface = "{}"
default_interface = "{}"
[placement.zones]
admin = "{}"
"#,
        topo.fw_if(Zone::App),
        topo.fw_if(Zone::Wan),
        topo.fw_if(Zone::Adm),
    )
}

/// The perimeter: port 25 and 993 (from public 9993) are forwarded to the appliance and
/// allowed to it; 443 is allowed to the appliance but nothing translates it; the admins
/// reach the appliance directly.
fn perimeter(topo: &Topology) -> String {
    let wan = topo.fw_if(Zone::Wan);
    format!(
        "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d {PUBLIC}/32 -i {wan} -p tcp -m tcp --dport 25 -j DNAT --to-destination {APP}
-A PREROUTING -d {PUBLIC}/32 -i {wan} -p tcp -m tcp --dport 993 -j DNAT --to-destination {APP}:9993
-A POSTROUTING -o {wan} -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -d {APP}/32 -p tcp -m tcp --dport 25 -j ACCEPT
-A FORWARD -d {APP}/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A FORWARD -d {APP}/32 -p tcp -m tcp --dport 9993 -j ACCEPT
-A FORWARD -s 198.51.100.128/25 -d {APP}/32 -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_string_lossy().to_string()
}

fn restore(topo: &Topology, zone: Zone, tool: &str, text: &str, dir: &Path) {
    let path = write(dir, &format!("{tool}.in"), text);
    let o = sh(&[
        "ip",
        "netns",
        "exec",
        &topo.ns(zone),
        "sh",
        "-c",
        &format!("{tool} < {path}"),
    ]);
    assert!(
        o.status.success(),
        "{tool}: {}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `portolan audit` inside `ns` (for `--live`) or outside; the JSON report.
fn audit(ns: Option<&str>, dir: &Path, args: &[&str]) -> Value {
    let bin = env!("CARGO_BIN_EXE_portolan");
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => Command::new(bin),
    };
    let o = cmd
        .current_dir(dir)
        .args(["audit", "--site", "site.toml", "--format", "json"])
        .args(args)
        .output()
        .expect("run portolan");
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "portolan audit {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn verdict(r: &Value, id: &str) -> String {
    r["flows"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id))
        .and_then(|f| f["verdict"].as_str())
        .unwrap_or_else(|| panic!("no verdict for {id}: {r}"))
        .to_string()
}

/// Connect from a namespace; `true` when the appliance's listener answered.
fn reaches_appliance(topo: &Topology, from: Zone, src: &str, dst: &str, port: u16) -> bool {
    let src: IpAddr = src.parse().expect("address");
    let dst = SocketAddr::new(dst.parse().expect("address"), port);
    in_ns(&topo.ns(from), move || {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("socket");
        s.bind(&SocketAddr::new(src, 0).into()).expect("bind");
        if s.connect_timeout(&dst.into(), Duration::from_millis(1500))
            .is_err()
        {
            return false;
        }
        let mut t = TcpStream::from(s);
        t.set_read_timeout(Some(Duration::from_millis(1500))).ok();
        let mut buf = [0u8; 32];
        let n = t.read(&mut buf).unwrap_or(0);
        buf[..n].starts_with(b"portolan-test")
    })
}

/// The namespaces (appliance, firewall, internet, admin) and a directory with the profile.
fn setup() -> (Topology, tempfile::TempDir) {
    let topo = Topology::build(&[
        (APP.parse().expect("a"), Zone::App),
        (OUTSIDE.parse().expect("a"), Zone::Wan),
        (ADMIN.parse().expect("a"), Zone::Adm),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "nat-test.toml", PROFILE);
    (topo, dir)
}

/// Listeners on the appliance's address.
fn listen(topo: &Topology, ports: &[u16]) -> Listeners {
    let app: IpAddr = APP.parse().expect("a");
    Listeners::start(
        &ports
            .iter()
            .map(|p| (topo.ns(Zone::App), app, Proto::Tcp, *p))
            .collect(),
    )
}

#[test]
fn dnat_gateway_audit_matches_real_connections() {
    if !require_root_tools() {
        return;
    }
    let (topo, dir) = setup();
    write(dir.path(), "site.toml", &site(&topo));
    restore(
        &topo,
        Zone::Fw,
        "iptables-restore",
        &perimeter(&topo),
        dir.path(),
    );
    let _listen = listen(&topo, &[22, 25, 443, 993, 9993]);

    // The audit, from iptables-save and from the live kernel (iptables-nft: --live reads
    // iptables-save for those tables).
    let saved = topo.exec(Zone::Fw, &["iptables-save"]);
    assert!(saved.status.success());
    write(
        dir.path(),
        "fw.rules",
        &String::from_utf8_lossy(&saved.stdout),
    );
    let from_file = audit(None, dir.path(), &["--ruleset", "fw.rules"]);
    let live = audit(Some(&topo.ns(Zone::Fw)), dir.path(), &["--live"]);

    // What really happens: from the internet to the public address; from the admins to the
    // appliance itself.
    let real = [
        (
            "smtp-in",
            reaches_appliance(&topo, Zone::Wan, OUTSIDE, PUBLIC, 25),
        ),
        (
            "https-in",
            reaches_appliance(&topo, Zone::Wan, OUTSIDE, PUBLIC, 443),
        ),
        (
            "imaps-in",
            reaches_appliance(&topo, Zone::Wan, OUTSIDE, PUBLIC, 993),
        ),
        (
            "ssh-in",
            reaches_appliance(&topo, Zone::Adm, ADMIN, APP, 22),
        ),
    ];
    let mut table = Vec::new();
    for (id, passed) in real {
        for (what, r) in [("iptables-save", &from_file), ("--live", &live)] {
            let v = verdict(r, id);
            table.push(format!("{id}: kernel {passed}, audit ({what}) {v}"));
            let want = if passed { "allowed" } else { "blocked" };
            assert_eq!(v, want, "{id} ({what}): the kernel says {passed}\n{r:#}");
        }
    }
    eprintln!("{}", table.join("\n"));
    // Both outcomes occur, so the comparison can fail either way.
    assert!(real.iter().any(|(_, p)| *p) && real.iter().any(|(_, p)| !*p));
    let https = from_file["flows"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == "https-in"))
        .expect("https-in");
    assert!(
        https["example"]["dropped_by"]["at"]
            .as_str()
            .is_some_and(|a| a.contains("no DNAT rule")),
        "{https}"
    );
}

#[test]
fn notrack_in_nft_is_never_called_blocked_where_the_kernel_passes() {
    if !require_root_tools() {
        return;
    }
    let (topo, dir) = setup();
    // No public address: this firewall only filters.
    write(
        dir.path(),
        "site.toml",
        &site(&topo).replace(&format!("public = [\"{PUBLIC}\"]"), ""),
    );
    let rules = "table inet raw {
  chain pre { type filter hook prerouting priority raw; policy accept;
    tcp dport 25 notrack
    tcp sport 25 notrack
  }
}
table inet f {
  chain fw_forward { type filter hook forward priority 0; policy drop;
    ct state established,related,untracked accept
    tcp dport 443 accept
  }
}
";
    let path = write(dir.path(), "rules.nft", rules);
    let o = topo.exec(Zone::Fw, &["nft", "-f", &path]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _listen = listen(&topo, &[22, 25, 443, 993]);
    let dump = topo.exec(Zone::Fw, &["nft", "-j", "list", "ruleset"]);
    write(
        dir.path(),
        "fw.json",
        &String::from_utf8_lossy(&dump.stdout),
    );
    let r = audit(None, dir.path(), &["--ruleset", "fw.json"]);
    let smtp = reaches_appliance(&topo, Zone::Wan, OUTSIDE, APP, 25);
    let https = reaches_appliance(&topo, Zone::Wan, OUTSIDE, APP, 443);
    let imaps = reaches_appliance(&topo, Zone::Wan, OUTSIDE, APP, 993);
    assert!(
        smtp && https && !imaps,
        "the kernel: untracked SMTP and HTTPS pass, IMAPS not (got {smtp}, {https}, {imaps})"
    );
    // Untracked: the audit says it cannot tell, never "blocked".
    assert_eq!(verdict(&r, "smtp-in"), "unknown", "{r:#}");
    assert_eq!(verdict(&r, "https-in"), "allowed");
    assert_eq!(verdict(&r, "imaps-in"), "blocked");
}

#[test]
fn iptables_nft_ruleset_audits_the_same_from_nft_live_as_from_iptables_save() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[(APP.parse().expect("a"), Zone::App)]);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "nat-test.toml", PROFILE);
    write(dir.path(), "site.toml", &site(&topo));
    // Matches iptables-nft cannot express natively (`-m recent`, `-m addrtype`,
    // `-m conntrack`), next to ones it can.
    let rules = format!(
        "{}*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -m addrtype --dst-type MULTICAST -j DROP
COMMIT
",
        perimeter(&topo).replace(
            "-A FORWARD -d 192.0.2.10/32 -p tcp -m tcp --dport 9993 -j ACCEPT",
            "-A FORWARD -p tcp -m tcp --dport 9993 -m recent --name scanners --rcheck -j DROP\n-A FORWARD -d 192.0.2.10/32 -p tcp -m tcp --dport 9993 -j ACCEPT"
        )
    );
    restore(&topo, Zone::Fw, "iptables-restore", &rules, dir.path());
    let saved = topo.exec(Zone::Fw, &["iptables-save"]);
    write(
        dir.path(),
        "fw.rules",
        &String::from_utf8_lossy(&saved.stdout),
    );
    let nft = topo.exec(Zone::Fw, &["nft", "-j", "list", "ruleset"]);
    write(dir.path(), "fw.json", &String::from_utf8_lossy(&nft.stdout));
    let from_save = audit(None, dir.path(), &["--ruleset", "fw.rules"]);
    let from_nft = audit(None, dir.path(), &["--ruleset", "fw.json"]);
    let live = audit(Some(&topo.ns(Zone::Fw)), dir.path(), &["--live"]);

    // nft alone cannot read the xt expressions, and says what to run instead.
    let notes = from_nft["notes"].to_string();
    assert!(
        notes.contains("iptables-nft") && notes.contains("iptables-save"),
        "{notes}"
    );
    let ids = ["smtp-in", "https-in", "imaps-in", "ssh-in"];
    let v_save: Vec<String> = ids.iter().map(|i| verdict(&from_save, i)).collect();
    let v_live: Vec<String> = ids.iter().map(|i| verdict(&live, i)).collect();
    assert_eq!(v_live, v_save, "--live must read what iptables-save reads");
    assert_eq!(
        v_save,
        ["allowed", "blocked", "allowed-unless", "allowed"],
        "{from_save:#}"
    );
    assert!(live["ruleset_format"]
        .as_str()
        .is_some_and(|f| f.contains("iptables-save")));
}
