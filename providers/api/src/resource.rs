use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::reference::{OUTPUT_ID, Reference, references, resolve_known};
use crate::{Address, ProviderRef};

/// Resource attributes. A `BTreeMap` keeps them in a stable order, so digests and plan files are
/// deterministic.
pub type Attrs = BTreeMap<String, serde_json::Value>;

/// The identifier the cloud gave a resource (an ARN, a resource id, a name).
pub type CloudId = String;

/// Tag keys that mark everything Tessera creates, so orphans can be found and adopted.
pub const TAG_FLEET: &str = "tessera.dev/fleet";
pub const TAG_ADDRESS: &str = "tessera.dev/address";
/// How many times the object at an address has been replaced. A replacement carries the next
/// generation, so finding, adoption and recovery never mistake the old object for the new one.
/// Generation 0 writes no tag.
pub const TAG_GENERATION: &str = "tessera.dev/generation";

/// The attribute that holds a resource's ownership tags ([`TAG_FLEET`], [`TAG_ADDRESS`],
/// [`TAG_GENERATION`]) in this canonical form; a backend whose cloud spells tags otherwise (GCP
/// labels) translates them at its edge.
pub const TAGS_ATTR: &str = "tags";

/// The generation recorded in a resource's ownership tags.
pub fn generation_of(attrs: &Attrs) -> u64 {
    attrs
        .get(TAGS_ATTR)
        .and_then(|t| t.get(TAG_GENERATION))
        .and_then(|g| g.as_str().and_then(|s| s.parse().ok()).or_else(|| g.as_u64()))
        .unwrap_or(0)
}

/// `key` as one JSON pointer token (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer token as the key it stands for: the inverse of [`pointer_token`].
pub fn pointer_key(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Whether `pointer` is `prefix` or inside it.
pub fn pointer_within(pointer: &str, prefix: &str) -> bool {
    pointer.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// How a resource is replaced when a field changes that the cloud cannot change in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replacement {
    /// The new object is made beside the old one, which is deleted once nothing uses it. Needs
    /// objects that can coexist (a node group under a new name, a second VPC).
    #[default]
    CreateBeforeDestroy,
    /// The old object is deleted first: its cloud name is unique, or it blocks the new one.
    DestroyBeforeCreate,
}

fn first_version() -> u32 {
    1
}

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
    /// The attributes lowering set to other resources' outputs ([`ResourceSpec::attr_ref`],
    /// [`ResourceSpec::attr_refs`]). Only these are ever read as references: every other
    /// attribute is plain data whatever keys it holds, so a spec author's chart values or labels
    /// that look like a reference (`{"$ref": …}`) stay text and reach the cloud as written.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ref_attrs: BTreeSet<String>,
    pub deps: Vec<Address>,
    /// The version of its type's schema the values were lowered for ([`crate::Schema`]).
    #[serde(default = "first_version")]
    pub schema_version: u32,
    // What follows comes from the type's schema ([`crate::Schema::stamp`]): never stored in a
    // plan file or a state, so neither can loosen what the type declares.
    /// Fields that are not `Owned`, by name, or nested values by a JSON pointer into their field
    /// (`/systemPool/count`). Absent means owned.
    #[serde(skip)]
    pub policies: BTreeMap<String, FieldPolicy>,
    /// What the cloud cannot change in place, a field by name or a nested value by a JSON pointer
    /// (`/apiServerAccess/enablePrivateCluster`): a change to one of them means replacement.
    #[serde(skip)]
    pub replace_on: Vec<String>,
    /// What other resources may reference (`id` is always there): see [`Observed::output`].
    #[serde(skip)]
    pub outputs: Vec<String>,
    #[serde(skip)]
    pub replacement: Replacement,
    /// The attribute holding the cluster's Kubernetes version, on a control plane that upgrades
    /// in place: Kubernetes moves one minor at a time and never down, which the plan enforces.
    #[serde(skip)]
    pub version_attr: Option<String>,
    /// Values shown masked wherever a plan is printed, by JSON pointer (`/password`).
    #[serde(skip)]
    pub sensitive: Vec<String>,
}

