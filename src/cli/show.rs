//! `tessera show PLAN`: what an approver reads before signing. The saved plan rendered as `plan`
//! renders it (actions, diffs, drift), then what the policy in force asks of it (each lane, how
//! many approvals, for which action) and who has signed, each signature checked. `approve` prints
//! the same before it signs, so nobody signs a digest blind.

use std::fmt::Write as _;
use std::path::Path;

use miette::{IntoDiagnostic, Result, WrapErr};

use super::{Global, enforced_policy};
use crate::pipeline::approval::{self, Refusal};
use crate::pipeline::change::{self, PolicyChange};
use crate::pipeline::{Authority, Policy};
use crate::plan::{PlanFile, render_human};
use crate::state::{self, ResourceRecord};

/// The approval part of the summary: lanes needed, and each signature.
fn approvals(file: &PlanFile, policy: Option<&Policy>, records: &[ResourceRecord]) -> String {
    let mut out = String::new();
    let Some(policy) = policy else {
        let _ = writeln!(out, "No policy is in force here: `apply --plan` needs no approval.");
        for a in &file.approvals {
            let _ = writeln!(out, "  signed by {} (key {})", a.approver, a.key);
        }
        return out;
    };
    let signed = approval::signatures(policy, &file.digest, &file.approvals);
    let counted: std::collections::BTreeSet<&str> =
        signed.iter().filter(|(_, why)| why.is_none()).map(|(n, _)| n.as_str()).collect();
    match approval::needs(policy, &file.plan, &Authority::gather(None, records, &[])) {
        Ok(needs) if needs.is_empty() => {
            let _ = writeln!(out, "Approvals needed: none (the plan changes nothing).");
        }
        Ok(needs) => {
            let _ = writeln!(out, "Approvals needed (every lane that covers a changed placement):");
            for n in needs {
                let have = approval::have(policy, &n.lane, &counted);
                let mark = if have >= n.need { "ok" } else { "missing" };
                let _ = writeln!(
                    out,
                    "  lane {}: {} of {} ({mark}; the most any action needs, e.g. {})",
                    n.lane, have, n.need, n.address
                );
            }
        }
        Err(e @ Refusal::NoLane { .. }) => {
            let _ = writeln!(out, "Approvals needed: this plan cannot be approved: {e}");
        }
        Err(e) => {
            let _ = writeln!(out, "Approvals needed: {e}");
        }
    }
    if signed.is_empty() {
        let _ = writeln!(out, "Signed by: nobody yet.");
    }
    for (name, why) in &signed {
        match why {
            None => {
                let _ = writeln!(out, "  signed by {name}: valid");
            }
            Some(e) => {
                let _ = writeln!(out, "  signed by {name}: does not count ({e})");
            }
        }
    }
    out
}

/// The whole summary of a saved plan.
pub fn plan_summary(file: &PlanFile, policy: Option<&Policy>, records: &[ResourceRecord]) -> String {
    let p = &file.plan;
    let mut out = format!(
        "Plan {} for fleet `{}`, made from {} against state {} at serial {}.\n\n",
        crate::pipeline::bound::short(&file.digest),
        p.fleet,
        p.spec_path,
        p.lineage,
        p.serial
    );
    out += &render_human(p);
    out += "\n";
    out += &approvals(file, policy, records);
    out
}

/// The summary of a policy change: what it replaces, and the policy it installs.
fn change_summary(change: &PolicyChange) -> String {
    format!(
        "Policy change {}: policy {} -> {}, signed by {}.\nThe policy it installs:\n\n{}",
        crate::pipeline::bound::short(&change.digest),
        crate::pipeline::bound::short(&change.from),
        crate::pipeline::bound::short(&change.to),
        if change.approvals.is_empty() {
            "nobody yet".to_string()
        } else {
            change.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>().join(", ")
        },
        change.policy
    )
}

/// What `show` and `approve` print for the document at `path` (a plan or a policy change).
pub async fn summary(g: &Global, path: &Path, text: &str) -> Result<String> {
    if change::is_policy_change(text) {
        return Ok(change_summary(&PolicyChange::parse(path, text)?));
    }
    let file = PlanFile::parse(path, text)?;
    // What is shown must be what runs: a plan whose changes contradict its objects is refused
    // before anyone reads (or signs) it.
    if let Err(problems) = crate::plan::verify::consistent(&file.plan) {
        return Err(miette::miette!(
            help = "make the plan again with `tessera plan -o PLAN`",
            "{} does not show what it would do; refusing to show it:\n  {}",
            path.display(),
            problems.join("\n  ")
        ));
    }
    let store = state::open_for_reading(&g.state).await?;
    let policy = enforced_policy(g, store.as_ref()).await?.map(|e| e.policy);
    let records = store.resources().await?;
    Ok(plan_summary(&file, policy.as_ref(), &records))
}

pub async fn show(g: &Global, path: &Path) -> Result<u8> {
    let text = crate::bounded::read_to_string(path, crate::bounded::PLAN)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", path.display()))?;
    print!("{}", summary(g, path, &text).await?);
    Ok(0)
}
