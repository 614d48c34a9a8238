//! Charts rendered for validation: the real `helm template`, on charts already on this machine.
//!
//! ## Overview
//!
//! Validation checks coverage on what will run; for a chart that is what helm renders
//! ([`tessera_kube::render`]). `validate` and `plan` must never need the network, so
//! [`CachedCharts`] renders only a chart the settings map to a local directory or one an earlier
//! install left in the chart cache ([`helm::on_this_machine`]), and never pulls. The arguments
//! are an install's ([`helm::template_args`]: the release's values through a private file, its
//! namespace and Kubernetes version), so validation sees what apply will apply.
//!
//! Helm runs synchronously: validation is synchronous, and renders each chart once per command.
//! A chart that is not on the machine, or a helm that cannot be started, is
//! [`Rendering::Unavailable`] and validation uses Tessera's model; helm refusing the values, or
//! printing hooks that apply would refuse, is [`Rendering::Failed`], since the install would
//! fail the same way. A helm that does not finish within [`HELM_BOUND`] is killed and counts as
//! unavailable: a hung helm must not hang `validate`.

use std::io::ErrorKind;
use std::process::{Command, Stdio};
use std::time::Duration;

use process_control::{ChildExt, Control};

use tessera_kube::render::{ChartRelease, ChartRenderer, Rendering};

use crate::helm::{self, ChartRef, Render};
use crate::manifests;
use crate::settings::KubeClientSettings;

/// How long one `helm template` of a chart on this machine may take (it takes about a second).
pub const HELM_BOUND: Duration = Duration::from_secs(60);

/// Runs `command` to its end, or kills it after `bound` (`Ok(None)`), reading its output while
/// it runs (so a chatty process cannot block on a full pipe).
fn run_bounded(command: &mut Command, bound: Duration) -> std::io::Result<Option<process_control::Output>> {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    child.controlled_with_output().time_limit(bound).terminate_for_timeout().wait()
}

/// Renders with the helm and the chart cache of `settings`, never the network.
pub struct CachedCharts {
    settings: KubeClientSettings,
}

impl CachedCharts {
    pub fn new(settings: KubeClientSettings) -> Self {
        Self { settings }
    }
}

impl ChartRenderer for CachedCharts {
    fn render(&self, r: &ChartRelease<'_>) -> Rendering {
        let chart = ChartRef {
            reference: r.chart.reference.clone(),
            version: r.chart.version.clone(),
            digest: r.chart.digest.clone(),
        };
        let Some(path) = helm::on_this_machine(&self.settings, &chart) else {
            return Rendering::Unavailable("the chart is not in the chart cache".into());
        };
        let values = match values_file(&r.values) {
            Ok(file) => file,
            Err(e) => return Rendering::Unavailable(format!("cannot write the values for helm: {e}")),
        };
        let render =
            Render { release: r.release, namespace: r.namespace, values: &r.values, kube_version: r.kube_version };
        let helm = self.settings.helm_binary();
        let mut command = Command::new(&helm);
        command.args(helm::template_args(&render, &path, &chart.version, values.path())).stdin(Stdio::null());
        let output = match run_bounded(&mut command, HELM_BOUND) {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Rendering::Unavailable(format!("helm did not finish within {} s", HELM_BOUND.as_secs()));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Rendering::Unavailable(format!("no helm at `{}`", helm.display()));
            }
            Err(e) => return Rendering::Unavailable(format!("cannot run {}: {e}", helm.display())),
        };
        if !output.status.success() {
            // helm names the template and line that failed; a long stderr is cut, not dumped.
            let stderr: String = String::from_utf8_lossy(&output.stderr).trim().chars().take(2000).collect();
            return Rendering::Failed(format!("helm template failed ({}): {stderr}", output.status));
        }
        let Ok(text) = String::from_utf8(output.stdout) else {
            return Rendering::Failed("helm printed invalid UTF-8".into());
        };
        match manifests::split(&text).and_then(|objects| manifests::refuse_hooks(&objects).map(|()| objects)) {
            Ok(objects) => Rendering::Objects(objects),
            Err(e) => Rendering::Failed(e.to_string()),
        }
    }
}

/// The values in a private temporary file: they may hold what the command line must not show.
fn values_file(values: &serde_json::Value) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new().prefix("tessera-values-").suffix(".json").tempfile()?;
    serde_json::to_writer(&mut file, values)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_past_its_bound_is_killed_and_a_quick_one_is_read() {
        let slow = run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(200)).expect("spawn");
        assert!(slow.is_none(), "killed at its bound");
        let quick = run_bounded(Command::new("sh").args(["-c", "echo out; echo err >&2"]), Duration::from_secs(10))
            .expect("spawn")
            .expect("finished");
        assert_eq!((quick.stdout.as_slice(), quick.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    }
}
