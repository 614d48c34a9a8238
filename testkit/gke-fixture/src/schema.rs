//! The discovery document as JSON Schema, its methods as routes, and the client's integer enums
//! as names.
//!
//! ## Overview
//!
//! - **Schemas.** Each discovery schema becomes a JSON Schema under `$defs` (`$ref: "Cluster"` →
//!   `#/$defs/Cluster`). Objects with `properties` admit no other property, so a misspelt field
//!   is refused rather than ignored; `int64` and the other string formats are strings, as
//!   proto3 JSON writes them.
//! - **Routes.** Every method under `projects.locations.{clusters, clusters.nodePools,
//!   operations}` is matched by its `flatPath` and HTTP method; its `request`/`response` `$ref`
//!   name the schemas a body is checked against.
//! - **Enums.** google-cloud-container-v1 sends enums as integers (`$alt=json;enum-encoding=int`):
//!   the proto's numbers, which are not the positions in the discovery `enum` lists (about ten
//!   enums have gaps). `data/enums.json` holds every proto enum of
//!   `google/container/v1/cluster_service.proto` as name → number (see `scripts/enums.py`); a
//!   field's enum is the proto enum whose names include all of the field's `enum` list. An
//!   integer that is no value of it is left as it is, and the validation refuses it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

const ENUMS: &str = include_str!("../data/enums.json");

/// The discovery document shipped in `../shared/apispecs/gke/`.
pub fn default_discovery() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/apispecs/gke/container-v1-discovery.json")
}

/// One discovery method.
#[derive(Debug, Clone)]
pub struct Method {
    /// `container.projects.locations.clusters.create`.
    pub id: String,
    pub http: String,
    segments: Vec<String>,
    pub request: Option<String>,
    pub response: Option<String>,
}

pub struct Discovery {
    schemas: Map<String, Value>,
    defs: Value,
    methods: Vec<Method>,
    /// A discovery `enum` list (joined) → number → name.
    enums: HashMap<String, HashMap<i64, String>>,
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn convert(s: &Value) -> Value {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return json!({ "$ref": format!("#/$defs/{r}") });
    }
    match s.get("type").and_then(Value::as_str) {
        Some("object") => {
            let mut out = json!({ "type": "object" });
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                let props: Map<String, Value> = props.iter().map(|(k, v)| (k.clone(), convert(v))).collect();
                out["properties"] = Value::Object(props);
                out["additionalProperties"] = json!(false);
            }
            if let Some(extra) = s.get("additionalProperties") {
                out["additionalProperties"] = convert(extra);
            }
            out
        }
        Some("array") => json!({ "type": "array", "items": s.get("items").map(convert).unwrap_or(json!({})) }),
        Some("string") => match s.get("enum") {
            Some(e) => json!({ "type": "string", "enum": e }),
            None => json!({ "type": "string" }),
        },
        Some("integer") => json!({ "type": "integer" }),
        Some("number") => json!({ "type": "number" }),
        Some("boolean") => json!({ "type": "boolean" }),
        _ => json!({}),
    }
}

