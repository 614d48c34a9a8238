//! Resource types' schemas: what a type's values look like and how the engine treats each part.
//!
//! ## Overview
//!
//! Each resource type declares one [`Schema`], once, where its backend registers its operations
//! ([`crate::Types`]). The schema says:
//! - its attributes, typed ([`Ty`]: text, numbers, booleans, lists, maps and nested objects), and
//!   for each whether lowering sets it (an input) or the cloud does (computed), whether a read must
//!   report it, and whether it is sensitive;
//! - who owns each value, by name or by a JSON pointer into a nested one: owned (a difference is a
//!   change, a change elsewhere is drift), delegated (something else moves it: an autoscaler's
//!   node count), ignored; a policy may hold only when the values say so (a pool's count is
//!   delegated when it autoscales);
//! - which values force a replacement, and whether the new object is made before or after the
//!   old one goes;
//! - its outputs, its Kubernetes-version attribute, and how long its operations usually take.
//!
//! The engine reads these through the [`crate::ResourceSpec`] fields that [`Schema::stamp`] fills:
//! lowering writes only values and references, and a plan file or a state stores the type's name,
//! its schema version and the values, never the schema, so a forged plan cannot loosen a policy.
//! A provider's answer is held to the schema ([`Schema::check_read`]): a missing attribute or one
//! of the wrong type is an error naming the resource and the path, never a silent empty value.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::{Attrs, FieldPolicy, Operation, ProviderError, Replacement, ResourceSpec, pointer_key};

/// The type of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Text,
    /// A whole number.
    Integer,
    Bool,
    List(Box<Ty>),
    /// Text keys to values of one type (tags, labels).
    Map(Box<Ty>),
    /// Named fields, each with its own type.
    Object(Vec<Field>),
    /// Anything: a Kubernetes manifest, chart values.
    Any,
}

impl Ty {
    pub fn list(of: Ty) -> Self {
        Self::List(Box::new(of))
    }

    pub fn map(of: Ty) -> Self {
        Self::Map(Box::new(of))
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Integer => "an integer",
            Self::Bool => "a boolean",
            Self::List(_) => "a list",
            Self::Map(_) | Self::Object(_) => "an object",
            Self::Any => "anything",
        }
    }

    /// The first place in `value` that is not of this type. Its path is built only on the way
    /// back from a mismatch, so a value that fits allocates nothing.
    fn mismatch(&self, value: &serde_json::Value, lowered: bool) -> Option<Mismatch> {
        use serde_json::Value as V;
        match (self, value) {
            (Self::Any, _) => None,
            (Self::Text, V::String(_)) | (Self::Bool, V::Bool(_)) => None,
            (Self::Integer, V::Number(n)) if n.is_i64() || n.is_u64() => None,
            (Self::List(of), V::Array(items)) => {
                items.iter().enumerate().find_map(|(i, v)| of.mismatch(v, lowered).map(|m| m.inside(i.to_string())))
            }
            (Self::Map(of), V::Object(map)) => {
                map.iter().find_map(|(k, v)| of.mismatch(v, lowered).map(|m| m.inside(crate::pointer_token(k))))
            }
            (Self::Object(fields), V::Object(map)) => fields.iter().find_map(|f| f.mismatch(map, lowered)),
            _ => {
                Some(Mismatch { reversed: Vec::new(), what: What::Wrong { expected: self.name(), found: kind(value) } })
            }
        }
    }

    /// The type at `tokens` inside this one, if the path names a place it has.
    fn at(&self, tokens: &[String]) -> Option<&Ty> {
        let Some((first, rest)) = tokens.split_first() else { return Some(self) };
        match self {
            Self::Any => Some(self),
            Self::List(of) if first.parse::<usize>().is_ok() || first == "*" => of.at(rest),
            Self::Map(of) => of.at(rest),
            Self::Object(fields) => fields.iter().find(|f| &f.name == first).and_then(|f| f.ty.at(rest)),
            _ => None,
        }
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a fraction",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Who sets an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Lowering sets it from the spec.
    Input,
    /// The cloud sets it; it is read back, never planned.
    Computed,
}

/// Whether a provider's answer has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Always: an answer without it is malformed.
    Always,
    /// When the cloud has one.
    Maybe,
    /// Never (a value sent once and never shown again).
    Never,
}

/// One attribute, or one field of a nested object.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub source: Source,
    /// Whether lowering must set it (for an input).
    pub required: bool,
    /// Whether a read reports it.
    pub in_reads: Presence,
    pub sensitive: bool,
}

