//! YAML text → [`RawFleet`], with located errors.
//!
//! Parsing happens in two passes. The first reads only each document's `kind`, leniently, so
//! that a file holding Deployments or Services is refused with the reason (infrastructure and
//! applications ship separately) instead of a confusing "unknown field". The second pass is the
//! strict, typed parse of the single Fleet document.

use serde_saphyr::Error as YamlError;

use super::diagnostic::{Problem, did_you_mean};
use super::raw::{API_VERSION, DocumentHead, KIND, RawFleet};
use tessera_provider_api::nearest_names;

/// Kubernetes kinds that are application workloads, not infrastructure.
const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Pod",
    "Job",
    "CronJob",
    "Service",
    "Ingress",
    "ConfigMap",
    "Secret",
    "HelmRelease",
    "Application",
    "Kustomization",
    "Namespace",
];

/// Fields people reach for to put applications into a fleet.
const WORKLOAD_FIELDS: &[&str] =
    &["workloads", "applications", "apps", "deployments", "services", "manifests", "helmReleases", "charts"];

const SEPARATION_HELP: &str = "Tessera fleets hold infrastructure only: clusters, node pools and \
    their core services. Ship applications from their own repository through their own pipeline \
    (Argo CD, Flux, Helm), so that infrastructure changes keep their own approvers.";

pub fn parse(source: &str) -> Result<RawFleet, Vec<Problem>> {
    check_documents(source)?;
    serde_saphyr::from_str_with_options::<RawFleet>(source, strict()).map_err(|e| vec![yaml_problem(source, &e)])
}

/// Specs arrive through pull requests: no YAML 1.1 guessing (`yes` as a boolean, an unquoted
/// number where a string is due) and no tags a reader would have to know about.
fn strict() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.strict_booleans = true;
    o.no_schema = true;
    o.underscored_numbers_as_strings = true;
    o.reject_unsupported_tags = true;
    o.reject_tagged_field_names = true;
    o
}

fn check_documents(source: &str) -> Result<(), Vec<Problem>> {
    let docs: Vec<Option<DocumentHead>> = match serde_saphyr::from_str_multiple(source) {
        Ok(docs) => docs,
        // Not even YAML: the strict pass reports it with a better message.
        Err(_) => return Ok(()),
    };
    let mut problems = Vec::new();
    let mut fleets = 0;
    for head in docs.iter().flatten() {
        let Some(kind) = &head.kind else { continue };
        if kind.get() == KIND {
            fleets += 1;
            if fleets > 1 {
                problems.push(
                    Problem::at(kind.loc(), "a spec file holds exactly one Fleet")
                        .help("put each fleet in its own file under specs/"),
                );
            }
        } else if WORKLOAD_KINDS.contains(&kind.get().as_str()) {
            problems.push(
                Problem::at(
                    kind.loc(),
                    format!("`{}` is an application workload; a fleet spec cannot contain it", kind.get()),
                )
                .help(SEPARATION_HELP),
            );
        } else {
            problems.push(
                Problem::at(kind.loc(), format!("unexpected document of kind `{}`", kind.get()))
                    .help(format!("a spec file holds one document of `kind: {KIND}`, `apiVersion: {API_VERSION}`")),
            );
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn yaml_problem(source: &str, e: &YamlError) -> Problem {
    let loc = e.location().unwrap_or(serde_saphyr::Location::UNKNOWN);
    let mut problem = Problem::at(loc, first_line(e));
    if loc.line() == 0 {
        problem.line = 1;
        problem.column = 1;
    }
    match innermost(e) {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            if WORKLOAD_FIELDS.contains(&field.as_str()) {
                problem.message = format!("`{field}` would put applications into an infrastructure spec");
                problem.help = Some(SEPARATION_HELP.to_string());
            } else {
                problem.message = format!("unknown field `{field}`");
                problem.help = did_you_mean(&nearest_names(expected.iter().copied(), field, 3))
                    .or_else(|| Some(format!("allowed here: {}", expected.join(", "))));
            }
        }
        YamlError::SerdeMissingField { field, .. } => {
            problem.message = format!("missing field `{field}`");
            problem.help = Some("see `tessera schema` for the fields each section needs".into());
        }
        _ => {
            if source.trim().is_empty() {
                problem.message = "the spec is empty".into();
                problem.help = Some("start from specs/quickstart.yaml".into());
            }
        }
    }
    problem
}

/// The error itself, without the snippet and alias wrappers serde-saphyr adds around it.
fn innermost(mut e: &YamlError) -> &YamlError {
    while let YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } = e {
        e = error;
    }
    e
}

/// serde-saphyr's message without its own location suffix or snippet: we render our own.
fn first_line(e: &YamlError) -> String {
    let text = innermost(e).to_string();
    let line = text.lines().next().unwrap_or("invalid YAML").trim();
    match line.find(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}
