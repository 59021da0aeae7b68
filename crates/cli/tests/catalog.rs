//! The built-in catalog against the seed documents in shared/seeds/: every table row is
//! represented by a flow that cites its line, the cited lines say what the flow says (port,
//! protocol), German texts exist for every Intra2net flow, and the known flaws of the sources
//! are recorded and shown by `portolan check`.

mod seeds;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use portolan_core::catalog;
use portolan_core::model::{Condition, Profile, Protocol};

fn seeds() -> PathBuf {
    seeds::dir()
}

fn doc(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(seeds().join(name)).expect("seed document");
    text.lines().map(str::to_string).collect()
}

fn load(id: &str) -> Profile {
    match catalog::load(id) {
        Some(Ok(p)) => p,
        other => panic!("{id}: {:?}", other.map(|r| r.err().map(|e| e.to_string()))),
    }
}

fn cited(p: &Profile, src: &str) -> BTreeSet<u32> {
    p.flows
        .iter()
        .filter_map(|f| f.source_lines.get(src).copied())
        .collect()
}

#[test]
fn every_catalog_entry_parses_and_names_its_document() {
    for id in catalog::ids() {
        let p = load(id);
        assert_eq!(p.id, id);
        assert!(!p.sources.is_empty(), "{id} names no source document");
        for s in &p.sources {
            let d = s.document.as_deref().expect("document file named");
            assert!(seeds().join(d).exists(), "{id}: {d} not in shared/seeds");
        }
        for f in &p.flows {
            assert!(!f.source_lines.is_empty(), "{id}/{}: no source line", f.id);
        }
    }
}

/// Intra2net: each line with a protocol in either table is a row; both languages are cited.
#[test]
fn intra2net_rows_are_all_represented_in_both_languages() {
    let p = load("intra2net");
    for (src, file) in [
        ("en", "000_00aad6625bd64fff.txt"),
        ("de", "001_6aa6a755a83ef62e.txt"),
    ] {
        let lines = doc(file);
        let rows: BTreeSet<u32> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let l = l.as_str();
                (l.contains("TCP") || l.contains("UDP") || l.contains("ICMP"))
                    && !l.starts_with("Protocol")
                    && !l.starts_with("Protokoll")
                    && !l.contains("Protocol")
                    && !l.contains("Protokoll")
            })
            .map(|(i, _)| i as u32 + 1)
            .collect();
        assert_eq!(
            rows.len(),
            15,
            "{src}: expected 9 outgoing and 6 incoming rows"
        );
        let cited = cited(&p, src);
        let missing: Vec<_> = rows.difference(&cited).collect();
        assert!(
            missing.is_empty(),
            "{src}: rows not in the catalog: {missing:?}"
        );
        // Each cited row names the flow's first port.
        for f in &p.flows {
            let Some(line) = f.source_lines.get(src) else {
                continue;
            };
            let text = &lines[*line as usize - 1];
            if let Some(r) = f.ports.first() {
                if rows.contains(line) {
                    assert!(
                        text.contains(&r.low.to_string()),
                        "{}: line {line} lacks port {}",
                        f.id,
                        r.low
                    );
                }
            }
        }
    }
    for f in &p.flows {
        assert!(f.function_de.is_some(), "{}: no German function text", f.id);
        assert!(
            f.source_lines.contains_key("de"),
            "{}: no line in the German document",
            f.id
        );
    }
}

