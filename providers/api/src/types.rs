//! Resource types as registered by a backend: each type's schema and operations, in one place,
//! and the one entry point every provider call goes through.
//!
//! ## Overview
//!
//! A backend registers each of its types once, in a [`Types`] table: its [`Schema`] and an
//! [`Operations`] value (read, find, create, update, delete against that type's cloud API), which
//! works on the backend's context `C` (its clients, region and settings). The table dispatches a
//! [`Request`] by the type it names, and holds what a read, find, create or update answers to the
//! type's schema, so a malformed answer is an error naming the resource and the path.
//!
//! A [`crate::Provider`] has one operation method, `call`, which takes a [`Request`]: a provider
//! built from a table forwards it there, and a decorator (read-only, throttled, plan-only) wraps
//! that single method rather than restating each operation. [`ProviderExt`] gives callers the
//! familiar `read`/`create`/… on top of it; it is implemented once, for every provider.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Address, Attrs, CloudId, Observed, Operation, ProviderError, ResourceSpec, Schema, TAG_ADDRESS, TAGS_ATTR,
};

/// One operation on one resource.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// The live object, or `None` if it is gone. `recorded` is what state holds of it, for a type
    /// whose parts are not all in the cloud's answer (a Helm release's inventory).
    Read { rtype: &'a str, id: &'a CloudId, recorded: Option<&'a Attrs> },
    /// The object a create of `spec` made, by its ownership tags, token or deterministic name.
    Find { spec: &'a ResourceSpec },
    /// Make it and wait until it is usable.
    Create { spec: &'a ResourceSpec },
    /// Change `changed` in place and wait until the change has settled.
    Update { spec: &'a ResourceSpec, id: &'a CloudId, changed: &'a [String] },
    /// Delete the object recorded at `address` and wait until it is gone. An object whose
    /// ownership tags name another address is not deleted (see [`Types::call`]).
    Delete { address: &'a Address, id: &'a CloudId },
}

impl Request<'_> {
    pub fn rtype(&self) -> &str {
        match self {
            Self::Read { rtype, .. } => rtype,
            Self::Delete { address, .. } => &address.rtype,
            Self::Find { spec } | Self::Create { spec } | Self::Update { spec, .. } => spec.rtype(),
        }
    }

    /// The change it makes, `None` for the two that only look.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::Read { .. } | Self::Find { .. } => None,
            Self::Create { .. } => Some(Operation::Create),
            Self::Update { .. } => Some(Operation::Update),
            Self::Delete { .. } => Some(Operation::Delete),
        }
    }
}

/// What a [`Request`] answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A read or a find: the object, if there is one.
    Looked(Option<Observed>),
    /// A create or an update: the object as it now is.
    Made(Observed),
    /// A delete.
    Gone,
}

/// One resource type's operations against its cloud, on the backend's context `C`.
#[async_trait]
pub trait Operations<C: Sync + ?Sized>: Send + Sync {
    async fn read(&self, cx: &C, id: &CloudId, recorded: Option<&Attrs>) -> Result<Option<Observed>, ProviderError>;
    async fn find(&self, cx: &C, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError>;
    async fn create(&self, cx: &C, spec: &ResourceSpec) -> Result<Observed, ProviderError>;
    async fn update(
        &self,
        cx: &C,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError>;
    async fn delete(&self, cx: &C, id: &CloudId) -> Result<(), ProviderError>;
}

struct Entry<C: ?Sized> {
    schema: Schema,
    ops: Arc<dyn Operations<C>>,
}

/// A backend's resource types (see the module's overview). Building one is pure: schemas and
/// operation values, no client.
pub struct Types<C: ?Sized> {
    backend: &'static str,
    entries: BTreeMap<String, Entry<C>>,
}

impl<C: Sync + ?Sized> Types<C> {
    pub fn new(backend: &'static str) -> Self {
        Self { backend, entries: BTreeMap::new() }
    }

    /// Registers a type. A second registration of one name replaces the first (a backend's
    /// tests check that its schemas are sound: [`Schema::problems`]).
    pub fn register(mut self, schema: Schema, ops: impl Operations<C> + 'static) -> Self {
        self.entries.insert(schema.rtype.clone(), Entry { schema, ops: Arc::new(ops) });
        self
    }

    pub fn schema(&self, rtype: &str) -> Option<&Schema> {
        self.entries.get(rtype).map(|e| &e.schema)
    }

    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.entries.values().map(|e| &e.schema)
    }

    /// How long `op` usually takes on `rtype` (zero for a type this backend does not have).
    pub fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        self.schema(rtype).map(|s| s.estimate(op)).unwrap_or_default()
    }

