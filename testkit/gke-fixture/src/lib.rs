//! Test-only: a GKE (container v1) fixture that checks every request and response body against
//! the official discovery document.
//!
//! ## Overview
//! There is no GKE here (`../shared/TESTBED.md`). [`GkeFixture`] is a real HTTP server on
//! 127.0.0.1 serving what google-cloud-container-v1 calls for clusters, node pools and
//! operations under `projects/*/locations/*`:
//! - routes, request and response schemas come from the discovery document
//!   (`../shared/apispecs/gke/container-v1-discovery.json`, [`schema`]); the client's integer
//!   enums are named first (the proto's numbers, gaps included);
//! - a body that does not validate is answered 400 `INVALID_ARGUMENT` and recorded:
//!   [`GkeFixture::assert_no_rejections`] fails the test that sent it (answers are checked the
//!   same way);
//! - operations take a configurable time; one per cluster (400 `FAILED_PRECONDITION`), at most
//!   five per project (429 `RESOURCE_EXHAUSTED`); faults inject 503 `UNAVAILABLE` ([`api`]);
//! - a test API on the handle: read clusters and pools, edit them out of band, start an
//!   operation as another tool would, inspect requests and operations, inject faults.
//!
//! ```no_run
//! let fixture = tessera_gke_fixture::GkeFixture::builder().operation_time(std::time::Duration::from_millis(100)).start().unwrap();
//! // point the client at fixture.url() with anonymous credentials (GKE_ENDPOINT), run the code …
//! fixture.assert_no_rejections();
//! ```

pub mod api;
mod fixture;
pub mod schema;
mod server;

pub use api::{Fault, Op, RecordedRequest, Rejection};
pub use fixture::{FixtureBuilder, FixtureError, GkeFixture};
