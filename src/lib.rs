//! Tessera: one provider-neutral Fleet spec, many Kubernetes clusters.
//!
//! Data flows one way through the stages, one module each:
//!
//! ```text
//! spec ──parse+validate──▶ Fleet ──compile──▶ ResourceGraph ──plan (refresh+diff)──▶ Plan
//!      ──exec (DAG-driven, per-provider concurrency)──▶ provider calls ──▶ state
//! ```

pub mod backends;
pub mod bounded;
pub mod cli;
pub mod compile;
pub mod engine;
pub mod exec;
pub mod pipeline;
pub mod plan;
pub mod providers;
pub mod read_only;
pub mod reconcile;
pub mod recover;
pub mod retry;
pub mod rollout;
pub mod spec;
pub mod state;
pub mod throttle;
pub mod verify;
