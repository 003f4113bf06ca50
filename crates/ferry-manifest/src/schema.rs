//! The JSON Schema of `ferry.yaml` and the field reference generated from it.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::document::Document;

/// The JSON Schema (draft 2020-12) of `ferry.yaml`, for editors' YAML language servers.
pub fn json_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Document)).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            Value::String("https://ferry.dev/schemas/ferry.yaml.json".into()),
        );
    }
    schema
}

/// `docs/manifest.md`'s field reference: one table per object of the schema, in the order
/// a reader meets them.
pub fn reference_markdown() -> String {
    let schema = json_schema();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = String::new();
    let mut queue: Vec<(String, Value)> = vec![("ferry.yaml".into(), schema)];
    let mut done: Vec<String> = Vec::new();
    while let Some((title, object)) = (!queue.is_empty()).then(|| queue.remove(0)) {
        if done.contains(&title) {
            continue;
        }
        done.push(title.clone());
        let _ = writeln!(out, "### {title}\n");
        if let Some(desc) = object.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", one_line(desc));
        }
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut props: Vec<(String, Value)> = properties(&object);
        // An action's kind is a `oneOf` of single-key objects: list those keys too.
        if let Some(one_of) = object.get("oneOf").and_then(Value::as_array) {
            for variant in one_of {
                props.extend(properties(variant).into_iter().map(|(k, mut v)| {
                    if let Some(d) = variant.get("description") {
                        v.as_object_mut()
                            .map(|o| o.insert("description".into(), d.clone()));
                    }
                    (k, v)
                }));
            }
        }
        let _ = writeln!(
            out,
            "| key | type | required | description |\n| --- | --- | --- | --- |"
        );
        for (key, prop) in props {
            let (ty, refs) = type_of(&prop, &defs);
            for (name, def) in refs {
                queue.push((name, def));
            }
            let desc = prop
                .get("description")
                .and_then(Value::as_str)
                .map(one_line)
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{key}` | {ty} | {} | {} |",
                if required.contains(&key.as_str()) {
                    "yes"
                } else {
                    "no"
                },
                desc.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out
}

fn properties(object: &Value) -> Vec<(String, Value)> {
    object
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A readable type for a property, and the object definitions it refers to.
fn type_of(prop: &Value, defs: &Map<String, Value>) -> (String, Vec<(String, Value)>) {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r).to_owned();
        let def = defs.get(&name).cloned().unwrap_or_default();
        if let Some(values) = def.get("enum").or_else(|| def.get("oneOf")) {
            let names: Vec<String> = values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.get("const").and_then(Value::as_str).map(str::to_owned))
                })
                .map(|v| format!("`{v}`"))
                .collect();
            if !names.is_empty() {
                return (names.join(" \\| "), Vec::new());
            }
        }
        let title = name.trim_end_matches("Doc").to_owned();
        return (
            format!("[{title}](#{})", title.to_lowercase()),
            vec![(title, def)],
        );
    }
    if let Some(any) = prop.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = any
            .iter()
            .filter(|v| v.get("type") != Some(&Value::String("null".into())))
            .collect();
        if let [one] = non_null.as_slice() {
            return type_of(one, defs);
        }
    }
    let ty = match prop.get("type") {
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("any")
            .to_owned(),
        Some(Value::String(t)) => t.clone(),
        _ => "any".to_owned(),
    };
    match ty.as_str() {
        "array" => {
            let (inner, refs) = prop
                .get("items")
                .map(|i| type_of(i, defs))
                .unwrap_or(("any".into(), Vec::new()));
            (format!("list of {inner}"), refs)
        }
        "object" => {
            let (inner, refs) = prop
                .get("additionalProperties")
                .map(|i| type_of(i, defs))
                .unwrap_or(("any".into(), Vec::new()));
            (format!("map of name → {inner}"), refs)
        }
        "integer" => ("integer".into(), Vec::new()),
        "boolean" => ("boolean".into(), Vec::new()),
        _ => ("string".into(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::*;

    /// The decoder's key lists and the schema come from two places; this keeps them equal.
    #[test]
    fn decoder_keys_match_the_schema() {
        let schema = json_schema();
        let defs = schema["$defs"].as_object().unwrap();
        let keys_of = |v: &Value| -> Vec<String> {
            let mut keys: Vec<String> = properties(v).into_iter().map(|(k, _)| k).collect();
            for variant in v
                .get("oneOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                keys.extend(properties(variant).into_iter().map(|(k, _)| k));
            }
            keys.sort();
            keys
        };
        let tables: [(&str, &[&str]); 13] = [
            ("ferry.yaml", Document::KEYS),
            ("SharedDoc", SharedDoc::KEYS),
            ("ArtifactsDoc", ArtifactsDoc::KEYS),
            ("ServerDoc", ServerDoc::KEYS),
            ("AccountDoc", AccountDoc::KEYS),
            ("SourceDoc", SourceDoc::KEYS),
            ("StageDoc", StageDoc::KEYS),
            ("ActionDoc", ActionDoc::KEYS),
            ("BuildDoc", BuildDoc::KEYS),
            ("ApprovalDoc", ApprovalDoc::KEYS),
            ("EcsDoc", EcsDoc::KEYS),
            ("LambdaDoc", LambdaDoc::KEYS),
            ("EnvironmentDoc", EnvironmentDoc::KEYS),
        ];
        for (name, keys) in tables {
            let def = if name == "ferry.yaml" {
                &schema
            } else {
                &defs[name]
            };
            let mut expected: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            expected.sort();
            assert_eq!(keys_of(def), expected, "{name}");
        }
    }

    #[test]
    fn every_field_is_documented() {
        let markdown = reference_markdown();
        for line in markdown.lines().filter(|l| l.starts_with("| `")) {
            assert!(!line.ends_with("|  |"), "undocumented field: {line}");
        }
    }
}
