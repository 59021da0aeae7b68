//! Loading inputs from disk or the catalog: the only file I/O of the core.
//!
//! `--profile X` and a site's `profile = "X"` name either a catalog id or a file path; a
//! path is tried first when it contains a `/` or ends in `.toml`, otherwise the catalog.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Errors, Source};
use crate::model::Profile;
use crate::site::{self, Site};

/// Longest input file read, in bytes: profiles and sites are small.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Longest ruleset file read: a 100,000-rule `nft -j` dump is about 30 MiB.
pub const MAX_RULESET_BYTES: u64 = 1024 * 1024 * 1024;

/// Read a text file, with errors that say which file and why.
pub fn read_source(path: &Path) -> Result<Source, Errors> {
    read_limited(path, MAX_INPUT_BYTES, "a profile or site file")
}

/// Read a document to import (a vendor's manual page as text).
pub fn read_document(path: &Path) -> Result<Source, Errors> {
    read_limited(path, 64 * 1024 * 1024, "a document to import")
}

/// Read a probe or audit result (`--format json` output) for a report.
pub fn read_result(path: &Path) -> Result<Source, Errors> {
    read_limited(path, 256 * 1024 * 1024, "a probe or audit result")
}

/// Read a ruleset or ipset dump.
pub fn read_ruleset(path: &Path) -> Result<Source, Errors> {
    read_limited(path, MAX_RULESET_BYTES, "a ruleset dump")
}

fn read_limited(path: &Path, max: u64, what: &str) -> Result<Source, Errors> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        Errors::one(
            Diagnostic::error(format!("cannot read {name}: {}", io_reason(&e)))
                .with_help("check the path"),
        )
    })?;
    if meta.is_dir() {
        return Err(Diagnostic::error(format!("{name} is a directory, not a file")).into());
    }
    if meta.len() > max {
        return Err(Diagnostic::error(format!(
            "{name} is larger than {} MiB; this is not {what}",
            max / 1024 / 1024
        ))
        .into());
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Errors::one(Diagnostic::error(format!(
            "cannot read {name}: {}",
            io_reason(&e)
        )))
    })?;
    let help = if what == "a document to import" {
        "give the table as text: copy it from the page, or for a PDF run `pdftotext -layout FILE.pdf`"
    } else {
        "profiles and site files are TOML text in UTF-8"
    };
    let valid = std::str::from_utf8(&bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
    if let Some(off) = bytes[..valid].iter().position(|&b| b == 0) {
        // UTF-8 up to here: only valid text reaches the terminal.
        let text = String::from_utf8_lossy(&bytes[..off]).into_owned();
        let src = Source::new(name.clone(), text);
        return Err(Diagnostic::error(format!(
            "the file is binary data, not text: a NUL byte at offset {off}"
        ))
        .at(&src, off..off)
        .with_help(help)
        .into());
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(name, text)),
        Err(e) => {
            // Show only the valid prefix, so no garbage reaches the terminal.
            let off = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&e.as_bytes()[..off]).into_owned();
            let src = Source::new(name.clone(), text);
            Err(Diagnostic::error(format!(
                "the file is not UTF-8 text (binary data?): invalid byte at offset {off}"
            ))
            .at(&src, off..off)
            .with_help(help)
            .into())
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".toml")
}

/// Resolve `--profile X` or a site's `profile = "X"`. `base` is the site file's directory.
pub fn profile(name: &str, base: Option<&Path>) -> Result<Profile, Errors> {
    if !looks_like_path(name) {
        if let Some(r) = crate::catalog::load(name) {
            return r;
        }
    }
    let path: PathBuf = match base {
        Some(b) if Path::new(name).is_relative() => b.join(name),
        _ => PathBuf::from(name),
    };
    if !looks_like_path(name) && !path.exists() {
        return Err(
            Diagnostic::error(format!("no profile `{}`", name.escape_debug()))
                .with_help(format!(
                    "use a catalog id ({}) or the path of a profile file",
                    crate::catalog::ids().join(", ")
                ))
                .into(),
        );
    }
    let src = read_source(&path)?;
    crate::profile::parse(&src).map(|(p, _)| p)
}

/// Load a site file and the profile it names.
pub fn site_and_profile(path: &Path) -> Result<(Site, Profile, Vec<Diagnostic>), Errors> {
    let src = read_source(path)?;
    let (site, warnings) = site::parse(&src)?;
    let base = path.parent();
    let profile = profile(&site.profile, base).map_err(|mut e| {
        // Say where the site named the missing profile.
        if let Some(span) = &site.profile_span {
            let mut d = Diagnostic::error(format!(
                "site names profile `{}`, which cannot be loaded",
                site.profile.escape_debug()
            ))
            .at(&src, span.clone());
            if let Some(first) = e.0.first() {
                let help = match &first.help {
                    Some(h) => format!("{}; {h}", first.message),
                    None => first.message.clone(),
                };
                d = d.with_help(help);
            }
            e.0.insert(0, d);
            e.0.truncate(1);
        }
        e
    })?;
    Ok((site, profile, warnings))
}
