//! Comparing what is wanted, what was recorded and what is live. Pure functions.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_provider_api::{Address, Attrs, FieldPolicy, ResourceSpec};

use super::leaves::{self, Leaf};

/// One field that an action changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// The provider cannot change this field in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
    /// `new` is a reference to an output that does not exist yet: "(known after apply)".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub known_after_apply: bool,
    /// For a field that holds a structure (a manifest, chart values): each leaf that differs,
    /// by its path. Empty for a scalar, which is its own leaf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaves: Vec<Leaf>,
}

/// A difference between what Tessera recorded and what the cloud now reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: Address,
    pub field: String,
    pub recorded: Option<Value>,
    /// `None` when the field, or the whole resource, is gone.
    pub live: Option<Value>,
}

/// Owned fields whose live value differs from the desired one.
pub fn changes(desired: &ResourceSpec, live: &Attrs) -> Vec<Change> {
    desired
        .attrs
        .iter()
        .filter(|(field, _)| desired.policy_of(field) == FieldPolicy::Owned)
        .filter(|(field, want)| live.get(*field) != Some(*want))
        .map(|(field, want)| Change {
            field: field.clone(),
            old: live.get(field).cloned(),
            new: Some(want.clone()),
            forces_replacement: desired.replace_on.contains(field),
            known_after_apply: desired.is_unknown(field),
            leaves: if desired.is_unknown(field) {
                Vec::new()
            } else {
                leaves::between(field, live.get(field), Some(want))
            },
        })
        .collect()
}

/// The attributes of a resource about to be created whose value comes from another resource
/// (resolved where it is known already), as changes from nothing. The others stand in the
/// action's desired spec as they are; repeating them would only grow the plan.
pub fn created(unresolved: &ResourceSpec, desired: &ResourceSpec) -> Vec<Change> {
    desired
        .attrs
        .iter()
        .filter(|(field, _)| unresolved.is_unknown(field))
        .map(|(field, want)| Change {
            field: field.clone(),
            old: None,
            new: Some(want.clone()),
            forces_replacement: false,
            known_after_apply: desired.is_unknown(field),
            leaves: Vec::new(),
        })
        .collect()
}

/// Owned fields whose live value differs from the recorded one: changes made outside Tessera.
/// Fields the cloud adds on its own (never recorded) are not drift; delegated and ignored fields
/// never are. Within a field that holds a structure (tags, a Kubernetes object), each differing
/// leaf is its own drift, named by its path (`manifest.spec.replicas`, `subnets[1]`), so that a
/// report names what moved rather than the whole object; credentials are masked.
pub fn drift(address: &Address, policy: Option<&ResourceSpec>, recorded: &Attrs, live: &Attrs) -> Vec<Drift> {
    let owned = |field: &str| policy.is_none_or(|p| p.policy_of(field) == FieldPolicy::Owned);
    recorded
        .iter()
        .filter(|(field, _)| owned(field))
        .flat_map(|(field, was)| leaves::all(field, Some(was), live.get(field)))
        .map(|leaf| Drift {
            address: address.clone(),
            field: leaves::dotted(&leaf.path),
            recorded: leaf.old,
            live: leaf.new,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tessera_provider_api::ProviderRef;

    fn pool() -> ResourceSpec {
        let p = ProviderRef::new("sim", "r");
        ResourceSpec::new("a/sim.nodepool/system".parse().unwrap(), p)
            .attr("instanceType", "m6i.xlarge")
            .attr("maxSize", 6)
            .attr("desiredSize", 3)
            .policy("desiredSize", FieldPolicy::Delegated)
            .replace_on("instanceType")
    }

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn classifies_in_place_and_replacing_changes() {
        let live = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 6, "desiredSize": 3}));
        assert!(changes(&pool(), &live).is_empty());

        let live = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 4, "desiredSize": 3}));
        let c = changes(&pool(), &live);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].field.as_str(), c[0].forces_replacement), ("maxSize", false));
        assert_eq!((c[0].old.clone(), c[0].new.clone()), (Some(json!(4)), Some(json!(6))));

        let live = attrs(json!({"instanceType": "m6i.large", "maxSize": 6, "desiredSize": 3}));
        let c = changes(&pool(), &live);
        assert!(c[0].forces_replacement, "{c:?}");
    }

    #[test]
    fn delegated_fields_are_neither_changes_nor_drift() {
        let live = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 6, "desiredSize": 5}));
        assert!(changes(&pool(), &live).is_empty());
        let recorded = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 6, "desiredSize": 3}));
        assert!(drift(&pool().address, Some(&pool()), &recorded, &live).is_empty());
    }

    #[test]
    fn drift_reports_field_recorded_and_live_values() {
        let recorded = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 6}));
        let live = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 9, "endpoint": "https://x"}));
        let d = drift(&pool().address, Some(&pool()), &recorded, &live);
        assert_eq!(d.len(), 1, "cloud-added fields are not drift: {d:?}");
        assert_eq!(
            (d[0].field.as_str(), d[0].recorded.clone(), d[0].live.clone()),
            ("maxSize", Some(json!(6)), Some(json!(9)))
        );
    }

    #[test]
    fn drift_inside_a_mapping_names_each_path() {
        let recorded = attrs(json!({"manifest": {"spec": {"replicas": 1, "paused": false}, "kind": "X"}}));
        let live = attrs(json!({"manifest": {"spec": {"replicas": 3, "extra": true}, "kind": "X"}}));
        let d = drift(&pool().address, None, &recorded, &live);
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["manifest.spec.extra", "manifest.spec.paused", "manifest.spec.replicas"]);
        assert_eq!(d[1].live, None, "a removed entry is drift with no live value");
        let whole_gone = drift(&pool().address, None, &recorded, &Attrs::new());
        assert_eq!(whole_gone.len(), 1, "a field gone entirely is one drift: {whole_gone:?}");
    }
}
