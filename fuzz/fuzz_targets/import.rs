//! Fuzz the importer: any text gives a draft that passes the profile check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_core::{import, profile, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let d = import::import(&Source::new("fuzz.txt", text), &Default::default());
    if let Err(e) = profile::parse(&Source::new("draft.toml", d.toml.clone())) {
        panic!("draft fails the profile check: {e}\n{}", d.toml);
    }
    // The check the CLI uses (on the profile the text was written from) must agree.
    if let Err(e) = d.check() {
        panic!("draft fails the typed check: {e}\n{}", d.toml);
    }
    let _ = import::report_text(&d, "fuzz.txt");
});
