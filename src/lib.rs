//! Tessera: one provider-neutral Fleet spec, many Kubernetes clusters.
//!
//! Data flows one way through the stages, one module each:
//!
//! ```text
//! spec ──parse+validate──▶ Fleet ──compile──▶ ResourceGraph ──plan (refresh+diff)──▶ Plan
//!      ──exec (DAG-driven, per-provider concurrency)──▶ provider calls ──▶ state
//! ```

pub mod compile;
pub mod providers;
pub mod spec;
pub mod state;
pub mod plan;
pub mod retry;
pub mod exec;
pub mod engine;
pub mod cli;
