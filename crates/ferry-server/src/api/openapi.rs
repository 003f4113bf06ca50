//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, made from [`super::endpoints`] and
//! the JSON Schemas of the Rust types (JSON Schema 2020-12, which OpenAPI 3.1 uses as is).

use axum::http::Method;
use axum::routing::get;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::{Endpoint, endpoints};

pub fn endpoint() -> Endpoint {
    Endpoint::new(
        Method::GET,
        "/api/v1/openapi.json",
        "This document",
        get(|| async { axum::Json(document()) }),
    )
    .answers_text(
        200,
        "application/json",
        "the OpenAPI 3.1 document of the API",
    )
}

/// The parameters a query type's schema names.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| {
                    let mut p = json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": s,
                    });
                    if let Some(d) = s.get("description") {
                        p["description"] = d.clone();
                    }
                    p
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The document, built afresh (it is small and asked for rarely).
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let mut paths: Map<String, Value> = Map::new();
    for e in endpoints() {
        let mut op = Map::new();
        op.insert("summary".into(), json!(e.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                e.method.as_str().to_lowercase(),
                e.path
                    .split(['/', '{', '}', '.', '-'])
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let mut c = s.chars();
                        c.next()
                            .map(|f| f.to_uppercase().chain(c).collect::<String>())
                            .unwrap_or_default()
                    })
                    .collect::<String>()
            )),
        );
        let mut parameters: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if let Some(q) = e.query {
            // Inline: a query's fields are parameters, not a body.
            let schema = q(&mut generator).to_value();
            let resolved = match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    generator.definitions().get(name).cloned().unwrap_or(schema)
                }
                None => schema,
            };
            parameters.extend(query_parameters(&resolved));
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(b) = e.body {
            op.insert(
                "requestBody".into(),
                json!({"required": false, "content": {"application/json": {"schema": b(&mut generator).to_value()}}}),
            );
        }
        let mut responses = Map::new();
        for a in &e.answers {
            let mut content = json!({});
            if let Some(s) = a.schema {
                content = json!({"schema": s(&mut generator).to_value()});
            }
            responses.insert(
                a.status.to_string(),
                json!({"description": a.description, "content": {a.content_type: content}}),
            );
        }
        let error = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
        if let Some(role) = e.role {
            op.insert("security".into(), json!([{"bearer": []}]));
            op.insert("x-ferry-role".into(), json!(role.as_str()));
            for (code, why) in [
                ("401", "no token, or one that is unknown or revoked"),
                (
                    "403",
                    "the token's role is too low, or the manifest does not allow it",
                ),
            ] {
                let mut r = error.clone();
                r["description"] = json!(why);
                responses.insert(code.into(), r);
            }
        }
        let mut default = error.clone();
        default["description"] = json!("the error, with why in `message`");
        responses.insert("default".into(), default);
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        entry[e.method.as_str().to_lowercase()] = Value::Object(op);
    }
    generator.subschema_for::<super::ErrorBody>();
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ferry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "ferry serve: executions, approvals, releases and live events of cross-account pipelines. Send `Authorization: Bearer <token>`; roles are viewer < operator < approver < admin.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` resolves, every endpoint is documented with the role it needs.
    #[test]
    fn the_document_is_whole() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in text.split("\"$ref\":\"").skip(1) {
            let target = r.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target}"));
            assert!(schemas.contains_key(name), "{target} does not resolve");
        }
        for e in endpoints() {
            let op = &doc["paths"][e.path][e.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {} is missing", e.method, e.path);
            if let Some(role) = e.role {
                assert_eq!(op["x-ferry-role"], role.as_str());
            }
        }
        assert_eq!(doc["openapi"], "3.1.0");
        if let Ok(path) = std::env::var("FERRY_DUMP_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
        assert!(schemas.contains_key("ExecutionView"));
    }
}
