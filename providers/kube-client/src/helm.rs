//! Rendering a chart with the real helm: `helm pull` into a cache, then `helm template`.
//!
//! ## Overview
//!
//! A chart is named by an `oci://` reference, a version and optionally a digest. It is pulled
//! once per chart, version and digest into the chart cache (`helm pull REF --version V`), into
//! a fresh directory that is renamed into place only after the digest checked out, so an
//! interrupted or tampered pull never serves a later render. A digest is `sha256:<hex>` of either
//! the chart archive (the OCI chart layer) or the OCI manifest (what `helm pull` prints as
//! `Digest:`). Charts mapped to a local directory in the settings are rendered from there.
//!
//! The render is `helm template NAME CHART --version V --namespace NS -f values.json
//! --include-crds --skip-tests --kube-version X.Y`: the values go through a private temporary
//! file, never the command line, and are never logged; `helm test` hooks are not part of an
//! install. A failing helm is a fatal error with helm's stderr.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::error::KubeError;
use crate::settings::KubeClientSettings;

/// A chart at a pinned version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRef {
    pub reference: String,
    pub version: String,
    pub digest: Option<String>,
}

/// What one render needs besides the chart.
#[derive(Debug, Clone)]
pub struct Render<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    pub values: &'a Value,
    /// `major.minor`.
    pub kube_version: &'a str,
}

/// The cache directory of a chart: readable, and distinct per reference, version and digest.
pub fn cache_dir(root: &Path, chart: &ChartRef) -> PathBuf {
    let name: String = chart
        .reference
        .trim_start_matches("oci://")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    let mut version = chart.version.clone();
    if let Some(d) = &chart.digest {
        version.push('@');
        version.push_str(&d.replace(':', "-"));
    }
    root.join(name).join(version)
}

async fn run(helm: &Path, args: &[&std::ffi::OsStr], what: &str) -> Result<std::process::Output, KubeError> {
    let output = Command::new(helm)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| KubeError::Helm(format!("{what}: cannot run {}: {e}", helm.display())))?;
    if !output.status.success() {
        // helm names the template and line that failed; a long stderr is cut, not dumped.
        let stderr: String = String::from_utf8_lossy(&output.stderr).trim().chars().take(4000).collect();
        return Err(KubeError::Helm(format!("{what}: helm failed ({}): {stderr}", output.status)));
    }
    Ok(output)
}

/// The single chart archive `helm pull` left in `dir`.
fn archive_in(dir: &Path) -> Result<PathBuf, KubeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| KubeError::Helm(format!("reading {}: {e}", dir.display())))?;
    let archives: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    match archives.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(KubeError::Helm(format!("expected one chart archive in {}, found {}", dir.display(), archives.len()))),
    }
}

/// Checks a pulled archive against the wanted digest: the archive's own sha256, or the manifest
/// digest helm printed.
pub fn check_digest(archive: &[u8], helm_said: &str, wanted: &str) -> Result<(), KubeError> {
    let wanted_hex = wanted.strip_prefix("sha256:").unwrap_or(wanted).to_ascii_lowercase();
    let archive_hex = hex::encode(Sha256::digest(archive));
    let manifest_hex = helm_said
        .lines()
        .find_map(|l| l.trim().strip_prefix("Digest:"))
        .map(|d| d.trim().trim_start_matches("sha256:").to_ascii_lowercase());
    if archive_hex == wanted_hex || manifest_hex.as_deref() == Some(wanted_hex.as_str()) {
        return Ok(());
    }
    Err(KubeError::Helm(format!(
        "the pulled chart's digest is sha256:{archive_hex} (manifest {}), not {wanted}: refusing to render it",
        manifest_hex.map_or_else(|| "unknown".to_string(), |m| format!("sha256:{m}"))
    )))
}

/// The chart, if it can be rendered without the network: the local directory the settings map
/// it to, or an earlier pull in the cache (whose digest was checked when it was pulled).
pub fn on_this_machine(settings: &KubeClientSettings, chart: &ChartRef) -> Option<PathBuf> {
    if let Some(dir) = settings.local_charts.get(&chart.reference) {
        return Some(dir.clone());
    }
    if !chart.reference.starts_with("oci://") {
        return None;
    }
    archive_in(&cache_dir(&settings.chart_cache_dir(), chart)).ok()
}

