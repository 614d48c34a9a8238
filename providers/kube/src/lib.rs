//! Core services as Kubernetes objects and Helm releases, the same on every cloud.

pub mod contract;
