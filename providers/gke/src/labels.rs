//! Ownership tags as GCP labels, and back.
//!
//! ## Overview
//!
//! GCP label keys and values are at most 63 characters of lowercase letters, digits, `_` and `-`
//! (keys start with a letter), so `tessera.dev/address = gcp-eu/gke.nodepool/system` cannot be
//! written as it is. Tessera keeps the canonical tags in its attributes
//! ([`TAGS_ATTR`](tessera_provider_api::TAGS_ATTR)) and translates at the edge, reversibly, so
//! that `read` reports exactly the canonical tags a spec holds and ownership
//! (`ResourceSpec::is_ours`) compares like for like:
//!
//! - **keys**: `.` becomes `-` and `/` becomes `_`: `tessera.dev/fleet` → `tessera-dev_fleet`,
//!   `tessera.dev/address` → `tessera-dev_address`, `tessera.dev/generation` →
//!   `tessera-dev_generation`. Only these three are translated back; any other label (one added
//!   out of band) is reported as it is, so it shows as drift.
//! - **values**: lowercase letters, digits and `-` stay; every other byte is `_` and two hex
//!   digits: `gcp-eu/gke.nodepool/system` → `gcp-eu_2fgke_2enodepool_2fsystem`. A value longer
//!   than 63 characters after this continues in `KEY-1`, `KEY-2`, … (each at most 63).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tessera_provider_api::{ProviderError, TAG_ADDRESS, TAG_FLEET, TAG_GENERATION};

/// The most characters GCP allows in a label key or value.
pub const MAX: usize = 63;

const OWNERSHIP: [&str; 3] = [TAG_FLEET, TAG_ADDRESS, TAG_GENERATION];

/// The label key for a canonical tag key.
pub fn key(tag: &str) -> String {
    tag.chars()
        .map(|c| match c {
            '.' => '-',
            '/' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// `text` in the characters a label value allows (reversible; see the module docs).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => out.push(char::from(b)),
            other => out.push_str(&format!("_{other:02x}")),
        }
    }
    out
}

/// The text [`encode`] made, or `None` when `label` is not such an encoding.
pub fn decode(label: &str) -> Option<String> {
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = label.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Canonical tags (a JSON object of strings) → GCP labels.
pub fn to_labels(tags: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(tags) = tags.as_object() else { return out };
    for (k, v) in tags {
        let Some(v) = v.as_str() else { continue };
        if !OWNERSHIP.contains(&k.as_str()) {
            // Not ours to translate: written as given (lowering only makes ownership tags).
            out.insert(k.clone(), v.to_string());
            continue;
        }
        let label = key(k);
        let encoded = encode(v);
        let chunks: Vec<String> =
            encoded.as_bytes().chunks(MAX).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        if chunks.is_empty() {
            out.insert(label.clone(), String::new());
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            let k = if i == 0 { label.clone() } else { format!("{label}-{i}") };
            out.insert(k, chunk);
        }
    }
    out
}

/// GCP labels → canonical tags: the ownership labels decoded (continuations joined), any other
/// label as it is.
pub fn to_tags<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    let labels: BTreeMap<&String, &String> = labels.into_iter().collect();
    let mut tags = Map::new();
    let mut consumed: Vec<String> = Vec::new();
    for tag in OWNERSHIP {
        let label = key(tag);
        let Some(first) = labels.get(&label) else { continue };
        let mut encoded = first.to_string();
        consumed.push(label.clone());
        for i in 1.. {
            let next = format!("{label}-{i}");
            match labels.get(&next) {
                Some(part) => {
                    encoded.push_str(part);
                    consumed.push(next);
                }
                None => break,
            }
        }
        match decode(&encoded) {
            Some(text) => tags.insert(tag.to_string(), Value::String(text)),
            // Not our encoding (edited out of band): reported as it is, so it is drift.
            None => tags.insert(label, Value::String(encoded)),
        };
    }
    for (k, v) in labels {
        if !consumed.contains(k) {
            tags.insert(k.clone(), Value::String(v.clone()));
        }
    }
    Value::Object(tags)
}

/// Whether `labels` satisfy GCP's rules (checked before sending, so a bad one is our error, not
/// a 400 from the cloud).
pub fn legal(labels: &BTreeMap<String, String>) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    for (k, v) in labels {
        let key_ok = !k.is_empty()
            && k.len() <= MAX
            && k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.chars().all(ok_char);
        if !key_ok || v.len() > MAX || !v.chars().all(ok_char) {
            return Err(format!("`{k}: {v}` is not a legal GCP label (63 of [a-z0-9_-], keys start with a letter)"));
        }
    }
    Ok(())
}

/// GCP labels for a spec's canonical tags, checked before sending. The cluster and its pools
/// both label what they create with this, so it lives here rather than in either of them.
pub fn to_legal_labels(tags: Option<&Value>) -> Result<BTreeMap<String, String>, ProviderError> {
    let labels = to_labels(tags.unwrap_or(&Value::Null));
    legal(&labels).map_err(ProviderError::Fatal)?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ownership_tags_round_trip_through_legal_labels() {
        let tags = json!({
            TAG_FLEET: "core-services",
            TAG_ADDRESS: "gcp-eu/gke.nodepool/system",
            TAG_GENERATION: "2",
        });
        let labels = to_labels(&tags);
        assert_eq!(labels["tessera-dev_fleet"], "core-services");
        assert_eq!(labels["tessera-dev_address"], "gcp-eu_2fgke_2enodepool_2fsystem");
        assert_eq!(labels["tessera-dev_generation"], "2");
        legal(&labels).unwrap();
        assert_eq!(to_tags(&labels), tags);
    }

    #[test]
    fn long_values_continue_in_numbered_labels_and_join_back() {
        let address = format!("a-very-long-placement-name/gke.nodepool/{}", "p".repeat(60));
        let tags = json!({ TAG_ADDRESS: address });
        let labels = to_labels(&tags);
        assert!(labels.len() >= 2, "{labels:?}");
        legal(&labels).unwrap();
        assert_eq!(to_tags(&labels), tags);
    }

    #[test]
    fn labels_added_out_of_band_are_reported_as_they_are() {
        let mut labels = to_labels(&json!({ TAG_FLEET: "f" }));
        labels.insert("team".into(), "payments".into());
        assert_eq!(to_tags(&labels), json!({ TAG_FLEET: "f", "team": "payments" }));
        assert!(legal(&BTreeMap::from([("Bad.Key".to_string(), String::new())])).is_err());
        assert_eq!(decode("_zz"), None);
    }
}
