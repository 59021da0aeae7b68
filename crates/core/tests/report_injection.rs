//! A profile (or a result file) with hostile names and descriptions cannot add markup or
//! script to the report. Property: for any payload in the profile's name, vendor, flow
//! functions (English and German), notes, feature descriptions and caveats, and in probe
//! and audit result texts, the report's markup (the sequence of tags with their attributes)
//! is exactly that of a report whose texts have the same length and spaces but only
//! harmless letters, in both languages and in the SVG diagram alone.

use portolan_core::report::i18n::Lang;
use portolan_core::report::{self, AuditResult, AuditRow, Inputs, ProbeRow};
use portolan_core::{plan, profile, site, Source};
use proptest::prelude::*;

fn profile_text(text: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("json string");
    format!(
        "id = \"inj\"\nname = {t}\nvendor = {t}\ndescription = {t}\n\
         [features.f]\ndescription = {t}\n\
         [[caveats]]\nmessage = {t}\n\
         [[flows]]\nid = \"first\"\nfunction = {t}\nfunction_de = {t}\nnotes = [{t}]\nfrom = \"appliance\"\nto = \"update.example.com\"\nprotocols = [\"tcp\"]\nports = [443]\n\
         [[flows]]\nid = \"second\"\nfunction = {t}\nfrom = \"internet\"\nto = \"appliance\"\nprotocols = [\"udp\"]\nports = [500]\nfeature = \"f\"\n",
        t = q(text)
    )
}

/// The markup of a document: every tag with its attributes, text left out.
fn markup(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        out.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    out
}

fn reports(text: &str) -> Vec<String> {
    let src = Source::new("inj.toml", profile_text(text));
    let (p, _) = profile::parse(&src).expect("free text never makes the profile invalid");
    let mut s = site::demo(&p);
    s.features = site::Features::All;
    let plan = plan::build(&p, &s, None).expect("plan");
    let probe = vec![ProbeRow {
        flow: "first".into(),
        protocol: "tcp".into(),
        host: text.into(),
        address: text.into(),
        port: "443".into(),
        verdict: text.into(),
        detail: text.into(),
        ok: false,
    }];
    let audit = AuditResult {
        format: text.into(),
        rows: vec![AuditRow {
            id: "second".into(),
            protocol: "udp".into(),
            ports: text.into(),
            verdict: text.into(),
        }],
        excess: 1,
    };
    let mut out = Vec::new();
    for lang in [Lang::En, Lang::De] {
        let i = Inputs {
            plan: &plan,
            profile: &p,
            site_name: Some(text.into()),
            probe: Some(probe.clone()),
            audit: Some(audit.clone()),
            lang,
            date: (2026, 12, 6),
            rules: Some(("nftables".into(), 2)),
            version: "test".into(),
        };
        out.push(report::html(&i));
        out.push(report::svg(&i));
    }
    out
}

fn check(payload: &str) -> Result<(), TestCaseError> {
    let hostile = format!("ZZ{payload}ZZ");
    // The same length and the same spaces, so wrapping and clipping (which depend on the
    // text's length, as they should) come out the same: only the characters differ.
    let benign: String = hostile
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                c
            } else {
                'x'
            }
        })
        .collect();
    let base = reports(&benign);
    let got = reports(&hostile);
    for (b, g) in base.iter().zip(&got) {
        prop_assert_eq!(markup(g), markup(b));
        let lower = g.to_lowercase();
        prop_assert!(!lower.contains("<script"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn hostile_text_cannot_add_markup_to_the_report(
        payload in "[ -~\\n\\t\\u{2028}\\u{85}<>&\"'/=]{0,40}"
    ) {
        check(&payload)?;
    }
}

#[test]
fn classic_payloads_are_inert() {
    for p in [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "</text></svg><script>x</script>",
        "]]><!--",
        "' onmouseover='x",
        "&lt;script&gt;",
    ] {
        check(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}
