//! Test-only: a Kubernetes API server fixture that validates every object it receives, and a
//! checker of Helm values against a chart's real `values.yaml`.
//!
//! ## Overview
//! There is no kube-apiserver on the test machines (`../shared/TESTBED.md`). [`KubeFixture`] is
//! a real HTTP server on 127.0.0.1 speaking enough of the Kubernetes API for kube-rs and
//! kubectl:
//! - `/version` and legacy discovery (`/api`, `/api/v1`, `/apis`, `/apis/<g>/<v>`) for the
//!   built-in kinds in [`registry`] and, once Established, the kinds of applied CRDs;
//! - server-side apply with managedFields in the real FieldsV1 format ([`apply`], [`fields`]),
//!   create, replace, merge and JSON patches, get, list with label selectors, delete, watch
//!   (with client-go's streaming list, so `kubectl wait` works); the `/status` subresource;
//!   `resourceVersion`, `uid`, `creationTimestamp`, `generation` ([`store`]); `Status` errors
//!   400/401/404/409/410/422 as a real server sends them;
//! - validation of every object sent ([`validate`]): built-in kinds with
//!   `kubernetes-validate --strict` at the fixture's Kubernetes version, custom resources against
//!   the real CRDs' `openAPIV3Schema` from `../shared/k8s/crds`. A refused object is answered
//!   422 *and* recorded, so [`KubeFixture::assert_no_rejections`] fails the test;
//! - a test API on the handle: set status, add Nodes, run the DaemonSet controller once
//!   ([`daemonsets`]: nodeSelector and taints against tolerations), read and write objects out
//!   of band, inspect requests, inject failures ([`Fault`]).
//!
//! Not served: protobuf, Table output, aggregated discovery (clients fall back), OpenAPI documents
//! (use `kubectl --validate=false`; the fixture validates anyway), strategic merge of lists
//! (strategic merge patches are applied as JSON merge patches), admission, garbage collection
//! by owner references.
//!
//! ```no_run
//! use tessera_kube_fixture::{Fault, KubeFixture};
//! let fixture = KubeFixture::builder().kubernetes_version("1.31.0").preload_real_crds().start().unwrap();
//! let url = fixture.url(); // point kube::Config::new(url.parse().unwrap()) at it
//! fixture.add_node("pool-a-0", serde_json::json!({"pool": "a"}), serde_json::json!([])).unwrap();
//! fixture.fail_next(Fault::new("/daemonsets/", 1, 429).retry_after(1));
//! // ... run the code under test ...
//! fixture.assert_no_rejections();
//! ```

mod api;
pub mod apply;
pub mod crds;
pub mod daemonsets;
mod error;
pub mod fields;
mod fixture;
mod journal;
pub mod registry;
mod routes;
mod selector;
mod server;
mod status;
pub mod store;
pub mod validate;
pub mod values;

pub use error::FixtureError;
pub use fixture::{FixtureBuilder, KubeFixture, TEST_MANAGER};
pub use journal::{Fault, RecordedRequest, Rejection};