impl Field {
    /// A value lowering sets, and reads report.
    pub fn input(name: &str, ty: Ty) -> Self {
        Self {
            name: name.to_string(),
            ty,
            source: Source::Input,
            required: true,
            in_reads: Presence::Always,
            sensitive: false,
        }
    }

    /// A value the cloud sets, which reads report.
    pub fn computed(name: &str, ty: Ty) -> Self {
        Self { source: Source::Computed, ..Self::input(name, ty) }
    }

    /// May be absent (or null), in lowering and in reads.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self.in_reads = Presence::Maybe;
        self
    }

    /// Always set by lowering; a read may not report it.
    pub fn maybe_read(mut self) -> Self {
        self.in_reads = Presence::Maybe;
        self
    }

    /// Sent, never reported back by a read.
    pub fn write_only(mut self) -> Self {
        self.in_reads = Presence::Never;
        self
    }

    /// Masked wherever it is shown.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// What is wrong with this field's value among the values `get` looks up: `lowered` holds it
    /// to what lowering must set, otherwise to what a read must report.
    fn mismatch(&self, values: &dyn Values, lowered: bool) -> Option<Mismatch> {
        let needed = if lowered { self.required } else { self.in_reads == Presence::Always };
        let found = match values.value(&self.name) {
            None | Some(serde_json::Value::Null) => {
                needed.then_some(Mismatch { reversed: Vec::new(), what: What::Missing })
            }
            Some(v) => self.ty.mismatch(v, lowered),
        };
        found.map(|m| m.inside(crate::pointer_token(&self.name)))
    }
}

/// Named values: a resource's attributes, or a nested object's fields.
trait Values {
    fn value(&self, key: &str) -> Option<&serde_json::Value>;
}

impl Values for Attrs {
    fn value(&self, key: &str) -> Option<&serde_json::Value> {
        self.get(key)
    }
}

impl Values for serde_json::Map<String, serde_json::Value> {
    fn value(&self, key: &str) -> Option<&serde_json::Value> {
        self.get(key)
    }
}

/// Where a value breaks its schema (its pointer tokens, innermost first) and how.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mismatch {
    reversed: Vec<String>,
    what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    Missing,
    Wrong { expected: &'static str, found: &'static str },
}

impl Mismatch {
    fn inside(mut self, token: String) -> Self {
        self.reversed.push(token);
        self
    }

    fn path(&self) -> String {
        self.reversed.iter().rev().map(|t| format!("/{t}")).collect()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            What::Missing => write!(f, "has no `{}`", self.path()),
            What::Wrong { expected, found } => {
                write!(f, "has {found} at `{}`, where {expected} belongs", self.path())
            }
        }
    }
}

/// A policy that holds only when the values say so.
#[derive(Clone)]
struct Conditional {
    path: String,
    policy: FieldPolicy,
    when: fn(&Attrs) -> bool,
}

impl fmt::Debug for Conditional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} (conditional)", self.path, self.policy)
    }
}

/// One resource type's schema (see the module's overview). Built once, where its backend
/// registers the type.
#[derive(Debug, Clone)]
pub struct Schema {
    pub rtype: String,
    /// Moves when the values' shape changes, so that a plan made against an older shape is
    /// refused as stale rather than misread.
    pub version: u32,
    fields: Vec<Field>,
    policies: BTreeMap<String, FieldPolicy>,
    conditional: Vec<Conditional>,
    replace_on: Vec<String>,
    replacement: Replacement,
    outputs: Vec<String>,
    version_attr: Option<String>,
    /// Seconds to create, update, delete.
    estimates: [u64; 3],
}

impl Schema {
    pub fn new(rtype: impl Into<String>, version: u32) -> Self {
        Self {
            rtype: rtype.into(),
            version,
            fields: Vec::new(),
            policies: BTreeMap::new(),
            conditional: Vec::new(),
            replace_on: Vec::new(),
            replacement: Replacement::default(),
            outputs: Vec::new(),
            version_attr: None,
            estimates: [5, 5, 5],
        }
    }

    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// An input of this type.
    pub fn input(self, name: &str, ty: Ty) -> Self {
        self.field(Field::input(name, ty))
    }

    /// `path` (an attribute's name, or a JSON pointer into one) is not owned.
    pub fn policy(mut self, path: &str, policy: FieldPolicy) -> Self {
        self.policies.insert(path.to_string(), policy);
        self
    }

    /// `path` has `policy` for a resource whose values satisfy `when`.
    pub fn policy_when(mut self, path: &str, policy: FieldPolicy, when: fn(&Attrs) -> bool) -> Self {
        self.conditional.push(Conditional { path: path.to_string(), policy, when });
        self
    }

