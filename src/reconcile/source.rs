//! Where the loop reads the spec from: a file, or a path inside a git repository at a ref.
//!
//! ## Overview
//!
//! A git source keeps a bare mirror under the work directory. Each tick fetches the ref into
//! `refs/tessera/followed` (forced: a rewritten branch is followed, not refused), resolves it to a
//! commit and reads the spec at that commit with `git show COMMIT:PATH`; nothing is checked out.
//! The fleet's source path is the path inside the repository, so a plan file written for the
//! pipeline names `PATH` as the pipeline's own checkout of that commit has it, and its spec digest
//! matches there.
//!
//! This uses the git CLI rather than gix: it brings the credential helpers, SSH configuration and
//! `known_hosts` that CI and a Deployment already set up for git, it needs no extra crates (gix's
//! fetch over SSH shells out to `ssh` anyway and its dependency tree would double the build), and
//! every step is a command an operator can run by hand to see what the loop sees.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::spec::{self, Fleet, SpecError};

#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Git(GitSource),
}

#[derive(Debug, Clone)]
pub struct GitSource {
    /// A local path or a URL, as `git fetch` takes it.
    pub repo: String,
    /// A branch, tag or commit.
    pub git_ref: String,
    /// The spec's path inside the repository.
    pub path: PathBuf,
    /// Where the bare mirror is kept.
    pub work_dir: PathBuf,
}

/// The spec as of this tick, and the commit it came from.
#[derive(Debug)]
pub struct Fetched {
    pub fleet: Fleet,
    pub commit: Option<String>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    #[error("`git {args}` failed: {stderr}")]
    #[diagnostic(code(tessera::reconcile::git), help("check the repository URL, the ref and git's credentials"))]
    Git { args: String, stderr: String },
    #[error("cannot run git: {0}")]
    #[diagnostic(code(tessera::reconcile::git_missing), help("install git; the loop uses the git CLI"))]
    Spawn(std::io::Error),
    #[error("the spec path `{0}` must be relative to the repository and stay inside it")]
    #[diagnostic(code(tessera::reconcile::path))]
    Path(PathBuf),
    #[error("cannot create {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("the spec at {path} (commit {commit}) is not UTF-8")]
    NotText { path: PathBuf, commit: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] SpecError),
}

impl Source {
    /// A short name for events and the commit metric.
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Git(g) => format!("{}@{}:{}", redact(&g.repo), g.git_ref, g.path.display()),
        }
    }

    /// Reads the spec afresh (a file is re-read every tick too: an edit shows as pending).
    pub async fn fetch(&self, charts: super::Charts) -> Result<Fetched, SourceError> {
        match self {
            Self::File(path) => Ok(Fetched { fleet: spec::load_with_charts(path, charts.as_ref())?, commit: None }),
            Self::Git(g) => {
                let g = g.clone();
                // git blocks; it runs on the blocking pool so the metrics server keeps answering.
                match tokio::task::spawn_blocking(move || g.fetch_blocking(charts.as_ref())).await {
                    Ok(r) => r,
                    Err(e) => Err(SourceError::Spawn(std::io::Error::other(e.to_string()))),
                }
            }
        }
    }
}

const FOLLOWED: &str = "refs/tessera/followed";

impl GitSource {
    fn mirror(&self) -> PathBuf {
        self.work_dir.join("mirror.git")
    }

    fn fetch_blocking(&self, charts: &dyn tessera_kube::render::ChartRenderer) -> Result<Fetched, SourceError> {
        if self.path.as_os_str().is_empty() || !self.path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(SourceError::Path(self.path.clone()));
        }
        let mirror = self.mirror();
        if !mirror.join("HEAD").exists() {
            std::fs::create_dir_all(&self.work_dir)
                .map_err(|source| SourceError::Dir { path: self.work_dir.clone(), source })?;
            git(None, &["init", "--bare", "--quiet", &mirror.to_string_lossy()])?;
        }
        let refspec = format!("+{}:{FOLLOWED}", self.git_ref);
        git(Some(&mirror), &["fetch", "--quiet", "--no-tags", "--", &self.repo, &refspec])?;
        let commit = git(Some(&mirror), &["rev-parse", "--verify", &format!("{FOLLOWED}^{{commit}}")])?;
        let commit = String::from_utf8_lossy(&commit).trim().to_string();
        let inside = self.path.to_string_lossy().replace('\\', "/");
        let bytes = git(Some(&mirror), &["show", &format!("{commit}:{inside}")])?;
        let text = String::from_utf8(bytes)
            .map_err(|_| SourceError::NotText { path: self.path.clone(), commit: commit.clone() })?;
        let fleet = spec::load_str_with_charts(&self.path, &text, &crate::backends::all(), charts)?;
        Ok(Fetched { fleet, commit: Some(commit) })
    }
}

/// How long one git command may run: a fetch that stalls must not stop the loop for good.
const GIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// `text` with the credentials of any URL in it taken out (`https://user:token@host` →
/// `https://host`): repository URLs reach events, metrics and plan files.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => rest = &tail[at + 1..],
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Runs git (in `git_dir` when given), returning stdout; never prompts for credentials, gives up
/// on a transfer slower than 1 KB/s for a minute, and is killed after [`GIT_DEADLINE`].
fn git(git_dir: Option<&Path>, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    use process_control::{ChildExt, Control};
    let mut cmd = Command::new("git");
    if let Some(dir) = git_dir {
        cmd.arg("--git-dir").arg(dir);
    }
    let child = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
        .env("GIT_HTTP_LOW_SPEED_TIME", "60")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(SourceError::Spawn)?;
    // Output is read while git runs, so a large one never blocks it while the deadline is watched.
    let output = child
        .controlled_with_output()
        .time_limit(GIT_DEADLINE)
        .terminate_for_timeout()
        .wait()
        .map_err(SourceError::Spawn)?;
    let Some(output) = output else {
        return Err(SourceError::Git {
            args: redact(&args.join(" ")),
            stderr: format!("killed after {} s", GIT_DEADLINE.as_secs()),
        });
    };
    let (status, out, err) = (output.status, output.stdout, output.stderr);
    if !status.success() {
        let stderr = redact(&String::from_utf8_lossy(&err));
        return Err(SourceError::Git {
            args: redact(&args.join(" ")),
            stderr: stderr.trim().lines().take(5).collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod redact_tests {
    use super::redact;

    #[test]
    fn credentials_in_urls_are_taken_out() {
        assert_eq!(redact("https://bot:ghp_secret@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(redact("fetch https://x@h/r and ssh://git@host:22/r"), "fetch https://h/r and ssh://host:22/r");
        assert_eq!(redact("git@github.com:o/r.git"), "git@github.com:o/r.git", "scp-like ssh names a user, no secret");
        assert_eq!(redact("/srv/repo"), "/srv/repo");
    }
}
