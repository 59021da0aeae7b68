//! Fuzz the site parser, and binding a parsed site to a built-in profile.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_core::{catalog, plan, render, site, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let src = Source::new("fuzz-site.toml", text);
    match site::parse(&src) {
        Ok((s, _)) => {
            for id in catalog::ids() {
                let Some(Ok(p)) = catalog::load(id) else { continue };
                if let Ok(plan) = plan::build(&p, &s, None) {
                    for t in render::TARGETS {
                        let _ = render::render(&plan, *t);
                    }
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
