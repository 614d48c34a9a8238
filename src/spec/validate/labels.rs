//! Node pool labels, taints and core-service tolerations, by the rules of whoever reads them.
//!
//! - Labels go to the kubelet's `--node-labels` (kind) or the cloud's node-pool labels, which the
//!   kubelet registers. The kubelet refuses keys in the `kubernetes.io` and `k8s.io` namespaces
//!   unless they are in its allowed set (`k8s.io/kubelet/pkg/apis`: `kubelet.kubernetes.io/…`,
//!   `node.kubernetes.io/…`, and a few well-known labels), so such a key fails late, at node
//!   registration. The well-known ones are the kubelet's or the cloud's to set (the OS, the
//!   architecture, the hostname, zone, region and instance type); a spec may not set them either:
//!   `kubernetes.io/os: windows` on a pool would otherwise take it out of coverage.
//! - Taints and tolerations follow Kubernetes' validation (`ValidateTaints`,
//!   `ValidateTolerations`): keys are qualified names, values label values (so a comma, which
//!   kind's `--register-with-taints` would read as a separator, is refused), a key and effect at
//!   most once per pool; a toleration without a key is `Exists`, and `Exists` takes no value.

use std::collections::{BTreeMap, HashSet};

use tessera_provider_api::{Taint, TaintEffect, Toleration, TolerationOperator, nearest_names};

use super::super::diagnostic::{Problem, did_you_mean};
use super::super::raw::{RawTaint, RawToleration, S};
use super::Validator;

/// The well-known labels the kubelet or the cloud sets on every node.
const SET_BY_THE_NODE: [&str; 11] = [
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];
/// Label namespaces (and their subdomains) a kubelet may set on its own Node.
const KUBELET_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];
/// Namespaces reserved for Kubernetes itself.
const RESERVED: [&str; 2] = ["kubernetes.io", "k8s.io"];
/// The NodeRestriction admission plugin refuses these even from the kubelet's allowed set.
const NODE_RESTRICTION: &str = "node-restriction.kubernetes.io";

/// Why the kubelet (or Tessera) would refuse a pool label key, if it would.
pub fn reserved_label(key: &str) -> Option<String> {
    if SET_BY_THE_NODE.contains(&key) {
        return Some(format!("`{key}` is set on every node by the kubelet or the cloud"));
    }
    let (namespace, _) = key.split_once('/')?;
    let within = |ns: &str| namespace == ns || namespace.ends_with(&format!(".{ns}"));
    if within(NODE_RESTRICTION) {
        return Some(format!("`{key}` is in `{NODE_RESTRICTION}`, which kubelets may never set"));
    }
    if RESERVED.iter().any(|ns| within(ns)) && !KUBELET_NAMESPACES.iter().any(|ns| within(ns)) {
        return Some(format!("`{key}` is in a namespace reserved for Kubernetes, which the kubelet refuses"));
    }
    None
}

