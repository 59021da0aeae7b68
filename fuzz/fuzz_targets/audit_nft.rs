//! Fuzz the nft JSON ruleset reader and the audit on what it reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_core::audit::{self, RulesetFormat};
use portolan_core::{catalog, plan, site, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let src = Source::new("fuzz.json", text);
    match audit::parse_ruleset(&src, Some(RulesetFormat::NftJson), None) {
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
