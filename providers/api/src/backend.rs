//! Backends as plug-ins: what the engine needs to know about a cloud, in one small trait.
//!
//! ## Overview
//!
//! A [`Backend`] describes one provider kind (`eks`, `aks`, …) without building anything:
//! - its catalog (regions, zones, machine types, Kubernetes versions);
//! - the limits of its cloud, checked against a placement's cluster at validation time and
//!   reported against the spec field they concern ([`SpecField`]), so that a spec that validates
//!   does not fail at apply on a name that is too long;
//! - the scope a placement names (an AWS account, an Azure subscription, a GCP project), which is
//!   part of the provider's identity and therefore of its concurrency and rate limits;
//! - the section of the sealed credentials file it reads, and what that section holds.
//!
//! And it builds a [`Provider`] from a [`BuildContext`]: the provider reference, the connection
//! (for providers configured from a resource), the credentials, and typed settings
//! ([`Extensions`]) such as an endpoint override.
//!
//! The engine keeps one list of backends, gated by features; adding a cloud is a crate under
//! `providers/` and a line in that list.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::{Catalog, ClusterTemplate, Connection, Provider, ProviderRef};

/// Where in the spec a backend's finding points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecField {
    /// `metadata.name`.
    FleetName,
    /// The placement's `name` (cluster names are `{fleet}-{placement}`).
    PlacementName,
    /// The network's CIDR (the template's, or the placement's override).
    Network,
    /// The pool with this name.
    Pool(String),
    /// The `scale` of the pool with this name (the placement's override, when it has one).
    PoolScale(String),
    /// The placement's `scope` entry with this key (or the placement, when it is missing).
    Scope(String),
    /// The cluster's `apiAccess` (the placement's override, when it has one).
    ApiAccess,
}

/// A limit of the cloud that a placement's cluster breaks, or (a warning) what the backend does
/// about one that the user should know of before applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: SpecField,
    pub message: String,
    pub help: String,
    /// Reported, but the spec stays valid.
    pub warning: bool,
}

impl Violation {
    pub fn new(field: SpecField, message: impl Into<String>, help: impl Into<String>) -> Self {
        Self { field, message: message.into(), help: help.into(), warning: false }
    }

    pub fn warning(field: SpecField, message: impl Into<String>, help: impl Into<String>) -> Self {
        Self { warning: true, ..Self::new(field, message, help) }
    }
}

/// The pools of `cluster` that break `limits`, each at its `scale`: a pool over the per-pool
/// limit, and the pool whose maximum takes the cluster over the per-cluster one.
pub fn node_limits(cluster: &ClusterTemplate, limits: &crate::catalogs::NodeLimits) -> Vec<Violation> {
    let mut out = Vec::new();
    let zones = if limits.per_zone { cluster.zones.len().max(1) as u32 } else { 1 };
    let mut total: u64 = 0;
    let mut over_cluster = false;
    for pool in &cluster.pools {
        let per = pool.max.div_ceil(zones);
        if per > limits.per_pool {
            let unit = if limits.per_zone { format!(" in each of {zones} zones") } else { String::new() };
            out.push(Violation::new(
                SpecField::PoolScale(pool.name.clone()),
                format!(
                    "pool `{}` scales to {} nodes{unit}; {} allows {} per {}",
                    pool.name,
                    per,
                    limits.cloud,
                    limits.per_pool,
                    if limits.per_zone { "pool and zone" } else { "pool" }
                ),
                format!("lower `scale.max`, or split the pool into several (limits: {})", limits.source),
            ));
        }
        total += u64::from(pool.max);
        if let Some(cap) = limits.per_cluster
            && total > u64::from(cap)
            && !over_cluster
        {
            over_cluster = true;
            out.push(Violation::new(
                SpecField::PoolScale(pool.name.clone()),
                format!(
                    "with pool `{}` the cluster scales to {total} nodes or more; {} allows {cap} per cluster",
                    pool.name, limits.cloud
                ),
                format!(
                    "lower the pools' `scale.max`, or spread them over more placements (limits: {})",
                    limits.source
                ),
            ));
        }
    }
    out
}

