//! The contract between the Tessera engine and its cloud backends.
//!
//! A backend ([`Provider`]) does two jobs:
//! - it *lowers* a provider-neutral [`ClusterTemplate`] into concrete [`ResourceSpec`]s, choosing
//!   instance types from its [`Catalog`] and deciding, per field, whether a change can be applied
//!   in place or needs a replacement;
//! - it *executes* reads and mutations against its cloud, reporting failures as a typed
//!   [`ProviderError`] so that the engine knows what may be retried.
//!
//! Everything here is plain data plus one small trait, so that the engine, the plan file and every
//! backend agree on a single resource model.

mod address;
pub mod alerting;
pub mod backend;
mod catalog;
pub mod catalogs;
mod error;
pub mod kubeconfig;
pub mod poll;
mod provider;
pub mod redact;
pub mod reference;
mod resource;
pub mod schema;
pub mod serial;
mod template;
pub mod types;

pub use address::{Address, AddressError};
pub use alerting::{Alerting, Heartbeat, Receiver, ReceiverKind, Route, UrlSource, duration_ms};
pub use backend::{
    Backend, BuildContext, BuildError, CredentialSection, Credentials, Extensions, ScopeKey, SpecField, Violation,
};
pub use catalog::{Catalog, MachineCatalog, MachineType, Region, nearest_names};
pub use error::{ProviderError, RetryReason};
pub use provider::{Connection, KubeAccess, Operation, Provider, ProviderRef};
pub use reference::{OUTPUT_ID, Reference};
pub use resource::{
    Attrs, CloudId, FieldPolicy, Observed, Replacement, ResourceSpec, TAG_ADDRESS, TAG_FLEET, TAG_GENERATION,
    TAGS_ATTR, generation_of, pointer_key, pointer_token, pointer_within,
};
pub use schema::{Field, Presence, Schema, Source, Ty};
pub use template::{
    ApiAccess, Arch, Chart, ClusterTemplate, CoreServices, Exporter, JournalPath, LogOutput, Logging, Machine,
    Monitoring, Network, PoolTemplate, RemoteWriteAuth, SecretKeyRef, Taint, TaintEffect, Toleration,
    TolerationOperator,
};
pub use types::{Operations, Outcome, ProviderExt, Request, Types};
