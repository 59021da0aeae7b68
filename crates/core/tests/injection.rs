//! A profile must not be able to inject rules. Free text (function, notes, German text) may
//! hold anything; the renderers put it only into `#` comment lines, with line breaks removed.
//! Identifiers and names with anything outside `[a-z0-9.*-]` are rejected by the parser.
//!
//! Property: for any payload, every output line that carries it is a comment line, and the
//! structure (all non-comment lines) is identical to that of a benign profile.

use portolan_core::{plan, profile, render, site, Source};
use proptest::prelude::*;

const MARK: &str = "ZZINJ";

fn profile_text(function: &str, note: &str, id: &str, peer: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("json string");
    format!(
        "id = \"inj\"\nname = {}\nvendor = \"x\"\n[features.f]\ndescription = {}\n\
         [[flows]]\nid = {}\nfunction = {}\nfunction_de = {}\nnotes = [{}]\nfrom = \"appliance\"\nto = {}\nprotocols = [\"tcp\"]\nports = [443]\n\
         [[flows]]\nid = \"second\"\nfunction = \"ok\"\nfrom = \"internet\"\nto = \"appliance\"\nprotocols = [\"udp\"]\nports = [500]\nfeature = \"f\"\n",
        q(function),
        q(function),
        q(id),
        q(function),
        q(function),
        q(note),
        q(peer)
    )
}

/// Every target's output, with the comment prefix of its format: for the demo site (host)
/// and the same behind a gateway, so that every target renders something.
fn render_all(text: &str) -> Option<Vec<(&'static str, String)>> {
    Some(
        render_named(text)?
            .into_iter()
            .filter(|(name, _, _)| !name.starts_with("sheet-"))
            .map(|(_, prefix, out)| (prefix, out))
            .collect(),
    )
}

/// Every target's output with its name and comment prefix.
fn render_named(text: &str) -> Option<Vec<(&'static str, &'static str, String)>> {
    let src = Source::new("inj.toml", text);
    let (p, _) = profile::parse(&src).ok()?;
    let mut host = site::demo(&p);
    host.features = site::Features::All;
    let mut gateway = host.clone();
    gateway.placement = site::Placement::Gateway {
        appliance_interface: "dmz0".into(),
        zones: [("internet".to_string(), "wan0".to_string())].into(),
        default_interface: Some("lan0".into()),
        others: site::Others::Drop,
    };
    let mut out = Vec::new();
    for s in [&host, &gateway] {
        let plan = plan::build(&p, s, None).ok()?;
        for t in render::TARGETS {
            out.push((
                t.name(),
                t.capabilities().comment,
                render::render(&plan, *t).text,
            ));
        }
    }
    Some(out)
}

fn is_comment(line: &str, prefix: &str) -> bool {
    line.trim_start().starts_with(prefix)
}

fn structure(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !is_comment(l, prefix))
        .map(str::to_string)
        .collect()
}

fn check(payload: &str) -> Result<(), TestCaseError> {
    let hostile = format!("{MARK}{payload}{MARK}");
    let baseline = render_all(&profile_text(
        "benign",
        "benign",
        "first",
        "update.example.com",
    ))
    .expect("baseline renders");
    let outputs = render_all(&profile_text(
        &hostile,
        &hostile,
        "first",
        "update.example.com",
    ))
    .expect("free text never makes a profile invalid unless it is empty or huge");
    for ((prefix, out), (_, base)) in outputs.iter().zip(&baseline) {
        for line in out.lines() {
            if line.contains(MARK) {
                prop_assert!(
                    is_comment(line, prefix),
                    "payload outside a comment: {line:?}"
                );
            }
        }
        // The profile name reaches the header, the function the per-rule comments: only
        // comment lines may differ.
        prop_assert_eq!(structure(out, prefix), structure(base, prefix));
    }
    // As an identifier or a peer name, the payload is rejected (or, if it happens to be a
    // valid name, it cannot contain anything dangerous).
    for (id, peer) in [
        (hostile.as_str(), "update.example.com"),
        ("first", hostile.as_str()),
    ] {
        if let Some(outs) = render_all(&profile_text("f", "n", id, peer)) {
            for (prefix, out) in outs {
                for line in out.lines().filter(|l| !is_comment(l, prefix)) {
                    prop_assert!(!line.contains(MARK), "payload accepted as a name: {line:?}");
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn free_text_cannot_inject(payload in "[ -~\\n\\r\\t\\u{2028}\\u{85}\"';{}#$`\\\\]{0,40}") {
        check(&payload)?;
    }
}

/// The sheets carry free text in their cells, escaped: a payload may add no line, no
/// column (CSV: fields of the RFC 4180 records; Markdown: unescaped `|`) and no markup (HTML:
/// `<`), and no CSV cell may start a formula.
fn sheet_shape(name: &str, text: &str) -> Vec<usize> {
    match name {
        "sheet-csv" => {
            let mut shape = Vec::new();
            let (mut fields, mut quoted, mut prev) = (1, false, ' ');
            for c in text.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields += 1,
                    '\n' if !quoted && prev == '\r' => {
                        shape.push(fields);
                        fields = 1;
                    }
                    _ => {}
                }
                prev = c;
            }
            shape
        }
        "sheet-markdown" => text
            .lines()
            .map(|l| {
                let b = l.as_bytes();
                (0..b.len())
                    .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
                    .count()
            })
            .collect(),
        _ => vec![text.lines().count(), text.matches('<').count()],
    }
}

/// The fields of an RFC 4180 text, unquoted.
fn csv_fields(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' | '\n' if !quoted => out.push(std::mem::take(&mut cur)),
            '\r' if !quoted => {}
            c => cur.push(c),
        }
    }
    out
}

fn check_sheets(payload: &str) -> Result<(), TestCaseError> {
    let hostile = format!("{MARK}{payload}{MARK}");
    let base = render_named(&profile_text(
        "benign",
        "benign",
        "first",
        "update.example.com",
    ))
    .expect("baseline");
    let out = render_named(&profile_text(
        &hostile,
        &hostile,
        "first",
        "update.example.com",
    ))
    .expect("hostile");
    for ((name, _, o), (_, _, b)) in out.iter().zip(&base) {
        if !name.starts_with("sheet-") {
            continue;
        }
        prop_assert_eq!(sheet_shape(name, o), sheet_shape(name, b), "{}", name);
        if *name == "sheet-csv" {
            for field in csv_fields(o) {
                prop_assert!(
                    !field.starts_with(['=', '+', '-', '@']),
                    "formula cell: {field:?}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn free_text_cannot_reshape_a_sheet(payload in "[ -~\\n\\r\\t\\u{2028}\\u{85}\"';{}#$`|<>&=,\\\\]{0,40}") {
        check_sheets(&payload)?;
    }
}

#[test]
fn known_nasty_payloads_stay_in_comments() {
    for p in [
        "\" accept\n\tchain evil { type filter hook input priority -500; policy accept; }\n#",
        "x\"; accept comment \"",
        "\nPORTOLAN_IPV4_END\nrm -rf /\n",
        "\r\n-A INPUT -j ACCEPT\r\n",
        "\u{2028}flush ruleset\u{2029}",
        "$(reboot) `reboot`",
    ] {
        check(p).expect("payload must stay in comments");
    }
}
