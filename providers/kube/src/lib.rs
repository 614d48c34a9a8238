//! Core services as Kubernetes objects and Helm releases, the same on every cloud.
//!
//! ## Overview
//!
//! - [`contract`]: the resource types the Kubernetes providers (`kube`, `simkube`) implement;
//! - [`alert_rules`]: Tessera's own alert rules; [`alert_routing`]: who is told what;
//!   [`alerting_status`]: whether a cluster's alerting works (for `verify`);
//! - [`charts`]: the pinned charts; [`values`]: the values Tessera computes for them;
//! - [`manifests`]: the objects Tessera writes itself; [`journal`]: where each OS keeps its
//!   journal;
//! - [`lower`]: a placement's core services as resources;
//! - [`workloads`]: the core DaemonSets as they will run; [`floor`]: the security floor they
//!   are held to;
//! - [`render`]: what validation asks of a renderer of charts (helm, offline), where one is at
//!   hand;
//! - [`coverage`]: which nodes each core DaemonSet covers; [`scheduler`]: the scheduler's rule
//!   (node selector, required node affinity, taints, OS) that decides it.

pub mod alert_routing;
pub mod alert_rules;
pub mod alerting_status;
pub mod charts;
pub mod contract;
pub mod coverage;
pub mod daemonsets;
pub mod floor;
pub mod journal;
pub mod lower;
pub mod manifests;
pub mod node;
pub mod render;
pub mod scheduler;
pub mod schemas;
pub mod values;
pub mod workloads;
