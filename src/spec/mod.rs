//! Stage 1: spec text → validated [`Fleet`].
//!
//! `parse` reads the YAML into located raw types; `validate` checks meaning (names, versions,
//! catalogs, overrides, core-service coverage) and produces the normalized model. Every problem
//! carries `file:line:col`, and all problems are reported at once.

mod diagnostic;
mod model;
mod parse;
mod raw;
pub mod secrets;
mod validate;

use std::path::Path;

use tessera_kube::render::{ChartRenderer, ModelOnly};

pub use diagnostic::{Problem, Site, SpecDiagnostic, SpecError, printable};
pub use model::{AlertsFiring, ChartCheck, Fleet, Gate, Placement, Rollout, Wave};
pub use raw::{API_VERSION, KIND, RawFleet};

/// Reads, parses and validates the spec at `path`; charts are judged by Tessera's model.
pub fn load(path: &Path) -> Result<Fleet, SpecError> {
    load_with_charts(path, &ModelOnly)
}

/// [`load`], with the charts' workloads rendered by `charts` where it can (see
/// [`tessera_kube::render`]).
pub fn load_with_charts(path: &Path, charts: &dyn ChartRenderer) -> Result<Fleet, SpecError> {
    let source = crate::bounded::read_to_string(path, crate::bounded::SPEC)
        .map_err(|source| SpecError::Io { path: path.to_path_buf(), source })?;
    load_str_with_charts(path, &source, &crate::backends::all(), charts)
}

/// Parses and validates `source` against every backend of this build; `path` only names it in
/// errors.
pub fn load_str(path: &Path, source: &str) -> Result<Fleet, SpecError> {
    load_str_with(path, source, &crate::backends::all())
}

/// Parses and validates `source` against `backends` (their catalogs, scopes and limits).
pub fn load_str_with(
    path: &Path,
    source: &str,
    backends: &[std::sync::Arc<dyn tessera_provider_api::Backend>],
) -> Result<Fleet, SpecError> {
    load_str_with_charts(path, source, backends, &ModelOnly)
}

/// [`load_str_with`], with the charts' workloads rendered by `charts` where it can.
pub fn load_str_with_charts(
    path: &Path,
    source: &str,
    backends: &[std::sync::Arc<dyn tessera_provider_api::Backend>],
    charts: &dyn ChartRenderer,
) -> Result<Fleet, SpecError> {
    let raw = parse::parse(source).map_err(|p| SpecError::invalid(path, source, p))?;
    validate::validate(&raw, path, backends, charts).map_err(|p| SpecError::invalid(path, source, p))
}

/// The JSON Schema of the spec, for editors (yaml-language-server) and CI linters.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawFleet)).unwrap_or_default()
}
