//! `portolan audit` on fixed rulesets with known holes (tests/audit/): the verdict of every
//! flow, the rule that drops, the named unsupported match, the excess, exit codes, and
//! clear errors for malformed and truncated files. The nft JSON fixtures are real
//! `nft -j list ruleset` output of the `.nft` files beside them (tests/audit/regen.sh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    root()
        .join("tests/audit")
        .join(name)
        .to_string_lossy()
        .to_string()
}

/// Run `portolan audit ARGS --format json`: (exit code, report, stderr).
fn audit(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("audit")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("run portolan");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code, report, stderr)
}

/// "id/proto" -> verdict.
fn verdicts(r: &Value) -> BTreeMap<String, String> {
    r["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| {
            (
                format!(
                    "{}/{}",
                    f["id"].as_str().unwrap_or(""),
                    f["protocol"].as_str().unwrap_or("")
                ),
                f["verdict"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn flow<'a>(r: &'a Value, key: &str) -> &'a Value {
    r["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| {
            format!(
                "{}/{}",
                f["id"].as_str().unwrap_or(""),
                f["protocol"].as_str().unwrap_or("")
            ) == key
        })
        .unwrap_or_else(|| panic!("no flow {key}"))
}

fn expect(r: &Value, want: &[(&str, &str)]) {
    let got = verdicts(r);
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want, "verdicts differ");
}

/// The handle of the first rule in an nft JSON dump whose text contains all `needles`.
fn handle_of(json_file: &str, needles: &[&str]) -> u64 {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(json_file)).expect("read"))
            .expect("json");
    for item in v["nftables"].as_array().expect("array") {
        if let Some(rule) = item.get("rule") {
            let text = rule["expr"].to_string();
            if needles.iter().all(|n| text.contains(n)) {
                return rule["handle"].as_u64().expect("handle");
            }
        }
    }
    panic!("no rule with {needles:?} in {json_file}")
}

#[test]
fn nft_host_ruleset_with_holes() {
    let (code, r, err) = audit(&[
        "--profile",
        "intra2net",
        "--ruleset",
        &fixture("host-holes.json"),
    ]);
    assert_eq!(code, 1, "{err}");
    expect(
        &r,
        &[
            // IPv6 was forgotten: the IPv4 half passes through the jump, IPv6 hits the policy.
            ("update/tcp", "partial"),
            ("avupdate/tcp", "partial"),
            ("avcloud/tcp", "partial"),
            ("avfpc/tcp", "partial"),
            ("ntp-pool/tcp", "blocked"),
            ("ntp-pool/udp", "allowed"),
            // 5000-5010 of 5000-5050.
            ("support/tcp", "partial"),
            ("dns/tcp", "blocked"),
            ("dns/udp", "allowed"),
            // The accept for 2703 is shadowed by the drop above it.
            ("razor/tcp", "blocked"),
            // `meta skuid` is not modelled; IPv6 echo is dropped by the policy.
            ("ping/icmp", "partial"),
        ],
    );
    assert_eq!(r["ruleset_format"], "nft-json");
    assert_eq!(r["all_allowed"], false);
    let razor = flow(&r, "razor/tcp");
    let h = handle_of("host-holes.json", &["2703", "drop"]);
    assert_eq!(
        razor["example"]["dropped_by"]["at"],
        format!("inet filter output handle {h}"),
        "{razor}"
    );
    let support = flow(&r, "support/tcp");
    let packet = support["example"]["packet"].as_str().expect("packet");
    assert!(
        packet.contains(":5011") || packet.contains("]:5000"),
        "the dropped example is outside 5000-5010 or IPv6: {packet}"
    );
    let ping = flow(&r, "ping/icmp");
    assert!(ping["unknown"].to_string().contains("meta skuid"), "{ping}");
    // Input is wide open: the excess says so, naming the policy.
    let excess = r["excess"].to_string();
    assert!(excess.contains("inet filter input policy"), "{excess}");
    assert!(r["excess"].as_array().is_some_and(|e| !e.is_empty()));
    assert!(r["notes"]
        .to_string()
        .contains("first packet of a new connection"));
}

