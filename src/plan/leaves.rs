//! The leaves that differ between two structured values (a Kubernetes manifest, chart values,
//! tags), each by its path. Pure functions.
//!
//! ## Overview
//!
//! A change to one URL inside a log output's manifest is one leaf, `spec.loki.url`, not the
//! whole object twice: plans show and JSON carries `{path, old, new}` per leaf, as Terraform's
//! `objchange` does. Objects are compared key by key and lists index by index (a list that grows
//! or shrinks has leaves whose old or new side is absent). A leaf whose key names a credential,
//! or whose value is one (an authorization header, a token in a URL's query), is masked, and a
//! URL's user-info is redacted in place: a spec cannot hold a credential (validation refuses
//! it), but a value read back from a cluster can.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::secrets;

/// What a masked leaf shows instead of its value.
pub const SENSITIVE: &str = "(sensitive)";

/// One step of a path: an object's key or a list's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Step {
    Index(usize),
    Key(String),
}

impl std::fmt::Display for Step {
    /// A key as it is when it reads unambiguously, else quoted with every character that could
    /// hide or forge output escaped (keys come from specs and from clusters: a key holding a line
    /// break and a fake plan line, or a terminal escape, must print as text).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(k) if k.is_empty() || k.chars().any(|c| !plain(c)) => f.write_str(&quoted(k)),
            Self::Key(k) => f.write_str(k),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A character a key may show as it is: not a separator of paths (`.`, `[`, `]`), nor of a plan
/// line (`:`, quotes, whitespace), nor one that moves or hides text.
fn plain(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || ".[]:\"'\\".contains(c) || hides_text(c))
}

/// Format characters that reorder or hide text on a terminal (bidirectional overrides and
/// isolates, zero-width characters, the byte-order mark).
fn hides_text(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `text` in double quotes, with quotes, backslashes, control and text-hiding characters escaped.
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", escaped(text, true))
}

/// `text` with control and text-hiding characters escaped as `\u{…}` (and, when `quotes`, the
/// double quote and backslash as `\"` and `\\`).
pub fn escaped(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' if quotes => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || hides_text(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// One leaf that differs. `path` starts with the attribute's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaf {
    pub path: Vec<Step>,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Whether a value is worth splitting into leaves: an object or a list with something in it.
fn structured(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// The leaves of `field` that differ between `old` and `new`, or none when the two are not both
/// structured (a scalar change is its own leaf, shown as it is).
pub fn between(field: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<Leaf> {
    match (old, new) {
        (Some(o), Some(n)) if structured(o) && structured(n) => all(field, old, new),
        _ => Vec::new(),
    }
}

/// Every leaf of `field` that differs, a scalar (or a value on one side only) being one leaf.
pub fn all(field: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<Leaf> {
    let mut out = Vec::new();
    walk(&mut vec![Step::Key(field.to_string())], old, new, &mut out);
    out
}

fn walk(path: &mut Vec<Step>, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Leaf>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n))) => {
            let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for k in keys {
                path.push(Step::Key(k.clone()));
                walk(path, o.get(k), n.get(k), out);
                path.pop();
            }
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) => {
            for i in 0..o.len().max(n.len()) {
                path.push(Step::Index(i));
                walk(path, o.get(i), n.get(i), out);
                path.pop();
            }
        }
        _ => out.push(masked(Leaf { path: path.clone(), old: old.cloned(), new: new.cloned() })),
    }
}

fn sensitive_value(v: &Value) -> bool {
    match v {
        Value::String(s) => secrets::is_credential_beyond_userinfo(s),
        Value::Array(items) => items.iter().any(sensitive_value),
        Value::Object(m) => m.iter().any(|(k, v)| secrets::is_credential_key(k) || sensitive_value(v)),
        _ => false,
    }
}

/// `value` of `field` as plans may show and keep it: every credential inside masked and URL
/// user-info redacted, as for leaves (a value read back from a cloud can hold one).
pub fn shown(field: &str, value: &Value) -> Value {
    fn walk(key_is_credential: bool, v: &Value) -> Value {
        match v {
            _ if key_is_credential => Value::String(SENSITIVE.into()),
            Value::String(s) if secrets::is_credential_beyond_userinfo(s) => Value::String(SENSITIVE.into()),
            Value::String(s) => Value::String(tessera_provider_api::redact::userinfo(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(false, i)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, i)| (k.clone(), walk(secrets::is_credential_key(k), i))).collect())
            }
            other => other.clone(),
        }
    }
    walk(secrets::is_credential_key(field), value)
}

fn masked(mut leaf: Leaf) -> Leaf {
    let key_is_credential = leaf.path.iter().any(|s| matches!(s, Step::Key(k) if secrets::is_credential_key(k)));
    for side in [&mut leaf.old, &mut leaf.new] {
        if side.as_ref().is_some_and(|v| key_is_credential || sensitive_value(v)) {
            *side = Some(Value::String(SENSITIVE.into()));
        } else if let Some(v) = side.as_mut() {
            tessera_provider_api::redact::in_value(v);
        }
    }
    leaf
}

