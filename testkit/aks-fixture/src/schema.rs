//! The official OpenAPI description of AKS 2024-09-01 (`../shared/apispecs/aks/`), as JSON
//! Schema: every request body the fixture receives and every body it answers is checked against
//! the operation's definition.
//!
//! ## Overview
//!
//! `managedClusters.json` refers to the common types by repository-relative paths that do not
//! resolve in `apispecs/` (`apispecs/README.md`). [`Schemas::load`] merges the four documents'
//! `definitions` into one, each foreign definition under a prefix (`types.`, `mi.`, `mid.`), and
//! rewrites every `$ref` to point into it, so the result is one self-contained draft-4 schema.
//!
//! JSON Schema alone lets any unknown property through (the description sets no
//! `additionalProperties`), so a misspelt field would pass. [`Schemas::unknown`] walks a request
//! body against the definitions, through `$ref` and `allOf`, and names every property the
//! description does not have.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

const TYPES: &str = "../../../../../../common-types/resource-management/v5/types.json";
const DELEGATION: &str = "../../../../../../common-types/resource-management/v4/managedidentitywithdelegation.json";

/// The documents: (file under `apispecs/aks`, prefix of its definitions, its refs to rewrite).
const DOCUMENTS: [(&str, &str); 4] = [
    ("2024-09-01/managedClusters.json", ""),
    ("common-types/resource-management/v5/types.json", "types."),
    ("common-types/resource-management/v4/managedidentitywithdelegation.json", "mid."),
    ("common-types/resource-management/v4/managedidentity.json", "mi."),
];

pub struct Schemas {
    definitions: Map<String, Value>,
    validators: BTreeMap<String, jsonschema::Validator>,
}

fn rewrite(value: &mut Value, prefix: &str) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                let (file, pointer) = r.split_once('#').unwrap_or((r.as_str(), ""));
                let target = match file {
                    "" => prefix,
                    TYPES => "types.",
                    DELEGATION => "mid.",
                    "managedidentity.json" => "mi.",
                    _ => "",
                };
                if let Some(name) = pointer.strip_prefix("/definitions/") {
                    *r = format!("#/definitions/{target}{name}");
                }
            }
            map.values_mut().for_each(|v| rewrite(v, prefix));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, prefix)),
        _ => {}
    }
}

impl Schemas {
    /// Loads the description from `dir` (`…/shared/apispecs/aks`) and compiles a validator for
    /// each definition in `roots`.
    pub fn load(dir: &Path, roots: &[&str]) -> Result<Self, String> {
        let mut definitions = Map::new();
        for (file, prefix) in DOCUMENTS {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let Some(Value::Object(defs)) = doc.get("definitions") else { continue };
            for (name, def) in defs {
                let mut def = def.clone();
                rewrite(&mut def, prefix);
                definitions.insert(format!("{prefix}{name}"), def);
            }
        }
        let mut validators = BTreeMap::new();
        for root in roots {
            if !definitions.contains_key(*root) {
                return Err(format!("the description has no definition `{root}`"));
            }
            let schema = json!({ "$ref": format!("#/definitions/{root}"), "definitions": definitions });
            let validator = jsonschema::draft4::new(&schema).map_err(|e| format!("`{root}` does not compile: {e}"))?;
            validators.insert(root.to_string(), validator);
        }
        Ok(Self { definitions, validators })
    }

    /// Every way `body` breaks definition `root`, as `<path>: <why>`: the schema's errors and,
    /// for requests, the properties it does not describe.
    pub fn check(&self, root: &str, body: &Value, request: bool) -> Vec<String> {
        let Some(validator) = self.validators.get(root) else { return vec![format!("no validator for `{root}`")] };
        let mut errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("{}: {e}", if path.is_empty() { "<root>" } else { &path })
            })
            .collect();
        if request {
            self.unknown(&json!({ "$ref": format!("#/definitions/{root}") }), body, "", &mut errors);
        }
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/definitions/")) {
                Some(name) => match self.definitions.get(name) {
                    Some(d) => s = d,
                    None => return s,
                },
                None => return s,
            }
        }
        s
    }

    /// The properties a schema describes (its own and its `allOf` parts'), and whether it lets
    /// any other through (`additionalProperties`).
    fn properties<'a>(&'a self, schema: &'a Value, out: &mut BTreeMap<String, &'a Value>) -> bool {
        let s = self.resolve(schema);
        let mut open = s.get("additionalProperties").is_some_and(|a| a != &Value::Bool(false));
        if let Some(Value::Object(props)) = s.get("properties") {
            for (k, v) in props {
                out.insert(k.clone(), v);
            }
        }
        if let Some(Value::Array(parts)) = s.get("allOf") {
            for part in parts {
                open |= self.properties(part, out);
            }
        }
        open
    }

    fn unknown(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let s = self.resolve(schema);
        match value {
            Value::Object(map) => {
                let mut known = BTreeMap::new();
                let open = self.properties(s, &mut known);
                if known.is_empty() && open {
                    // A map (tags, labels): its values are what is described.
                    if let Some(values) = s.get("additionalProperties").filter(|a| a.is_object()) {
                        for (k, v) in map {
                            self.unknown(values, v, &format!("{path}/{k}"), errors);
                        }
                    }
                    return;
                }
                for (k, v) in map {
                    match known.get(k) {
                        Some(child) => self.unknown(child, v, &format!("{path}/{k}"), errors),
                        None if open => {}
                        None => errors.push(format!("{path}/{k}: not a property the API describes")),
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item) = s.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.unknown(item, v, &format!("{path}/{i}"), errors);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/apispecs/aks");
        Schemas::load(&dir, &["ManagedCluster", "AgentPool", "CloudError"]).unwrap()
    }

    #[test]
    fn the_official_examples_pass_and_broken_bodies_do_not() {
        let s = schemas();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/apispecs/aks/2024-09-01/examples");
        let example: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("AgentPoolsCreate_Update.json")).unwrap()).unwrap();
        let body = &example["parameters"]["parameters"];
        assert_eq!(s.check("AgentPool", body, true), Vec::<String>::new());
        let get: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("ManagedClustersGet.json")).unwrap()).unwrap();
        assert_eq!(s.check("ManagedCluster", &get["responses"]["200"]["body"], false), Vec::<String>::new());

        let mut typo = body.clone();
        typo["properties"]["nodeLables"] = json!({"a": "b"});
        let errors = s.check("AgentPool", &typo, true);
        assert!(errors.iter().any(|e| e.contains("/properties/nodeLables")), "{errors:?}");
        let mut wrong_type = body.clone();
        wrong_type["properties"]["count"] = json!("three");
        assert!(!s.check("AgentPool", &wrong_type, true).is_empty());
        let mut bad_enum = body.clone();
        bad_enum["properties"]["mode"] = json!("Sometimes");
        assert!(!s.check("AgentPool", &bad_enum, true).is_empty());
        assert!(!s.check("ManagedCluster", &json!({"properties": {}}), true).is_empty(), "location is required");
    }
}
