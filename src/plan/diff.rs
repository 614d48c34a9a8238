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
    /// The changed leaf, for people: the attribute, then keys and indexes (`manifest.spec.replicas`).
    pub field: String,
    /// The same leaf, for programs: the attribute's name, then each key and index (empty when the
    /// whole resource is gone).
    #[serde(default)]
    pub path: Vec<leaves::Step>,
    pub recorded: Option<Value>,
    /// `None` when the field, or the whole resource, is gone.
    pub live: Option<Value>,
}

/// Owned fields whose live value differs from the desired one. Inside a field, what a nested
/// policy gives away (delegated or ignored, by JSON pointer) is taken as it is live, so it is
/// never a change and an update hands it back unchanged; a nested replacement rule makes a
/// change of that value a replacement.
pub fn changes(desired: &ResourceSpec, live: &Attrs) -> Vec<Change> {
    desired
        .attrs
        .iter()
        .filter(|(field, _)| desired.policy_of(field) == FieldPolicy::Owned)
        .filter_map(|(field, want)| {
            let live_value = live.get(field);
            let want = owned_part(desired, field, want, live_value);
            if live_value == Some(&want) {
                return None;
            }
            let forces = forces_replacement(desired, field, live_value, Some(&want));
            // What the cloud holds is shown and kept masked: plans are read and stored.
            let shown_old = live_value.map(|v| leaves::shown(field, v));
            let old = shown_old.as_ref();
            let unknown = desired.is_unknown(field);
            Some(Change {
                field: field.clone(),
                old: old.cloned(),
                forces_replacement: forces,
                known_after_apply: unknown,
                leaves: if unknown { Vec::new() } else { leaves::between(field, old, Some(&want)) },
                new: Some(want),
            })
        })
        .collect()
}

/// Whether changing `field` from `old` to `new` needs a replacement: a rule names the field, or a
/// value inside it that differs. The planner and a saved plan's check ask this one question.
pub(super) fn forces_replacement(
    desired: &ResourceSpec,
    field: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> bool {
    desired.replace_on.iter().any(|r| r == field)
        || desired
            .nested_replace_on(field)
            .iter()
            .any(|p| new.and_then(|n| n.pointer(p)) != old.and_then(|o| o.pointer(p)))
}

/// `want` with each value under a nested policy other than `Owned` taken from `live` (or left
/// out where live has none).
pub(super) fn owned_part(desired: &ResourceSpec, field: &str, want: &Value, live: Option<&Value>) -> Value {
    let mut out = want.clone();
    for (pointer, policy) in desired.nested_policies(field) {
        if policy == FieldPolicy::Owned {
            continue;
        }
        leaves::set(&mut out, &pointer, live.and_then(|l| l.pointer(&pointer)).cloned());
    }
    out
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
    let owned_leaf =
        |leaf: &Leaf| policy.is_none_or(|p| p.policy_at(&leaves::pointer(&leaf.path)) == FieldPolicy::Owned);
    recorded
        .iter()
        .filter(|(field, _)| owned(field))
        .flat_map(|(field, was)| leaves::all(field, Some(was), live.get(field)))
        .filter(owned_leaf)
        .map(|leaf| Drift {
            address: address.clone(),
            field: leaves::dotted(&leaf.path),
            path: leaf.path,
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

    fn system() -> ResourceSpec {
        let p = ProviderRef::new("sim", "r");
        ResourceSpec::new("a/aks.cluster/main".parse().unwrap(), p)
            .attr("systemPool", json!({"vmSize": "D4", "count": 3, "labels": {"tier": "system"}}))
            .attr("access", json!({"private": false, "ranges": ["203.0.113.0/24"]}))
            .policy("/systemPool/count", FieldPolicy::Delegated)
            .replace_on("/access/private")
    }

    #[test]
    fn a_delegated_nested_value_is_never_a_change_nor_drift_and_is_handed_back() {
        let live = attrs(json!({"systemPool": {"vmSize": "D4", "count": 7, "labels": {"tier": "system"}},
            "access": {"private": false, "ranges": ["203.0.113.0/24"]}}));
        assert!(changes(&system(), &live).is_empty(), "the autoscaler's count is not a change");
        let recorded = attrs(json!({"systemPool": {"vmSize": "D4", "count": 3, "labels": {"tier": "system"}}}));
        assert!(drift(&system().address, Some(&system()), &recorded, &live).is_empty());

        // Another change in the same field: the update carries the live count, not the spec's.
        let live = attrs(json!({"systemPool": {"vmSize": "D4", "count": 7, "labels": {"tier": "x"}},
            "access": {"private": false, "ranges": ["203.0.113.0/24"]}}));
        let c = changes(&system(), &live);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].new.as_ref().unwrap()["count"], 7);
        assert_eq!(c[0].leaves.len(), 1, "{:?}", c[0].leaves);
        assert!(!c[0].forces_replacement);
        // Owned nested values still drift.
        let d = drift(&system().address, Some(&system()), &recorded, &live);
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["systemPool.labels.tier"], "{d:?}");
    }

    #[test]
    fn a_nested_replacement_rule_replaces_only_when_its_value_changes() {
        let live = |private: bool, ranges: Value| {
            attrs(json!({"systemPool": {"vmSize": "D4", "count": 3, "labels": {"tier": "system"}},
                "access": {"private": private, "ranges": ranges}}))
        };
        let c = changes(&system(), &live(false, json!(["198.51.100.0/24"])));
        assert_eq!((c.len(), c[0].forces_replacement), (1, false), "ranges change in place: {c:?}");
        let c = changes(&system(), &live(true, json!(["203.0.113.0/24"])));
        assert_eq!((c.len(), c[0].forces_replacement), (1, true), "private or public is a new cluster: {c:?}");
    }

    #[test]
    fn pointers_escape_keys_with_slashes_and_find_the_nearest_policy() {
        let spec = pool()
            .attr("tags", json!({"tessera.dev/pool": "system"}))
            .policy("/tags/tessera.dev~1pool", FieldPolicy::Ignored);
        assert_eq!(spec.policy_at("/tags/tessera.dev~1pool"), FieldPolicy::Ignored);
        assert_eq!(spec.policy_at("/tags/other"), FieldPolicy::Owned);
        assert_eq!(spec.policy_at("/desiredSize"), FieldPolicy::Delegated, "a field's own policy");
        let live = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 6, "desiredSize": 3, "tags": {}}));
        assert!(changes(&spec, &live).is_empty(), "an ignored tag is not a change");
    }

    #[test]
    fn credentials_the_cloud_holds_never_reach_a_change() {
        let spec = pool().attr("taints", json!([]));
        let live = attrs(json!({"instanceType": "m6i.xlarge", "maxSize": 6, "desiredSize": 3,
            "taints": [{"key": "k", "password": "hunter2", "authorization": "Bearer abcdef123456"}]}));
        let c = changes(&spec, &live);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(c.len(), 1, "{text}");
        assert!(!text.contains("hunter2") && !text.contains("abcdef123456"), "{text}");
    }
}
