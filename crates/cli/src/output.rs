//! Writing results: standard output (no `-o`, or `-o -`), or a file replaced atomically, so
//! an interrupted or failed run never leaves a half-written configuration behind.
//!
//! The new content goes into a temporary file created exclusively (`O_EXCL`, a random name,
//! by the `tempfile` crate) in the target's directory, is synced, and is renamed over the
//! target. Only a regular file is ever replaced: a device (`-o /dev/null` as root), a
//! directory, a FIFO or a symbolic link is refused with exit 2, so portolan never writes
//! through a link or turns a device node into a file.

use std::io::Write;
use std::path::Path;

use portolan_core::diag::Diagnostic;

/// Write `text` to `path` (`None` or `-`: standard output).
pub fn write(path: Option<&Path>, text: &str) -> Result<(), Diagnostic> {
    match path {
        Some(p) if p != Path::new("-") => write_atomic(p, text),
        _ => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Diagnostic::error(
                    format!("cannot write to standard output: {e}"),
                )),
                _ => Ok(()),
            }
        }
    }
}

/// Refuse to replace anything but a regular file.
fn check_target(path: &Path) -> Result<(), Diagnostic> {
    let what = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Diagnostic::error(format!(
                "cannot write {}: {e}",
                path.display()
            )))
        }
        Ok(m) if m.file_type().is_file() => return Ok(()),
        Ok(m) if m.file_type().is_symlink() => "a symbolic link",
        Ok(m) if m.is_dir() => "a directory",
        Ok(_) => "not a regular file (a device, FIFO or socket)",
    };
    Err(Diagnostic::error(format!(
        "{} is {what}; portolan only replaces regular files",
        path.display()
    ))
    .with_help("give the path of a regular file (or a new one), or `-o -` for standard output"))
}

fn write_atomic(path: &Path, text: &str) -> Result<(), Diagnostic> {
    check_target(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let fail = |e: std::io::Error| {
        Diagnostic::error(format!("cannot write {}: {e}", path.display()))
            .with_help("check that the directory exists and is writable")
    };
    // Keep the mode of the file being replaced; a new file is readable by all (0644), like
    // a configuration file written by any other tool.
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        });
    let mut tmp = tempfile::Builder::new()
        .prefix(".portolan-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.as_file().set_permissions(mode).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    // The temporary file is removed if anything above failed (dropped) or persist fails.
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
