//! What Tessera asked kind to make, kept on the host beside the files kind reads.
//!
//! ## Overview
//!
//! A kind cluster has no tags and kind cannot tell which config made it. So before each
//! `kind create`, the driver writes, under `{state_dir}/{name}/`:
//! - `config.json`: the kind config it passes with `--config`;
//! - `audit-policy.yaml`: the API server's audit policy (mounted by the config);
//! - `record.json`: the cluster's attributes as lowered (name, config, image, version and the
//!   ownership tags).
//!
//! The record is written before the create, so a create interrupted by a crash leaves it, and
//! the next create adopts the cluster only when its record matches the spec: same config, same
//! tags. A failed create (kind removes its half-made nodes) and a delete remove the directory.
//! Nothing here is secret: kind's kubeconfig never lands in it.

use std::path::{Path, PathBuf};

use tessera_provider_api::Attrs;

use crate::error::KindError;

/// The attributes a record keeps.
pub const RECORDED: [&str; 5] = ["name", "config", "image", "version", "tags"];

#[derive(Debug, Clone)]
pub struct Workdir {
    root: PathBuf,
}

fn missing(attr: &str) -> KindError {
    KindError::Local(format!("the kind.cluster to record has no `/{attr}`"))
}

fn local(what: &str, path: &Path, e: impl std::fmt::Display) -> KindError {
    KindError::Local(format!("{what} {}: {e}", path.display()))
}

impl Workdir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of cluster `name`; a name that is not one path segment is refused.
    pub fn dir(&self, name: &str) -> Result<PathBuf, KindError> {
        let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']);
        if plain {
            Ok(self.root.join(name))
        } else {
            Err(KindError::Local(format!("`{name}` is not a kind cluster name")))
        }
    }

    pub fn config_file(&self, name: &str) -> Result<PathBuf, KindError> {
        Ok(self.dir(name)?.join("config.json"))
    }

    fn record_file(&self, name: &str) -> Result<PathBuf, KindError> {
        Ok(self.dir(name)?.join("record.json"))
    }

    /// Writes `config.json`, the audit policy and the record, each through a rename so that a
    /// crash never leaves half a file.
    pub async fn write(&self, attrs: &Attrs, policy_file: &Path, policy: &serde_json::Value) -> Result<(), KindError> {
        // Lowering sets both: without them there is no cluster to make, never an empty config.
        let name = attrs.get("name").and_then(|v| v.as_str()).ok_or_else(|| missing("name"))?;
        let config = attrs.get("config").filter(|c| c.is_object()).ok_or_else(|| missing("config"))?;
        let dir = self.dir(name)?;
        tokio::fs::create_dir_all(&dir).await.map_err(|e| local("cannot create", &dir, e))?;
        let recorded: serde_json::Map<String, serde_json::Value> =
            attrs.iter().filter(|(k, _)| RECORDED.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        write_json(&self.config_file(name)?, config).await?;
        write_json(policy_file, policy).await?;
        write_json(&self.record_file(name)?, &serde_json::Value::Object(recorded)).await
    }

    /// The record of cluster `name`, if Tessera wrote one.
    pub async fn load(&self, name: &str) -> Result<Option<Attrs>, KindError> {
        let path = self.record_file(name)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| local("unreadable record", &path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local("cannot read", &path, e)),
        }
    }

    pub async fn remove(&self, name: &str) -> Result<(), KindError> {
        let dir = self.dir(name)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(local("cannot remove", &dir, e)),
            _ => Ok(()),
        }
    }
}

async fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), KindError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| local("cannot encode", path, e))?;
    let partial = path.with_extension("partial");
    tokio::fs::write(&partial, text).await.map_err(|e| local("cannot write", &partial, e))?;
    tokio::fs::rename(&partial, path).await.map_err(|e| local("cannot write", path, e))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_record_round_trips_and_keeps_only_the_lowered_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let w = Workdir::new(dir.path());
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), json!("f-local"));
        attrs.insert("config".into(), json!({"kind": "Cluster"}));
        attrs.insert("endpoint".into(), json!("https://127.0.0.1:1"));
        let policy = dir.path().join("f-local").join("audit-policy.yaml");
        w.write(&attrs, &policy, &json!({"kind": "Policy"})).await.unwrap();
        let back = w.load("f-local").await.unwrap().unwrap();
        assert_eq!(back.get("config"), Some(&json!({"kind": "Cluster"})));
        assert!(!back.contains_key("endpoint"));
        assert!(policy.exists() && w.config_file("f-local").unwrap().exists());
        w.remove("f-local").await.unwrap();
        assert!(w.load("f-local").await.unwrap().is_none());
        w.remove("f-local").await.unwrap();
    }

    #[test]
    fn names_that_are_not_one_path_segment_are_refused() {
        let w = Workdir::new("/state");
        for bad in ["", "..", "a/b", "."] {
            assert!(w.dir(bad).is_err(), "{bad}");
        }
    }
}
