//! URL user-info, taken out wherever a URL is shown or stored. A spec may not hold a credential
//! (validation refuses it), but a value read back from a cloud or a cluster can: a console edit
//! that puts `https://user:password@host` into a log output would otherwise reach the drift
//! report, the plan, the plan file, state and reconcile events. Every provider the registry
//! builds reports through [`Observed::redacted`], so none of those ever sees it.

use serde_json::Value;

use crate::Observed;

fn token_has_userinfo(token: &str) -> bool {
    let Some((scheme, rest)) = token.split_once("://") else { return false };
    let scheme = scheme.rsplit(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c))).next().unwrap_or("");
    if scheme.is_empty() {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// Whether `text` holds a URL (anywhere in it: `" https://u:p@h"`, `"x https://…"`) that carries a
/// user name or password.
pub fn has_userinfo(text: &str) -> bool {
    text.split_whitespace().any(token_has_userinfo)
}

fn token_userinfo(token: &str) -> String {
    let Some((scheme, rest)) = token.split_once("://") else { return token.to_string() };
    if !token_has_userinfo(token) {
        return token.to_string();
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://redacted@{host}{tail}")
}

/// `text` with the user-info of every URL in it replaced by `redacted`.
pub fn userinfo(text: &str) -> String {
    if !has_userinfo(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        let word = &rest[start..];
        let end = word.find(char::is_whitespace).unwrap_or(word.len());
        out.push_str(&token_userinfo(&word[..end]));
        rest = &word[end..];
    }
    out.push_str(rest);
    out
}

/// Every string of `value` with its URL user-info redacted.
pub fn in_value(value: &mut Value) {
    match value {
        Value::String(s) if has_userinfo(s) => *s = userinfo(s),
        Value::Array(items) => items.iter_mut().for_each(in_value),
        Value::Object(map) => map.values_mut().for_each(in_value),
        _ => {}
    }
}

impl Observed {
    /// This observation with every URL's user-info redacted.
    pub fn redacted(mut self) -> Self {
        self.attrs.values_mut().for_each(in_value);
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn user_info_is_found_and_redacted_in_nested_values() {
        assert!(has_userinfo("https://u:p@prom.example/api/v1/write"));
        assert!(has_userinfo("http://token@loki:3100"));
        assert!(!has_userinfo("https://prom.example/api/v1/write?x=a@b"));
        assert!(!has_userinfo("mailto:a@b"));
        assert!(has_userinfo(" http://ops:hunter2@loki:3100"));
        assert!(has_userinfo("x https://ops:hunter3@h"));
        assert_eq!(userinfo("x https://ops:hunter3@h y"), "x https://redacted@h y");
        assert_eq!(userinfo("https://u:p@h:1/x?y=@"), "https://redacted@h:1/x?y=@");
        let mut v = json!({ "spec": { "loki": { "url": "http://ops:hunter2@loki:3100" } }, "n": [1, "x://a@b"] });
        in_value(&mut v);
        assert_eq!(v["spec"]["loki"]["url"], "http://redacted@loki:3100");
        assert_eq!(v["n"][1], "x://redacted@b");
        assert!(!v.to_string().contains("hunter2"));
    }
}
