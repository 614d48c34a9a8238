//! `sim`: an in-process simulated cloud.
//!
//! It has the shapes of the real clouds (a network, a control plane, node pools), their
//! catalogs, and their latencies ([`Profile`]). Latency is slept on tokio's clock, so tests run it
//! with a paused clock and a 15-minute fleet applies in milliseconds; the CLI runs it with a
//! time scale. Throttling and failures can be injected ([`Faults`]), and a console API
//! ([`SimCloud::console_edit`]) makes the out-of-band changes that drift detection must catch.

mod backend;
mod cloud;
pub mod kube;
pub mod kube_api;
mod kube_record;
mod lower;
mod profile;
mod provider;
pub mod schemas;
mod store;

pub use backend::{PlanOnly, PlanOnlyBackend, SimBackend, SimKubeBackend, SimRuntime, profile_of};
pub use cloud::{CallRecord, CallStats, Faults, SimCloud, SimError};
pub use kube::SimKube;
pub use lower::{AUDIT_LOG_TYPES, lower_shapes, shapes_access};
pub use profile::{Profile, Shape};
pub use provider::SimProvider;
pub use store::{SimResource, StoreError};
