//! Plans for people: `+ ~ -/+ -` with old → new values, in colour on a terminal.

use std::fmt::Write;

use console::{Style, style};
use serde_json::Value;
use tessera_provider_api::reference::is_unknown;

use super::{ActionKind, Plan};

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) if is_unknown(v) => "(known after apply)".into(),
        Some(v) => v.to_string(),
    }
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
                    let planned = a.changes.iter().find(|c| c.field == *field).and_then(|c| c.new.clone());
                    let _ = writeln!(out, "        {field}: {}", show(&planned.or_else(|| Some(value.clone()))));
                }
                // What only the cloud will say (an endpoint, a CA), as Terraform shows computed
                // attributes: others reference these, and a connection is built from them.
                for output in a.desired.iter().flat_map(|d| d.outputs.iter().filter(|o| !d.attrs.contains_key(*o))) {
                    let _ = writeln!(out, "        {output}: (known after apply)");
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
                    let _ = writeln!(out, "        {}: {} → {}{note}", c.field, show(&c.old), show(&c.new));
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