/// The chart to render: [`on_this_machine`], else pulled into the cache.
pub async fn chart_path(settings: &KubeClientSettings, chart: &ChartRef) -> Result<PathBuf, KubeError> {
    if let Some(path) = on_this_machine(settings, chart) {
        return Ok(path);
    }
    if !chart.reference.starts_with("oci://") {
        return Err(KubeError::Helm(format!(
            "chart `{}` is not an oci:// reference and no local directory is set for it",
            chart.reference
        )));
    }
    let dir = cache_dir(&settings.chart_cache_dir(), chart);
    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| KubeError::Helm(format!("creating {}: {e}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(&parent)
        .map_err(|e| KubeError::Helm(format!("creating a directory in {}: {e}", parent.display())))?;
    let what = format!("pulling {} {}", chart.reference, chart.version);
    let out = run(
        &settings.helm_binary(),
        &[
            "pull".as_ref(),
            chart.reference.as_ref(),
            "--version".as_ref(),
            chart.version.as_ref(),
            "--destination".as_ref(),
            staging.path().as_os_str(),
        ],
        &what,
    )
    .await?;
    let archive = archive_in(staging.path())?;
    if let Some(wanted) = &chart.digest {
        let bytes =
            std::fs::read(&archive).map_err(|e| KubeError::Helm(format!("reading {}: {e}", archive.display())))?;
        let said = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        check_digest(&bytes, &said, wanted)?;
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        // Another render pulled the same chart meanwhile: use theirs.
        let _ = std::fs::remove_dir_all(&staged);
    }
    archive_in(&dir)
}

/// The helm arguments of a render (the values file is passed by path).
pub fn template_args(r: &Render<'_>, chart: &Path, version: &str, values_file: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["template".into(), r.release.into(), chart.as_os_str().into()];
    for (flag, value) in [("--version", version), ("--namespace", r.namespace)] {
        args.push(flag.into());
        args.push(value.into());
    }
    args.push("-f".into());
    args.push(values_file.as_os_str().into());
    args.extend(["--include-crds".into(), "--skip-tests".into(), "--kube-version".into(), r.kube_version.into()]);
    args
}

/// Renders `chart` with helm and returns what it printed.
pub async fn template(settings: &KubeClientSettings, chart: &ChartRef, r: &Render<'_>) -> Result<String, KubeError> {
    let path = chart_path(settings, chart).await?;
    let mut values = tempfile::Builder::new()
        .prefix("tessera-values-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| KubeError::Helm(format!("creating the values file: {e}")))?;
    serde_json::to_writer(&mut values, r.values)
        .map_err(|e| KubeError::Helm(format!("writing the values file: {e}")))?;
    let args = template_args(r, &path, &chart.version, values.path());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let what = format!("rendering {} {} as {}/{}", chart.reference, chart.version, r.namespace, r.release);
    let out = run(&settings.helm_binary(), &args, &what).await?;
    String::from_utf8(out.stdout).map_err(|_| KubeError::Helm(format!("{what}: helm printed invalid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(digest: Option<&str>) -> ChartRef {
        ChartRef {
            reference: "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack".into(),
            version: "88.5.3".into(),
            digest: digest.map(str::to_string),
        }
    }

    #[test]
    fn each_version_and_digest_has_its_own_cache_directory() {
        let root = Path::new("/cache");
        let plain = cache_dir(root, &chart(None));
        assert_eq!(plain, Path::new("/cache/ghcr.io_prometheus-community_charts_kube-prometheus-stack/88.5.3"));
        let pinned = cache_dir(root, &chart(Some("sha256:abc")));
        assert_eq!(pinned.file_name().unwrap(), "88.5.3@sha256-abc");
    }

    #[test]
    fn a_digest_matches_the_archive_or_the_manifest() {
        let archive = b"chart bytes";
        let sha = hex::encode(Sha256::digest(archive));
        assert!(check_digest(archive, "", &format!("sha256:{sha}")).is_ok());
        let said = "Pulled: ghcr.io/x:1.0.0\nDigest: sha256:ABCDEF\n";
        assert!(check_digest(archive, said, "sha256:abcdef").is_ok());
        let err = check_digest(archive, said, "sha256:0000").unwrap_err().to_string();
        assert!(err.contains("refusing") && err.contains(&sha), "{err}");
    }

    #[test]
    fn renders_with_crds_without_tests_at_the_kubernetes_version() {
        let values = serde_json::json!({"secret": "hunter2"});
        let r = Render { release: "kps", namespace: "monitoring", values: &values, kube_version: "1.31" };
        let args = template_args(&r, Path::new("/c/kps.tgz"), "88.5.3", Path::new("/tmp/v.json"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "template",
                "kps",
                "/c/kps.tgz",
                "--version",
                "88.5.3",
                "--namespace",
                "monitoring",
                "-f",
                "/tmp/v.json",
                "--include-crds",
                "--skip-tests",
                "--kube-version",
                "1.31"
            ]
        );
        assert!(!args.iter().any(|a| a.contains("hunter2")), "values never reach the command line");
    }

    #[tokio::test]
    async fn a_chart_without_a_local_directory_must_be_oci() {
        let err = chart_path(
            &KubeClientSettings::default(),
            &ChartRef { reference: "https://charts.example/x".into(), version: "1".into(), digest: None },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("not an oci:// reference"), "{err}");
    }
}
