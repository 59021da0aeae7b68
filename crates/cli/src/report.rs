//! Printing diagnostics and tracking what they mean for the exit code.
//!
//! Diagnostics with a source position are rendered with codespan-reporting (the offending line
//! with a caret); others as one line. Colour only on a terminal, and never with NO_COLOR.

use std::io::IsTerminal;

use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use portolan_core::{Diagnostic, Severity};

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_WARNINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

#[derive(Default)]
pub struct Reporter {
    pub errors: usize,
    pub warnings: usize,
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
        let choice = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            termcolor::ColorChoice::Auto
        } else {
            termcolor::ColorChoice::Never
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
                let file = SimpleFile::new(src.name.to_string(), text);
                let mut span = span.start.min(src.text.len())..span.end.min(src.text.len());
                while !src.text.is_char_boundary(span.start) {
                    span.start -= 1;
                }
                while !src.text.is_char_boundary(span.end) {
                    span.end += 1;
                }
                let cs = cs.clone().with_labels(vec![Label::primary((), span)]);
                term::emit(&mut out, &term::Config::default(), &file, &cs).is_ok()
            }
            _ => false,
        };
        if !done {
            eprintln!("{d}");
        }
    }
}
