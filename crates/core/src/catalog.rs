//! The built-in catalog: profiles curated by hand from the vendors' documents (see
//! `shared/seeds/`), embedded in the binary. Each entry names the document it came from.

use crate::diag::{Errors, Source};
use crate::model::Profile;

/// One built-in profile: its id and TOML text.
pub struct Entry {
    pub id: &'static str,
    pub text: &'static str,
}

/// Every built-in profile, sorted by id.
pub static CATALOG: &[Entry] = &[
    Entry {
        id: "clearswift",
        text: include_str!("../../../catalog/clearswift.toml"),
    },
    Entry {
        id: "intra2net",
        text: include_str!("../../../catalog/intra2net.toml"),
    },
    Entry {
        id: "seppmail",
        text: include_str!("../../../catalog/seppmail.toml"),
    },
];

pub fn entry(id: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|e| e.id == id)
}

pub fn ids() -> Vec<&'static str> {
    CATALOG.iter().map(|e| e.id).collect()
}

/// Parse a built-in profile. Built-ins are checked by the test suite, so an error here is a
/// bug, but it is still reported as a diagnostic rather than a panic.
pub fn load(id: &str) -> Option<Result<Profile, Errors>> {
    let e = entry(id)?;
    let src = Source::new(format!("catalog:{id}"), e.text);
    Some(crate::profile::parse(&src).map(|(p, _)| p))
}
