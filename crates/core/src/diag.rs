//! Diagnostics: errors and warnings that point into an input file.
//!
//! Every problem portolan reports about a user's input is a [`Diagnostic`]: a severity, a
//! message saying what is wrong, an optional `help` saying what to do, and (where there is a
//! file) the byte span it refers to. Line and column are computed when shown, so the same value
//! can be printed as a one-line `file:line:col: error: ...` or rendered richly by the CLI.
//! This module must never panic on any span, however wrong: spans are clamped.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never changes the exit code.
    Note,
    /// Something the user should look at; `--strict` turns it into a failure.
    Warning,
    /// The input cannot be used.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// An input text with the name it is shown under (a path, or `catalog:ID` for built-ins).
/// Cloning is cheap (shared text); the index of line starts is built once, on first use, so
/// that locating thousands of diagnostics in a large file stays linear.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: Arc<str>,
    pub text: Arc<str>,
    line_starts: Arc<std::sync::OnceLock<Vec<usize>>>,
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.text == other.text
    }
}

impl Eq for Source {}

impl Source {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
            line_starts: Arc::new(std::sync::OnceLock::new()),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end or
    /// inside a multi-byte character are clamped rather than trusted.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let starts = self.line_starts();
        // The last line start at or before the offset.
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let line_start = starts[line - 1];
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }
}

/// One problem (or remark) about an input.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    pub source: Option<Source>,
    pub span: Option<Range<usize>>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            help: None,
            source: None,
            span: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn note(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Note,
            ..Diagnostic::error(message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn at(mut self, source: &Source, span: Range<usize>) -> Self {
        self.source = Some(source.clone());
        self.span = Some(span);
        self
    }

    /// Attach a file without a position (e.g. an empty file).
    pub fn in_file(mut self, source: &Source) -> Self {
        self.source = Some(source.clone());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col` (or just `file`) of this diagnostic, if it has a file.
    pub fn location(&self) -> Option<String> {
        let source = self.source.as_ref()?;
        Some(match &self.span {
            Some(span) => {
                let (line, col) = source.line_col(span.start);
                format!("{}:{line}:{col}", source.name)
            }
            None => source.name.to_string(),
        })
    }
}

/// The one-line form: `file:line:col: error: message` followed by `  help: ...`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = self.location() {
            write!(f, "{loc}: ")?;
        }
        write!(f, "{}: {}", self.severity, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Diagnostic", 6)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("help", &self.help)?;
        st.serialize_field("file", &self.source.as_ref().map(|s| s.name.to_string()))?;
        let (line, col) = match (&self.source, &self.span) {
            (Some(src), Some(span)) => {
                let (l, c) = src.line_col(span.start);
                (Some(l), Some(c))
            }
            _ => (None, None),
        };
        st.serialize_field("line", &line)?;
        st.serialize_field("column", &col)?;
        st.end()
    }
}

/// A list of diagnostics that contains at least one error: what a failed parse returns.
#[derive(Debug, Clone)]
pub struct Errors(pub Vec<Diagnostic>);

impl Errors {
    pub fn one(d: Diagnostic) -> Self {
        Errors(vec![d])
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl From<Diagnostic> for Errors {
    fn from(d: Diagnostic) -> Self {
        Errors::one(d)
    }
}

/// Collects diagnostics while validating, so that all problems are reported at once.
#[derive(Debug, Default)]
pub struct Sink {
    pub diags: Vec<Diagnostic>,
}

impl Sink {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// Everything collected, errors first.
    pub fn into_errors(self) -> Errors {
        let mut diags = self.diags;
        diags.sort_by_key(|d| std::cmp::Reverse(d.severity));
        Errors(diags)
    }

    /// Ok with the warnings when there is no error; Err with everything otherwise.
    pub fn finish<T>(self, value: T) -> Result<(T, Vec<Diagnostic>), Errors> {
        if self.has_errors() {
            let mut diags = self.diags;
            diags.sort_by_key(|d| std::cmp::Reverse(d.severity));
            Err(Errors(diags))
        } else {
            Ok((value, self.diags))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_clamps_out_of_range_and_mid_char_offsets() {
        let s = Source::new("f", "ab\nçd");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(4), (2, 1)); // inside 'ç'
        assert_eq!(s.line_col(5), (2, 2));
        assert_eq!(s.line_col(999), (2, 3));
    }
}
