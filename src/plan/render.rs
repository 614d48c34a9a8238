//! Plans for people: `+ ~ -/+ -` with old → new values, in colour on a terminal.

use std::fmt::Write;

use console::{Style, style};
use serde_json::Value;

use super::diff::Change;
use super::leaves::{Leaf, SENSITIVE as SENSITIVE_SHOWN, Step, escaped};
use super::{ActionKind, Plan};

const KNOWN_AFTER_APPLY: &str = "(known after apply)";
/// The line width when the output is not a terminal.
const DEFAULT_WIDTH: usize = 200;
/// Below this, a shortened value says too little to be worth it.
const MIN_VALUE: usize = 16;

/// The width plan lines are fitted to: the terminal's, or [`DEFAULT_WIDTH`].
fn line_width() -> usize {
    console::Term::stdout().size_checked().map_or(DEFAULT_WIDTH, |(_, cols)| usize::from(cols)).max(40)
}

/// `text` in at most `max` characters: its head and tail around `…`.
fn shorten(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1).max(2);
    let head: String = text.chars().take(keep - keep / 3).collect();
    let tail: String = text.chars().skip(n - keep / 3).collect();
    format!("{head}…{tail}")
}

/// `prefix: old → new` in `width` characters, the two values sharing what is left.
fn fitted(prefix: &str, old: &str, new: &str, note: &str, width: usize) -> String {
    // A path longer than half the line gives way to the values.
    let prefix = shorten(prefix, prefix.chars().count().min((width / 2).max(MIN_VALUE)));
    let fixed = prefix.chars().count() + 2 + 3 + note.chars().count();
    let room = width.saturating_sub(fixed).max(2 * MIN_VALUE);
    let (o, n) = (old.chars().count(), new.chars().count());
    let (old_max, new_max) = if o + n <= room {
        (o, n)
    } else if o <= room / 2 {
        (o, room - o)
    } else if n <= room / 2 {
        (room - n, n)
    } else {
        (room / 2, room - room / 2)
    };
    format!("{prefix}: {} → {}{note}", shorten(old, old_max), shorten(new, new_max))
}

/// The leaves of one change as a YAML-like block under `indent` (below the field's own line):
/// each key written once, only the changed leaves, so a one-URL change in a manifest is a few
/// short lines.
/// A leaf `sensitive` names is shown masked on both sides.
fn leaf_block(out: &mut String, leaves: &[Leaf], indent: usize, width: usize, sensitive: &dyn Fn(&str) -> bool) {
    let mut open: &[Step] = &[];
    for leaf in leaves {
        let Some((last, parents)) = leaf.path.get(1..).and_then(<[Step]>::split_last) else { continue };
        let shared = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
        for (depth, step) in parents.iter().enumerate().skip(shared) {
            let line = format!("{:pad$}{step}:", "", pad = indent + 2 * depth);
            let _ = writeln!(out, "{}", shorten(&line, width));
        }
        let prefix = format!("{:pad$}{last}", "", pad = indent + 2 * parents.len());
        let masked = sensitive(&super::leaves::pointer(&leaf.path));
        let side = |v: &Option<Value>| if masked { SENSITIVE_SHOWN.to_string() } else { show(v) };
        let _ = writeln!(out, "{}", fitted(&prefix, &side(&leaf.old), &side(&leaf.new), "", width));
        open = parents;
    }
}

/// A value as JSON (which escapes control characters), with characters that could reorder or
/// hide the rest of the line escaped too.
fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => escaped(&v.to_string(), false),
    }
}

/// A change's new value, or that it is an output not made yet: whether a value is known is the
/// plan's to say (`Change::known_after_apply`), never guessed from its shape.
fn show_new(c: &Change) -> String {
    if c.known_after_apply { KNOWN_AFTER_APPLY.into() } else { show(&c.new) }
}

fn kind_style(kind: ActionKind) -> Style {
    match kind {
        ActionKind::Create => Style::new().green(),
        ActionKind::Update => Style::new().yellow(),
        ActionKind::Replace => Style::new().magenta(),
        ActionKind::Delete => Style::new().red(),
    }
}

pub fn render_human(plan: &Plan) -> String {
    render_human_in(plan, line_width())
}

