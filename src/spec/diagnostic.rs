//! Spec errors that point at the YAML: `file:line:col`, the offending snippet, and a hint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_saphyr::Location;

/// One thing wrong with a spec, found by parsing or by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    /// Byte offset and length in the source, for the snippet.
    pub span: (usize, usize),
    pub message: String,
    pub help: Option<String>,
}

/// Where a value is in the spec, kept past validation for problems found later, against state
/// (a version that would move two minors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Site {
    pub line: u64,
    pub column: u64,
    pub span: (usize, usize),
}

impl From<Location> for Site {
    fn from(loc: Location) -> Self {
        let offset = loc.span().byte_offset().unwrap_or(0) as usize;
        let len = loc.span().byte_len().unwrap_or(1).max(1) as usize;
        Self { line: loc.line(), column: loc.column(), span: (offset, len) }
    }
}

impl Problem {
    pub fn at(loc: Location, message: impl Into<String>) -> Self {
        Self::at_site(Site::from(loc), message)
    }

    pub fn at_site(site: Site, message: impl Into<String>) -> Self {
        Self { line: site.line, column: site.column, span: site.span, message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// One located problem, rendered by miette with its snippet.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
#[diagnostic(code(tessera::spec))]
pub struct SpecDiagnostic {
    /// `file:line:col`, also part of the message so that plain and JSON output carry it.
    pub location: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    #[source_code]
    src: NamedSource<Arc<str>>,
    #[label("here")]
    span: SourceSpan,
    #[help]
    pub hint: Option<String>,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum SpecError {
    #[error("cannot read spec {path}: {source}")]
    #[diagnostic(code(tessera::spec::io), help("check the path; specs live in specs/*.yaml"))]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path} is not a valid fleet spec ({} problem{})", problems.len(), if problems.len() == 1 { "" } else { "s" })]
    #[diagnostic(code(tessera::spec::invalid))]
    Invalid {
        path: PathBuf,
        #[related]
        problems: Vec<SpecDiagnostic>,
    },
}

impl SpecError {
    pub fn invalid(path: &Path, source: &str, mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| (p.line, p.column));
        problems.dedup();
        let src: Arc<str> = Arc::from(displayable(source).as_str());
        let name = path.display().to_string();
        let problems = problems
            .into_iter()
            .map(|p| {
                let offset = floor_boundary(source, p.span.0.min(source.len()));
                // A snippet is a screenful at most, however long the value it points at.
                let end = floor_boundary(source, (offset + p.span.1.min(MAX_SNIPPET)).min(source.len()));
                let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
                let line_end = source[offset..].find('\n').map_or(source.len(), |i| offset + i);
                // A snippet shows whole lines: a line too long to print is named, not shown.
                let (src, span) = if line_end - line_start > MAX_LINE {
                    (NamedSource::new(name.clone(), Arc::from(LINE_TOO_LONG)), (0, 0))
                } else {
                    (NamedSource::new(name.clone(), src.clone()), (offset, end - offset))
                };
                SpecDiagnostic {
                    location: format!("{name}:{}:{}", p.line, p.column),
                    line: p.line,
                    column: p.column,
                    message: printable(&p.message, MAX_MESSAGE),
                    src,
                    span: span.into(),
                    hint: p.help.map(|h| printable(&h, MAX_MESSAGE)),
                }
            })
            .collect();
        Self::Invalid { path: path.to_path_buf(), problems }
    }

    /// Each problem as `{path, line, column, message, hint}`, for `--output json`.
    pub fn problems_json(&self) -> Vec<serde_json::Value> {
        match self {
            Self::Io { path, .. } => vec![serde_json::json!({ "path": path, "message": self.to_string() })],
            Self::Invalid { path, problems } => problems
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "path": path, "line": p.line, "column": p.column, "message": p.message, "hint": p.hint,
                    })
                })
                .collect(),
        }
    }

    /// Each problem as `file:line:col: message`, for tests and JSON output.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Io { .. } => vec![self.to_string()],
            Self::Invalid { problems, .. } => problems.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// "did you mean" text for a list of candidates.
pub fn did_you_mean(candidates: &[&str]) -> Option<String> {
    match candidates {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => Some(format!(
            "did you mean one of: {}?",
            many.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A problem's text is at most this long: a 50 MB value is named, not echoed.
const MAX_MESSAGE: usize = 300;
/// The snippet under a problem covers at most this many bytes of source.
const MAX_SNIPPET: usize = 200;
/// A source line longer than this is not shown under a problem.
const MAX_LINE: usize = 1000;
const LINE_TOO_LONG: &str = "(the line is too long to show here)";

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `text` safe for a terminal: control characters escaped (specs arrive through pull requests,
/// and `\e[2J` or an OSC title sequence must not reach the terminal raw), cut to `max` chars.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The source as snippets show it: each control character but newlines and tabs replaced by a
/// character of the same UTF-8 length, so that every byte offset still points where it did.
fn displayable(source: &str) -> String {
    source
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => c,
            c if c.is_control() && c.len_utf8() == 1 => '?',
            c if c.is_control() => '¿',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_sequences_are_escaped_and_long_text_cut() {
        assert_eq!(printable("a\u{1b}[2Jb", 100), "a\\u{1b}[2Jb");
        assert_eq!(printable(&"x".repeat(10), 4), "xxxx…");
        let shown = displayable("a\u{1b}]0;title\u{7}\u{9b}z\n");
        assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
        assert_eq!(shown.len(), "a\u{1b}]0;title\u{7}\u{9b}z\n".len(), "offsets are kept");
    }
}
