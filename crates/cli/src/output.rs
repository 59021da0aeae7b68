//! Writing results: standard output, or a file written atomically (temp file + rename), so an
//! interrupted or failed run never leaves a half-written configuration behind.

use std::io::Write;
use std::path::Path;

use portolan_core::diag::Diagnostic;

pub fn write(path: Option<&Path>, text: &str) -> Result<(), Diagnostic> {
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Diagnostic::error(
                    format!("cannot write to standard output: {e}"),
                )),
                _ => Ok(()),
            }
        }
        Some(path) => write_atomic(path, text),
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), Diagnostic> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let tmp = dir.join(format!(".{name}.portolan-{}.tmp", std::process::id()));
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Diagnostic::error(format!("cannot write {}: {e}", path.display()))
            .with_help("check that the directory exists and is writable")
    };
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)
}
