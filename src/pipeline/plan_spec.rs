//! ## Overview
//!
//! The spec a plan file names. A plan file is written by whoever hands it in, and `apply --plan`
//! and `pipeline apply` open the spec it names: a crafted plan could name the pipeline's age
//! identity or `~/.aws/credentials`, and an error that quotes the file would print that secret
//! into the CI log. So the path is refused unless it is relative and stays inside the working
//! directory (symbolic links included), and an unreadable or invalid spec is reported by location
//! only: no byte of the file, and none of the validator's messages (which quote values), reaches
//! the output. `tessera validate PATH` shows the problems to whoever may read the file.

use std::path::{Component, Path, PathBuf};

use crate::spec::{self, Fleet, SpecError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanSpecError {
    #[error("the plan names its spec as {0:?}: a plan's spec must be a relative path inside the working directory")]
    #[diagnostic(
        code(tessera::plan::spec_outside),
        help("run from the repository the plan was made in; plans record the spec relative to it")
    )]
    Outside(String),
    #[error("cannot read the plan's spec {path:?}: {kind}")]
    #[diagnostic(
        code(tessera::plan::spec_unreadable),
        help("the plan was made from it; it must still be there, unchanged")
    )]
    Unreadable { path: String, kind: std::io::ErrorKind },
    #[error("the plan's spec {path:?} is not a valid fleet spec: {count} problem(s), at {locations}")]
    #[diagnostic(
        code(tessera::plan::spec_invalid),
        help("its content is not shown here; run `tessera validate` on it where you may read it")
    )]
    Invalid { path: String, count: usize, locations: String },
}

/// The path a plan names, if it is relative and stays inside `root` once links are resolved.
fn inside(spec_path: &str, root: &Path) -> Result<PathBuf, PlanSpecError> {
    let outside = || PlanSpecError::Outside(spec_path.to_string());
    let path = Path::new(spec_path);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if spec_path.is_empty() || !plain {
        return Err(outside());
    }
    let root = root.canonicalize().map_err(|_| outside())?;
    match root.join(path).canonicalize() {
        Ok(real) if real.starts_with(&root) => Ok(real),
        Ok(_) => Err(outside()),
        Err(e) => Err(PlanSpecError::Unreadable { path: spec_path.to_string(), kind: e.kind() }),
    }
}

/// Loads the spec a plan names, relative to `root` (the working directory).
pub fn load(spec_path: &str, root: &Path) -> Result<Fleet, PlanSpecError> {
    let real = inside(spec_path, root)?;
    let path = spec_path.to_string();
    spec::load(&real)
        .map(|mut fleet| {
            fleet.source = PathBuf::from(spec_path);
            fleet
        })
        .map_err(|e| match e {
            SpecError::Io { source, .. } => PlanSpecError::Unreadable { path, kind: source.kind() },
            SpecError::Invalid { problems, .. } => PlanSpecError::Invalid {
                path,
                count: problems.len(),
                locations: problems.iter().map(|p| format!("{}:{}", p.line, p.column)).collect::<Vec<_>>().join(", "),
            },
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A working directory with a valid spec, beside a secret outside it.
    fn tree(secret: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("specs")).unwrap();
        std::fs::write(dir.path().join("secret.txt"), secret).unwrap();
        std::fs::write(work.join("specs/bad.yaml"), format!("apiVersion: {secret}\n")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), work.join("link.yaml")).unwrap();
        (dir, work)
    }

    #[test]
    fn absolute_parent_and_linked_paths_are_refused() {
        let (dir, work) = tree("AGE-SECRET-KEY-1QQQ");
        let secret = dir.path().join("secret.txt").display().to_string();
        for p in [secret.as_str(), "../secret.txt", "specs/../../secret.txt", "", "/etc/passwd"] {
            assert!(matches!(load(p, &work), Err(PlanSpecError::Outside(_))), "{p}");
        }
        #[cfg(unix)]
        assert!(matches!(load("link.yaml", &work), Err(PlanSpecError::Outside(_))));
        assert!(matches!(load("specs/none.yaml", &work), Err(PlanSpecError::Unreadable { .. })));
    }

    #[test]
    fn an_invalid_spec_inside_is_reported_by_location_only() {
        let (_dir, work) = tree("AGE-SECRET-KEY-1QQQ");
        let err = load("specs/bad.yaml", &work).unwrap_err();
        assert!(matches!(err, PlanSpecError::Invalid { .. }), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("AGE-SECRET"), "{shown}");
    }

    proptest! {
        /// Whatever path a plan names, and whatever the file there holds, no byte of it reaches
        /// what the error says (its message and its debug form, which miette renders).
        #[test]
        fn no_byte_of_a_named_file_reaches_the_output(
            secret in "[A-Za-z0-9+/=_-]{24,64}",
            pick in 0usize..6,
            junk in "\\PC{0,40}",
        ) {
            let (dir, work) = tree(&secret);
            let abs = dir.path().join("secret.txt").display().to_string();
            let path = match pick {
                0 => abs,
                1 => "../secret.txt".to_string(),
                2 => "link.yaml".to_string(),
                3 => "specs/bad.yaml".to_string(),
                4 => format!("specs/{junk}"),
                _ => junk.clone(),
            };
            if let Err(e) = load(&path, &work) {
                let shown = format!("{e} {e:?}");
                // The path itself comes from the plan, so it may be shown; the file's bytes never.
                let shown = shown.replace(&path, "").replace(&format!("{path:?}"), "");
                for window in secret.as_bytes().windows(12) {
                    let w = std::str::from_utf8(window).unwrap();
                    prop_assert!(!shown.contains(w), "`{}` leaked in {}", w, shown);
                }
            }
        }
    }
}
