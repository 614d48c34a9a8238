use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Address, ProviderRef};

/// Resource attributes. A `BTreeMap` keeps them in a stable order, so digests and plan files are
/// deterministic.
pub type Attrs = BTreeMap<String, serde_json::Value>;

/// The identifier the cloud gave a resource (an ARN, a resource id, a name).
pub type CloudId = String;

/// Tag keys that mark everything Tessera creates, so orphans can be found and adopted.
pub const TAG_FLEET: &str = "tessera.dev/fleet";
pub const TAG_ADDRESS: &str = "tessera.dev/address";

/// Who owns a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldPolicy {
    /// Tessera owns it: a difference is a change to plan, and a change made elsewhere is drift.
    #[default]
    Owned,
    /// Something else legitimately moves it (the autoscaler's node count, a cloud-driven patch
    /// upgrade): never a diff, never drift.
    Delegated,
    /// Not compared at all.
    Ignored,
}

/// A resource as the fleet wants it: the output of a provider's `lower`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub address: Address,
    pub provider: ProviderRef,
    pub attrs: Attrs,
    pub deps: Vec<Address>,
    /// Fields that are not `Owned`. Absent means owned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, FieldPolicy>,
    /// Fields the cloud cannot change in place: a change to one of them means replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_on: Vec<String>,
}

impl ResourceSpec {
    pub fn new(address: Address, provider: ProviderRef) -> Self {
        Self {
            address,
            provider,
            attrs: Attrs::new(),
            deps: Vec::new(),
            policies: BTreeMap::new(),
            replace_on: Vec::new(),
        }
    }

    pub fn attr(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.attrs.insert(key.to_string(), value.into());
        self
    }

    pub fn depends_on(mut self, dep: Address) -> Self {
        self.deps.push(dep);
        self
    }

    pub fn policy(mut self, field: &str, policy: FieldPolicy) -> Self {
        self.policies.insert(field.to_string(), policy);
        self
    }

    pub fn replace_on(mut self, field: &str) -> Self {
        self.replace_on.push(field.to_string());
        self
    }

    pub fn policy_of(&self, field: &str) -> FieldPolicy {
        self.policies.get(field).copied().unwrap_or_default()
    }

    pub fn rtype(&self) -> &str {
        &self.address.rtype
    }
}

/// A resource as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub id: CloudId,
    /// The cloud's lifecycle status, verbatim (`ACTIVE`, `Succeeded`, `RUNNING`, ...).
    pub status: String,
    pub attrs: Attrs,
}
