//! Plans for people: `+ ~ -/+ -` with old → new values, in colour on a terminal.

use std::fmt::Write;

use console::{Style, style};
use serde_json::Value;

use super::{ActionKind, Plan};

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
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
    if !plan.has_changes() {
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
            s.apply_to(a.kind.symbol()).bold(),
            s.apply_to(&a.address),
            style(format!("({})", a.reason)).dim()
        );
        match a.kind {
            ActionKind::Create => {
                if let Some(d) = &a.desired {
                    for (k, v) in &d.attrs {
                        let _ = writeln!(out, "        {k}: {v}");
                    }
                }
            }
            ActionKind::Update | ActionKind::Replace => {
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
