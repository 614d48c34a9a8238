//! Custom resources, checked against their CRD's `openAPIV3Schema` as a real API server with
//! strict field validation (`kubectl --validate=strict`) checks them.
//!
//! ## Overview
//! A CRD's schema is OpenAPI v3.0 (close to JSON Schema draft 4) plus Kubernetes extensions.
//! [`to_json_schema`] translates it for the `jsonschema` crate:
//! - an object schema that does not say `x-kubernetes-preserve-unknown-fields: true` and has no
//!   `additionalProperties` gets `additionalProperties: false` (an unknown field is an error, not
//!   silently pruned);
//! - `x-kubernetes-int-or-string: true` accepts an integer or a string;
//! - `nullable: true` adds `null` to the type;
//! - `x-kubernetes-embedded-resource: true` allows `apiVersion`, `kind` and `metadata`;
//! - the root gets `apiVersion`, `kind` and an `ObjectMeta`-shaped `metadata`;
//! - `pattern` is a Go (RE2) regular expression, not an ECMA 262 one (the CRDs of
//!   prometheus-operator use inline flags, `(?i)`, which ECMA lacks): it becomes
//!   [`GO_PATTERN`], checked with the `regex` crate, whose syntax is RE2's.
//!
//! Not checked: CEL rules (`x-kubernetes-validations`) and list-type uniqueness.

use serde_json::{Map, Value, json};

/// The JSON Schema (draft 4) equivalent of a CRD version's `openAPIV3Schema`.
pub fn to_json_schema(open_api: &Value) -> Value {
    let mut schema = translate(open_api);
    if let Some(map) = schema.as_object_mut() {
        let props = map.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert("apiVersion".into(), json!({"type": "string"}));
            props.insert("kind".into(), json!({"type": "string"}));
            props.insert("metadata".into(), object_meta());
        }
    }
    schema
}

/// The fields of `ObjectMeta` a client may send.
fn object_meta() -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "generateName": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": string_map,
            "annotations": string_map,
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "ownerReferences": {"type": "array", "items": {"type": "object"}},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "generation": {"type": "integer"},
            "creationTimestamp": {},
            "deletionTimestamp": {},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "managedFields": {"type": "array"},
            "selfLink": {"type": "string"}
        },
        "additionalProperties": false
    })
}

fn translate(node: &Value) -> Value {
    let Some(map) = node.as_object() else { return node.clone() };
    let flag = |k: &str| map.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut out = Map::new();
    for (key, value) in map {
        let translated = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => match value.as_object() {
                Some(props) => Value::Object(props.iter().map(|(k, v)| (k.clone(), translate(v))).collect()),
                None => value.clone(),
            },
            "items" | "additionalProperties" | "not" if value.is_object() => translate(value),
            "pattern" if value.is_string() => {
                out.insert(GO_PATTERN.into(), value.clone());
                continue;
            }
            "allOf" | "anyOf" | "oneOf" => match value.as_array() {
                Some(list) => Value::Array(list.iter().map(translate).collect()),
                None => value.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), translated);
    }

    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        // The CRD usually states the alternatives itself; inside them, `type` is kept.
        if !out.contains_key("anyOf") {
            out.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
        }
    }
    if flag("nullable") {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), json!([t, "null"]));
        }
        if let Some(Value::Array(mut values)) = out.get("enum").cloned() {
            values.push(Value::Null);
            out.insert("enum".into(), Value::Array(values));
        }
    }
    if flag("x-kubernetes-embedded-resource") {
        let props = out.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.entry("apiVersion").or_insert(json!({"type": "string"}));
            props.entry("kind").or_insert(json!({"type": "string"}));
            props.entry("metadata").or_insert(json!({"type": "object"}));
        }
    }
    let is_object = out.get("type").and_then(Value::as_str) == Some("object") || out.contains_key("properties");
    if is_object && !flag("x-kubernetes-preserve-unknown-fields") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// The keyword a CRD's `pattern` becomes: a Go regular expression a string must match.
pub const GO_PATTERN: &str = "x-tessera-go-pattern";

struct GoPattern(regex::Regex);

impl<'i> jsonschema::Keyword<'i> for GoPattern {
    fn validate(&self, instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        if self.is_valid(instance) {
            return Ok(());
        }
        Err(jsonschema::ValidationError::custom(format!("{instance} does not match \"{}\"", self.0.as_str())))
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        instance.as_str().is_none_or(|s| self.0.is_match(s))
    }
}

/// Compiles a translated schema; the error names why the CRD's schema is unusable.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft4::options()
        .with_keyword(GO_PATTERN, |_, value, _| {
            let text = value.as_str().unwrap_or_default();
            let re = regex::Regex::new(text).map_err(|e| {
                jsonschema::ValidationError::custom(format!("pattern {text:?} is not a Go regular expression: {e}"))
            })?;
            Ok(Box::new(GoPattern(re)))
        })
        .build(schema)
        .map_err(|e| format!("the CRD schema does not compile: {e}"))
}

/// All errors of `object` against a compiled schema, each as `<path>: <message>`.
pub fn errors(validator: &jsonschema::Validator, object: &Value) -> Vec<String> {
    validator
        .iter_errors(object)
        .map(|e| {
            let path = e.instance_path().to_string();
            format!("{}: {e}", if path.is_empty() { "<root>".to_string() } else { path })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(open_api: Value, object: Value) -> Vec<String> {
        let validator = compile(&to_json_schema(&open_api)).unwrap();
        errors(&validator, &object)
    }

    fn base(spec: Value) -> Value {
        json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec})
    }

    #[test]
    fn unknown_fields_are_errors_unless_preserved() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"known": {"type": "string"},
                           "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        assert!(check(schema.clone(), base(json!({"known": "a", "free": {"any": 1}}))).is_empty());
        let errs = check(schema, base(json!({"knwon": "a"})));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("/spec"), "{errs:?}");
    }

    #[test]
    fn int_or_string_and_nullable() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "bare": {"x-kubernetes-int-or-string": true},
            "maybe": {"type": "string", "nullable": true}}}}});
        assert!(check(schema.clone(), base(json!({"port": 80, "bare": "80%", "maybe": null}))).is_empty());
        assert_eq!(check(schema, base(json!({"port": true}))).len(), 1);
    }

    #[test]
    fn metadata_is_object_meta() {
        let schema = json!({"type": "object"});
        let mut obj = base(json!(null));
        obj.as_object_mut().unwrap().remove("spec");
        assert!(check(schema.clone(), obj.clone()).is_empty());
        obj["metadata"]["labels"] = json!({"a": 1});
        assert_eq!(check(schema, obj).len(), 1, "label values are strings");
    }
}