/// What a cloud placement's `apiAccess` breaks of `limits`, and what is worth saying before an
/// apply: an API open to the whole internet, and how core services are installed through a
/// private one.
pub fn api_access(cluster: &ClusterTemplate, limits: &crate::catalogs::ApiAccessLimits) -> Vec<Violation> {
    let access = &cluster.api_access;
    let mut out = Vec::new();
    if access.public && access.allowed_cidrs.len() > limits.max_cidrs {
        out.push(Violation::new(
            SpecField::ApiAccess,
            format!(
                "`apiAccess.allowedCidrs` lists {} ranges; {} allows {} per cluster",
                access.allowed_cidrs.len(),
                limits.cloud,
                limits.max_cidrs
            ),
            format!("merge neighbouring ranges into wider ones (limit: {})", limits.source),
        ));
    }
    /// A /8 or more: no organisation's runners and operators need that much of the internet.
    const WIDE: u64 = 1 << 24;
    let reach = access.public_reach();
    if reach >= WIDE {
        let how = if access.open_to_internet() {
            "the whole internet".to_string()
        } else {
            format!("{reach} addresses ({:.1}% of the internet)", reach as f64 * 100.0 / (1u64 << 32) as f64)
        };
        out.push(Violation::warning(
            SpecField::ApiAccess,
            format!("the cluster's Kubernetes API is open to {how} on {}", limits.cloud),
            "list the ranges of your runners and operators in `apiAccess.allowedCidrs`, or set `apiAccess.public: false` and run Tessera from inside the network",
        ));
    }
    if !access.public {
        out.push(Violation::warning(
            SpecField::ApiAccess,
            "the cluster's Kubernetes API has no public address",
            "Tessera installs the core services through that API from where `apply` runs: run it inside the cluster's network (a runner in the VPC/VNet, or one peered with it); from outside, the core-service steps fail after `--unreachable-for`",
        ));
    }
    out
}

/// What a backend that does not use `apiAccess` says of a non-default one: that it is unused,
/// never silently dropped.
pub fn api_access_unused(cluster: &ClusterTemplate, why: &str) -> Option<Violation> {
    (cluster.api_access != crate::ApiAccess::default()).then(|| {
        Violation::warning(
            SpecField::ApiAccess,
            format!("{why}: `apiAccess` is not used"),
            "`apiAccess` applies to cloud placements (eks, aks, gke)",
        )
    })
}

/// What a cloud whose network always reaches its API says of `private: false`: it changes nothing.
pub fn private_always(cluster: &ClusterTemplate, cloud: &str) -> Option<Violation> {
    (!cluster.api_access.private).then(|| {
        Violation::warning(
            SpecField::ApiAccess,
            format!("{cloud} always lets the cluster's network reach its API: `private: false` changes nothing"),
            "drop `private: false`; to keep the internet out, list `allowedCidrs` or set `public: false`",
        )
    })
}

/// One key of a placement's `scope`.
#[derive(Debug, Clone, Copy)]
pub struct ScopeKey {
    pub name: &'static str,
    pub required: bool,
    /// What a valid value looks like, for the error's hint.
    pub example: &'static str,
    /// `Err(why)` for a malformed value.
    pub check: fn(&str) -> Result<(), String>,
}

/// What a backend's section of the sealed credentials file holds. Every key is a secret.
#[derive(Debug, Clone, Copy)]
pub struct CredentialSection {
    /// The section's name in the file: `aws`, `azure`, `gcp`.
    pub name: &'static str,
    /// Keys that must be present.
    pub required: &'static [&'static str],
    /// Groups of alternatives: exactly one key of each group must be present.
    pub one_of: &'static [&'static [&'static str]],
}

impl CredentialSection {
    fn known(&self, key: &str) -> bool {
        self.required.contains(&key) || self.one_of.iter().any(|g| g.contains(&key))
    }

    /// Checks a section's keys; the message names keys, never values.
    pub fn check(&self, creds: &Credentials) -> Result<(), String> {
        if let Some(unknown) = creds.keys().find(|k| !self.known(k)) {
            return Err(format!("`{}` has no key `{unknown}`", self.name));
        }
        if let Some(missing) = self.required.iter().find(|k| !creds.contains(k)) {
            return Err(format!("`{}` needs `{missing}`", self.name));
        }
        for group in self.one_of {
            let present = group.iter().filter(|k| creds.contains(k)).count();
            if present != 1 {
                return Err(format!("`{}` needs exactly one of `{}`", self.name, group.join("`, `")));
            }
        }
        Ok(())
    }
}

/// One backend's decrypted credentials: secrets by key, zeroed when dropped, never printed.
#[derive(Default)]
pub struct Credentials(BTreeMap<String, SecretString>);

impl Credentials {
    pub fn insert(&mut self, key: impl Into<String>, value: SecretString) {
        self.0.insert(key.into(), value);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The secret under `key`. The caller hands it to its SDK and keeps no copy.
    pub fn expose(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.expose_secret())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("keys", &self.0.keys().collect::<Vec<_>>()).finish()
    }
}

/// Typed settings for backends, one value per type (an endpoint override, a shared sim cloud).
/// The registry fills it; each backend takes out the type it defines.
#[derive(Default, Clone)]
pub struct Extensions(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Extensions {
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>()).and_then(|v| v.downcast_ref::<T>())
    }
}

