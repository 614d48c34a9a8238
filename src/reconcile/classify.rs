//! Telling drift from pending changes in a plan. Pure functions.
//!
//! ## Overview
//!
//! A plan mixes two things: actions that put back what was changed outside Tessera, and actions
//! that carry out spec changes git has and the clouds do not yet. An action *undoes drift* when
//! every field it changes was drifted and its new value is the recorded one, or when it recreates
//! a resource deleted outside Tessera with the recorded values (references and the ownership tags,
//! which carry the generation, aside). Every other action is *pending*. Correcting drift applies
//! only in-place updates and recreations: a drift that only a replacement can undo (an immutable
//! field changed in a console) is reported and left to a person or the pipeline.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tessera_provider_api::{Address, FieldPolicy};

use crate::plan::{Action, ActionKind, Drift, Plan};
use crate::state::ResourceRecord;

const DELETED_OUTSIDE: &str = "deleted outside Tessera";
const TAGS: &str = "tags";

/// Whether `action` only undoes drift (see the module docs); `replace_ok` admits replacements
/// (for plan files that approvers review, never for what the loop applies itself).
pub fn undoes_drift(action: &Action, plan: &Plan, records: &[ResourceRecord], replace_ok: bool) -> bool {
    let drifted: BTreeSet<&str> =
        plan.drift.iter().filter(|d| d.address == action.address).map(|d| d.field.as_str()).collect();
    if drifted.is_empty() {
        return false;
    }
    let Some(rec) = records.iter().find(|r| r.address == action.address && !r.deposed) else { return false };
    let field_drifted = |field: &str| {
        drifted.iter().any(|d| *d == field || d.strip_prefix(field).is_some_and(|rest| rest.starts_with(['.', '['])))
    };
    match action.kind {
        ActionKind::Update | ActionKind::Replace if action.kind == ActionKind::Update || replace_ok => {
            !action.changes.is_empty()
                && action.changes.iter().all(|c| field_drifted(&c.field) && c.new.as_ref() == rec.attrs.get(&c.field))
        }
        ActionKind::Create if action.reason == DELETED_OUTSIDE && drifted.contains("(resource)") => {
            let Some(want) = &action.desired else { return false };
            want.attrs
                .iter()
                .filter(|(f, _)| want.policy_of(f) == FieldPolicy::Owned && *f != TAGS)
                .all(|(f, v)| want.is_unknown(f) || rec.attrs.get(f) == Some(v) || resolved_in(action, f, rec))
        }
        _ => false,
    }
}

/// A created resource's attribute whose resolved value (in the action's changes) is the recorded.
fn resolved_in(action: &Action, field: &str, rec: &ResourceRecord) -> bool {
    action.changes.iter().any(|c| c.field == field && c.new.as_ref() == rec.attrs.get(field))
}

/// Drift and pending changes, per placement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Indexes into `plan.actions` of the actions that undo drift.
    pub corrections: Vec<usize>,
    /// Indexes of the actions that carry out spec changes.
    pub pending: Vec<usize>,
}

pub fn split(plan: &Plan, records: &[ResourceRecord]) -> Split {
    let mut out = Split::default();
    for (i, a) in plan.actions.iter().enumerate() {
        if undoes_drift(a, plan, records, true) {
            out.corrections.push(i);
        } else {
            out.pending.push(i);
        }
    }
    out
}

/// Per placement: drifted resources and drifted fields.
pub fn drift_by_placement(drift: &[Drift]) -> BTreeMap<String, (usize, usize)> {
    let mut seen: BTreeMap<String, (BTreeSet<&Address>, usize)> = BTreeMap::new();
    for d in drift {
        let e = seen.entry(d.address.placement.clone()).or_default();
        e.0.insert(&d.address);
        e.1 += 1;
    }
    seen.into_iter().map(|(p, (resources, fields))| (p, (resources.len(), fields))).collect()
}

/// A value for events: `null` for a field or resource that is gone.
pub fn shown(v: &Option<Value>) -> Value {
    v.clone().unwrap_or(Value::Null)
}
