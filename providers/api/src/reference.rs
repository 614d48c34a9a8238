//! Values that flow between resources.
//!
//! ## Overview
//!
//! An attribute value is either *known* (plain JSON) or a *reference* to an output of another
//! resource: a VPC's `id`, a cluster's `endpoint`. A reference is written in the attribute's
//! JSON as a one-key object, `{"$ref": "aws-eu/eks.vpc/main#id"}` (a list of subnet ids is a list
//! of references), and the attribute is listed in the spec's `ref_attrs`: that list, not the
//! shape of the JSON, says where references are. So data from the spec (chart values, labels)
//! that happens to have this shape is never resolved, never a dependency, never "unknown".
//!
//! Lowering writes references ([`crate::ResourceSpec::attr_ref`]); it never sees cloud ids. The
//! plan resolves what it can from state and shows the rest as "(known after apply)"; the executor
//! resolves everything from the committed outputs of each dependency just before the call, so a
//! provider only ever receives known values.

use std::fmt;

use serde_json::{Map, Value};

use crate::Address;

/// The key of a reference object.
pub const REF_KEY: &str = "$ref";

/// The output every resource has: the identifier its cloud gave it.
pub const OUTPUT_ID: &str = "id";

/// An output of another resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub address: Address,
    pub output: String,
}

impl Reference {
    pub fn new(address: Address, output: impl Into<String>) -> Self {
        Self { address, output: output.into() }
    }

    /// The JSON form that stands in an attribute.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(REF_KEY.into(), Value::String(self.to_string()));
        Value::Object(m)
    }

    /// The reference `v` stands for, if it is one.
    pub fn from_value(v: &Value) -> Option<Self> {
        let obj = v.as_object().filter(|o| o.len() == 1)?;
        let (address, output) = obj.get(REF_KEY)?.as_str()?.rsplit_once('#')?;
        if output.is_empty() {
            return None;
        }
        Some(Self::new(address.parse().ok()?, output))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.address, self.output)
    }
}

/// Every reference inside `v`, depth first.
pub fn references(v: &Value) -> Vec<Reference> {
    let mut out = Vec::new();
    collect(v, &mut out);
    out
}

fn collect(v: &Value, out: &mut Vec<Reference>) {
    if let Some(r) = Reference::from_value(v) {
        out.push(r);
        return;
    }
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect(i, out)),
        _ => {}
    }
}

/// `v` with each reference that `lookup` knows replaced by its value; the others stay as they
/// are, to be shown as "(known after apply)".
pub fn resolve_known(v: &Value, lookup: &dyn Fn(&Reference) -> Option<Value>) -> Value {
    if let Some(r) = Reference::from_value(v) {
        return lookup(&r).unwrap_or_else(|| v.clone());
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| resolve_known(i, lookup)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, i)| (k.clone(), resolve_known(i, lookup))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(s: &str) -> Reference {
        let (a, o) = s.split_once('#').unwrap();
        Reference::new(a.parse().unwrap(), o)
    }

    #[test]
    fn a_reference_round_trips_through_json() {
        let reference = r("aws/eks.vpc/main#id");
        assert_eq!(reference.to_value(), json!({"$ref": "aws/eks.vpc/main#id"}));
        assert_eq!(Reference::from_value(&reference.to_value()), Some(reference));
    }

    #[test]
    fn only_well_formed_one_key_objects_are_references() {
        for v in [
            json!({"$ref": "aws/eks.vpc/main"}),
            json!({"$ref": "not-an-address#id"}),
            json!({"$ref": "aws/eks.vpc/main#"}),
            json!({"$ref": "aws/eks.vpc/main#id", "other": 1}),
            json!({"$ref": 3}),
            json!("aws/eks.vpc/main#id"),
        ] {
            assert_eq!(Reference::from_value(&v), None, "{v}");
        }
    }

    #[test]
    fn references_nested_in_lists_and_maps_are_found_and_resolved() {
        let v = json!({"subnets": [r("a/t/x#id").to_value(), "known", r("a/t/y#id").to_value()]});
        assert_eq!(references(&v), vec![r("a/t/x#id"), r("a/t/y#id")]);
        let partly = resolve_known(&v, &|x| (x.address.name == "x").then(|| json!("subnet-1")));
        assert_eq!(partly, json!({"subnets": ["subnet-1", "known", r("a/t/y#id").to_value()]}));
        assert_eq!(references(&partly), vec![r("a/t/y#id")]);
        let all = resolve_known(&v, &|x| Some(json!(x.address.name.clone())));
        assert_eq!(all, json!({"subnets": ["x", "known", "y"]}));
        assert!(references(&all).is_empty());
    }

    fn spec() -> crate::ResourceSpec {
        let p = crate::ProviderRef::new("sim", "r");
        crate::ResourceSpec::new("a/t/subnet".parse().unwrap(), p)
            .attr_ref("vpcId", &"a/t/vpc".parse().unwrap(), "id")
            .attr("cidr", "10.0.0.0/20")
            // Data that looks like a reference, as a spec author may write it in chart values.
            .attr("values", json!({"ca": {"$ref": "other/sim.cluster/main#certificateAuthority"}}))
    }

    #[test]
    fn resolving_a_spec_names_what_is_missing() {
        let s = spec();
        assert_eq!(s.resolve(&|_| None), Err(vec![r("a/t/vpc#id")]));
        let ok = s.resolve(&|_| Some(json!("vpc-1"))).unwrap();
        assert_eq!(ok["vpcId"], json!("vpc-1"));
    }

    #[test]
    fn data_shaped_like_a_reference_is_only_data() {
        let s = spec();
        assert_eq!(s.references(), vec![r("a/t/vpc#id")], "only what lowering wrote");
        assert!(!s.is_unknown("values"));
        let ok = s.resolve(&|_| Some(json!("substituted"))).unwrap();
        assert_eq!(ok["values"], json!({"ca": {"$ref": "other/sim.cluster/main#certificateAuthority"}}));
        // Overwriting a referencing attribute with data makes it data.
        let over = spec().attr("vpcId", json!({"$ref": "a/t/vpc#id"}));
        assert!(over.references().is_empty() && !over.has_unknown());
    }
}