fn collect_methods(resource: &Value, out: &mut Vec<Method>) {
    for m in resource.get("methods").and_then(Value::as_object).into_iter().flat_map(|m| m.values()) {
        let (Some(id), Some(http), Some(path)) = (
            m.get("id").and_then(Value::as_str),
            m.get("httpMethod").and_then(Value::as_str),
            m.get("flatPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        let reference = |k: &str| m.get(k).and_then(|r| r.get("$ref")).and_then(Value::as_str).map(str::to_string);
        out.push(Method {
            id: id.into(),
            http: http.into(),
            segments: path.split('/').map(str::to_string).collect(),
            request: reference("request"),
            response: reference("response"),
        });
    }
    for r in resource.get("resources").and_then(Value::as_object).into_iter().flat_map(|r| r.values()) {
        collect_methods(r, out);
    }
}

impl Discovery {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let schemas = doc.get("schemas").and_then(Value::as_object).cloned().ok_or("no schemas")?;
        let defs: Map<String, Value> = schemas.iter().map(|(k, v)| (k.clone(), convert(v))).collect();
        let mut methods = Vec::new();
        if let Some(locations) = doc.pointer("/resources/projects/resources/locations") {
            collect_methods(locations, &mut methods);
        }
        let table: Map<String, Value> = serde_json::from_str(ENUMS).map_err(|e| format!("enums.json: {e}"))?;
        let mut enums = HashMap::new();
        let mut lists = Vec::new();
        for s in schemas.values() {
            enum_lists(s, &mut lists);
        }
        for list in lists {
            let proto = table.values().filter_map(Value::as_object).find(|e| list.iter().all(|n| e.contains_key(n)));
            if let Some(proto) = proto {
                let numbers: HashMap<i64, String> =
                    list.iter().filter_map(|n| Some((proto.get(n)?.as_i64()?, n.clone()))).collect();
                enums.insert(list.join(","), numbers);
            }
        }
        Ok(Self { schemas, defs: Value::Object(defs), methods, enums, compiled: Mutex::new(HashMap::new()) })
    }

    /// The method a request is for, and the path's variables in order.
    pub fn route(&self, http: &str, path: &str) -> Option<(&Method, Vec<String>)> {
        let (path, verb) = match path.rsplit_once(':') {
            Some((p, v)) if !v.contains('/') => (p, Some(v)),
            _ => (path, None),
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        'methods: for m in self.methods.iter().filter(|m| m.http == http) {
            let (last, m_verb) = match m.segments.last().and_then(|s| s.rsplit_once(':')) {
                Some((l, v)) if !v.contains('}') => (l.to_string(), Some(v)),
                _ => (m.segments.last().cloned().unwrap_or_default(), None),
            };
            if m_verb != verb || m.segments.len() != parts.len() {
                continue;
            }
            let mut vars = Vec::new();
            for (i, (seg, part)) in m.segments.iter().zip(&parts).enumerate() {
                let seg = if i + 1 == m.segments.len() { last.as_str() } else { seg.as_str() };
                if seg.starts_with('{') {
                    vars.push(part.to_string());
                } else if seg != *part {
                    continue 'methods;
                }
            }
            return Some((m, vars));
        }
        None
    }

    /// `body` with integer enums replaced by their names (see the module docs).
    pub fn names_for_enums(&self, schema: &str, body: &Value) -> Value {
        let mut v = body.clone();
        if let Some(s) = self.schemas.get(schema) {
            self.map_enums(s, &mut v, 0);
        }
        v
    }

    fn map_enums(&self, s: &Value, v: &mut Value, depth: usize) {
        if depth > 64 {
            return;
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            if let Some(target) = self.schemas.get(r) {
                self.map_enums(target, v, depth + 1);
            }
            return;
        }
        if let (Some(list), Some(n)) = (s.get("enum").and_then(Value::as_array), v.as_i64()) {
            let key: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            if let Some(name) = self.enums.get(&key.join(",")).and_then(|m| m.get(&n)) {
                *v = Value::String(name.clone());
            }
            return;
        }
        match v {
            Value::Object(obj) => {
                for (k, field) in obj.iter_mut() {
                    let sub = s.get("properties").and_then(|p| p.get(k)).or_else(|| s.get("additionalProperties"));
                    if let Some(sub) = sub {
                        self.map_enums(sub, field, depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(sub) = s.get("items") {
                    for item in items {
                        self.map_enums(sub, item, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    /// Errors of `body` against the schema named `schema`, each `<path>: <message>`.
    pub fn errors(&self, schema: &str, body: &Value) -> Vec<String> {
        let validator = match self.validator(schema) {
            Ok(v) => v,
            Err(e) => return vec![e],
        };
        validator
            .iter_errors(body)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("{}: {e}", if path.is_empty() { "<root>" } else { &path })
            })
            .collect()
    }

    fn validator(&self, schema: &str) -> Result<Arc<jsonschema::Validator>, String> {
        if let Some(v) = self.compiled.lock().ok().and_then(|m| m.get(schema).cloned()) {
            return Ok(v);
        }
        if !self.schemas.contains_key(schema) {
            return Err(format!("the discovery document has no schema `{schema}`"));
        }
        let root = json!({ "$ref": format!("#/$defs/{schema}"), "$defs": self.defs });
        let v = Arc::new(
            jsonschema::draft202012::new(&root).map_err(|e| format!("schema `{schema}` does not compile: {e}"))?,
        );
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(schema.to_string(), v.clone());
        }
        Ok(v)
    }
}

fn enum_lists(s: &Value, out: &mut Vec<Vec<String>>) {
    if let Some(list) = s.get("enum").and_then(Value::as_array) {
        out.push(list.iter().filter_map(Value::as_str).map(str::to_string).collect());
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = s.get(key) {
            enum_lists(sub, out);
        }
    }
    for sub in s.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.values()) {
        enum_lists(sub, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Discovery {
        Discovery::load(&default_discovery()).unwrap()
    }

    #[test]
    fn integer_enums_become_the_proto_names_gaps_included() {
        let d = doc();
        let body = json!({ "nodePool": { "upgradeSettings": { "strategy": 3 }, "config": { "taints": [{ "key": "k", "effect": 1 }] } } });
        let named = d.names_for_enums("CreateNodePoolRequest", &body);
        assert_eq!(named["nodePool"]["upgradeSettings"]["strategy"], "SURGE", "SURGE is 3 in the proto, not 2");
        assert_eq!(named["nodePool"]["config"]["taints"][0]["effect"], "NO_SCHEDULE");
        let op = d.names_for_enums("Operation", &json!({ "operationType": 18, "status": 3 }));
        assert_eq!(op, json!({ "operationType": "RESIZE_CLUSTER", "status": "DONE" }));
    }

    #[test]
    fn bodies_are_checked_strictly() {
        let d = doc();
        assert!(
            d.errors("SetNodePoolAutoscalingRequest", &json!({ "autoscaling": { "totalMinNodeCount": 1 } })).is_empty()
        );
        let typo = d.errors("SetNodePoolAutoscalingRequest", &json!({ "autoscaling": { "totalMinNodes": 1 } }));
        assert!(typo.iter().any(|e| e.contains("totalMinNodes")), "{typo:?}");
        let bad_enum = d.errors("NodeTaint", &json!({ "effect": 7 }));
        assert!(!bad_enum.is_empty());
    }

    #[test]
    fn methods_route_by_flat_path_and_verb() {
        let d = doc();
        let (m, vars) = d.route("POST", "/v1/projects/p/locations/l/clusters/c/nodePools/n:setAutoscaling").unwrap();
        assert_eq!(m.id, "container.projects.locations.clusters.nodePools.setAutoscaling");
        assert_eq!(vars, ["p", "l", "c", "n"]);
        assert_eq!(m.request.as_deref(), Some("SetNodePoolAutoscalingRequest"));
        let (m, _) = d.route("PUT", "/v1/projects/p/locations/l/clusters/c").unwrap();
        assert_eq!(m.id, "container.projects.locations.clusters.update");
        let (m, _) = d.route("GET", "/v1/projects/p/locations/l/operations/op-1").unwrap();
        assert_eq!(m.response.as_deref(), Some("Operation"));
        assert!(d.route("GET", "/v1/projects/p/zones/z/clusters").is_none());
    }
}
