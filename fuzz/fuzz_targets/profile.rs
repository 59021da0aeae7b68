//! Fuzz the profile parser and everything downstream: any bytes must give a profile or a
//! diagnostic, never a panic; a profile that parses must plan and render on the demo site.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_core::{plan, profile, render, site, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let src = Source::new("fuzz.toml", text);
    match profile::parse(&src) {
        Ok((p, _)) => {
            let mut s = site::demo(&p);
            s.features = site::Features::All;
            if let Ok(plan) = plan::build(&p, &s, None) {
                for t in render::TARGETS {
                    let _ = render::render(&plan, *t);
                }
                let _ = plan.to_json();
            }
        }
        Err(e) => {
            for d in &e.0 {
                let _ = d.to_string();
            }
        }
    }
});
