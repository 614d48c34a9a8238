//! The pipeline-only executor: signed plans, approval lanes, sealed credentials, read-only
//! providers outside the pipeline, and an audit hash chain.
//!
//! Who can do what:
//! - anyone with read credentials can `plan`, `drift` and `approve` (with their own key);
//! - only `tessera pipeline apply`, run with the pipeline's age identity, changes pipeline-only
//!   placements (by default every eks, aks and gke placement once a `policy.yaml` exists), and
//!   only with a plan that is unmodified, fresh, never applied before, free of application
//!   workloads, and signed by enough approvers of the lanes that cover its actions;
//! - everywhere else those placements' providers are read-only: a mutation is refused before any
//!   request leaves the process.

pub mod approval;
pub mod creds;
pub mod keys;
pub mod policy;

pub use approval::{Refusal, check};
pub use policy::Policy;
