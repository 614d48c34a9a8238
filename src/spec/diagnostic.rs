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

impl Problem {
    pub fn at(loc: Location, message: impl Into<String>) -> Self {
        let offset = loc.span().byte_offset().unwrap_or(0) as usize;
        let len = loc.span().byte_len().unwrap_or(1).max(1) as usize;
        Self { line: loc.line(), column: loc.column(), span: (offset, len), message: message.into(), help: None }
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
        let src: Arc<str> = Arc::from(source);
        let name = path.display().to_string();
        let problems = problems
            .into_iter()
            .map(|p| {
                let offset = p.span.0.min(source.len());
                let len = p.span.1.min(source.len() - offset);
                SpecDiagnostic {
                    location: format!("{name}:{}:{}", p.line, p.column),
                    message: p.message,
                    src: NamedSource::new(name.clone(), src.clone()),
                    span: (offset, len).into(),
                    hint: p.help,
                }
            })
            .collect();
        Self::Invalid { path: path.to_path_buf(), problems }
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
