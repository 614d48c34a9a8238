//! Plans for people: `+ ~ -/+ -` with old → new values, in colour on a terminal.

use std::fmt::Write;

use console::{Style, style};
use serde_json::Value;

use super::diff::Change;
use super::{ActionKind, Plan};

const KNOWN_AFTER_APPLY: &str = "(known after apply)";

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => v.to_string(),
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
    let mut out = String::new();
    if !plan.drift.is_empty() {
        let _ = writeln!(out, "{}", style("Drift: changed outside Tessera").bold().red());
        for d in &plan.drift {
            let _ =
                writeln!(out, "  {}  {}: recorded {}, found {}", d.address, d.field, show(&d.recorded), show(&d.live));
        }
        out.push('\n');
    }
    for note in &plan.notes {
        let _ = writeln!(out, "{} {note}", style("Note:").bold().yellow());
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
                    let text = match a.changes.iter().find(|c| c.field == *field) {
                        Some(c) => show_new(c),
                        None if a.desired.as_ref().is_some_and(|d| d.is_unknown(field)) => KNOWN_AFTER_APPLY.into(),
                        None => show(&Some(value.clone())),
                    };
                    let _ = writeln!(out, "        {field}: {text}");
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
                    let _ = writeln!(out, "        {}: {} → {}{note}", c.field, show(&c.old), show_new(c));
                }
            }
            ActionKind::Delete => {
                if let Some(p) = &a.prior {
                    let _ = writeln!(out, "        id: {}", p.id);
                }
            }
        }
    }
    let _ = writeln!(out, "\n{} {}.", style("Plan:").bold(), plan.summary());
    out
}
