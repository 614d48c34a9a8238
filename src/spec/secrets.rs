//! ## Overview
//!
//! Secrets never sit in a spec. A spec is committed to git, shown in plans, written into plan
//! files, state and reconcile events; a password in it is a password in all of those. So every
//! place of a spec that can carry a credential takes a *reference* to a key of a Kubernetes Secret
//! in the cluster, never a value, and a value is refused at validation with the way to reference
//! it:
//! - a URL (`remoteWrite`, a log output's `url`, any string of an output or chart values) may
//!   not carry user-info (`https://user:pass@host`);
//! - a log output's credential fields (`password`, `aws_sec_key`, `bearer_token`, …, by name)
//!   take logging-operator's own reference form, `valueFrom: { secretKeyRef: { name, key } }`;
//!   its inline form `value:` is refused;
//! - chart values may not hold a credential-named key with a plain string (charts read such
//!   keys from a Secret of the user's, through their `existingSecret`-style settings);
//! - `remoteWrite`'s basic auth or bearer token is `remoteWriteAuth`, made of `secretRef`s.

use serde_json::Value;

/// A key whose value is a credential. Matched on the key's name, lower-cased, with `-` and `_`
/// removed: `aws_sec_key`, `bearerToken`, `client-secret`, `password`, `api_key`. Keys that name
/// where a credential is rather than holding it (`existingSecret`, `secretKeyRef`,
/// `passwordFile`, `tokenPath`, `secretName`, `passwordKey`) are not credentials.
pub fn is_credential_key(key: &str) -> bool {
    let k: String = key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    const WORDS: [&str; 14] = [
        "pass",
        "secret",
        "token",
        "apikey",
        "seckey",
        "accesskey",
        "keyid",
        "credential",
        "privatekey",
        "authorization",
        "bearer",
        "webhookurl",
        "slackapiurl",
        "authidentity",
    ];
    const POINTERS: [&str; 6] = ["ref", "name", "file", "path", "selector", "enabled"];
    const HELD_KEYS: [&str; 5] = ["apikey", "seckey", "privatekey", "secretkey", "accesskey"];
    let points = k.starts_with("existing")
        || POINTERS.iter().any(|p| k.ends_with(p))
        || (k.ends_with("key") && !HELD_KEYS.iter().any(|h| k.ends_with(h)));
    !points && WORDS.iter().any(|w| k.contains(w))
}

/// A value that is itself a credential, whatever its key: an HTTP authorization header's value,
/// or a URL with user-info or a credential in its query (`?api_key=…`, `&token=…`, `&sig=…`).
pub fn is_credential_value(text: &str) -> bool {
    has_userinfo(text) || is_credential_beyond_userinfo(text)
}

/// [`is_credential_value`] but for URL user-info, which can be redacted in place (keeping the
/// URL readable) rather than hiding the whole value.
pub fn is_credential_beyond_userinfo(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    if t.starts_with("bearer ") || t.starts_with("basic ") || t.contains("authorization:") {
        return true;
    }
    text.split_whitespace().filter(|w| w.contains("://")).any(|url| {
        url.split_once('?').is_some_and(|(_, query)| {
            query.split(['&', '#']).filter_map(|kv| kv.split('=').next()).any(|k| {
                is_credential_key(k)
                    || ["key", "sig", "signature", "code", "auth"].contains(&k.to_ascii_lowercase().as_str())
            })
        })
    })
}

/// Whether `v` holds data (a string, number, or a list of them) rather than nothing or a switch.
fn holds_data(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Number(_) => true,
        Value::Array(items) => items.iter().any(holds_data),
        _ => false,
    }
}

pub use tessera_provider_api::redact::{has_userinfo, userinfo as redact_userinfo};