/// A path as a JSON pointer (RFC 6901): `/manifest/spec/outputs/0/url`.
pub fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{}", tessera_provider_api::pointer_token(k)),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// Sets the value at `pointer` inside `root` (`None` removes it). A missing parent is left alone:
/// there is nothing to keep there.
pub fn set(root: &mut Value, pointer: &str, value: Option<Value>) {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return };
    let last = tessera_provider_api::pointer_key(last);
    match (root.pointer_mut(parent), value) {
        (Some(Value::Object(m)), Some(v)) => {
            m.insert(last, v);
        }
        (Some(Value::Object(m)), None) => {
            m.remove(&last);
        }
        (Some(Value::Array(a)), Some(v)) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = v;
            }
        }
        _ => {}
    }
}

/// A path as people read it: `manifest.spec.outputs[0].url`.
pub fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        if matches!(step, Step::Key(_)) && !out.is_empty() {
            out.push('.');
        }
        out.push_str(&step.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(leaves: &[Leaf]) -> Vec<String> {
        leaves.iter().map(|l| dotted(&l.path)).collect()
    }

    #[test]
    fn one_changed_leaf_is_one_leaf() {
        let old = json!({"kind": "ClusterOutput", "spec": {"loki": {"url": "http://a", "labels": {"x": "1"}}}});
        let mut new = old.clone();
        new["spec"]["loki"]["url"] = json!("http://b");
        let leaves = between("manifest", Some(&old), Some(&new));
        assert_eq!(paths(&leaves), ["manifest.spec.loki.url"]);
        assert_eq!((leaves[0].old.clone(), leaves[0].new.clone()), (Some(json!("http://a")), Some(json!("http://b"))));
    }

    #[test]
    fn lists_compare_by_index_and_may_grow_or_shrink() {
        let old = json!({"remoteWrite": [{"url": "a"}, {"url": "b"}]});
        let new = json!({"remoteWrite": [{"url": "a2"}]});
        let leaves = between("values", Some(&old), Some(&new));
        assert_eq!(paths(&leaves), ["values.remoteWrite[0].url", "values.remoteWrite[1]"]);
        assert_eq!(leaves[1].new, None, "the second entry is gone");
    }

    #[test]
    fn scalars_and_equal_values_have_no_leaves() {
        assert!(between("maxSize", Some(&json!(3)), Some(&json!(4))).is_empty());
        assert!(between("tags", Some(&json!({"a": "1"})), Some(&json!({"a": "1"}))).is_empty());
        assert!(between("tags", None, Some(&json!({"a": "1"}))).is_empty());
    }

    #[test]
    fn credentials_are_masked_by_key_and_by_value() {
        let old = json!({"auth": {"password": "hunter2"}, "url": "https://u:p@h/x", "plain": "a"});
        let new = json!({"auth": {"password": "hunter3"}, "url": "https://u:q@h/x", "plain": "b"});
        let leaves = between("values", Some(&old), Some(&new));
        let text = serde_json::to_string(&leaves).unwrap();
        assert!(!text.contains("hunter") && !text.contains("u:p@") && !text.contains("u:q@"), "{text}");
        assert_eq!(leaves.iter().filter(|l| l.new == Some(json!(SENSITIVE))).count(), 1, "{text}");
        assert!(text.contains("https://redacted@h/x"), "a URL stays readable: {text}");
        assert!(text.contains("\"b\""), "a plain leaf is shown: {text}");
    }

    #[test]
    fn keys_that_could_forge_or_hide_output_are_quoted_and_escaped() {
        let path = vec![
            Step::Key("values".into()),
            Step::Key("a.b".into()),
            Step::Key("x\n  - this/sim.cluster/main  (nothing)\u{1b}[8m".into()),
            Step::Key("arr[0]".into()),
            Step::Key("\u{202e}evil".into()),
            Step::Index(2),
        ];
        let shown = dotted(&path);
        assert!(!shown.chars().any(|c| c.is_control() || hides_text(c)), "{shown:?}");
        assert_eq!(
            shown,
            r#"values."a.b"."x\u{000a}  - this/sim.cluster/main  (nothing)\u{001b}[8m"."arr[0]"."\u{202e}evil"[2]"#
        );
        assert_eq!(dotted(&[Step::Key("spec".into()), Step::Key("url".into())]), "spec.url");
    }

    #[test]
    fn whole_values_are_shown_masked() {
        let taints =
            json!([{"key": "k", "password": "hunter2", "note": "Bearer abcdef123456", "url": "https://u:p@h"}]);
        let shown = shown("taints", &taints).to_string();
        assert!(!shown.contains("hunter2") && !shown.contains("abcdef") && !shown.contains("u:p@"), "{shown}");
        assert!(shown.contains("\"key\":\"k\"") && shown.contains("redacted@h"), "{shown}");
        assert_eq!(shown_field("password"), json!(SENSITIVE));
    }

    fn shown_field(field: &str) -> Value {
        shown(field, &json!({"a": 1}))
    }

    #[test]
    fn json_paths_are_keys_and_numbers() {
        let leaves = between("v", Some(&json!({"a": [1]})), Some(&json!({"a": [2]})));
        assert_eq!(serde_json::to_value(&leaves).unwrap(), json!([{ "path": ["v", "a", 0], "old": 1, "new": 2 }]));
    }
}
