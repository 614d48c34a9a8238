//! The real CustomResourceDefinitions kept as test data in `../shared/k8s/crds`.
//!
//! ## Overview
//! CI has `shared/` beside the clone, so the directory is found from this crate's manifest
//! directory: `<workspace>/../shared/k8s/crds`. Each file holds one CRD, as YAML.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::FixtureError;

/// `<workspace>/../shared/k8s` (the workspace is two levels above this crate).
pub fn shared_k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s")
}

/// The `*.yaml` files in `dir`, sorted; an error when there are none.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    let read_err = |source| FixtureError::Read { path: dir.to_path_buf(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(FixtureError::Invalid(format!("no CRD files in {}", dir.display())));
    }
    Ok(files)
}

/// Every `*.yaml` CRD in `dir`, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Value>, FixtureError> {
    list_dir(dir)?.iter().map(|f| load_yaml(f)).collect()
}

/// One YAML document as JSON.
pub fn load_yaml(path: &Path) -> Result<Value, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read { path: path.into(), source })?;
    serde_saphyr::from_str(&text).map_err(|e| FixtureError::Yaml { path: path.into(), message: e.to_string() })
}

/// The CRD in `crds` for a group and kind.
pub fn find<'a>(crds: &'a [Value], group: &str, kind: &str) -> Option<&'a Value> {
    crds.iter().find(|c| {
        c.pointer("/spec/group").and_then(Value::as_str) == Some(group)
            && c.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind)
    })
}

/// The `openAPIV3Schema` of one version of a CRD.
pub fn version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?
        .pointer("/schema/openAPIV3Schema")
}
