//! The `kube` provider (see the crate description). Built by its own work item.