/// [`render_human`] fitted to `width` characters a line.
pub fn render_human_in(plan: &Plan, width: usize) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        let _ = writeln!(out, "{}", style("Drift: changed outside Tessera").bold().red());
        for d in &plan.drift {
            let line = format!("  {}  {}: recorded {}, found {}", d.address, d.field, show(&d.recorded), show(&d.live));
            let _ = writeln!(out, "{}", shorten(&line, width));
        }
        out.push('\n');
    }
    for note in &plan.notes {
        // A note may quote state (a halt's reason), which a state writer controls.
        let _ = writeln!(out, "{} {}", style("Note:").bold().yellow(), crate::spec::printable(note, 4_000));
    }
    if !plan.unknown.is_empty() {
        let _ = writeln!(out, "{}", style("Could not be planned (the plan cannot be applied):").bold().red());
        for u in &plan.unknown {
            let _ = writeln!(out, "  ? {}  {}", u.address, u.error);
        }
        out.push('\n');
    }
    if !plan.has_changes() && plan.is_complete() {
        let _ = writeln!(
            out,
            "{} The fleet matches the spec. ({} unchanged)",
            style("No changes.").bold().green(),
            plan.unchanged
        );
        return out;
    }
    let verb = if plan.destroy { "destroy" } else { "apply" };
    let _ = writeln!(
        out,
        "{} (fleet {}, state serial {}):\n",
        style(format!("Tessera will {verb} these changes")).bold(),
        plan.fleet,
        plan.serial
    );
    for a in &plan.actions {
        // What the type's schema marks sensitive is masked, whatever its value looks like.
        let sensitive = |pointer: &str| a.desired.as_ref().is_some_and(|d| d.is_sensitive(pointer));
        let s = kind_style(a.kind);
        let _ = writeln!(
            out,
            "  {} {}  {}",
            s.apply_to(a.symbol()).bold(),
            s.apply_to(&a.address),
            style(format!("({})", a.reason)).dim()
        );
        match a.kind {
            ActionKind::Create => {
                // A value from another resource is shown as planned (known, or known after apply).
                for (field, value) in a.desired.iter().flat_map(|d| &d.attrs) {
                    let field_pointer = format!("/{}", tessera_provider_api::pointer_token(field));
                    let text = match a.changes.iter().find(|c| c.field == *field) {
                        _ if sensitive(&field_pointer) => SENSITIVE_SHOWN.into(),
                        Some(c) => show_new(c),
                        None if a.desired.as_ref().is_some_and(|d| d.is_unknown(field)) => KNOWN_AFTER_APPLY.into(),
                        None => show(&Some(value.clone())),
                    };
                    let line = format!("        {field}: {text}");
                    let _ = writeln!(out, "{}", shorten(&line, width));
                }
                // What only the cloud will say (an endpoint, a CA), as Terraform shows computed
                // attributes: others reference these, and a connection is built from them.
                for output in a.desired.iter().flat_map(|d| d.outputs.iter().filter(|o| !d.attrs.contains_key(*o))) {
                    let _ = writeln!(out, "        {output}: {KNOWN_AFTER_APPLY}");
                }
                if let Some(source) = a.desired.as_ref().and_then(|d| d.provider.connection.as_ref()) {
                    let made_here = plan
                        .actions
                        .iter()
                        .any(|b| b.address == *source && matches!(b.kind, ActionKind::Create | ActionKind::Replace));
                    let when = if made_here { " (known after apply)" } else { "" };
                    let _ = writeln!(out, "        {}", style(format!("# through the API of {source}{when}")).dim());
                }
            }
            ActionKind::Update | ActionKind::Replace => {
                if let Some(order) = a.replacement {
                    let order = match order {
                        tessera_provider_api::Replacement::CreateBeforeDestroy => {
                            "create the new object, then delete the old"
                        }
                        tessera_provider_api::Replacement::DestroyBeforeCreate => {
                            "delete the old object first: its name is unique"
                        }
                    };
                    let _ = writeln!(out, "        {}", style(format!("# {order}")).dim());
                }
                for c in &a.changes {
                    let note = if c.forces_replacement {
                        style("  # forces replacement").magenta().to_string()
                    } else {
                        String::new()
                    };
                    let field_pointer = format!("/{}", tessera_provider_api::pointer_token(&c.field));
                    if c.leaves.is_empty() {
                        let prefix = format!("        {}", c.field);
                        let (old, new) = if sensitive(&field_pointer) {
                            (SENSITIVE_SHOWN.to_string(), SENSITIVE_SHOWN.to_string())
                        } else {
                            (show(&c.old), show_new(c))
                        };
                        let _ = writeln!(out, "{}", fitted(&prefix, &old, &new, &note, width));
                    } else {
                        let _ = writeln!(out, "        {}:{note}", c.field);
                        leaf_block(&mut out, &c.leaves, 10, width, &sensitive);
                    }
                }
            }
            ActionKind::Delete => {
                if let Some(p) = &a.prior {
                    let _ = writeln!(out, "        id: {}", p.id);
                }
            }
        }
    }
    if let Some(rollout) = &plan.rollout {
        rollout_block(&mut out, plan, rollout);
    }
    let _ = writeln!(out, "\n{} {}.", style("Plan:").bold(), plan.summary());
    out
}

