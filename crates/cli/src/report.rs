//! Printing diagnostics and tracking what they mean for the exit code.
//!
//! Diagnostics with a source position are rendered with codespan-reporting (the offending line
//! with a caret); others as one line. Colour only on a terminal, and never with NO_COLOR,
//! unless `--color always|never` says otherwise.
//! At most [`MAX_SHOWN`] are printed; the rest are counted and summed up by
//! [`Reporter::finish`]. Each file is prepared for display once, however many diagnostics
//! point into it.

use std::io::IsTerminal;

use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use portolan_core::{Diagnostic, Severity, Source};

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_WARNINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
/// The kernel (or the firewall tool) refused what was valid input: distinct from bad input.
pub const EXIT_REFUSED: i32 = 3;

/// Diagnostics printed at most; the rest are counted.
pub const MAX_SHOWN: usize = 100;

#[derive(Default)]
pub struct Reporter {
    pub errors: usize,
    pub warnings: usize,
    /// Diagnostics printed so far.
    shown: usize,
    /// Diagnostics counted but not printed.
    hidden: usize,
    /// The last file prepared for display: its name and text (as shared) and the display copy.
    file: Option<(Source, SimpleFile<String, String>)>,
    /// `--color`: `Some(true)` always, `Some(false)` never, `None` on a terminal without
    /// NO_COLOR.
    pub color: Option<bool>,
}

impl Reporter {
    pub fn emit_all(&mut self, diags: &[Diagnostic]) {
        for d in diags {
            self.emit(d);
        }
    }

    pub fn emit(&mut self, d: &Diagnostic) {
        match d.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Note => {}
        }
        if self.shown >= MAX_SHOWN {
            self.hidden += 1;
            return;
        }
        self.shown += 1;
        let auto = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let choice = match self.color {
            Some(true) => termcolor::ColorChoice::Always,
            Some(false) => termcolor::ColorChoice::Never,
            None if auto => termcolor::ColorChoice::Auto,
            None => termcolor::ColorChoice::Never,
        };
        let mut out = termcolor::StandardStream::stderr(choice);
        let cs = match d.severity {
            Severity::Error => CsDiag::error(),
            Severity::Warning => CsDiag::warning(),
            Severity::Note => CsDiag::note(),
        }
        .with_message(&d.message)
        .with_notes(d.help.iter().map(|h| format!("help: {h}")).collect());
        let done = match (&d.source, &d.span) {
            (Some(src), Some(span)) => {
                let file = self.display_file(src);
                let mut span = span.start.min(src.text.len())..span.end.min(src.text.len());
                while !src.text.is_char_boundary(span.start) {
                    span.start -= 1;
                }
                while !src.text.is_char_boundary(span.end) {
                    span.end += 1;
                }
                let cs = cs.clone().with_labels(vec![Label::primary((), span)]);
                term::emit(&mut out, &term::Config::default(), file, &cs).is_ok()
            }
            _ => false,
        };
        if !done {
            let colored = !matches!(choice, termcolor::ColorChoice::Never) && {
                use std::io::Write;
                use termcolor::WriteColor;
                let mut spec = termcolor::ColorSpec::new();
                spec.set_bold(true).set_fg(Some(match d.severity {
                    Severity::Error => termcolor::Color::Red,
                    Severity::Warning => termcolor::Color::Yellow,
                    Severity::Note => termcolor::Color::Green,
                }));
                let loc = d.location().map(|l| format!("{l}: ")).unwrap_or_default();
                let help = d
                    .help
                    .as_ref()
                    .map(|h| format!("\n  help: {h}"))
                    .unwrap_or_default();
                write!(out, "{loc}").is_ok()
                    && out.set_color(&spec).is_ok()
                    && write!(out, "{}", d.severity).is_ok()
                    && out.reset().is_ok()
                    && writeln!(out, ": {}{help}", d.message).is_ok()
            };
            if !colored {
                eprintln!("{d}");
            }
        }
    }

    /// The display copy of a file, made once per file.
    fn display_file(&mut self, src: &Source) -> &SimpleFile<String, String> {
        let same = self
            .file
            .as_ref()
            .is_some_and(|(s, _)| std::sync::Arc::ptr_eq(&s.text, &src.text) && s.name == src.name);
        if !same {
            self.file = None;
        }
        let (_, file) = self.file.get_or_insert_with(|| {
            // Control characters from a hostile file must not reach the terminal. Each is
            // replaced by as many '?' as it has bytes, so every span stays valid.
            let text: String = src
                .text
                .chars()
                .flat_map(|c| {
                    let n = if c.is_control() && c != '\n' && c != '\t' {
                        c.len_utf8()
                    } else {
                        0
                    };
                    let keep = (n == 0).then_some(c);
                    keep.into_iter().chain(std::iter::repeat_n('?', n))
                })
                .collect();
            (src.clone(), SimpleFile::new(src.name.to_string(), text))
        });
        file
    }

    /// Say how many diagnostics were not printed (call once, before exiting).
    pub fn finish(&mut self) {
        if self.hidden > 0 {
            eprintln!(
                "... and {} more diagnostic(s) not shown ({} error(s) and {} warning(s) in all); fix the first ones and run again",
                self.hidden, self.errors, self.warnings
            );
            self.hidden = 0;
        }
    }
}
