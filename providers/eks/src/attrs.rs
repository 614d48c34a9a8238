//! Reading typed values out of desired attributes. Lowering wrote them, so a missing or
//! mistyped value is a bug in a plan file (or a hand-edited one): a fatal error, never a panic.

use std::collections::HashMap;

use serde_json::Value;
use tessera_provider_api::{Attrs, ProviderError};

fn missing(key: &str) -> ProviderError {
    ProviderError::Fatal(format!("resource attribute `{key}` is missing or has the wrong type"))
}

/// `e`, about a value read from the cloud, naming the object it was read of.
pub fn about(what: &str, e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Fatal(m) => ProviderError::Fatal(format!("{what}: {m}")),
        other => other,
    }
}

pub fn text<'a>(attrs: &'a Attrs, key: &str) -> Result<&'a str, ProviderError> {
    attrs.get(key).and_then(Value::as_str).ok_or_else(|| missing(key))
}

pub fn int(attrs: &Attrs, key: &str) -> Result<i32, ProviderError> {
    attrs.get(key).and_then(Value::as_i64).and_then(|v| i32::try_from(v).ok()).ok_or_else(|| missing(key))
}

pub fn flag(attrs: &Attrs, key: &str) -> Result<bool, ProviderError> {
    attrs.get(key).and_then(Value::as_bool).ok_or_else(|| missing(key))
}

pub fn texts(attrs: &Attrs, key: &str) -> Result<Vec<String>, ProviderError> {
    let list = attrs.get(key).and_then(Value::as_array).ok_or_else(|| missing(key))?;
    list.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| missing(key))).collect()
}

pub fn string_map(attrs: &Attrs, key: &str) -> Result<HashMap<String, String>, ProviderError> {
    let map = attrs.get(key).and_then(Value::as_object).ok_or_else(|| missing(key))?;
    map.iter().map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| missing(key))).collect()
}

/// Taints as lowering writes them: `[{key, value, effect}]`.
pub fn taints(attrs: &Attrs) -> Result<Vec<(String, String, String)>, ProviderError> {
    let list = attrs.get("taints").and_then(Value::as_array).ok_or_else(|| missing("taints"))?;
    list.iter()
        .map(|t| {
            let f = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| missing("taints"));
            Ok((f("key")?, f("value")?, f("effect")?))
        })
        .collect()
}