#[test]
fn nft_gateway_ruleset_with_maps_and_concatenations() {
    let site = root().join("tests/golden/intra2net-gateway/site.toml");
    let (code, r, err) = audit(&[
        "--site",
        &site.to_string_lossy(),
        "--ruleset",
        &fixture("gateway.json"),
    ]);
    assert_eq!(code, 1, "{err}");
    let mut want: Vec<(&str, &str)> = [
        "update/tcp",
        "avupdate/tcp",
        "avcloud/tcp",
        "avfpc/tcp",
        "ntp-custom/udp",
        "support/tcp",
        "dns/tcp",
        "dns/udp",
        "razor/tcp",
        "ping/icmp",
        "mail-pop3/tcp",
        "mail-smtp/tcp",
        "proxy-http/tcp",
        "proxy-https/tcp",
        "proxy-ftp/tcp",
        "web-groupware/tcp",
        "activesync/tcp",
        "letsencrypt/tcp",
        "smtp-in/tcp",
        "submission/tcp",
    ]
    .iter()
    .map(|k| (*k, "allowed"))
    .collect();
    want.extend([
        // Only UDP 123 to the NTP server.
        ("ntp-custom/tcp", "blocked"),
        // 993 is not in @wan_in_tcp.
        ("imaps/tcp", "blocked"),
        // `ip saddr != 203.0.113.0/24` matches IPv4 only: all IPv6 falls to the policy.
        ("vpn/udp", "partial"),
    ]);
    expect(&r, &want);
    let imaps = flow(&r, "imaps/tcp");
    let p = imaps["example"]["packet"].as_str().expect("packet");
    assert!(p.contains("in wan0, out dmz0"), "{p}");
    // The LAN may reach the appliance on anything: excess, with the interfaces.
    let excess = r["excess"].to_string();
    assert!(excess.contains("lan0"), "{excess}");
}

#[test]
fn iptables_save_with_ipset_user_chains_and_negation() {
    let args = [
        "--profile",
        "intra2net",
        "--ruleset",
        &fixture("host-holes.rules"),
        "--ipset",
        &fixture("host-holes.ipset"),
    ];
    let (code, r, err) = audit(&args);
    assert_eq!(code, 1, "{err}");
    expect(
        &r,
        &[
            ("update/tcp", "allowed"),
            ("avupdate/tcp", "allowed"),
            ("avcloud/tcp", "allowed"),
            ("avfpc/tcp", "allowed"),
            ("ntp-pool/tcp", "partial"),
            ("ntp-pool/udp", "allowed"),
            ("support/tcp", "partial"),
            ("dns/tcp", "blocked"),
            ("dns/udp", "allowed"),
            ("razor/tcp", "partial"),
            // Accepted by `-m owner --uid-owner 0`, which the audit cannot decide.
            ("ping/icmp", "allowed-if"),
        ],
    );
    assert_eq!(r["ruleset_format"], "iptables-save");
    // Per family too: IPv4 is conditional, the IPv6 part has no such rule.
    assert_eq!(
        flow(&r, "ping/icmp")["families"],
        serde_json::json!([
            {"family": "IPv4", "verdict": "allowed-if"},
            {"family": "IPv6", "verdict": "allowed"}
        ])
    );
    assert!(flow(&r, "ping/icmp")["condition"]["rules"][0]["rule"]["at"]
        .as_str()
        .is_some_and(|a| a.ends_with("host-holes.rules:14")));
    let razor = flow(&r, "razor/tcp");
    assert!(
        razor["example"]["dropped_by"]["at"]
            .as_str()
            .is_some_and(|a| a.ends_with("host-holes.rules:12")),
        "{razor}"
    );
    assert!(flow(&r, "ping/icmp")["unknown"]
        .to_string()
        .contains("-m owner"));

    // Without the ipset contents, the set match is undecided, never assumed.
    let (code, r, _) = audit(&args[..4]);
    assert_eq!(code, 1);
    let dns = flow(&r, "dns/udp");
    // Allowed only if the set holds the DNS server: said, with what to give.
    assert_eq!(dns["verdict"], "allowed-if", "{dns}");
    assert!(dns["condition"].to_string().contains("--ipset"), "{dns}");
}

#[test]
fn portolans_own_demo_rulesets_audit_clean() {
    // The fixtures must be the current rendering (regen.sh rewrites them).
    for p in ["intra2net", "seppmail", "clearswift"] {
        let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(["render", "--profile", p, "--target", "nftables"])
            .output()
            .expect("render");
        let now = String::from_utf8_lossy(&out.stdout);
        let fixed = std::fs::read_to_string(fixture(&format!("demo-{p}.nft"))).expect("fixture");
        assert_eq!(
            now, fixed,
            "tests/audit/demo-{p}.nft is stale: run tests/audit/regen.sh as root"
        );
        let (code, r, err) = audit(&[
            "--profile",
            p,
            "--ruleset",
            &fixture(&format!("demo-{p}.json")),
        ]);
        assert_eq!(code, 0, "{p}: {err}\n{r:#}");
        assert!(verdicts(&r).values().all(|v| v == "allowed"), "{r:#}");
        assert_eq!(r["excess"], serde_json::json!([]), "{p}: {r:#}");
        assert_eq!(r["maybe_excess"], serde_json::json!([]), "{p}: {r:#}");
    }
}

