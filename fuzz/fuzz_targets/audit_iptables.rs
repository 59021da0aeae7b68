//! Fuzz the iptables-save and ipset-save readers: the input is split at the first NUL byte
//! into the ruleset and the ipset file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_core::audit::{self, RulesetFormat};
use portolan_core::{catalog, plan, site, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (rules, sets) = match text.split_once('\0') {
        Some((r, s)) => (r, Some(Source::new("fuzz.ipset", s))),
        None => (text, None),
    };
    let src = Source::new("fuzz.rules", rules);
    match audit::parse_ruleset(&src, Some(RulesetFormat::IptablesSave), sets.as_ref()) {
        Ok(rs) => {
            if let Some(Ok(p)) = catalog::load("intra2net") {
                if let Ok(plan) = plan::build(&p, &site::demo(&p), None) {
                    let _ = audit::audit(&plan, &rs).to_json();
                }
            }
        }
        Err(e) => {
            for d in &e.0 {
                let _ = d.to_string();
            }
        }
    }
});