impl ResourceSpec {
    pub fn new(address: Address, provider: ProviderRef) -> Self {
        Self {
            address,
            provider,
            attrs: Attrs::new(),
            ref_attrs: BTreeSet::new(),
            deps: Vec::new(),
            schema_version: 1,
            policies: BTreeMap::new(),
            replace_on: Vec::new(),
            outputs: Vec::new(),
            replacement: Replacement::default(),
            version_attr: None,
            sensitive: Vec::new(),
        }
    }

    /// Sets `key` to an output of another resource, and depends on it.
    pub fn attr_ref(self, key: &str, address: &Address, output: &str) -> Self {
        let value = Reference::new(address.clone(), output).to_value();
        self.attr(key, value).referencing(key).needs(address)
    }

    /// Sets `key` to a list of outputs of other resources, and depends on each.
    pub fn attr_refs(mut self, key: &str, sources: &[Address], output: &str) -> Self {
        let values: Vec<serde_json::Value> =
            sources.iter().map(|a| Reference::new(a.clone(), output).to_value()).collect();
        for a in sources {
            self = self.needs(a);
        }
        self.attr(key, values).referencing(key)
    }

    fn referencing(mut self, key: &str) -> Self {
        self.ref_attrs.insert(key.to_string());
        self
    }

    /// The references lowering wrote, in attribute order.
    pub fn references(&self) -> Vec<Reference> {
        self.ref_attrs.iter().filter_map(|k| self.attrs.get(k)).flat_map(references).collect()
    }

    /// Whether `field`'s value is not known before apply: it still holds a reference.
    pub fn is_unknown(&self, field: &str) -> bool {
        self.ref_attrs.contains(field) && self.attrs.get(field).is_some_and(|v| !references(v).is_empty())
    }

    /// Whether any attribute is still unknown.
    pub fn has_unknown(&self) -> bool {
        self.ref_attrs.iter().any(|k| self.is_unknown(k))
    }

    /// This spec with each reference `lookup` knows replaced by its value; the others stay, to be
    /// shown as "(known after apply)".
    pub fn resolve_known(&self, lookup: &dyn Fn(&Reference) -> Option<serde_json::Value>) -> Self {
        let mut out = self.clone();
        for key in &self.ref_attrs {
            if let Some(v) = out.attrs.get_mut(key) {
                *v = resolve_known(v, lookup);
            }
        }
        out
    }

    /// Every reference resolved, or those `lookup` could not answer.
    pub fn resolve(&self, lookup: &dyn Fn(&Reference) -> Option<serde_json::Value>) -> Result<Attrs, Vec<Reference>> {
        let resolved = self.resolve_known(lookup);
        let missing = resolved.references();
        if missing.is_empty() { Ok(resolved.attrs) } else { Err(missing) }
    }

