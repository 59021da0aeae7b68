//! Silent mistakes in a site file become errors or warnings (each a regression test: before,
//! every one of these sites was accepted without a word).

use portolan_core::{catalog, plan, site, Diagnostic, Severity, Source};

fn check(text: &str) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    let src = Source::new("site.toml", text);
    let (s, mut diags) = site::parse(&src).map_err(|e| e.0)?;
    let profile = catalog::load("intra2net")
        .expect("catalog")
        .expect("profile");
    let p = plan::build(&profile, &s, None).map_err(|e| e.0)?;
    diags.extend(p.warnings);
    Ok(diags)
}

fn messages(diags: &[Diagnostic], sev: Severity) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.severity == sev)
        .map(|d| format!("{d}"))
        .collect()
}

const BASE: &str = "profile = \"intra2net\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n[roles]\ndns-server = [\"192.0.2.53\"]\n";

#[test]
fn a_misspelled_zone_is_an_error_naming_the_role() {
    let text = format!(
        "{BASE}[placement]\nmode = \"gateway\"\nappliance_interface = \"dmz0\"\ndefault_interface = \"lan0\"\n[placement.zones]\ninternett = \"wan0\"\nadmin = \"adm0\"\n"
    );
    let errs = check(&text).expect_err("a zone that is no role is an error");
    let all: Vec<String> = errs.iter().map(|d| format!("{d}")).collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].contains("site.toml:11:1"), "{all:?}");
    assert!(all[0].contains("`internett`"), "{all:?}");
    assert!(all[0].contains("did you mean `internet`"), "{all:?}");
}

#[test]
fn an_unused_pin_warns_with_the_closest_name() {
    let text = format!("{BASE}[hosts]\n\"updat.intra2net.com\" = [\"198.51.100.1\"]\n");
    let diags = check(&text).expect("valid");
    let w = messages(&diags, Severity::Warning);
    assert!(
        w.iter().any(|m| m.contains("`updat.intra2net.com`")
            && m.contains("does not use")
            && m.contains("did you mean `update.intra2net.com`")),
        "{w:?}"
    );
}

#[test]
fn a_pin_in_the_other_family_only_warns_that_the_flow_cannot_work() {
    let text = format!("{BASE}[hosts]\n\"update.intra2net.com\" = [\"2001:db8::11\"]\n");
    let diags = check(&text).expect("valid");
    let w = messages(&diags, Severity::Warning);
    assert!(
        w.iter().any(
            |m| m.contains("`update.intra2net.com` is pinned to IPv6 addresses only")
                && m.contains("only IPv4")
                && m.contains("required flow(s) update cannot work")
        ),
        "{w:?}"
    );
    // Both families pinned: no such warning.
    let text = format!(
        "{BASE}[hosts]\n\"update.intra2net.com\" = [\"2001:db8::11\", \"198.51.100.11\"]\n"
    );
    let w = messages(&check(&text).expect("valid"), Severity::Warning);
    assert!(!w.iter().any(|m| m.contains("cannot work")), "{w:?}");
    // A role bound in the other family only: the same.
    let text = "profile = \"intra2net\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n[roles]\ndns-server = [\"2001:db8::53\"]\n";
    let w = messages(&check(text).expect("valid"), Severity::Warning);
    assert!(
        w.iter()
            .any(|m| m.contains("`dns-server` has IPv6 addresses only")),
        "{w:?}"
    );
}

#[test]
fn uppercase_dns_names_are_lowercased_with_a_note() {
    let text = format!(
        "{BASE}[hosts]\n\"Update.Intra2net.COM\" = [\"198.51.100.11\"]\n[probe_names]\n\"*.AVCLOUD.intra2net.com\" = \"X1.avcloud.intra2net.com\"\n"
    );
    let src = Source::new("site.toml", text.as_str());
    let (s, diags) = site::parse(&src).expect("accepted, not rejected");
    assert!(s.hosts.contains_key("update.intra2net.com"));
    assert_eq!(
        s.probe_names
            .get("*.avcloud.intra2net.com")
            .map(String::as_str),
        Some("x1.avcloud.intra2net.com")
    );
    let notes = messages(&diags, Severity::Note);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].contains("taken as `update.intra2net.com`"),
        "{notes:?}"
    );
    // In a profile too.
    let profile = "id = \"p\"\nname = \"P\"\nvendor = \"V\"\n[[flows]]\nid = \"up\"\nfunction = \"updates\"\nfrom = \"appliance\"\nto = \"Update.Example.COM\"\nprotocols = [\"tcp\"]\nports = [443]\n";
    let (p, diags) =
        portolan_core::profile::parse(&Source::new("p.toml", profile)).expect("accepted");
    assert!(format!("{:?}", p.flows[0].to).contains("update.example.com"));
    assert!(diags
        .iter()
        .any(|d| d.severity == Severity::Note && d.message.contains("case-insensitive")));
}
