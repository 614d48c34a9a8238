//! The security floor of the core-service DaemonSets, checked on the built objects
//! ([`crate::workloads`]), not on the settings that made them.
//!
//! ## Overview
//!
//! Core services run on every node with host access, so what they may touch is bounded:
//! - node-exporter keeps the pinned chart's image, and host access that the chart itself needs
//!   (`hostNetwork` and `hostPID`, `/proc`, `/sys` and the host root, all read-only);
//! - fluent-bit and the host tailer keep logging-operator's images, without `hostNetwork` or
//!   `hostPID`;
//! - a custom exporter runs an image pinned by a version tag or a `sha256:` digest of 64 hex
//!   digits, without `hostNetwork` or `hostPID`, and mounts only [`HARDWARE_PATHS`], read-only.
//!   Never `/`, `/etc`, `/root`, a process's directory under `/proc` (whose `root` is that
//!   process's whole filesystem), kubelet or container-runtime state, or a runtime socket: each
//!   of those is the node.
//!
//! Host paths are compared after normalising (`//`, `/./` and a trailing `/` removed), so one
//! directory cannot be listed twice or slip past the list under another spelling.

use serde_json::Value;

use crate::workloads::{NODE_EXPORTER_IMAGE, OPERATOR_PINNED_IMAGE, Source, Workload};

/// What a custom (hardware) exporter may mount from the host, read-only, and everything under
/// them (except a process's directory under `/proc`).
pub const HARDWARE_PATHS: [&str; 5] = ["/dev", "/sys", "/proc", "/run/udev", "/lib/modules"];

/// The advice every refused mount carries.
pub fn hardware_hint() -> String {
    format!(
        "a hardware exporter may mount, read-only: {} (not a process's directory under /proc)",
        HARDWARE_PATHS.join(", ")
    )
}

/// `path` in one spelling: absolute, no `..`, no empty or `.` segments, no trailing `/`.
pub fn normalize_host_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("host path `{path}` is not an absolute path"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("host path `{path}` climbs with `..`")),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A custom exporter's host mount, normalised, if the policy allows it.
pub fn exporter_mount(path: &str) -> Result<String, String> {
    let p = normalize_host_path(path)?;
    let under = |root: &str| p == root || p.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'));
    if let Some(rest) = p.strip_prefix("/proc/") {
        let first = rest.split('/').next().unwrap_or_default();
        if first.chars().all(|c| c.is_ascii_digit()) || first == "self" || first == "thread-self" {
            return Err(format!("host path `{p}` is a process's directory, which reaches its whole filesystem"));
        }
    }
    if HARDWARE_PATHS.iter().any(|root| under(root)) {
        return Ok(p);
    }
    let why = if p == "/" {
        "is the node's whole filesystem"
    } else if p.ends_with(".sock") || under("/run/containerd") || under("/var/run") || under("/run/crio") {
        "is or holds a container runtime's socket"
    } else if under("/var/lib/kubelet") || under("/var/lib/containerd") || under("/var/lib/docker") {
        "is kubelet or container-runtime state"
    } else if under("/etc") || under("/root") || under("/home") {
        "holds the node's configuration or credentials"
    } else {
        "is not a hardware path"
    };
    Err(format!("host path `{p}` {why}"))
}

/// Whether `image` is pinned: a `@sha256:` digest of 64 hex digits, or a tag other than
/// `latest`.
pub fn image_pinned(image: &str) -> Result<(), String> {
    if let Some((_, digest)) = image.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        return if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err(format!("image `{image}`: a digest is `sha256:` and 64 hex digits"))
        };
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() && tag != "latest" => Ok(()),
        _ => Err(format!("image `{image}` is not pinned: `latest` or no tag changes under you")),
    }
}

/// One way a workload falls below the floor: the pod-spec field (`image`, `volumes`,
/// `hostNetwork`, `hostPID`) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every way `w` falls below the floor.
pub fn check(w: &Workload) -> Vec<Breach> {
    let pod = w.pod_spec();
    let mut out = Vec::new();
    let flag = |k: &str| pod.get(k).and_then(Value::as_bool).unwrap_or(false);
    let host_access_allowed = w.source == Source::Chart;
    for k in ["hostNetwork", "hostPID"] {
        if flag(k) && !host_access_allowed {
            out.push(Breach { field: k, message: format!("`{k}: true`, which only node-exporter needs") });
        }
    }
    let containers = pod.get("containers").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for c in containers {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let pinned_by_chart = match &w.source {
            Source::Chart => Some(NODE_EXPORTER_IMAGE),
            Source::Operator => Some(OPERATOR_PINNED_IMAGE),
            Source::Exporter(_) => None,
        };
        let breach = match pinned_by_chart {
            Some(want) if image != want => Some(format!("image `{image}` instead of the pinned `{want}`")),
            Some(_) => None,
            None => image_pinned(image).err(),
        };
        out.extend(breach.map(|message| Breach { field: "image", message }));
    }
    let volume = |message: String| Breach { field: "volumes", message };
    for (host, read_only) in host_mounts(pod) {
        if !read_only {
            out.push(volume(format!("host path `{host}` mounted read-write")));
        }
        match &w.source {
            Source::Chart if !["/", "/proc", "/sys"].contains(&host.as_str()) => {
                out.push(volume(format!("host path `{host}`, which the chart does not mount")))
            }
            Source::Exporter(_) => out.extend(exporter_mount(&host).err().map(volume)),
            _ => {}
        }
    }
    out
}

/// Each hostPath volume of `pod` with whether every container mounts it read-only.
fn host_mounts(pod: &Value) -> Vec<(String, bool)> {
    let volumes = pod.get("volumes").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let containers = pod.get("containers").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    volumes
        .iter()
        .filter_map(|v| {
            let host = v.pointer("/hostPath/path").and_then(Value::as_str)?;
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            let read_only = containers
                .iter()
                .flat_map(|c| c.get("volumeMounts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice))
                .filter(|m| m.get("name").and_then(Value::as_str) == Some(name))
                .all(|m| m.get("readOnly").and_then(Value::as_bool) == Some(true));
            Some((host.to_string(), read_only))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_mounts_follow_the_hardware_list() {
        assert_eq!(exporter_mount("/dev/"), Ok("/dev".to_string()));
        assert_eq!(exporter_mount("//sys/./class"), Ok("/sys/class".to_string()));
        assert!(exporter_mount("/proc/meminfo").is_ok());
        for bad in [
            "/",
            "/etc",
            "/etc/shadow",
            "/root",
            "/proc/1/root",
            "/proc/self/root",
            "/run/containerd/containerd.sock",
            "/var/lib/kubelet",
            "/var/run/docker.sock",
            "/devices",
            "/dev/../etc",
        ] {
            assert!(exporter_mount(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn digests_are_sha256_and_64_hex() {
        assert!(image_pinned(&format!("r/x@sha256:{}", "a".repeat(64))).is_ok());
        assert!(image_pinned("r/x@sha256:").is_err());
        assert!(image_pinned(&format!("r/x@sha256:{}", "g".repeat(64))).is_err());
        assert!(image_pinned("r/x:1.2").is_ok());
        assert!(image_pinned("registry:5000/x").is_err(), "a registry port is not a tag");
        assert!(image_pinned("r/x:latest").is_err());
    }
}
