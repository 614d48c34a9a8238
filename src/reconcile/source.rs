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
            Self::Git(g) => format!("{}@{}:{}", g.repo, g.git_ref, g.path.display()),
        }
    }

    /// Reads the spec afresh (a file is re-read every tick too: an edit shows as pending).
    pub async fn fetch(&self) -> Result<Fetched, SourceError> {
        match self {
            Self::File(path) => Ok(Fetched { fleet: spec::load(path)?, commit: None }),
            Self::Git(g) => {
                let g = g.clone();
                // git blocks; it runs on the blocking pool so the metrics server keeps answering.
                match tokio::task::spawn_blocking(move || g.fetch_blocking()).await {
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

    fn fetch_blocking(&self) -> Result<Fetched, SourceError> {
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
        Ok(Fetched { fleet: spec::load_str(&self.path, &text)?, commit: Some(commit) })
    }
}

/// Runs git (in `git_dir` when given), returning stdout; never prompts for credentials.
fn git(git_dir: Option<&Path>, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = git_dir {
        cmd.arg("--git-dir").arg(dir);
    }
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(SourceError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(SourceError::Git { args: args.join(" "), stderr: stderr.trim().lines().take(5).collect() });
    }
    Ok(out.stdout)
}