/// Clearswift: every line that starts a row (a port number first) is cited, and the flow's
/// port and protocol match the row.
#[test]
fn clearswift_rows_are_all_represented() {
    let p = load("clearswift");
    let lines = doc("004_a59427b59fdbda36.txt");
    let rows: BTreeSet<u32> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.split('|').next().is_some_and(|c| {
                !c.trim().is_empty() && c.trim().chars().all(|ch| ch.is_ascii_digit())
            })
        })
        .map(|(i, _)| i as u32 + 1)
        .collect();
    // 48 lines, of which 7 continue a row that was broken over several lines.
    assert_eq!(rows.len(), 41, "the Clearswift table has 41 rows");
    // A row is a flow that cites it, or a caveat that cites it and names the flows that
    // carry it (row 5, FTP data: the helper on the control flows).
    let mut cited = cited(&p, "en");
    for c in &p.caveats {
        if let (Some(line), false) = (c.line, c.flows.is_empty()) {
            if c.flows.iter().all(|f| p.flows.iter().any(|x| &x.id == f)) {
                cited.insert(line);
            }
        }
    }
    let missing: Vec<_> = rows.difference(&cited).collect();
    assert!(missing.is_empty(), "rows not in the catalog: {missing:?}");
    for f in &p.flows {
        let line = f.source_lines["en"];
        if f.ports.is_empty() {
            // Ports the site gives (the FTPS passive range): see clearswift_ftps_*.
            continue;
        }
        let port: String = lines[line as usize - 1]
            .split('|')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        assert!(
            f.ports.iter().any(|r| r.low.to_string() == port),
            "{}: row {line} is port {port}, flow has {:?}",
            f.id,
            f.ports
        );
        // The row's protocol cell (same line or the next ones) mentions UDP iff the flow is UDP.
        let cell = lines[line as usize - 1..(line as usize + 2).min(lines.len())].join(" ");
        if f.protocols == [Protocol::Udp] {
            assert!(
                cell.contains("UDP"),
                "{}: UDP flow on a row without UDP",
                f.id
            );
        }
    }
    let required: Vec<&str> = p
        .flows
        .iter()
        .filter(|f| f.condition == Condition::Required)
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(required, ["smtp-in", "smtp-out", "dns"]);
}

/// SEPPmail: each description cell is one row; some flow cites a line of that row.
#[test]
fn seppmail_rows_are_all_represented() {
    let p = load("seppmail");
    let lines = doc("003_b145b2f92e3012f7.txt");
    let starts = ["Required", "Enables", "Used", "If ", "For ", "Optional"];
    let descriptions: Vec<u32> = lines
        .iter()
        .enumerate()
        // Below the header (line 7); line 1 is the introduction.
        .filter(|(i, _)| *i >= 7)
        .filter(|(_, l)| starts.iter().any(|s| l.starts_with(s)) || l.starts_with("(new"))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert_eq!(descriptions.len(), 32, "the SEPPmail table has 32 rows");
    let cited = cited(&p, "en");
    for d in descriptions {
        assert!(
            cited.iter().any(|c| *c <= d && d - c <= 5),
            "row with description on line {d} has no flow"
        );
    }
    for f in [
        "licence-support",
        "smtp-from-mail-server",
        "gina",
        "admin-https",
        "dns-internal",
    ] {
        assert!(
            p.flow(f)
                .is_some_and(|f| f.condition == Condition::Required),
            "{f} must be required"
        );
    }
}

/// `portolan check` shows the recorded flaws of each source.
#[test]
fn check_shows_the_source_flaws() {
    let run = |id: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(["check", id])
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        assert_eq!(
            o.status.code(),
            Some(0),
            "check {id} without --strict passes"
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let i = run("intra2net");
    assert!(
        i.contains("*.intra2net.pool.ntp.ntp.org") && i.contains("*.intra2net.pool.ntp.org"),
        "{i}"
    );
    // The source's warning that the addresses behind the names change without notice, and
    // its fallback (wider than the table), are a caveat `check` prints, with the line.
    assert!(
        i.contains("change the IP addresses behind its DNS names")
            && i.contains("never renders it")
            && i.contains("000_00aad6625bd64fff.txt, line 6]"),
        "{i}"
    );
    let c = run("clearswift");
    assert!(
        c.contains("says direction `Out`") && c.contains("SNMP inbound"),
        "{c}"
    );
    assert_eq!(c.matches("were lost from this row").count(), 4, "{c}");
    let s = run("seppmail");
    assert!(s.contains("no function name"), "{s}");
    let strict = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["check", "--strict", "clearswift"])
        .output()
        .expect("run");
    assert_eq!(
        strict.status.code(),
        Some(1),
        "caveats are warnings: --strict exits 1"
    );
}

