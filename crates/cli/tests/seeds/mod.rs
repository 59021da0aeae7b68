//! Where the seed documents are, for the tests that read them.

use std::path::PathBuf;

/// `$PORTOLAN_SEEDS`, else `shared/seeds` beside the repository, else this machine's
/// `/work/shared/seeds`. Missing everywhere is a failure, never a skip.
pub fn dir() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("PORTOLAN_SEEDS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds"),
            PathBuf::from("/work/shared/seeds"),
        ])
        .collect();
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the seed documents are not at any of {candidates:?}; set PORTOLAN_SEEDS to their directory"
            )
        })
}
