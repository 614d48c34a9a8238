//! `tessera render SPEC --placement NAME --out DIR`: the Kubernetes objects one placement's
//! cluster would get, as files a reviewer can read and tools (`kubectl --dry-run`, `promtool`,
//! `amtool`, policy checkers) can check.
//!
//! ## Overview
//!
//! The objects come from the compiled graph, so they are exactly what `apply` applies, in its
//! order: each `kube.object` as lowered, and each `helm.release` rendered by the same renderer
//! validation uses (helm, on a chart already on this machine; it never pulls). A release that
//! cannot be rendered here is written as its computed values, with the reason. One YAML file per
//! object, numbered in apply order, under `DIR` (objects of a release under `DIR/<release>/`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::{Value, json};
use tessera_kube::contract::{OBJECT, RELEASE};
use tessera_kube::render::{ChartRenderer, Rendering, releases};
use tessera_provider_api::ResourceSpec;

use super::OutputFormat;
use crate::compile::ResourceGraph;
use crate::spec::Fleet;

/// What was written, for the summary.
#[derive(Debug, serde::Serialize)]
struct Written {
    file: PathBuf,
    /// `kube.object`, or the release whose objects (or values) it holds.
    source: String,
}

pub(super) fn render(
    fleet: &Fleet,
    graph: &ResourceGraph,
    placement: &str,
    out: &Path,
    charts: &dyn ChartRenderer,
    format: OutputFormat,
) -> Result<u8> {
    let Some(p) = fleet.placement(placement) else {
        let names: Vec<&str> = fleet.placements.iter().map(|p| p.name.as_str()).collect();
        return Err(miette!("the fleet has no placement `{placement}` (it has: {})", names.join(", ")));
    };
    empty_dir(out)?;
    let mut written = Vec::new();
    let mut notes = Vec::new();
    let ours: Vec<&ResourceSpec> = graph.in_order().into_iter().filter(|r| r.address.placement == placement).collect();
    for (i, r) in ours.iter().enumerate() {
        if r.address.rtype == OBJECT {
            let Some(manifest) = r.attrs.get("manifest") else { continue };
            let file = out.join(file_name(i, manifest));
            write_yaml(&file, manifest)?;
            written.push(Written { file, source: OBJECT.into() });
        } else if r.address.rtype == RELEASE {
            let name = r.attrs.get("name").and_then(Value::as_str).unwrap_or(&r.address.name);
            let kube_version = p.cluster.kubernetes_version.as_str();
            let Some(mut release) =
                releases(&p.cluster.core_services, kube_version).into_iter().find(|c| c.release == name)
            else {
                continue;
            };
            // The lowered values: the computed ones and the placement's own (its site labels).
            if let Some(values) = r.attrs.get("values") {
                release.values = values.clone();
            }
            let dir = out.join(name);
            std::fs::create_dir_all(&dir).into_diagnostic().wrap_err_with(|| format!("creating {}", dir.display()))?;
            match charts.render(&release) {
                Rendering::Objects(objects) => {
                    for (j, o) in objects.iter().enumerate() {
                        let file = dir.join(file_name(j, o));
                        write_yaml(&file, o)?;
                        written.push(Written { file, source: name.to_string() });
                    }
                }
                Rendering::Unavailable(reason) => {
                    let file = dir.join("values.yaml");
                    write_yaml(&file, &release.values)?;
                    written.push(Written { file, source: name.to_string() });
                    notes.push(format!(
                        "{name}: not rendered ({reason}); its computed values are in {}",
                        dir.join("values.yaml").display()
                    ));
                }
                Rendering::Failed(why) => return Err(miette!("helm refused the values of release `{name}`: {why}")),
            }
        }
    }
    match format {
        OutputFormat::Json => {
            let body = json!({ "placement": placement, "dir": out, "files": written, "notes": notes });
            println!("{}", serde_json::to_string_pretty(&body).into_diagnostic()?);
        }
        OutputFormat::Human => {
            let mut text = format!("{} files for placement {placement} in {}\n", written.len(), out.display());
            for n in &notes {
                let _ = writeln!(text, "  note: {n}");
            }
            print!("{text}");
        }
    }
    Ok(0)
}

/// `DIR` must be new or empty: files left from another render would be read as this one's.
fn empty_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(miette!(
                    "{} is not empty: render into a new or empty directory, so no file from another render is mistaken for this one's",
                    dir.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).into_diagnostic().wrap_err_with(|| format!("creating {}", dir.display()))
        }
        Err(e) => Err(e).into_diagnostic().wrap_err_with(|| format!("reading {}", dir.display())),
    }
}

/// `NNN-<kind>-<namespace>-<name>.yaml`, lower case, with anything but `[a-z0-9.-]` as `-`.
fn file_name(index: usize, object: &Value) -> String {
    let field = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    let parts = [field("/kind"), field("/metadata/namespace"), field("/metadata/name")];
    let stem: String = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("{index:03}-{stem}.yaml")
}

fn write_yaml(file: &Path, value: &Value) -> Result<()> {
    let yaml = serde_saphyr::to_string(value).into_diagnostic()?;
    std::fs::write(file, yaml).into_diagnostic().wrap_err_with(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_ordered_and_safe() {
        let o = json!({"kind": "AlertmanagerConfig", "metadata": {"namespace": "monitoring", "name": "tessera"}});
        assert_eq!(file_name(7, &o), "007-alertmanagerconfig-monitoring-tessera.yaml");
        let odd = json!({"kind": "Namespace", "metadata": {"name": "../x y"}});
        assert_eq!(file_name(0, &odd), "000-namespace-..-x-y.yaml");
    }
}
