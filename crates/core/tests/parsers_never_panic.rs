//! A cheap, always-run complement to the cargo-fuzz targets in fuzz/: random mutations of
//! real profiles and sites (bytes deleted, inserted, replaced, lines swapped) must give a
//! result or diagnostics, never a panic, and every diagnostic must be printable.

use portolan_core::{catalog, plan, profile, render, site, Source};
use proptest::prelude::*;

fn mutate(base: &str, ops: &[(u8, usize, u8)]) -> String {
    let mut b: Vec<u8> = base.as_bytes().to_vec();
    for &(op, pos, byte) in ops {
        if b.is_empty() {
            break;
        }
        let i = pos % b.len();
        match op % 4 {
            0 => {
                b.remove(i);
            }
            1 => b.insert(i, byte),
            2 => b[i] = byte,
            _ => {
                let j = (pos / 7) % b.len();
                b.swap(i, j);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn exercise_profile(text: &str) {
    match profile::parse(&Source::new("m.toml", text)) {
        Ok((p, _)) => {
            let mut s = site::demo(&p);
            s.features = site::Features::All;
            if let Ok(plan) = plan::build(&p, &s, None) {
                for t in render::TARGETS {
                    let _ = render::render(&plan, *t);
                }
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty());
            for d in &e.0 {
                let _ = d.to_string();
            }
        }
    }
}

fn exercise_site(text: &str) {
    match site::parse(&Source::new("s.toml", text)) {
        Ok((s, _)) => {
            if let Some(Ok(p)) = catalog::load("seppmail") {
                if let Ok(plan) = plan::build(&p, &s, None) {
                    let _ = render::render(&plan, render::TARGETS[0]);
                }
            }
        }
        Err(e) => {
            for d in &e.0 {
                let _ = d.to_string();
            }
        }
    }
}

const SITE: &str = include_str!("../../../tests/golden/seppmail-gateway/site.toml");
const DOCS: [&str; 11] = [
    include_str!("../../../tests/import/corpus/dell-dpm-en.txt"),
    include_str!("../../../tests/import/corpus/vmware-esxi65-en.txt"),
    include_str!("../../../tests/import/corpus/mailstore-server-wiki-en.txt"),
    include_str!("../../../tests/import/corpus/securepoint-uma-de.txt"),
    include_str!("../../../tests/import/corpus/mdaemon-securitygateway-en.txt"),
    include_str!("../../../tests/import/corpus/timesensor-de.txt"),
    include_str!("../../../tests/import/quarzit-markdown-de.txt"),
    include_str!("../../../tests/import/nimbus-bullets-en.txt"),
    include_str!("../../../tests/import/orbit-prose-en.txt"),
    include_str!("../../../tests/import/ferrit-html-de.txt"),
    include_str!("../../../tests/import/kobalt-glued-en.txt"),
];

/// Import a document: no panic, and the draft always passes the profile check.
/// Equal, or a panic showing where the two first differ.
fn same(typed: &str, parsed: &str, what: &str) {
    if typed != parsed {
        let at = typed
            .bytes()
            .zip(parsed.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(typed.len().min(parsed.len()));
        let from = at.saturating_sub(200);
        let show = |s: &str| {
            s.get(from..(at + 200).min(s.len()))
                .unwrap_or("")
                .to_string()
        };
        panic!(
            "the typed check and the parsed draft give different {what}:\n typed: ...{}\nparsed: ...{}",
            show(typed),
            show(parsed)
        );
    }
}

fn exercise_import(text: &str) {
    let d = portolan_core::import::import(&Source::new("doc.txt", text), &Default::default());
    let parsed = match profile::parse(&Source::new("draft.toml", d.toml.clone())) {
        Ok(p) => p,
        Err(e) => panic!(
            "draft fails the check: {e}\n--- document:\n{text}\n--- draft:\n{}",
            d.toml
        ),
    };
    // The check `portolan import` runs reads the profile the text was written from: it must
    // give the same profile and the same diagnostics, at the same places.
    let typed = d
        .profile()
        .expect("the typed check agrees that the draft is valid");
    same(
        &format!("{:?}", typed.0),
        &format!("{:?}", parsed.0),
        "profile",
    );
    same(
        &format!("{:?}", typed.1),
        &format!("{:?}", parsed.1),
        "diagnostics",
    );
    let _ = portolan_core::import::report_text(&d, "doc.txt");
}

const NFT_JSON: &str = include_str!("../../../tests/audit/gateway.json");
const IPT: &str = include_str!("../../../tests/audit/host-holes.rules");
const IPSET: &str = include_str!("../../../tests/audit/host-holes.ipset");

/// Parse a ruleset (and audit it against a demo plan when it parses).
fn exercise_ruleset(text: &str, ipset: Option<&str>) {
    let src = Source::new("r", text);
    let sets = ipset.map(|t| Source::new("i", t));
    match portolan_core::audit::parse_ruleset(&src, None, sets.as_ref()) {
        Ok(rs) => {
            if let Some(Ok(p)) = catalog::load("intra2net") {
                if let Ok(plan) = plan::build(&p, &site::demo(&p), None) {
                    let r = portolan_core::audit::audit(&plan, &rs);
                    let _ = r.to_json();
                }
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty());
            for d in &e.0 {
                let _ = d.to_string();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_profiles_never_panic(which in 0usize..3, ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..12)) {
        let base = catalog::CATALOG[which].text;
        exercise_profile(&mutate(base, &ops));
    }

    #[test]
    fn mutated_sites_never_panic(ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..12)) {
        exercise_site(&mutate(SITE, &ops));
    }

    #[test]
    fn mutated_nft_json_never_panics(ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..12)) {
        exercise_ruleset(&mutate(NFT_JSON, &ops), None);
    }

    #[test]
    fn mutated_iptables_save_never_panics(ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..12), which in 0usize..2) {
        if which == 0 {
            exercise_ruleset(&mutate(IPT, &ops), Some(IPSET));
        } else {
            exercise_ruleset(IPT, Some(&mutate(IPSET, &ops)));
        }
    }

    #[test]
    fn mutated_documents_import_to_valid_drafts(which in 0usize..11, ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..16)) {
        exercise_import(&mutate(DOCS[which], &ops));
    }

    /// Text made of the pieces the layouts look for (ports, protocol and direction words,
    /// pipes, tabs, wiki markup, bullets), in any order.
    #[test]
    fn table_shaped_text_imports_to_valid_drafts(text in "([0-9]{1,6}|TCP|UDP|In|Out|In/Out|Port|port|Protocol|\\||\\t|  |\\{\\||\\|-|\\|\\}|!!|, |-|/|\\* |\\n|\\n\\n| |x\\.example\\.com|`|:|\\(|\\)){0,120}") {
        exercise_import(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        exercise_profile(&text);
        exercise_site(&text);
        exercise_ruleset(&text, None);
        exercise_ruleset(&text, Some(&text));
        exercise_import(&text);
    }
}

/// A 2 MB document of table fragments and noise imports in bounded time (the 10 MB figure
/// is measured in release by benches/import_large.sh).
#[test]
fn large_documents_import_in_bounded_time() {
    let mut text = String::new();
    let mut i = 0u32;
    while text.len() < 2_000_000 {
        text.push_str(DOCS[(i % 5) as usize]);
        text.push_str(&format!(
            "\n{} | TCP | In/Out | noise row {i} on host{i}.example.net |\n",
            1 + i % 65000
        ));
        i += 1;
    }
    let t = std::time::Instant::now();
    exercise_import(&text);
    let took = t.elapsed();
    assert!(took.as_secs() < 60, "2 MB took {took:?}");
}

/// The check `portolan import` runs (chunk by chunk, on the profile the draft was written
/// from) finds what parsing the text finds, in any chunk: a duplicate id across chunks, a
/// port out of range, an invalid DNS name; and it refuses a text that is not what was written.
#[test]
fn the_draft_check_finds_planted_errors_in_any_chunk() {
    use portolan_core::import::{Draft, Lang, CHECK_CHUNK_FLOWS};
    let n = 2 * CHECK_CHUNK_FLOWS + 500;
    let text: String = (0..n)
        .map(|i| format!("- Port {}/tcp to h{i}.example.com for updates\n", 1000 + i))
        .collect();
    let d = portolan_core::import::import(&Source::new("doc.txt", text), &Default::default());
    assert_eq!(d.flows.len(), n);
    d.check().expect("the draft passes");
    let planted = |f: &dyn Fn(&mut Vec<portolan_core::import::DraftFlow>)| {
        let mut flows = d.flows.clone();
        f(&mut flows);
        let bad = Draft::new("doc.txt", "Doc", Lang::En, "doc", flows, d.report.clone());
        // The text says the same as the check.
        assert!(profile::parse(&Source::new("draft.toml", bad.toml.clone())).is_err());
        bad.check()
            .expect_err("a planted error is found")
            .to_string()
    };
    let dup = planted(&|f| f[n - 1].id = f[3].id.clone());
    assert!(dup.contains("duplicate flow id"), "{dup}");
    let port = planted(&|f| f[CHECK_CHUNK_FLOWS + 7].ports = vec![(0, 0)]);
    assert!(port.contains("port"), "{port}");
    let name = planted(&|f| f[n - 3].peers = vec!["bad..example.com".into()]);
    assert!(name.contains("bad..example.com"), "{name}");
    // A text changed after it was written is refused, not checked as if it were right.
    let mut tampered = d.clone();
    tampered.toml = tampered
        .toml
        .replacen("ports = [1500]", "ports = [1501]", 1);
    assert_ne!(tampered.toml, d.toml);
    let e = tampered
        .check()
        .expect_err("a changed text is found")
        .to_string();
    assert!(e.contains("not what the importer wrote"), "{e}");
}