impl Validator<'_> {
    pub(super) fn labels(&mut self, labels: &S<BTreeMap<String, String>>) -> BTreeMap<String, String> {
        for (k, val) in labels.get() {
            if !is_qualified_name(k) {
                self.push(Problem::at(labels.loc(), format!("invalid label key `{k}`")).help(
                    "keys are `[prefix/]name`: name of 1-63 alphanumerics, '-', '_' or '.', optional DNS prefix",
                ));
            } else if let Some(why) = reserved_label(k) {
                self.push(Problem::at(labels.loc(), format!("pool label {why}")).help(format!(
                    "use your own prefix (e.g. `example.com/{}`) or `node.kubernetes.io/…`; the node's OS, \
                     architecture and topology come from the machine and the cloud",
                    k.rsplit('/').next().unwrap_or(k)
                )));
            }
            if !is_label_value(val) {
                self.push(
                    Problem::at(labels.loc(), format!("invalid value `{val}` for label `{k}`")).help(
                        "values are empty or 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
                    ),
                );
            }
        }
        labels.get().clone()
    }

    /// One pool's taints; `seen` holds the (key, effect) pairs of the pool so far.
    pub(super) fn taint(&mut self, t: &RawTaint, seen: &mut HashSet<(String, String)>) -> Option<Taint> {
        if !is_qualified_name(t.key.get()) {
            self.push(
                Problem::at(t.key.loc(), format!("invalid taint key `{}`", t.key.get()))
                    .help("taint keys follow label-key syntax, e.g. `dedicated` or `nvidia.com/gpu`"),
            );
        }
        if let Some(v) = t.value.as_ref().filter(|v| !is_label_value(v.get())) {
            self.push(Problem::at(v.loc(), format!("invalid taint value `{}`", v.get())).help(
                "taint values follow label-value syntax: up to 63 alphanumerics, '-', '_' or '.' (no ',' or '=')",
            ));
        }
        let effect = self.effect(&t.effect)?;
        if !seen.insert((t.key.get().clone(), t.effect.get().clone())) {
            self.push(
                Problem::at(
                    t.key.loc(),
                    format!("taint `{}` with effect {} is listed twice", t.key.get(), t.effect.get()),
                )
                .help("Kubernetes allows one taint per key and effect"),
            );
        }
        Some(Taint { key: t.key.get().clone(), value: t.value.as_ref().map(|v| v.get().clone()), effect })
    }

    pub(super) fn effect(&mut self, effect: &S<String>) -> Option<TaintEffect> {
        let parsed = TaintEffect::parse(effect.get());
        if parsed.is_none() {
            let hint = did_you_mean(&nearest_names(TaintEffect::ALL, effect.get(), 1))
                .unwrap_or_else(|| format!("use one of: {}", TaintEffect::ALL.join(", ")));
            self.push(Problem::at(effect.loc(), format!("invalid taint effect `{}`", effect.get())).help(hint));
        }
        parsed
    }

    pub(super) fn tolerations(&mut self, raw: Option<&Vec<S<RawToleration>>>) -> Vec<Toleration> {
        let Some(raw) = raw else { return vec![Toleration::everything()] };
        raw.iter().filter_map(|t| self.toleration(t)).collect()
    }

    fn toleration(&mut self, located: &S<RawToleration>) -> Option<Toleration> {
        let t = located.get();
        let operator = match t.operator.as_ref().map(|o| (o, o.get().as_str())) {
            None | Some((_, "Equal")) => TolerationOperator::Equal,
            Some((_, "Exists")) => TolerationOperator::Exists,
            Some((o, other)) => {
                self.push(
                    Problem::at(o.loc(), format!("invalid toleration operator `{other}`"))
                        .help("use `Exists` or `Equal`"),
                );
                return None;
            }
        };
        let key = t.key.as_ref().map(|k| k.get().clone()).filter(|k| !k.is_empty());
        let value = t.value.as_ref().map(|v| v.get().clone()).filter(|v| !v.is_empty());
        let mut ok = true;
        if let Some(k) = t.key.as_ref().filter(|k| !k.get().is_empty() && !is_qualified_name(k.get())) {
            ok = false;
            self.push(
                Problem::at(k.loc(), format!("invalid toleration key `{}`", k.get()))
                    .help("toleration keys follow label-key syntax, like the taints they match"),
            );
        }
        match (&key, operator, &value) {
            (None, TolerationOperator::Equal, _) => {
                ok = false;
                self.push(
                    Problem::at(located.loc(), "a toleration without a `key` must be `operator: Exists`")
                        .help("Kubernetes reads an empty key as \"every taint\", which only `Exists` can say"),
                );
            }
            (_, TolerationOperator::Exists, Some(v)) => {
                ok = false;
                let at = t.value.as_ref().map_or(located.loc(), |v| v.loc());
                self.push(
                    Problem::at(at, format!("a toleration with `operator: Exists` takes no value (`{v}`)"))
                        .help("drop the value to match every value, or use `operator: Equal`"),
                );
            }
            (_, TolerationOperator::Equal, Some(v)) if !is_label_value(v) => {
                ok = false;
                let at = t.value.as_ref().map_or(located.loc(), |v| v.loc());
                self.push(
                    Problem::at(at, format!("invalid toleration value `{v}`"))
                        .help("values follow label-value syntax, like the taints they match"),
                );
            }
            _ => {}
        }
        let effect = match &t.effect {
            Some(e) => Some(self.effect(e)?),
            None => None,
        };
        ok.then_some(Toleration { key, operator, value, effect })
    }
}

pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A label (or taint, or toleration) value: empty, or a label name.
fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// Kubernetes label-key syntax: `[dns-subdomain/]name`.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        None => is_label_name(s),
        Some((prefix, name)) => {
            prefix.len() <= 253 && !prefix.is_empty() && prefix.split('.').all(is_dns_label) && is_label_name(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_syntax() {
        assert!(is_dns_label("aws-eu"));
        assert!(!is_dns_label("AWS"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_qualified_name("nvidia.com/gpu"));
        assert!(is_qualified_name("tier"));
        assert!(!is_qualified_name("bad key"));
        assert!(!is_qualified_name("/x"));
        assert!(!is_label_value("a,b"));
    }

    #[test]
    fn the_kubelets_label_rules() {
        for allowed in ["tier", "example.com/gpu", "node.kubernetes.io/pool", "x.kubelet.kubernetes.io/y"] {
            assert_eq!(reserved_label(allowed), None, "{allowed}");
        }
        for refused in [
            "kubernetes.io/os",
            "kubernetes.io/arch",
            "node-role.kubernetes.io/worker",
            "k8s.io/x",
            "foo.k8s.io/x",
            "node-restriction.kubernetes.io/x",
            "topology.kubernetes.io/zone",
        ] {
            assert!(reserved_label(refused).is_some(), "{refused}");
        }
    }
}
