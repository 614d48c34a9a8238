//! Where the systemd journal lives on each cloud's node OS image.
//!
//! A host tailer pointed at the wrong directory finds no journal, and fluent-bit's systemd input
//! then crash-loops (fluent/fluent-bit#2449). `journald.path: auto` picks the directory from this
//! table, the one place that knows it. Each row cites its source.

use tessera_provider_api::JournalPath;

pub const PERSISTENT: &str = "/var/log/journal";
pub const VOLATILE: &str = "/run/log/journal";

/// One cloud's default node OS image and where its journal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalRow {
    /// The cloud (`eks`, `aks`, `gke`, `kind`).
    pub cloud: &'static str,
    /// The node OS image Tessera's node pools use by default there.
    pub image: &'static str,
    pub path: &'static str,
    pub source: &'static str,
}

pub const TABLE: &[JournalRow] = &[
    JournalRow {
        cloud: "eks",
        image: "Amazon Linux 2023 (EKS-optimized AMI)",
        path: PERSISTENT,
        source: "amazonlinux/amazon-linux-2023#616: /var/log/journal is created by the systemd package; awslabs/amazon-eks-ami log collector reads `journalctl --unit=kubelet`",
    },
    JournalRow {
        cloud: "aks",
        image: "Ubuntu 22.04 (AKS node image)",
        path: PERSISTENT,
        source: "indirect: MicrosoftDocs/azure-aks-docs cis-ubuntu.md passes CIS 6.1.2.4 (journald Storage configured); Azure Linux's systemd.spec creates /var/log/journal",
    },
    JournalRow {
        cloud: "gke",
        image: "Container-Optimized OS with containerd",
        path: PERSISTENT,
        source: "indirect: kubernetes/kubernetes#47057 (COS nodes fill their permanent journal); kubelet logs only to the journal (kubernetes/kubernetes#26726)",
    },
    JournalRow {
        cloud: "kind",
        image: "kindest/node",
        path: VOLATILE,
        source: "kubernetes-sigs/kind images/base/Dockerfile sets no Storage= and its clean-install empties /var/log, so journald's Storage=auto keeps the journal in /run/log/journal",
    },
];

/// The journal directory for `cloud` under `setting`; an unknown cloud falls back to the
/// persistent path, the systemd default when `/var/log/journal` exists.
pub fn journal_dir(cloud: &str, setting: JournalPath) -> &'static str {
    match setting {
        JournalPath::Persistent => PERSISTENT,
        JournalPath::Volatile => VOLATILE,
        JournalPath::Auto => TABLE.iter().find(|r| r.cloud == cloud).map_or(PERSISTENT, |r| r.path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_table_and_explicit_paths_win() {
        assert_eq!(journal_dir("kind", JournalPath::Auto), VOLATILE);
        assert_eq!(journal_dir("eks", JournalPath::Auto), PERSISTENT);
        assert_eq!(journal_dir("kind", JournalPath::Persistent), PERSISTENT);
        assert_eq!(journal_dir("eks", JournalPath::Volatile), VOLATILE);
        let clouds: Vec<&str> = TABLE.iter().map(|r| r.cloud).collect();
        assert_eq!(clouds, ["eks", "aks", "gke", "kind"], "one row per cloud");
    }
}