/// Bad input: exit 2, the message, the place.
fn bad(ruleset: &str, extra: &[&str], want: &[&str]) {
    let dir = std::env::temp_dir().join(format!("portolan-audit-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("ruleset");
    std::fs::write(&path, ruleset).expect("write");
    let mut args = vec!["--profile", "intra2net"];
    let p = path.to_string_lossy().to_string();
    args.extend(["--ruleset", &p]);
    args.extend(extra);
    let (code, _, err) = audit(&args);
    assert_eq!(
        code,
        2,
        "{err}\nfor:\n{}",
        &ruleset[..ruleset.len().min(300)]
    );
    for w in want {
        assert!(err.contains(w), "stderr lacks {w:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_and_truncated_rulesets_are_clear_errors() {
    let json = std::fs::read_to_string(fixture("host-holes.json")).expect("read");
    bad(
        &json[..json.len() / 2],
        &[],
        &["truncated", "line 1, column"],
    );
    bad(
        "{\"nftables\": 3}",
        &[],
        &["no top-level \"nftables\" array"],
    );
    bad("{\"nftables\": [{\"rule\": {\"family\": \"inet\", \"table\": \"t\", \"chain\": \"c\", \"expr\": []}}]}", &[], &["chain inet t c is not defined"]);
    bad(
        "{\"nftables\": [{\"chain\": {\"family\": \"inet\", \"table\": \"t\", \"name\": \"c\"}}, {\"rule\": {\"family\": \"inet\", \"table\": \"t\", \"chain\": \"c\", \"expr\": [{\"jump\": {\"target\": \"nowhere\"}}]}}]}",
        &[],
        &["jump to chain `nowhere`"],
    );
    bad(
        "{\"nftables\": [{\"chain\": {\"family\": \"inet\", \"table\": \"t\", \"name\": \"c\"}}, {\"rule\": {\"family\": \"inet\", \"table\": \"t\", \"chain\": \"c\", \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\"}}, \"right\": \"10.0.0.256\"}}]}}]}",
        &[],
        &["`10.0.0.256` is not an IPv4 address"],
    );
    let rules = std::fs::read_to_string(fixture("host-holes.rules")).expect("read");
    let cut = &rules[..rules.find("COMMIT").expect("commit")];
    bad(cut, &[], &["no COMMIT (truncated?)"]);
    bad(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.300/8 -j ACCEPT\nCOMMIT\n",
        &[],
        &["ruleset:3:13", "`10.0.0.300` is not an IPv4 address"],
    );
    bad(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -j NOWHERE-CHAIN\nCOMMIT\n",
        &[],
        &["ruleset:3:", "NOWHERE-CHAIN"],
    );
    bad(
        "*filter\n:INPUT DROP [0:0]\n-A OTHER -j ACCEPT\nCOMMIT\n",
        &[],
        &["ruleset:3:", "chain OTHER is not declared"],
    );
    bad(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n",
        &[],
        &["ruleset:3:", "99999"],
    );
    bad(
        "-A INPUT -j ACCEPT\n",
        &[],
        &["ruleset:1:", "outside any table"],
    );
    bad("", &[], &["no table"]);
    bad(
        &json,
        &["--ipset", "/dev/null"],
        &["--ipset is for iptables-save"],
    );
}

/// Regression (issue: an 890-byte iptables-save with 20 chains, each jumping twice to the
/// next, took 14 s: every chain was walked once per path into it, 2^20 walks). Evaluation
/// work is bounded by the ruleset's size times the flows: when the bound is hit, the
/// verdicts still undecided are `unknown` with the reason, never a guess.
#[test]
fn a_jump_bomb_gives_unknown_with_the_reason() {
    let (code, r, err) = audit(&[
        "--profile",
        "intra2net",
        "--ruleset",
        &fixture("jump-bomb.rules"),
        "--ruleset-format",
        "iptables-save",
    ]);
    assert_eq!(code, 1, "{err}");
    let flows = r["flows"].as_array().expect("flows");
    assert!(!flows.is_empty());
    for f in flows {
        assert_ne!(f["verdict"], "allowed", "{f}");
    }
    let text = r.to_string();
    assert!(
        text.contains("evaluation stopped after"),
        "the reason must be given: {text}"
    );
}