/// Every string of `value`, with its path below `prefix`.
fn strings<'a>(value: &'a Value, prefix: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((prefix, s)),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                strings(v, format!("{prefix}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                strings(v, format!("{prefix}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// Whether `v` is `{ valueFrom: { secretKeyRef: { name: STR, key: STR } } }`.
fn is_secret_key_ref(v: &Value) -> bool {
    let r = &v["valueFrom"]["secretKeyRef"];
    v.as_object().is_some_and(|m| m.len() == 1)
        && v["valueFrom"].as_object().is_some_and(|m| m.len() == 1)
        && r["name"].as_str().is_some_and(|s| !s.is_empty())
        && r["key"].as_str().is_some_and(|s| !s.is_empty())
}

/// One secret found in a spec: where (a path below the checked field), and how to reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub message: String,
    pub help: String,
}

fn userinfo_in(value: &Value, prefix: &str) -> Vec<Found> {
    let mut all = Vec::new();
    strings(value, prefix.to_string(), &mut all);
    all.into_iter()
        .filter(|(_, s)| is_credential_value(s))
        .map(|(path, _)| Found {
            path: path.clone(),
            message: format!(
                "`{path}` holds a credential (a URL with a user name, password or token, or an authorization header)"
            ),
            help: "take the credentials out: put them in a Kubernetes Secret and reference its keys".into(),
        })
        .collect()
}

/// The secrets in a log output's settings (`prefix` names the output, e.g. `output.loki`).
pub fn in_log_output(settings: &Value, prefix: &str) -> Vec<Found> {
    let mut found = userinfo_in(settings, prefix);
    let Some(map) = settings.as_object() else { return found };
    let mut stack: Vec<(String, &serde_json::Map<String, Value>)> = vec![(prefix.to_string(), map)];
    while let Some((at, map)) = stack.pop() {
        for (k, v) in map {
            let path = format!("{at}.{k}");
            if is_secret_key_ref(v) {
                continue;
            }
            if is_credential_key(k) {
                found.push(Found {
                    message: format!("`{path}` is a credential written into the spec"),
                    help: format!(
                        "put it in a Kubernetes Secret in the logging namespace and reference it: `{k}: {{ valueFrom: {{ secretKeyRef: {{ name: SECRET, key: KEY }} }} }}`"
                    ),
                    path,
                });
            } else if let Some(inner) = v.as_object() {
                stack.push((path, inner));
            }
        }
    }
    one_per_path(found)
}

/// One finding per path (a key can be both credential-named and hold a credential-looking value).
fn one_per_path(mut found: Vec<Found>) -> Vec<Found> {
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    found
}

/// The secrets in a chart's extra values (`prefix`: e.g. `monitoring.values`).
pub fn in_chart_values(values: &Value, prefix: &str) -> Vec<Found> {
    let mut found = userinfo_in(values, prefix);
    let mut stack: Vec<(String, &Value)> = vec![(prefix.to_string(), values)];
    while let Some((at, v)) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let path = format!("{at}.{k}");
                    if is_credential_key(k) && holds_data(v) {
                        found.push(Found {
                            message: format!("`{path}` is a credential written into the spec"),
                            help: "put it in a Kubernetes Secret and point the chart at it (its `existingSecret`-style setting); a spec is committed, planned and stored, so it never holds a secret".into(),
                            path,
                        });
                    } else {
                        stack.push((path, v));
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    stack.push((format!("{at}[{i}]"), v));
                }
            }
            _ => {}
        }
    }
    one_per_path(found)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn output_credentials_must_be_secret_references() {
        let ok = json!({ "url": "http://loki:3100", "username": "ops",
            "password": { "valueFrom": { "secretKeyRef": { "name": "loki", "key": "password" } } } });
        assert_eq!(in_log_output(&ok, "output.loki"), []);
        for bad in [
            json!({ "url": "http://loki:3100", "password": "hunter2" }),
            json!({ "url": "http://loki:3100", "password": { "value": "hunter2" } }),
            json!({ "url": "http://ops:hunter2@loki:3100" }),
            json!({ "aws_sec_key": { "valueFrom": { "secretKeyRef": { "name": "", "key": "k" } } } }),
            json!({ "buffer": { "bearer_token": "t" } }),
            json!({ "url": "http://loki:3100", "headers": { "Authorization": "Bearer sk-LIVE-abc123" } }),
            json!({ "url": "http://loki.logging.svc:3100/?api_key=sk-LIVE" }),
            json!({ "aws_key_id": "AKIA", "secretAccessKey": { "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } } }),
            json!({ "url": " http://ops:hunter2@loki:3100" }),
            json!({ "client_key_pass": "hunter2pass" }),
        ] {
            let found = in_log_output(&bad, "output.x");
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(!found[0].message.contains("hunter2"), "{found:?}");
        }
    }

    #[test]
    fn chart_values_may_not_hold_credentials() {
        let found = in_chart_values(&json!({ "grafana": { "adminPassword": "admin", "enabled": false } }), "values");
        assert_eq!(found[0].path, "values.grafana.adminPassword");
        assert_eq!(in_chart_values(&json!({ "grafana": { "admin": { "existingSecret": "g" } } }), "values"), []);
        assert_eq!(in_chart_values(&json!({ "tokenFile": "/var/run/t" }), "values"), []);
        assert_eq!(
            in_chart_values(&json!({ "passwordEnabled": true, "existingSecretPasswordKey": "pw" }), "values"),
            []
        );
        for bad in [
            json!({ "grafana": { "adminPassword": 123456789 } }),
            json!({ "smtp_auth_password": ["pw-in-list"] }),
            json!({ "slack_api_url": "https://hooks.slack.com/services/T/B/SECRET" }),
            json!({ "smtp_auth_identity": "hunter4" }),
            json!({ "externalUrl": "x https://ops:hunter3@h" }),
        ] {
            assert_eq!(in_chart_values(&bad, "values").len(), 1, "{bad}");
        }
    }

    proptest! {
        /// Whatever a log output holds, a plain password under any nesting is found, and no
        /// message repeats it.
        #[test]
        fn a_plain_password_is_always_found(depth in 0usize..4, secret in "[a-z]{12}") {
            let mut v = json!({ "password": secret.clone() });
            for i in 0..depth {
                v = json!({ format!("level{i}"): v });
            }
            let found = in_log_output(&v, "output.x");
            prop_assert_eq!(found.len(), 1);
            let shown = format!("{:?}", found);
            prop_assert!(!shown.contains(&secret));
        }
    }
}