    /// A change at `path` (a name or a JSON pointer) replaces the resource.
    pub fn replace_on(mut self, path: &str) -> Self {
        self.replace_on.push(path.to_string());
        self
    }

    pub fn replaced_by(mut self, strategy: Replacement) -> Self {
        self.replacement = strategy;
        self
    }

    pub fn outputs(mut self, names: &[&str]) -> Self {
        self.outputs.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// `attr` holds the control plane's Kubernetes version, upgraded in place a minor at a time.
    pub fn versioned(mut self, attr: &str) -> Self {
        self.version_attr = Some(attr.to_string());
        self
    }

    /// How long a create, an update and a delete usually take, in seconds.
    pub fn takes(mut self, create: u64, update: u64, delete: u64) -> Self {
        self.estimates = [create, update, delete];
        self
    }

    pub fn estimate(&self, op: Operation) -> Duration {
        let [c, u, d] = self.estimates;
        Duration::from_secs(op.pick(c, u, d))
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The schema's own mistakes: a rule, an output or a sensitive path that names no place its
    /// values have. Asked by each backend's tests.
    pub fn problems(&self) -> Vec<String> {
        let root = Ty::Object(self.fields.clone());
        let mut out = Vec::new();
        let paths = self
            .policies
            .keys()
            .chain(self.conditional.iter().map(|c| &c.path))
            .chain(&self.replace_on)
            .chain(self.version_attr.iter());
        for path in paths {
            if root.at(&tokens(path)).is_none() {
                out.push(format!("{}: `{path}` names no attribute of the type", self.rtype));
            }
        }
        for output in &self.outputs {
            if !self.fields.iter().any(|f| &f.name == output) {
                out.push(format!("{}: output `{output}` is no attribute of the type", self.rtype));
            }
        }
        out
    }

    /// Fills `spec`'s policies, replacement rules, outputs and version attribute from this schema,
    /// for its values: what a lowering, a plan file or a state record never carries itself.
    pub fn stamp(&self, spec: &mut ResourceSpec) {
        spec.schema_version = self.version;
        spec.policies = self.policies.clone();
        for c in self.conditional.iter().filter(|c| (c.when)(&spec.attrs)) {
            spec.policies.insert(c.path.clone(), c.policy);
        }
        spec.replace_on = self.replace_on.clone();
        spec.replacement = self.replacement;
        spec.outputs = self.outputs.clone();
        spec.version_attr = self.version_attr.clone();
        spec.sensitive = self.sensitive();
    }

    /// Whether `spec`'s values are what this type takes: every attribute declared, every
    /// required input there, each of its type (a reference lowering wrote stands for any value).
    pub fn check_spec(&self, spec: &ResourceSpec) -> Result<(), String> {
        for key in spec.attrs.keys() {
            if !self.fields.iter().any(|f| &f.name == key) {
                return Err(format!("{}: attribute `{key}` is not in the schema of {}", spec.address, self.rtype));
            }
        }
        for f in self.fields.iter().filter(|f| f.source == Source::Input) {
            if spec.ref_attrs.contains(&f.name) {
                continue;
            }
            if let Some(m) = f.mismatch(&spec.attrs, true) {
                return Err(format!("{}: the lowered value {m}", spec.address));
            }
        }
        Ok(())
    }

    /// Holds a provider's answer about the object `id` to this schema: every attribute a read
    /// must report is there, and every value is of its type.
    pub fn check_read(&self, id: &str, attrs: &Attrs) -> Result<(), ProviderError> {
        match self.fields.iter().find_map(|f| f.mismatch(attrs, false)) {
            None => Ok(()),
            Some(m) => Err(ProviderError::Fatal(format!(
                "the cloud's answer about {} `{id}` {m}: Tessera cannot tell what is there, so it stops rather than \
                 assume an empty value",
                self.rtype
            ))),
        }
    }

    /// The pointers of sensitive values, to be masked wherever they are shown.
    pub fn sensitive(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_sensitive(&self.fields, "", &mut out);
        out
    }
}

fn collect_sensitive(fields: &[Field], parent: &str, out: &mut Vec<String>) {
    for f in fields {
        let path = format!("{parent}/{}", crate::pointer_token(&f.name));
        if f.sensitive {
            out.push(path.clone());
        }
        if let Ty::Object(inner) = &f.ty {
            collect_sensitive(inner, &path, out);
        }
    }
}

/// A rule's path as pointer tokens: a name is one token, a pointer its tokens.
fn tokens(path: &str) -> Vec<String> {
    match path.strip_prefix('/') {
        Some(p) => p.split('/').map(pointer_key).collect(),
        None => vec![path.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Address, ProviderRef};

    fn pool() -> Schema {
        Schema::new("t.pool", 1)
            .input("name", Ty::Text)
            .input("count", Ty::Integer)
            .input("autoscale", Ty::Bool)
            .input("labels", Ty::map(Ty::Text))
            .field(Field::input(
                "access",
                Ty::Object(vec![Field::input("private", Ty::Bool), Field::input("ranges", Ty::list(Ty::Text))]),
            ))
            .field(Field::input("password", Ty::Text).write_only().sensitive())
            .field(Field::computed("endpoint", Ty::Text))
            .policy_when("count", FieldPolicy::Delegated, |a| a.get("autoscale") == Some(&json!(true)))
            .replace_on("name")
            .replace_on("/access/private")
            .replaced_by(Replacement::DestroyBeforeCreate)
            .outputs(&["endpoint"])
    }

    fn spec(attrs: serde_json::Value) -> ResourceSpec {
        let mut s = ResourceSpec::new(Address::new("f", "t.pool", "a"), ProviderRef::new("t", ""));
        s.attrs = serde_json::from_value(attrs).unwrap();
        s
    }

    fn good() -> serde_json::Value {
        json!({"name": "a", "count": 3, "autoscale": true, "labels": {"x": "y"},
               "access": {"private": true, "ranges": ["10.0.0.0/8"]}, "password": "p"})
    }

    #[test]
    fn a_schema_names_only_places_its_values_have() {
        assert!(pool().problems().is_empty(), "{:?}", pool().problems());
        let bad = pool().replace_on("/access/nope").policy("/labels/x/deeper", FieldPolicy::Ignored).outputs(&["x"]);
        assert_eq!(bad.problems().len(), 3, "{:?}", bad.problems());
    }

    #[test]
    fn stamping_fills_what_the_type_declares_and_conditions_hold_on_the_values() {
        let mut s = spec(good());
        pool().stamp(&mut s);
        assert_eq!(s.policy_of("count"), FieldPolicy::Delegated);
        assert_eq!(s.policy_of("endpoint"), FieldPolicy::Owned, "a computed value's drift is still drift");
        assert_eq!(s.replace_on, vec!["name", "/access/private"]);
        assert_eq!(s.replacement, Replacement::DestroyBeforeCreate);
        assert!(s.has_output("endpoint"));
        let mut fixed = spec(json!({"autoscale": false}));
        pool().stamp(&mut fixed);
        assert_eq!(fixed.policy_of("count"), FieldPolicy::Owned);
    }

    #[test]
    fn lowered_values_are_checked_against_the_schema() {
        assert_eq!(pool().check_spec(&spec(good())), Ok(()));
        let mut missing = good();
        missing.as_object_mut().unwrap().remove("count");
        assert!(pool().check_spec(&spec(missing)).unwrap_err().contains("has no `/count`"));
        let mut wrong = good();
        wrong["access"]["ranges"][0] = json!(8);
        let err = pool().check_spec(&spec(wrong)).unwrap_err();
        assert!(err.contains("`/access/ranges/0`") && err.contains("an integer"), "{err}");
        let mut extra = good();
        extra["surprise"] = json!(1);
        assert!(pool().check_spec(&spec(extra)).unwrap_err().contains("`surprise`"));
    }

    #[test]
    fn a_read_missing_a_value_or_of_the_wrong_type_is_an_error_naming_the_path() {
        let mut read: Attrs = serde_json::from_value(good()).unwrap();
        read.remove("password");
        read.insert("endpoint".into(), json!("https://x"));
        assert!(pool().check_read("id-1", &read).is_ok(), "write-only values are not read back");
        read.remove("endpoint");
        let err = pool().check_read("id-1", &read).unwrap_err().to_string();
        assert!(err.contains("t.pool `id-1`") && err.contains("has no `/endpoint`"), "{err}");
        read.insert("endpoint".into(), json!("https://x"));
        read.insert("labels".into(), json!({"x": null}));
        let err = pool().check_read("id-1", &read).unwrap_err().to_string();
        assert!(err.contains("`/labels/x`") && err.contains("null"), "{err}");
    }

    #[test]
    fn sensitive_paths_are_listed() {
        assert_eq!(pool().sensitive(), vec!["/password"]);
        let mut s = spec(good());
        pool().stamp(&mut s);
        assert!(s.is_sensitive("/password") && !s.is_sensitive("/passwordless"));
    }
}
