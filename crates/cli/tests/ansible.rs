//! The Ansible collection (`ansible/ansible_collections/portolan/firewall`) end to end, with
//! ansible-core and ansible-lint from PyPI in the virtual environment the README's test
//! command makes (scripts/ansible-venv.sh). The "hosts" are network namespaces on this
//! machine: `ansible_connection=local`, and every portolan command of the role runs through
//! `portolan_command: "ip netns exec NS portolan"`; each host has its own site file and run
//! directory. Three sites with three catalog profiles and both placements:
//!
//! 1. the playbook applies the rules in every namespace (the tables are there);
//! 2. a second run changes nothing (`changed=0` for every host);
//! 3. `--check --diff` with another feature list shows the rules that would change and
//!    changes nothing (ruleset and site file byte for byte the same);
//! 4. a wrong site fails at the check step with portolan's own message, and the firewall
//!    and the site file stay as they were;
//! 5. `portolan_probe` fails the play with one line per required flow not open;
//! 6. `ansible-lint` passes on the collection and the examples.

mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("PORTOLAN_ANSIBLE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/ansible-venv"));
    if dir.join("bin/ansible-playbook").exists() {
        return Some(dir);
    }
    let msg = format!(
        "ANSIBLE TEST CANNOT RUN: no ansible-playbook in {} (scripts/ansible-venv.sh makes it from PyPI; the README's test command runs it).",
        dir.display()
    );
    netns::skip_loudly("PORTOLAN_SKIP_ANSIBLE_TESTS", &msg);
    None
}

/// Namespaces removed on drop, even when the test fails.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn ruleset(ns: &str) -> String {
    let o = netns::sh(&["ip", "netns", "exec", ns, "nft", "list", "ruleset"]);
    String::from_utf8_lossy(&o.stdout).to_string()
}

struct Run {
    code: i32,
    out: String,
}