    fn entry(&self, rtype: &str) -> Result<&Entry<C>, ProviderError> {
        self.entries
            .get(rtype)
            .ok_or_else(|| ProviderError::Fatal(format!("the {} backend has no resource type `{rtype}`", self.backend)))
    }

    /// Runs `request` through its type's operations, holding every answer to the type's schema.
    pub async fn call(&self, cx: &C, request: Request<'_>) -> Result<Outcome, ProviderError> {
        let entry = self.entry(request.rtype())?;
        let checked = |o: Observed| entry.schema.check_read(&o.id, &o.attrs).map(|()| o);
        Ok(match request {
            Request::Read { id, recorded, .. } => {
                Outcome::Looked(entry.ops.read(cx, id, recorded).await?.map(checked).transpose()?)
            }
            Request::Find { spec } => Outcome::Looked(entry.ops.find(cx, spec).await?.map(checked).transpose()?),
            Request::Create { spec } => Outcome::Made(checked(entry.ops.create(cx, spec).await?)?),
            Request::Update { spec, id, changed } => {
                Outcome::Made(checked(entry.ops.update(cx, spec, id, changed).await?)?)
            }
            Request::Delete { address, id } => {
                if entry.schema.fields().iter().any(|f| f.name == TAGS_ATTR) {
                    // State can be edited, so a record may point at any object: one that does not
                    // carry this address in its ownership tags is someone else's, and stays.
                    if let Some(live) = entry.ops.read(cx, id, None).await? {
                        let tagged =
                            live.attrs.get(TAGS_ATTR).and_then(|t| t.get(TAG_ADDRESS)).and_then(|v| v.as_str());
                        if tagged != Some(address.to_string().as_str()) {
                            return Err(ProviderError::Fatal(format!(
                                "refusing to delete {} `{id}` for {address}: its ownership tags say {}, so it is not \
                                 the object Tessera made there; if state points at the wrong object, restore the state \
                                 from a backup, and delete the object by hand only if it is really unwanted",
                                entry.schema.rtype,
                                tagged.map_or("nothing".to_string(), |a| format!("`{a}`"))
                            )));
                        }
                    }
                }
                entry.ops.delete(cx, id).await?;
                Outcome::Gone
            }
        })
    }
}

/// `read`, `find`, `create`, `update` and `delete` on any provider, through its one entry point.
#[async_trait]
pub trait ProviderExt {
    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError>;
    async fn read_recorded(
        &self,
        rtype: &str,
        id: &CloudId,
        recorded: &Attrs,
    ) -> Result<Option<Observed>, ProviderError>;
    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError>;
    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError>;
    async fn update(&self, spec: &ResourceSpec, id: &CloudId, changed: &[String]) -> Result<Observed, ProviderError>;
    async fn delete(&self, address: &Address, id: &CloudId) -> Result<(), ProviderError>;
}

fn mismatched(what: &str, outcome: &Outcome) -> ProviderError {
    ProviderError::Fatal(format!("a provider answered a {what} with {outcome:?}"))
}

fn looked(what: &str, outcome: Outcome) -> Result<Option<Observed>, ProviderError> {
    match outcome {
        Outcome::Looked(o) => Ok(o),
        other => Err(mismatched(what, &other)),
    }
}

fn made(what: &str, outcome: Outcome) -> Result<Observed, ProviderError> {
    match outcome {
        Outcome::Made(o) => Ok(o),
        other => Err(mismatched(what, &other)),
    }
}

#[async_trait]
impl<P: crate::Provider + ?Sized> ProviderExt for P {
    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        looked("read", self.call(Request::Read { rtype, id, recorded: None }).await?)
    }

    async fn read_recorded(
        &self,
        rtype: &str,
        id: &CloudId,
        recorded: &Attrs,
    ) -> Result<Option<Observed>, ProviderError> {
        looked("read", self.call(Request::Read { rtype, id, recorded: Some(recorded) }).await?)
    }

    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        looked("find", self.call(Request::Find { spec }).await?)
    }

    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        made("create", self.call(Request::Create { spec }).await?)
    }

    async fn update(&self, spec: &ResourceSpec, id: &CloudId, changed: &[String]) -> Result<Observed, ProviderError> {
        made("update", self.call(Request::Update { spec, id, changed }).await?)
    }

    async fn delete(&self, address: &Address, id: &CloudId) -> Result<(), ProviderError> {
        match self.call(Request::Delete { address, id }).await? {
            Outcome::Gone => Ok(()),
            other => Err(mismatched("delete", &other)),
        }
    }
}
