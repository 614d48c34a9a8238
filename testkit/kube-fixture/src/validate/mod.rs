//! Validation of every object the fixture receives.
//!
//! ## Overview
//! - Built-in kinds: [`builtin`], the PyPI tool `kubernetes-validate --strict` at the fixture's
//!   Kubernetes version.
//! - Custom resources: [`openapi`], against the CRD's `openAPIV3Schema`. The schema is the real
//!   CRD's from `../shared/k8s/crds` whenever that directory has the group and kind (so a
//!   simplified CRD in a test chart cannot loosen the check), else the CRD applied to the fixture.
//!
//! Compiled schemas are cached by a hash of the schema.

pub mod builtin;
pub mod openapi;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crds;
use crate::error::FixtureError;

pub struct Validator {
    builtin: builtin::BuiltinValidator,
    real_crds_dir: PathBuf,
    /// Parsed on first use (a few MB of YAML): most tests send no custom resource.
    real_crds: OnceLock<Result<Vec<Value>, String>>,
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Validator {
    /// Fails when the tool is missing or `real_crds_dir` has no CRD files.
    pub fn new(tool: PathBuf, kubernetes_version: &str, real_crds_dir: PathBuf) -> Result<Self, FixtureError> {
        crds::list_dir(&real_crds_dir)?;
        Ok(Self {
            builtin: builtin::BuiltinValidator::new(tool, kubernetes_version)?,
            real_crds_dir,
            real_crds: OnceLock::new(),
            compiled: Mutex::new(HashMap::new()),
        })
    }

    pub fn real_crds(&self) -> Result<&[Value], String> {
        let loaded = self.real_crds.get_or_init(|| crds::load_dir(&self.real_crds_dir).map_err(|e| e.to_string()));
        loaded.as_deref().map_err(Clone::clone)
    }

    pub fn builtin(&self, object: &Value) -> Result<(), String> {
        self.builtin.validate(object)
    }

    /// Checks a custom resource of `group`/`version`/`kind`; `applied_crd` is the fixture's CRD.
    pub fn custom(
        &self,
        object: &Value,
        group: &str,
        version: &str,
        kind: &str,
        applied_crd: Option<&Value>,
    ) -> Result<(), String> {
        let (crd, source) = match crds::find(self.real_crds()?, group, kind) {
            Some(real) => (real, "the real CRD in shared/k8s/crds"),
            None => match applied_crd {
                Some(applied) => (applied, "the applied CRD"),
                None => return Err(format!("no CRD for {kind}.{group}")),
            },
        };
        let schema = crds::version_schema(crd, version)
            .ok_or_else(|| format!("{source} for {kind}.{group} has no schema for version {version}"))?;
        let validator = self.compiled(schema)?;
        let errors = openapi::errors(&validator, object);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{kind}.{group}/{version} against {source}: {}", errors.join("; ")))
        }
    }

    fn compiled(&self, open_api: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = hex::encode(Sha256::digest(serde_json::to_vec(open_api).map_err(|e| e.to_string())?));
        if let Some(v) = self.compiled.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let validator = Arc::new(openapi::compile(&openapi::to_json_schema(open_api))?);
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(key, validator.clone());
        }
        Ok(validator)
    }
}
