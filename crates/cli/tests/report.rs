//! `portolan report`: the HTML structure of the three catalog profiles' reports in English
//! and German, pinned as golden files (elements, ids, classes, headings, table sizes and the
//! diagram's parts, not pixels); the German texts; probe and audit results in the report;
//! bad result files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// 2026-12-06, so the date in the report does not change.
const EPOCH: &str = "1796515200";

fn portolan(args: &[&str], dir: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portolan"));
    c.args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("NO_COLOR", "1");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let o = c.output().expect("run portolan");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden-report")
}

/// The structure of an HTML document: one line per element that carries structure
/// (sections, headings with their text, tables with their size, the diagram's groups), in
/// document order.
fn structure(html: &str) -> String {
    let mut out = Vec::new();
    let mut rest = html;
    let mut table: Option<(usize, usize)> = None;
    let mut row_cells = 0;
    let mut svg_counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut in_svg = false;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let text_after = rest[end.min(rest.len())..]
            .trim_start_matches('>')
            .split('<')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        rest = &rest[end.min(rest.len())..];
        if tag.starts_with('/') {
            match tag {
                "/table" => {
                    if let Some((r, c)) = table.take() {
                        out.push(format!("  table {r} rows x {c} columns"));
                    }
                }
                "/tr" => {
                    if let Some((r, c)) = table.as_mut() {
                        *r += 1;
                        *c = (*c).max(row_cells);
                    }
                    row_cells = 0;
                }
                "/svg" => {
                    in_svg = false;
                    for (k, n) in std::mem::take(&mut svg_counts) {
                        out.push(format!("    {k} x{n}"));
                    }
                }
                _ => {}
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        let attr = |a: &str| -> Option<String> {
            let key = format!(" {a}=\"");
            tag.find(&key).map(|p| {
                tag[p + key.len()..]
                    .split('"')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
        };
        if in_svg {
            if name == "g" {
                *svg_counts
                    .entry(format!("g.{}", attr("class").unwrap_or_default()))
                    .or_default() += 1;
            }
            continue;
        }
        match name.as_str() {
            "section" | "nav" | "header" | "figure" | "dl" => out.push(format!(
                "{name}{}{}",
                attr("id").map(|i| format!("#{i}")).unwrap_or_default(),
                attr("class").map(|c| format!(".{c}")).unwrap_or_default()
            )),
            "h1" | "h2" | "h3" => out.push(format!("  {name} {text_after}")),
            "table" => table = Some((0, 0)),
            "td" | "th" => row_cells += 1,
            "svg" => {
                in_svg = true;
                out.push(format!(
                    "  svg viewBox={}",
                    attr("viewBox").unwrap_or_default()
                ));
            }
            "script" | "iframe" | "object" | "embed" | "link" | "img" => {
                out.push(format!("  FORBIDDEN {name}"))
            }
            _ => {}
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn reports_of_the_catalog_profiles_keep_their_structure() {
    let mut failures = Vec::new();
    for p in ["intra2net", "seppmail", "clearswift"] {
        for lang in ["en", "de"] {
            let (code, html, err) = portolan(
                &[
                    "report",
                    "--profile",
                    p,
                    "--features",
                    "all",
                    "--lang",
                    lang,
                ],
                None,
            );
            assert_eq!(code, 0, "{p} {lang}: {err}");
            assert!(html.starts_with("<!DOCTYPE html>"));
            // Self-contained: nothing is fetched, nothing runs.
            let lower = html.to_lowercase();
            for bad in [
                "<script",
                "<link",
                "<img",
                "<iframe",
                " src=",
                "href=\"http",
                " onload=",
                " onerror=",
            ] {
                assert!(
                    !lower.contains(bad),
                    "{p} {lang}: the report contains {bad}"
                );
            }
            // Only references inside the document (the arrow heads).
            assert!(
                lower.matches("url(").count() == lower.matches("url(#").count(),
                "{p} {lang}: a url() outside the document"
            );
            let s = structure(&html);
            assert!(!s.contains("FORBIDDEN"), "{s}");
            let path = golden_dir().join(format!("{p}-{lang}.txt"));
            if std::env::var_os("BLESS").is_some() {
                std::fs::create_dir_all(golden_dir()).expect("mkdir");
                std::fs::write(&path, &s).expect("write golden");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(g) if g == s => {}
                Ok(g) => failures.push(format!(
                    "{p} {lang}: structure changed (BLESS=1 rewrites)\n--- golden\n{g}\n--- now\n{s}"
                )),
                Err(_) => failures.push(format!("{p} {lang}: no {} (BLESS=1)", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_german_report_is_german_throughout() {
    let (code, de, err) = portolan(&["report", "--profile", "intra2net", "--lang", "de"], None);
    assert_eq!(code, 0, "{err}");
    for want in [
        "lang=\"de\"",
        "Firewall-Anforderungen",
        "Standort",
        "Verbindungen",
        "Hinweise",
        "Legende",
        "erforderlich",
        "6. Dezember 2026",
        "Gegenstellen, mit denen sich die Appliance verbindet",
    ] {
        assert!(de.contains(want), "missing {want}");
    }
    // The profile's German texts (the Intra2net profile has them).
    assert!(
        de.contains("Daten der Antivirus-Updates")
            && de.contains("Zeitabgleich mit dem Intra2net-NTP-Pool"),
        "no German flow text"
    );
    for english in [
        "Firewall requirements",
        ">Legend<",
        "Caveats",
        "December",
        "required flow",
    ] {
        assert!(
            !de.contains(english),
            "English text `{english}` in the German report"
        );
    }
    let (_, en, _) = portolan(&["report", "--profile", "intra2net", "--lang", "en"], None);
    assert!(en.contains("6 December 2026") && en.contains("lang=\"en\""));
}

#[test]
fn probe_and_audit_results_mark_the_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An audit of portolan's own demo rules as the kernel lists them: every flow allowed.
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/audit/demo-seppmail.json");
    let (code, audit, err) = portolan(
        &[
            "audit",
            "--profile",
            "seppmail",
            "--ruleset",
            &rules.to_string_lossy(),
            "--format",
            "json",
        ],
        Some(dir.path()),
    );
    assert!(code == 0 || code == 1, "{err}");
    std::fs::write(dir.path().join("audit.json"), &audit).expect("write");
    // A probe result with one failure, written as `portolan probe --format json` does.
    let probe = r#"{"profile": "seppmail", "direction": "outbound", "summary": {},
      "results": [
        {"flow": "smtp-out-direct", "protocol": "tcp", "app": "smtp", "host": "mx.example.net", "address": "192.0.2.99",
         "port": 25, "verdict": "filtered", "detail": "no answer <b>within</b> 3 s", "elapsed_ms": 3000, "required": true, "ok": false}
      ]}"#;
    std::fs::write(dir.path().join("probe.json"), probe).expect("write");
    let (code, html, err) = portolan(
        &[
            "report",
            "--profile",
            "seppmail",
            "--probe",
            "probe.json",
            "--audit",
            "audit.json",
            "-o",
            "r.html",
        ],
        Some(dir.path()),
    );
    assert_eq!(code, 0, "{err}");
    assert!(html.is_empty(), "-o writes the file, not standard output");
    let html = std::fs::read_to_string(dir.path().join("r.html")).expect("report");
    assert!(
        html.contains("class=\"fail\">✘ filtered"),
        "the failed probe is marked"
    );
    assert!(
        html.contains("no answer &lt;b&gt;within&lt;/b&gt; 3 s"),
        "details are escaped"
    );
    assert!(
        html.contains("class=\"ok\">✔ allowed"),
        "audited flows are marked"
    );
    assert!(
        html.contains("class=\"status fail\""),
        "the diagram marks the failed edge"
    );

    // The diagram alone.
    let (code, svg, _) = portolan(
        &["report", "--profile", "seppmail", "--format", "svg"],
        None,
    );
    assert_eq!(code, 0);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));

    // Bad result files: exit 2, the file named, no report written.
    std::fs::write(dir.path().join("bad.json"), "{\"flows\": 3}").expect("write");
    let (code, _, err) = portolan(
        &[
            "report",
            "--profile",
            "seppmail",
            "--audit",
            "bad.json",
            "-o",
            "x.html",
        ],
        Some(dir.path()),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.json") && err.contains("portolan audit --format json"),
        "{err}"
    );
    assert!(!dir.path().join("x.html").exists());
}
