//! Test-only Kubernetes API fixture (see the crate description). Built by its own work item.
