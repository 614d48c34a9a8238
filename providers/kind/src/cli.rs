//! The `kind` binary, driven through its documented commands and nothing else.
//!
//! ## Overview
//!
//! - `kind version`: is kind there at all;
//! - `kind get clusters`: the clusters on this host (and, since it lists Docker containers,
//!   whether Docker answers);
//! - `kind create cluster --name N --config F --kubeconfig K --wait 5m`;
//! - `kind get kubeconfig --name N`: the cluster's admin kubeconfig, on stdout;
//! - `kind delete cluster --name N`.
//!
//! The binary is `TESSERA_KIND` if set, else `kind` on `PATH`. A binary that cannot be started is
//! [`KindError::NotInstalled`]; a failure is classified from kind's output ([`classify`]).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Output;

use zeroize::Zeroizing;

use crate::error::{KindError, classify};

/// The environment variable naming the kind binary.
pub const ENV_BINARY: &str = "TESSERA_KIND";

/// The binary to run: the explicit setting, else `TESSERA_KIND`, else `kind` (looked up on PATH).
pub fn resolve_binary(explicit: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (explicit, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(v)) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("kind"),
    }
}

#[derive(Debug, Clone)]
pub struct KindCli {
    binary: PathBuf,
    wait: String,
}

impl KindCli {
    /// `wait` is kind's `--wait` (how long create waits for the control plane), e.g. `5m`.
    pub fn new(binary: PathBuf, wait: impl Into<String>) -> Self {
        Self { binary, wait: wait.into() }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    async fn run(&self, args: &[&OsStr]) -> Result<Output, KindError> {
        let command: Vec<String> = args.iter().take(2).map(|a| a.to_string_lossy().into_owned()).collect();
        let command = command.join(" ");
        let output = tokio::process::Command::new(&self.binary)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    KindError::NotInstalled { binary: self.binary.display().to_string() }
                }
                _ => KindError::Local(format!("could not run `{} {command}`: {e}", self.binary.display())),
            })?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(classify(&command, &String::from_utf8_lossy(&output.stderr)))
        }
    }

    /// `kind version`'s answer, e.g. `kind v0.32.0 go1.24 linux/amd64`.
    pub async fn version(&self) -> Result<String, KindError> {
        let out = self.run(&[OsStr::new("version")]).await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The names of the clusters on this host (kind says "No kind clusters found." on stderr
    /// when there are none, and prints nothing on stdout).
    pub async fn clusters(&self) -> Result<Vec<String>, KindError> {
        let out = self.run(&[OsStr::new("get"), OsStr::new("clusters")]).await?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    pub async fn create(&self, name: &str, config: &Path, kubeconfig: &Path) -> Result<(), KindError> {
        let args: [&OsStr; 10] = [
            "create".as_ref(),
            "cluster".as_ref(),
            "--name".as_ref(),
            name.as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--wait".as_ref(),
            self.wait.as_ref(),
        ];
        self.run(&args).await.map(drop)
    }

    /// The admin kubeconfig (it holds the client key: zeroed when dropped, never stored).
    pub async fn kubeconfig(&self, name: &str) -> Result<Zeroizing<String>, KindError> {
        let out = self.run(&["get".as_ref(), "kubeconfig".as_ref(), "--name".as_ref(), name.as_ref()]).await?;
        let stdout = Zeroizing::new(out.stdout);
        Ok(Zeroizing::new(String::from_utf8_lossy(&stdout).into_owned()))
    }

    pub async fn delete(&self, name: &str) -> Result<(), KindError> {
        self.run(&["delete".as_ref(), "cluster".as_ref(), "--name".as_ref(), name.as_ref()]).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_the_setting_then_tessera_kind_then_kind_on_path() {
        let env = Some(OsString::from("/opt/kind"));
        assert_eq!(resolve_binary(Some(Path::new("/x/kind")), env.clone()), PathBuf::from("/x/kind"));
        assert_eq!(resolve_binary(None, env), PathBuf::from("/opt/kind"));
        assert_eq!(resolve_binary(None, Some(OsString::new())), PathBuf::from("kind"));
        assert_eq!(resolve_binary(None, None), PathBuf::from("kind"));
    }
}