/// The waves the changes go out in, each with its placements, its changes and its gate.
fn rollout_block(out: &mut String, plan: &Plan, rollout: &crate::spec::Rollout) {
    let _ = writeln!(
        out,
        "\n{} in {} wave(s); each gated wave soaks {} after its last change, then its gate is read:",
        style("Rollout").bold(),
        rollout.waves.len(),
        rollout.soak
    );
    for (i, wave) in rollout.waves.iter().enumerate() {
        let changes = plan.actions.iter().filter(|a| rollout.wave_of(&a.address.placement) == i).count();
        // A placement no longer in the spec is deleted in the wave whose pattern takes it.
        let mut placements = wave.placements.clone();
        for a in plan.actions.iter().filter(|a| rollout.wave_of(&a.address.placement) == i) {
            let gone = format!("{} (deleted)", a.address.placement);
            if !wave.placements.contains(&a.address.placement) && !placements.contains(&gone) {
                placements.push(gone);
            }
        }
        let parallel = wave.max_parallel.map(|n| format!(", {n} at a time")).unwrap_or_default();
        let gate = wave.gate.map_or_else(|| "not gated".to_string(), |g| format!("gate: {}", g.describe()));
        let _ = writeln!(
            out,
            "  wave {}  {}  {} change(s){parallel}; {gate}",
            i + 1,
            if placements.is_empty() {
                "(no placement)".to_string()
            } else {
                crate::spec::printable(&placements.join(", "), 500)
            },
            changes
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::leaves::between;
    use super::*;

    #[test]
    fn a_long_value_is_shortened_around_an_ellipsis_on_character_boundaries() {
        let long = "é".repeat(300);
        let s = shorten(&long, 50);
        assert_eq!(s.chars().count(), 50, "{s}");
        assert!(s.contains('…'));
        assert_eq!(shorten("short", 50), "short");
    }

    #[test]
    fn a_one_leaf_change_in_a_large_manifest_is_short_lines_naming_its_path() {
        let mut old = json!({"apiVersion": "logging.banzaicloud.io/v1beta1", "kind": "ClusterOutput",
            "metadata": {"name": "tessera", "labels": {"a": "x".repeat(400)}},
            "spec": {"loki": {"url": "http://loki-a.logging.svc:3100", "configure_kubernetes_labels": true}}});
        let new = {
            let mut n = old.clone();
            n["spec"]["loki"]["url"] = json!("http://loki-b.logging.svc:3100");
            n
        };
        let leaves = between("manifest", Some(&old), Some(&new));
        let mut out = String::new();
        leaf_block(&mut out, &leaves, 10, 100, &|_| false);
        assert_eq!(
            out,
            "          spec:\n            loki:\n              url: \"http://loki-a.logging.svc:3100\" → \"http://loki-b.logging.svc:3100\"\n"
        );
        // A long leaf is fitted to the width.
        old["spec"]["loki"]["url"] = json!(format!("http://{}", "a".repeat(500)));
        let leaves = between("manifest", Some(&old), Some(&new));
        let mut out = String::new();
        leaf_block(&mut out, &leaves, 10, 120, &|_| false);
        assert!(out.lines().all(|l| l.chars().count() <= 120), "{out}");
        assert!(out.contains("loki-b.logging.svc:3100"), "the short side is whole: {out}");
    }

    #[test]
    fn the_rollout_block_names_each_waves_placements_its_changes_and_gate_and_those_being_deleted() {
        use crate::spec::{Gate, Rollout, Wave};
        use tessera_provider_api::ProviderRef;
        let action = |placement: &str, kind| crate::plan::Action {
            address: format!("{placement}/sim.nodepool/system").parse().unwrap(),
            kind,
            provider: ProviderRef::new("sim", "eu"),
            reason: "spec changed".into(),
            changes: vec![],
            desired: None,
            prior: None,
            replacement: None,
            refresh_deferred: false,
        };
        let wave = |names: &[&str], patterns: &[&str], gate| Wave {
            placements: names.iter().map(|n| n.to_string()).collect(),
            patterns: patterns.iter().map(|n| n.to_string()).collect(),
            max_parallel: Some(2),
            gate,
        };
        let rollout = Rollout {
            waves: vec![wave(&["canary"], &["canary"], Some(Gate::default())), wave(&["aws-a"], &["aws-*"], None)],
            soak: "10m".into(),
            soak_ms: 600_000,
        };
        let plan = crate::plan::Plan {
            rollout: Some(rollout),
            ..crate::plan::Plan::of(vec![
                action("canary", crate::plan::ActionKind::Update),
                action("aws-old", crate::plan::ActionKind::Delete),
            ])
        };
        let out = console::strip_ansi_codes(&super::render_human_in(&plan, 200)).to_string();
        assert!(out.contains("in 2 wave(s); each gated wave soaks 10m"), "{out}");
        assert!(
            out.contains("wave 1  canary  1 change(s), 2 at a time; gate: every node Ready, core services on every node, no critical alert firing"),
            "{out}"
        );
        assert!(out.contains("wave 2  aws-a, aws-old (deleted)  1 change(s), 2 at a time; not gated"), "{out}");
    }

    #[test]
    fn sibling_leaves_share_their_parents() {
        let old = json!({"a": {"b": {"c": 1, "d": 2}, "e": 3}});
        let new = json!({"a": {"b": {"c": 10, "d": 20}, "e": 30}});
        let mut out = String::new();
        leaf_block(&mut out, &between("v", Some(&old), Some(&new)), 0, 80, &|_| false);
        assert_eq!(out, "a:\n  b:\n    c: 1 → 10\n    d: 2 → 20\n  e: 3 → 30\n");
    }

    #[test]
    fn what_a_schema_marks_sensitive_is_masked_however_it_looks() {
        use tessera_provider_api::{ProviderRef, ResourceSpec};
        let mut desired = ResourceSpec::new("a/t.db/main".parse().unwrap(), ProviderRef::new("t", ""))
            .attr("password", "hunter2-plain")
            .attr("settings", json!({"name": "b", "size": 3}));
        desired.sensitive = vec!["/password".into(), "/settings/size".into()];
        let change = |field: &str, old: serde_json::Value, new: serde_json::Value| super::Change {
            field: field.into(),
            leaves: between(field, Some(&old), Some(&new)),
            old: Some(old),
            new: Some(new),
            forces_replacement: false,
            known_after_apply: false,
        };
        let action = crate::plan::Action {
            address: desired.address.clone(),
            kind: crate::plan::ActionKind::Update,
            provider: desired.provider.clone(),
            reason: "spec changed".into(),
            changes: vec![
                change("password", json!("old-plain"), json!("hunter2-plain")),
                change("settings", json!({"name": "a", "size": 2}), json!({"name": "b", "size": 3})),
            ],
            desired: Some(desired),
            prior: None,
            replacement: None,
            refresh_deferred: false,
        };
        let plan = crate::plan::Plan::of(vec![action]);
        let out = super::render_human_in(&plan, 120);
        assert!(!out.contains("hunter2-plain") && !out.contains("old-plain"), "{out}");
        let size = out.lines().find(|l| l.trim_start().starts_with("size")).expect("the size leaf");
        assert!(size.contains("(sensitive)") && !size.contains('2') && !size.contains('3'), "{out}");
        assert!(out.contains("\"b\""), "a leaf the schema does not mark is shown: {out}");
    }
}
