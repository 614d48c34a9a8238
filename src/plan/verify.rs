//! A saved plan is data anyone could have written (its digest only proves it was not changed
//! after it was made). Before it is shown for approval or applied, it is held to what it claims.
//!
//! ## Overview
//!
//! - [`consistent`]: what a person reads is what will run. Each change's new value, its leaves
//!   and whether it is "known after apply" are recomputed from the action's desired object and
//!   the change's old value; an action names the address and provider of its object.
//! - [`matches_spec`]: what will run is what the spec says. Each desired object is the one the
//!   spec compiles to (attributes, where references are, dependencies, outputs, policies,
//!   replacement rules, provider), at the generation the plan chose; a delete names nothing the
//!   spec still wants (a destroy plan excepted). So references can only be where lowering put
//!   them, and a plan author cannot add, hide or alter what the spec does not say.
//!
//! - [`matches_state`]: what will run acts on the objects it names. Each object an action starts
//!   from (its cloud id, provider, whether it is deposed) is the one state records at its address:
//!   a plan is refused when state moved since (its serial), so at apply time state is what the
//!   planner saw, and an action cannot point at another object.
//!
//! An action's kind and replacement order are held to its changes and its type's schema: an
//! update never carries a change that needs a replacement, and a replacement goes in the order
//! its schema (or a dependency replaced destroy-first) sets.
//!
//! What none of them can show is a change a plan leaves out: its old value is the cloud's at planning
//! time, which only a new plan reads again. The spec is still the whole of what can happen.

use std::collections::HashSet;

use serde_json::Value;
use tessera_provider_api::{Address, FieldPolicy, Replacement, ResourceSpec};

use super::diff::{forces_replacement, owned_part};
use super::leaves;
use super::{ActionKind, Plan};
use crate::compile::ResourceGraph;
use crate::state::ResourceRecord;

/// Every way `plan` contradicts itself, or nothing.
pub fn consistent(plan: &Plan) -> Result<(), Vec<String>> {
    let mut out = order_problems(plan);
    for a in &plan.actions {
        let Some(d) = &a.desired else {
            if !a.changes.is_empty() {
                out.push(format!("{}: changes without a desired object", a.address));
            }
            continue;
        };
        if d.address != a.address || d.provider != a.provider {
            out.push(format!("{}: its desired object is {} on another provider", a.address, d.address));
        }
        for c in &a.changes {
            let at = format!("{} {}", a.address, c.field);
            let Some(want) = d.attrs.get(&c.field) else {
                out.push(format!("{at}: a change of a field the desired object does not have"));
                continue;
            };
            if c.known_after_apply {
                if !d.is_unknown(&c.field) {
                    out.push(format!("{at}: shown as known after apply, but it is a known value"));
                }
                continue;
            }
            // A value resolved from another resource's output is the planner's to know.
            if !d.ref_attrs.contains(&c.field) {
                let expected = owned_part(d, &c.field, want, c.old.as_ref());
                // A file cannot tell a new value of `null` from none: both read back as none.
                if c.new.as_ref().unwrap_or(&Value::Null) != &expected {
                    out.push(format!("{at}: the new value shown is not the desired one"));
                }
            }
            if c.leaves != leaves::between(&c.field, c.old.as_ref(), c.new.as_ref()) {
                out.push(format!("{at}: the leaves shown are not the change's"));
            }
            let forces = forces_replacement(d, &c.field, c.old.as_ref(), c.new.as_ref());
            if c.forces_replacement != forces && !d.ref_attrs.contains(&c.field) {
                out.push(format!("{at}: whether it forces a replacement is misstated"));
            }
            if d.policy_of(&c.field) != FieldPolicy::Owned {
                out.push(format!("{at}: a change of a field Tessera does not own"));
            }
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Every action whose kind or replacement order its changes and its type's schema contradict.
fn order_problems(plan: &Plan) -> Vec<String> {
    let destroy_first: HashSet<&Address> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Replace && a.replacement == Some(Replacement::DestroyBeforeCreate))
        .map(|a| &a.address)
        .collect();
    let mut out = Vec::new();
    for a in &plan.actions {
        let forced = a.changes.iter().any(|c| c.forces_replacement);
        match (a.kind, &a.desired) {
            (ActionKind::Update, _) if forced => {
                out.push(format!("{}: an update of a value that can only change by replacement", a.address));
            }
            (ActionKind::Replace, Some(d)) => {
                let first = d.replacement == Replacement::DestroyBeforeCreate
                    || d.deps.iter().any(|dep| destroy_first.contains(dep));
                let expected = if first { Replacement::DestroyBeforeCreate } else { Replacement::CreateBeforeDestroy };
                if a.replacement != Some(expected) {
                    out.push(format!(
                        "{}: replaced in another order than its type (or a dependency replaced first) sets",
                        a.address
                    ));
                }
            }
            _ if a.replacement.is_some() => out.push(format!("{}: a replacement order on no replacement", a.address)),
            _ => {}
        }
        let needs_prior = matches!(a.kind, ActionKind::Update | ActionKind::Replace | ActionKind::Delete);
        if needs_prior && a.prior.is_none() {
            out.push(format!("{}: no object to act on", a.address));
        }
    }
    out
}

/// Every action whose object is not the one `records` (the state the plan was made against, at
/// its serial) holds at its address, or nothing.
pub fn matches_state(plan: &Plan, records: &[ResourceRecord]) -> Result<(), Vec<String>> {
    let mut out = Vec::new();
    for a in &plan.actions {
        let Some(p) = &a.prior else { continue };
        let recorded = records
            .iter()
            .any(|r| r.address == a.address && r.id == p.id && r.provider == p.provider && r.deposed == p.deposed);
        if !recorded {
            out.push(format!("{}: acts on an object state does not record there", a.address));
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Every way `plan` does something other than what `graph` (its spec, compiled) says, or nothing.
pub fn matches_spec(plan: &Plan, graph: &ResourceGraph) -> Result<(), Vec<String>> {
    let mut out = Vec::new();
    for a in &plan.actions {
        match (&a.desired, graph.get(&a.address)) {
            (Some(d), Some(wanted)) => {
                let mut wanted: ResourceSpec = wanted.clone();
                wanted.set_generation(d.generation());
                if *d != wanted {
                    out.push(format!("{}: not what the spec says ({})", a.address, differences(d, &wanted)));
                }
            }
            (Some(_), None) => out.push(format!("{}: the spec has no such resource", a.address)),
            (None, Some(_)) if a.kind == ActionKind::Delete && !plan.destroy => {
                out.push(format!("{}: deletes what the spec still wants", a.address));
            }
            (None, _) => {}
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// What differs between a plan's object and the spec's, by name (never the values).
fn differences(got: &ResourceSpec, want: &ResourceSpec) -> String {
    let mut what: Vec<String> = got
        .attrs
        .keys()
        .chain(want.attrs.keys())
        .filter(|k| got.attrs.get(*k) != want.attrs.get(*k))
        .map(|k| format!("`{k}`"))
        .collect();
    what.dedup();
    let parts = [
        (got.ref_attrs != want.ref_attrs, "where references are"),
        (got.deps != want.deps, "dependencies"),
        (got.outputs != want.outputs, "outputs"),
        (got.policies != want.policies, "policies"),
        (got.replace_on != want.replace_on || got.replacement != want.replacement, "replacement rules"),
        (got.provider != want.provider, "provider"),
        (got.version_attr != want.version_attr, "version attribute"),
    ];
    what.extend(parts.iter().filter(|(differs, _)| *differs).map(|(_, name)| name.to_string()));
    what.join(", ")
}
