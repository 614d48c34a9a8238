//! Kubernetes version moves, checked against state before anything is planned.
//!
//! Kubernetes upgrades a control plane one minor at a time and never downgrades it; a cloud
//! refuses anything else only after a plan has been approved and the apply has started. So a
//! control plane that state records at one version (its resource's `version_attr`) may be planned
//! at the same minor or the next one, and nothing else: each refusal points at the version in the
//! spec.

use tessera_provider_api::ResourceSpec;

use crate::spec::{Fleet, Problem};
use crate::state::ResourceRecord;

/// `major.minor` as numbers; `None` for anything else (a patch is ignored: the cloud picks it).
fn minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The problems with the versions `desired` would move recorded control planes to.
pub fn check(fleet: &Fleet, desired: &[&ResourceSpec], records: &[ResourceRecord]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for want in desired {
        let Some(key) = &want.version_attr else { continue };
        let Some(rec) = records.iter().find(|r| !r.deposed && r.address == want.address) else { continue };
        let text = |attrs: &tessera_provider_api::Attrs| attrs.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(from), Some(to)) = (text(&rec.attrs), text(&want.attrs)) else { continue };
        let (Some(a), Some(b)) = (minor(&from), minor(&to)) else { continue };
        let placement = want.address.placement.as_str();
        let Some(site) = fleet.placement(placement).map(|p| p.version_site) else { continue };
        let step = |v: (u32, u32)| format!("{}.{}", v.0, v.1);
        if b < a {
            problems.push(
                Problem::at_site(
                    site,
                    format!("placement `{placement}` would downgrade Kubernetes from {} to {}", step(a), step(b)),
                )
                .help(format!(
                    "Kubernetes never downgrades a control plane: keep {} (or replace the cluster under a new placement)",
                    step(a)
                )),
            );
        } else if b.0 != a.0 || b.1 > a.1 + 1 {
            let next = (a.0, a.1 + 1);
            problems.push(
                Problem::at_site(
                    site,
                    format!(
                        "placement `{placement}` would upgrade Kubernetes from {} to {} in one step",
                        step(a),
                        step(b)
                    ),
                )
                .help(format!("upgrade one minor at a time: apply {} first, then the next", step(next))),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minors_parse_and_patches_are_ignored() {
        assert_eq!(minor("1.31"), Some((1, 31)));
        assert_eq!(minor("v1.31.4"), Some((1, 31)));
        assert_eq!(minor("latest"), None);
    }
}