/// Everything a backend may build a provider from.
pub struct BuildContext<'a> {
    pub provider: &'a ProviderRef,
    /// For a provider configured from a resource: that resource's outputs.
    pub connection: Option<&'a Connection>,
    /// The backend's section of the sealed credentials (in the pipeline only).
    pub credentials: Option<&'a Credentials>,
    pub extensions: &'a Extensions,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Invalid(String),
}

/// A provider kind: its description for validation, and how to build its client.
pub trait Backend: Send + Sync {
    /// The `provider:` value that selects it.
    fn kind(&self) -> &'static str;

    /// The catalog a placement of this backend validates against (`None`: unknown flavour).
    fn catalog(&self, provider: &ProviderRef) -> Option<Catalog>;

    /// Turns one placement's cluster into resources. Pure: it builds no client, rate limiter or
    /// connection, so `compile` costs nothing of a cloud (`settings` are the typed settings the
    /// registry holds, for what lowering names, such as kind's work directory).
    fn lower(
        &self,
        _cluster: &ClusterTemplate,
        _provider: &ProviderRef,
        _settings: &Extensions,
    ) -> Vec<crate::ResourceSpec> {
        Vec::new()
    }

    /// The schema of each resource type this backend's providers run (the same values its
    /// [`crate::Types`] table registers): the engine fills every lowered, planned or recorded
    /// resource's policies and replacement rules from it.
    fn schemas(&self) -> Vec<crate::Schema> {
        Vec::new()
    }

    /// How the cluster that `lower` made is reached from inside, for core services; `None` when
    /// this backend makes no cluster.
    fn kube_access(&self, _cluster: &ClusterTemplate, _provider: &ProviderRef) -> Option<crate::KubeAccess> {
        None
    }

    /// Whether a placement may name it (`false` for providers configured from a resource).
    fn places_clusters(&self) -> bool {
        true
    }

    /// The keys a placement's `scope` may hold.
    fn scope_keys(&self) -> &'static [ScopeKey] {
        &[]
    }

    /// The section of the sealed credentials file this backend reads.
    fn credentials(&self) -> Option<CredentialSection> {
        None
    }

    /// The cloud's own limits that this cluster breaks. Pure: no client, no cloud call.
    fn validate(&self, _cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        Vec::new()
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError>;
}

/// A short, stable suffix from `parts` (FNV-1a, hex): for names that must fit a cloud's length
/// limit and stay unique and the same from one run to the next.
pub fn short_hash(parts: &[&str], hex_digits: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("|").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let full = format!("{h:016x}");
    full[..hex_digits.min(16)].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AZURE: CredentialSection = CredentialSection {
        name: "azure",
        required: &["tenantId", "clientId"],
        one_of: &[&["clientSecret", "federatedTokenFile"]],
    };

    fn creds(keys: &[&str]) -> Credentials {
        let mut c = Credentials::default();
        for k in keys {
            c.insert(*k, SecretString::from("s3cret".to_string()));
        }
        c
    }

    #[test]
    fn a_credentials_section_needs_its_keys_and_exactly_one_alternative() {
        assert!(AZURE.check(&creds(&["tenantId", "clientId", "clientSecret"])).is_ok());
        assert!(AZURE.check(&creds(&["tenantId", "clientId", "federatedTokenFile"])).is_ok());
        let both = AZURE.check(&creds(&["tenantId", "clientId", "clientSecret", "federatedTokenFile"]));
        assert!(both.unwrap_err().contains("exactly one of"));
        assert!(AZURE.check(&creds(&["tenantId", "clientSecret"])).unwrap_err().contains("needs `clientId`"));
        assert!(AZURE.check(&creds(&["tenantId", "clientId", "clientSecret", "x"])).unwrap_err().contains("`x`"));
        assert!(!format!("{:?}", creds(&["tenantId"])).contains("s3cret"), "Debug shows keys, never values");
    }

    #[test]
    fn extensions_hold_one_value_per_type() {
        let mut e = Extensions::default();
        e.insert(3u8);
        e.insert(String::from("endpoint"));
        assert_eq!(e.get::<u8>(), Some(&3));
        assert_eq!(e.get::<String>().map(String::as_str), Some("endpoint"));
        assert_eq!(e.get::<u16>(), None);
    }

    #[test]
    fn short_hashes_are_stable_and_distinct() {
        assert_eq!(short_hash(&["a", "b"], 6), short_hash(&["a", "b"], 6));
        assert_ne!(short_hash(&["a", "b"], 6), short_hash(&["a", "c"], 6));
        assert_eq!(short_hash(&["a"], 6).len(), 6);
    }
}