fn playbook(venv: &Path, dir: &Path, extra: &[&str]) -> Run {
    let o = Command::new(venv.join("bin/ansible-playbook"))
        .current_dir(dir)
        .args(["-i", "inventory.yml", "site.yml"])
        .args(extra)
        .env("ANSIBLE_COLLECTIONS_PATH", root().join("ansible"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_PYTHON_INTERPRETER", venv.join("bin/python"))
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_HOME", dir.join("ansible-home"))
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_CLIENT")
        .output()
        .expect("run ansible-playbook");
    Run {
        code: o.status.code().unwrap_or(-1),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// `changed=N` of a host in the play recap.
fn changed(out: &str, host: &str) -> usize {
    out.lines()
        .rev()
        .find(|l| l.starts_with(host) && l.contains("changed="))
        .and_then(|l| l.split("changed=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no recap for {host}:\n{out}"))
}

const HOSTS: [&str; 3] = ["mailgw", "utm", "perimeter"];

fn inventory(venv: &Path, dir: &Path, ns: &[String]) -> String {
    let bin = env!("CARGO_BIN_EXE_portolan");
    let host = |i: usize| -> String {
        format!(
            "      portolan_command: \"ip netns exec {} {bin}\"\n      portolan_site_path: {}/{}/site.toml\n      portolan_run_dir: {}/{}/run\n",
            ns[i],
            dir.display(),
            HOSTS[i],
            dir.display(),
            HOSTS[i]
        )
    };
    format!(
        r#"---
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {py}
    portolan_install: none
    portolan_manage_services: false
    portolan_confirm: 60s
  hosts:
    mailgw:
{h0}      portolan_profile: seppmail
      portolan_features: [ntp]
      portolan_addresses: ["192.0.2.10"]
      portolan_roles:
        internal: ["192.0.2.0/24"]
        admin: ["192.0.2.128/26"]
        mail-server: ["192.0.2.25"]
        dns-server: ["192.0.2.53"]
        ntp-server: ["192.0.2.53"]
      portolan_placement:
        mode: host
    utm:
{h1}      portolan_profile: intra2net
      portolan_addresses: ["198.51.100.2", "2001:db8:100::2"]
      portolan_roles:
        internal: ["198.51.100.0/24", "2001:db8:100::/48"]
        dns-server: ["198.51.100.53"]
      portolan_hosts:
        update.intra2net.com: ["203.0.113.80"]
      portolan_placement:
        mode: host
    perimeter:
{h2}      portolan_profile: clearswift
      portolan_features: [ldap]
      portolan_addresses: ["10.20.0.25"]
      portolan_public: ["203.0.113.25"]
      portolan_roles:
        internal: ["10.20.0.0/16"]
        admin: ["10.20.9.0/24"]
        dns-server: ["10.20.0.53"]
        ldap-server: ["10.20.0.10"]
      portolan_placement:
        mode: gateway
        appliance_interface: dmz0
        default_interface: wan0
        zones:
          internal: lan0
          admin: lan0
          dns-server: lan0
          ldap-server: lan0
"#,
        py = venv.join("bin/python").display(),
        h0 = host(0),
        h1 = host(1),
        h2 = host(2),
    )
}

const PLAYBOOK: &str = r#"---
- name: Firewall every appliance
  hosts: all
  gather_facts: false
  roles:
    - role: portolan.firewall.portolan

- name: Probe the mail gateway's DNS flow (nothing answers in its namespace)
  hosts: mailgw
  gather_facts: false
  tasks:
    - name: Probe
      portolan.firewall.portolan_probe:
        site: "{{ portolan_site_path }}"
        command: "{{ portolan_command }}"
        flows: [dns-internal]
        timeout: 1s
      register: probe
      ignore_errors: true
    - name: The probe failed the task with one line per flow
      ansible.builtin.assert:
        that:
          - probe is failed
          - "'dns-internal' in probe.msg"
          - probe.results | length > 0
          - probe.failed_flows | length > 0
"#;

#[test]
fn the_collection_drives_a_fleet_of_namespaces() {
    let Some(venv) = venv() else {
        return;
    };
    assert!(
        netns::euid_is_root(),
        "the Ansible test makes network namespaces: it needs root"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let id = std::process::id() % 100_000;
    let ns = Namespaces(HOSTS.iter().map(|h| format!("pa{id}{h}")).collect());
    for n in &ns.0 {
        let o = netns::sh(&["ip", "netns", "add", n]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        netns::sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
    }
    for h in HOSTS {
        std::fs::create_dir_all(dir.path().join(h)).expect("mkdir");
    }
    std::fs::write(
        dir.path().join("inventory.yml"),
        inventory(&venv, dir.path(), &ns.0),
    )
    .expect("write");
    std::fs::write(dir.path().join("site.yml"), PLAYBOOK).expect("write");

    // 1. Apply.
    let r = playbook(&venv, dir.path(), &[]);
    assert_eq!(r.code, 0, "first run:\n{}", r.out);
    for (i, h) in HOSTS.iter().enumerate() {
        let rules = ruleset(&ns.0[i]);
        assert!(
            rules.contains("table inet portolan"),
            "{h}: no rules:\n{rules}"
        );
        assert!(
            changed(&r.out, h) > 0,
            "{h}: the first run changes something"
        );
        assert!(dir.path().join(h).join("site.toml").exists());
    }
    assert!(
        ruleset(&ns.0[2]).contains("dmz0"),
        "the perimeter has gateway rules"
    );

    // 2. Again: nothing changes.
    let before: Vec<String> = ns.0.iter().map(|n| ruleset(n)).collect();
    let r = playbook(&venv, dir.path(), &[]);
    assert_eq!(r.code, 0, "second run:\n{}", r.out);
    for (i, h) in HOSTS.iter().enumerate() {
        assert_eq!(
            changed(&r.out, h),
            0,
            "{h}: the second run changed something:\n{}",
            r.out
        );
        assert_eq!(ruleset(&ns.0[i]), before[i], "{h}: ruleset changed");
    }
    assert!(
        !r.out.contains("RUNNING HANDLER"),
        "no input changed, no handler runs:\n{}",
        r.out
    );

    // 3. Check mode with another feature list: shown, not done.
    let site0 = std::fs::read_to_string(dir.path().join("mailgw/site.toml")).expect("site");
    let r = playbook(
        &venv,
        dir.path(),
        &[
            "--check",
            "--diff",
            "--limit",
            "mailgw",
            "-e",
            r#"{"portolan_features": ["ntp", "snmp"]}"#,
        ],
    );
    assert_eq!(r.code, 0, "check mode:\n{}", r.out);
    assert!(
        r.out.contains("rules_added"),
        "the rules that would change are shown:\n{}",
        r.out
    );
    assert!(r.out.contains("snmp"), "{}", r.out);
    assert_eq!(
        ruleset(&ns.0[0]),
        before[0],
        "check mode changed the ruleset"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mailgw/site.toml")).expect("site"),
        site0,
        "check mode changed the site file"
    );

    // 4. A wrong site fails at the check step and leaves everything as it was.
    let site2 = std::fs::read_to_string(dir.path().join("perimeter/site.toml")).expect("site");
    let r = playbook(
        &venv,
        dir.path(),
        &[
            "--limit",
            "perimeter",
            "-e",
            r#"{"portolan_roles": {"internal": ["10.20.0.0/33"]}}"#,
        ],
    );
    assert_ne!(r.code, 0, "a wrong site must fail:\n{}", r.out);
    assert!(
        r.out.contains("Check the new site with portolan check") && r.out.contains("10.20.0.0/33"),
        "fails at the check step with portolan's message:\n{}",
        r.out
    );
    assert!(
        !r.out.contains("Load the rules with a rollback timer"),
        "{}",
        r.out
    );
    assert_eq!(ruleset(&ns.0[2]), before[2], "the firewall changed");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("perimeter/site.toml")).expect("site"),
        site2
    );

    // 7. The example inventory of the README: in check mode, every site it writes passes
    //    `portolan check` and is compared with the (empty) ruleset of a scratch namespace.
    std::fs::write(
        dir.path().join("examples.yml"),
        "---\n- name: Examples\n  hosts: all\n  gather_facts: false\n  roles:\n    - role: portolan.firewall.portolan\n",
    )
    .expect("write");
    let overrides = serde_json::json!({
        "ansible_connection": "local",
        "ansible_python_interpreter": venv.join("bin/python"),
        "portolan_install": "none",
        "portolan_manage_services": false,
        "portolan_command": format!("ip netns exec {} {}", ns.0[0], env!("CARGO_BIN_EXE_portolan")),
        "portolan_site_path": format!("{}/ex/{{{{ inventory_hostname }}}}.toml", dir.path().display()),
        "portolan_run_dir": format!("{}/ex/run", dir.path().display()),
    });
    let o = Command::new(venv.join("bin/ansible-playbook"))
        .current_dir(dir.path())
        .arg("-i")
        .arg(root().join("ansible/examples/inventory.yml"))
        .args(["examples.yml", "--check", "-e", &overrides.to_string()])
        .env("ANSIBLE_COLLECTIONS_PATH", root().join("ansible"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_HOME", dir.path().join("ansible-home"))
        .env_remove("SSH_CONNECTION")
        .output()
        .expect("run ansible-playbook");
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the example inventory:\n{out}");
    for h in ["mail-gw-berlin", "utm-hamburg", "perimeter-munich"] {
        assert!(out.contains(&format!("{h} ")), "{h} not in the run:\n{out}");
    }
    assert_eq!(
        ruleset(&ns.0[0]),
        before[0],
        "check mode changed the ruleset"
    );

    // 6. Lint.
    let o = Command::new(venv.join("bin/ansible-lint"))
        .current_dir(root().join("ansible"))
        .args(["ansible_collections/portolan/firewall", "examples"])
        .env("ANSIBLE_COLLECTIONS_PATH", root().join("ansible"))
        .env("NO_COLOR", "1")
        .env("ANSIBLE_HOME", dir.path().join("ansible-home"))
        .output()
        .expect("run ansible-lint");
    assert!(
        o.status.success(),
        "ansible-lint:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
