//! ## Overview
//!
//! The pipeline-only executor: signed plans, approval lanes, sealed credentials, read-only
//! providers outside the pipeline, a policy bound to state, a pinned pipeline identity, and a
//! signed audit chain.
//!
//! Who can do what:
//! - anyone with read credentials can `plan`, `drift` and `approve` (with their own key);
//! - only `tessera pipeline apply`, run with the pipeline's age identity, changes pipeline-only
//!   placements (by default every eks, aks and gke placement once a `policy.yaml` exists), and
//!   only with a plan that is unmodified, fresh, never applied before, free of application
//!   workloads, and signed by enough approvers of the lanes that cover its actions;
//! - everywhere else those placements' providers are read-only: a mutation is refused before any
//!   request leaves the process.
//!
//! What holds against someone with write access to the repository and a shell ([`bound`],
//! [`identity`]): the policy is recorded in state by the first apply, so removing or editing
//! `policy.yaml` refuses commands instead of lifting the rules; only the identity whose recipient
//! the policy pins may `pipeline apply`, and there the only cloud credentials are the sealed
//! ones; audit records are signed with a key derived from that identity.

pub mod approval;
pub mod authority;
pub mod bound;
pub mod change;
pub mod creds;
pub mod identity;
pub mod keys;
pub mod plan_spec;
pub mod policy;

pub use approval::{Refusal, check, check_lane, check_signed};
pub use authority::Authority;
pub use policy::Policy;
