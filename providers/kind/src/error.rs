//! What goes wrong when driving the `kind` binary, classified from its exit and its `ERROR:`
//! line.

use tessera_provider_api::ProviderError;

/// Where to get kind, for the error when it is missing.
pub const INSTALL_HINT: &str = "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation, \
     e.g. `go install sigs.k8s.io/kind@v0.32.0`), or set TESSERA_KIND to the path of the binary";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("kind is not installed: `{binary}` was not found; {INSTALL_HINT}")]
    NotInstalled { binary: String },
    #[error(
        "Docker is not running (or not installed): kind runs every node as a Docker container. \
         Start the Docker daemon (install it from https://docs.docker.com/engine/install/) and try again. kind said: {detail}"
    )]
    DockerUnavailable { detail: String },
    /// `kind create` found nodes of a cluster with this name.
    #[error("a kind cluster named `{0}` already exists")]
    AlreadyExists(String),
    #[error("`kind {command}` failed: {line}")]
    Failed { command: String, line: String },
    #[error("{0}")]
    Local(String),
}

impl From<KindError> for ProviderError {
    fn from(e: KindError) -> Self {
        // Nothing kind reports clears by itself on a retry: a missing binary, a stopped Docker,
        // a failed image pull or kubeadm run all need someone to act.
        ProviderError::Fatal(e.to_string())
    }
}

/// kind's own words for a failure: its `ERROR:` line, else the last line it printed.
pub fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .find(|l| l.starts_with("ERROR:"))
        .or(lines.last())
        .map_or_else(|| "no output".to_string(), |l| l.to_string())
}

/// Classifies a failed kind command by what it printed.
pub fn classify(command: &str, stderr: &str) -> KindError {
    let docker_down = stderr.contains("Cannot connect to the Docker daemon")
        || stderr.contains("Is the docker daemon running")
        || (stderr.contains("\"docker\"") && stderr.contains("executable file not found"));
    if docker_down {
        let detail = stderr
            .lines()
            .map(str::trim)
            .find(|l| l.contains("Docker daemon") || l.contains("executable file not found"))
            .unwrap_or_default()
            .trim_start_matches("Command Output: ")
            .to_string();
        return KindError::DockerUnavailable { detail };
    }
    const EXISTS: &str = "node(s) already exist for a cluster with the name";
    if let Some(rest) = stderr.lines().find_map(|l| l.split_once(EXISTS).map(|(_, r)| r)) {
        return KindError::AlreadyExists(rest.trim().trim_matches('"').to_string());
    }
    KindError::Failed { command: command.to_string(), line: error_line(stderr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_down_is_told_apart_from_other_failures() {
        let down = "ERROR: failed to list clusters: command \"docker ps -a\" failed with error: exit status 1\n\
                    Command Output: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n";
        let e = classify("get clusters", down);
        assert!(matches!(&e, KindError::DockerUnavailable { detail } if detail.starts_with("Cannot connect")), "{e:?}");
        let missing = "ERROR: failed to create cluster: exec: \"docker\": executable file not found in $PATH\n";
        assert!(matches!(classify("create cluster", missing), KindError::DockerUnavailable { .. }));
    }

    #[test]
    fn an_existing_cluster_is_recognised_by_kinds_message() {
        let e = classify(
            "create cluster",
            "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"f-local\"\n",
        );
        assert_eq!(e, KindError::AlreadyExists("f-local".into()));
    }

    #[test]
    fn any_other_failure_keeps_kinds_error_line() {
        let out = "Creating cluster \"x\" ...\n ✗ Preparing nodes\nERROR: failed to create cluster: failed to pull image\nStack Trace: ...\n";
        let e = classify("create cluster", out);
        assert_eq!(
            e.to_string(),
            "`kind create cluster` failed: ERROR: failed to create cluster: failed to pull image"
        );
        assert_eq!(error_line("\n  something odd \n"), "something odd");
        assert_eq!(error_line(""), "no output");
    }

    #[test]
    fn a_missing_binary_names_how_to_install_kind() {
        let e = KindError::NotInstalled { binary: "kind".into() }.to_string();
        assert!(e.contains("kind.sigs.k8s.io") && e.contains("TESSERA_KIND"), "{e}");
    }
}