    /// Declares what other resources may reference.
    pub fn outputs(mut self, names: &[&str]) -> Self {
        self.outputs.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Marks `key` as the control plane's Kubernetes version (see [`ResourceSpec::version_attr`]).
    pub fn versioned(mut self, key: &str) -> Self {
        self.version_attr = Some(key.to_string());
        self
    }

    pub fn replaced_by(mut self, strategy: Replacement) -> Self {
        self.replacement = strategy;
        self
    }

    /// Whether other resources may reference `output` of this one.
    pub fn has_output(&self, output: &str) -> bool {
        output == OUTPUT_ID || self.outputs.iter().any(|o| o == output)
    }

    /// Depends on `dep` unless it already does.
    fn needs(mut self, dep: &Address) -> Self {
        if !self.deps.contains(dep) {
            self.deps.push(dep.clone());
        }
        self
    }

    pub fn generation(&self) -> u64 {
        generation_of(&self.attrs)
    }

    /// Writes `generation` into the ownership tags (a tag only from generation 1 on).
    pub fn set_generation(&mut self, generation: u64) {
        if let Some(serde_json::Value::Object(tags)) = self.attrs.get_mut(TAGS_ATTR) {
            if generation == 0 {
                tags.remove(TAG_GENERATION);
            } else {
                tags.insert(TAG_GENERATION.into(), generation.to_string().into());
            }
        }
    }

    /// Whether an object with these observed attributes is the one this spec makes: same address
    /// and generation in its ownership tags.
    pub fn owns(&self, observed: &Attrs) -> bool {
        let tag = |a: &Attrs| a.get(TAGS_ATTR).and_then(|t| t.get(TAG_ADDRESS)).cloned();
        tag(observed) == tag(&self.attrs) && generation_of(observed) == self.generation()
    }

    /// Whether an object found by its tags or its name is the one this spec makes: the same
    /// fleet, address and generation in its ownership tags. Addresses repeat across fleets, and a
    /// replacement carries the next generation, so neither alone is enough.
    pub fn is_ours(&self, observed: &Attrs) -> bool {
        let fleet = |a: &Attrs| a.get(TAGS_ATTR).and_then(|t| t.get(TAG_FLEET)).cloned();
        self.owns(observed) && fleet(observed) == fleet(&self.attrs)
    }

    /// The refusal when `what` (a cloud object named as this spec names it) is not ours.
    pub fn not_ours(&self, what: &str) -> crate::ProviderError {
        crate::ProviderError::Fatal(format!(
            "{what} already exists and is not {} generation {} (its ownership tags differ); delete or rename it, \
             or import it",
            self.address,
            self.generation()
        ))
    }

    /// Sets `key` to plain data: whatever it holds, it is never read as a reference.
    pub fn attr(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.attrs.insert(key.to_string(), value.into());
        self.ref_attrs.remove(key);
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

    /// The policy of the value at `pointer` (`/field/a/0/b`): the nearest enclosing policy, a
    /// field's own name standing for `/field`.
    pub fn policy_at(&self, pointer: &str) -> FieldPolicy {
        let field = pointer.trim_start_matches('/').split('/').next().unwrap_or_default();
        let field = pointer_key(field);
        let mut best = (0, self.policy_of(&field));
        for (path, policy) in self.policies.iter().filter(|(p, _)| p.starts_with('/')) {
            if pointer_within(pointer, path) && path.len() > best.0 {
                best = (path.len(), *policy);
            }
        }
        best.1
    }

    /// The nested (pointer) policies inside `field`, each as a pointer relative to it.
    pub fn nested_policies(&self, field: &str) -> Vec<(String, FieldPolicy)> {
        let root = format!("/{}", pointer_token(field));
        self.policies
            .iter()
            .filter_map(|(p, policy)| {
                p.strip_prefix(&root).filter(|rest| rest.starts_with('/')).map(|r| (r.to_string(), *policy))
            })
            .collect()
    }

    /// The nested replacement rules inside `field`, as pointers relative to it.
    pub fn nested_replace_on(&self, field: &str) -> Vec<String> {
        let root = format!("/{}", pointer_token(field));
        self.replace_on
            .iter()
            .filter_map(|p| p.strip_prefix(&root).filter(|r| r.starts_with('/')).map(str::to_string))
            .collect()
    }

    pub fn rtype(&self) -> &str {
        &self.address.rtype
    }

    /// Whether the value at `pointer` (`/field/a/0`) is sensitive: it is, or is inside, a value
    /// the type's schema marks so.
    pub fn is_sensitive(&self, pointer: &str) -> bool {
        self.sensitive.iter().any(|s| pointer_within(pointer, s))
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

impl Observed {
    /// An output other resources may reference: `id`, or an observed attribute.
    pub fn output(&self, name: &str) -> Option<serde_json::Value> {
        if name == OUTPUT_ID {
            return Some(serde_json::Value::String(self.id.clone()));
        }
        self.attrs.get(name).filter(|v| !v.is_null()).cloned()
    }
}