/// The demo site makes the README's first command work for every catalog entry.
#[test]
fn demo_render_works_for_every_entry_and_target() {
    for id in catalog::ids() {
        for target in ["nftables", "iptables"] {
            let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
                .args([
                    "render",
                    "--profile",
                    id,
                    "--target",
                    target,
                    "--features",
                    "all",
                ])
                .output()
                .expect("run");
            assert_eq!(
                o.status.code(),
                Some(0),
                "{id}/{target}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let text = String::from_utf8_lossy(&o.stdout);
            // Every rule names its flows (host-mode iptables rules RETURN, not ACCEPT).
            assert!(text.contains("\"flows: "), "{id}/{target}: no rules");
            // Documentation addresses only.
            assert!(
                text.contains("192.0.2.") && text.contains("2001:db8:"),
                "{id}/{target}"
            );
        }
    }
}

/// The plan of a catalog entry on the demo site with these features.
fn plan_with(id: &str, features: &[&str]) -> portolan_core::plan::Plan {
    plan_with_site(id, features, |_| {})
}

fn plan_with_site(
    id: &str,
    features: &[&str],
    adjust: impl FnOnce(&mut portolan_core::site::Site),
) -> portolan_core::plan::Plan {
    let p = load(id);
    let mut site = portolan_core::site::demo(&p);
    adjust(&mut site);
    let list = portolan_core::site::Features::Some(
        features.iter().map(|f| (f.to_string(), None)).collect(),
    );
    portolan_core::plan::build(&p, &site, Some(&list)).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn active(plan: &portolan_core::plan::Plan) -> BTreeSet<String> {
    plan.flows.iter().map(|f| f.id.clone()).collect()
}

/// Clearswift In/Out rows where the appliance is the client (source lines 12, 28, 34, 40,
/// 46, 49, 6, 7, 47): the literal inbound half needs its own feature and inbound-as-listed,
/// like the DNS/NTP/KSN ones. Regression: ldap-in was on with ldap alone, ntp-in with
/// inbound-as-listed alone.
#[test]
fn clearswift_inbound_halves_need_their_feature_and_the_opt_in() {
    let halves = [
        ("ldap-in", "ldap", 34),
        ("ldaps-in", "ldaps", 46),
        ("ad-global-catalog-ssl-in", "ad-global-catalog-ssl", 49),
        ("ftp-control-in", "ftp-backup", 6),
        ("ftps-explicit-in", "ftps-explicit", 7),
        ("ftps-implicit-in", "ftps-implicit", 47),
        ("ntp-in", "ntp", 28),
        ("livefeed-in", "trustmanager-livefeed", 12),
        ("kaspersky-ksn-in", "kaspersky-ksn", 40),
    ];
    let p = load("clearswift");
    for (id, feature, line) in halves {
        let f = p.flows.iter().find(|f| f.id == id).expect(id);
        assert_eq!(f.source_lines["en"], line, "{id}");
        assert!(
            !active(&plan_with("clearswift", &[feature])).contains(id),
            "{id} with {feature} alone"
        );
        assert!(
            !active(&plan_with("clearswift", &["inbound-as-listed"])).contains(id),
            "{id} with inbound-as-listed alone"
        );
        assert!(
            active(&plan_with("clearswift", &[feature, "inbound-as-listed"])).contains(id),
            "{id} with both"
        );
    }
}

/// Clearswift FTPS (lines 7, 47): no conntrack helper can read an encrypted control
/// channel, so the FTPS flows do not claim one; the data connections go to the server's
/// passive range, which the site gives ([ports]) or the flow stays out (never wide).
#[test]
fn clearswift_ftps_needs_the_passive_range_from_the_site() {
    use portolan_core::model::{Flag, PortRange};
    let p = load("clearswift");
    for f in p.flows.iter().filter(|f| f.id.starts_with("ftps")) {
        assert!(!f.flags.contains(&Flag::NeedsFtpHelper), "{}", f.id);
    }
    let plan = plan_with("clearswift", &["ftps-explicit"]);
    assert!(!active(&plan).contains("ftps-explicit-data"));
    assert!(plan.inactive.contains(&"ftps-explicit-data".to_string()));
    assert!(plan
        .warnings
        .iter()
        .any(|w| w.message.contains("ftps-explicit-data") && w.message.contains("left out")));
    let plan = plan_with_site("clearswift", &["ftps-explicit"], |s| {
        s.ports.insert(
            "ftps-explicit-data".into(),
            (
                vec![PortRange {
                    low: 50000,
                    high: 50100,
                }],
                None,
            ),
        );
    });
    let data: Vec<_> = plan
        .flows
        .iter()
        .filter(|f| f.id == "ftps-explicit-data")
        .collect();
    assert_eq!(data.len(), 1);
    assert_eq!(
        data[0].ports,
        [PortRange {
            low: 50000,
            high: 50100
        }]
    );
}

/// SEPPmail GINA satellite (line 88): "the additional communication relations listed under
/// Email communication are then not required".
#[test]
fn seppmail_gina_satellite_turns_off_the_email_paths() {
    let email = [
        "smtp-from-mail-server",
        "smtp-to-mail-server",
        "smtp-in-direct",
        "smtp-out-direct",
    ];
    let full = active(&plan_with("seppmail", &[]));
    let satellite = plan_with("seppmail", &["gina-satellite"]);
    for id in email {
        assert!(full.contains(id), "{id} is required without the satellite");
        assert!(
            !active(&satellite).contains(id),
            "{id} with a GINA satellite"
        );
    }
    assert!(active(&satellite).contains("gina-satellite"));
    assert!(satellite
        .warnings
        .iter()
        .any(|w| w.message.contains("turns off")));
}

/// SEPPmail line 90: NTP is "optional, mandatory in the cluster".
#[test]
fn seppmail_cluster_brings_ntp() {
    for cluster in ["cluster", "cluster-frontend", "cluster-backend"] {
        let plan = plan_with("seppmail", &[cluster]);
        assert!(plan.features.contains(&"ntp".to_string()), "{cluster}");
        assert!(
            active(&plan).iter().any(|f| f.starts_with("ntp")),
            "{cluster}"
        );
        assert!(plan
            .warnings
            .iter()
            .any(|w| w.message.contains(&format!("`{cluster}` requires `ntp`"))));
    }
    assert!(!plan_with("seppmail", &[])
        .features
        .contains(&"ntp".to_string()));
}

/// SEPPmail: one app per port (line 68: fetchmail POP3S/IMAPS/POP3/IMAP; line 118: OCSP
/// over 443, rarely 80; lines 123, 127: LDAP 389 and LDAPS 636), the IP-alias note (line 15)
/// on the sending flows too, and the firewall's key-server flow (line 140) selectable alone.
#[test]
fn seppmail_apps_per_port_notes_and_the_firewall_keyserver_flow() {
    let p = load("seppmail");
    let app = |id: &str| -> (Vec<u16>, String) {
        let f = p
            .flows
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("{id}"));
        (
            f.ports.iter().map(|r| r.low).collect(),
            f.app.clone().unwrap_or_default(),
        )
    };
    assert_eq!(app("fetchmail-pop3s"), (vec![995], "pop3s".into()));
    assert_eq!(app("fetchmail-imaps"), (vec![993], "imaps".into()));
    assert_eq!(app("fetchmail-pop3"), (vec![110], "pop3".into()));
    assert_eq!(app("fetchmail-imap"), (vec![143], "imap".into()));
    assert_eq!(app("ocsp-crl"), (vec![443], "https".into()));
    assert_eq!(app("ocsp-crl-http"), (vec![80], "http".into()));
    assert_eq!(app("keyserver-query-internet"), (vec![389], "ldap".into()));
    assert_eq!(
        app("keyserver-query-internet-ldaps"),
        (vec![636], "ldaps".into())
    );
    assert_eq!(
        app("keyserver-query-internal-ldaps"),
        (vec![636], "ldaps".into())
    );
    for id in [
        "smtp-to-mail-server",
        "smtp-out-direct",
        "smtp-out-smarthost",
    ] {
        let f = p.flows.iter().find(|f| f.id == id).expect(id);
        assert!(f.notes.iter().any(|n| n.contains("IP alias")), "{id}");
    }
    let plan = plan_with("seppmail", &["keyserver-external-firewall"]);
    assert!(active(&plan).contains("keyserver-external-firewall"));
    assert!(!active(&plan).contains("keyserver-external-internal"));
}

/// Clearswift row 5 (FTP data, port 20, In/Out): no rule on destination port 20 (it matches
/// no real traffic); the FTP control flows carry the conntrack helper instead, and the caveat
/// citing line 5 says so. Regression: ftp-data-in opened destination port 20 on the appliance.
#[test]
fn clearswift_ftp_data_is_carried_by_the_helper() {
    use portolan_core::model::Flag;
    let p = load("clearswift");
    assert!(!p
        .flows
        .iter()
        .any(|f| f.ports.iter().any(|r| r.contains(20))));
    for id in ["ftp-control-out", "ftp-control-in"] {
        let f = p.flows.iter().find(|f| f.id == id).expect(id);
        assert!(f.flags.contains(&Flag::NeedsFtpHelper), "{id}");
    }
    let c = p
        .caveats
        .iter()
        .find(|c| c.line == Some(5))
        .expect("a caveat for row 5");
    assert!(c.message.contains("helper"), "{}", c.message);
}
