//! The OpenAPI 3.1 document of the API (served at `/api/v1/openapi.json`).

use serde_json::{Value, json};

mod security;

fn error_responses(codes: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for code in codes {
        out.insert((*code).to_owned(), json!({"$ref": format!("#/components/responses/E{code}")}));
    }
    Value::Object(out)
}

fn with(mut ok: Value, errors: &[&str]) -> Value {
    if let (Some(ok), Value::Object(errors)) = (ok.as_object_mut(), error_responses(errors)) {
        ok.extend(errors);
    }
    ok
}

fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn ok(status: &str, schema: &str) -> Value {
    json!({status: {"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

/// Returns the OpenAPI document.
pub fn document() -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let path_param = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    let intake_params = json!([path_param("id"), path_param("key")]);
    let intake_action_params = json!([path_param("id"), path_param("key"), path_param("action")]);
    // Each webhook type reads its sender's own format: JSON (generic, Datadog, Alertmanager,
    // Grafana, Logentries), a form (Slack, Papertrail) or plain text (heartbeat notes).
    let intake_body = json!({
        "application/json": {"schema": {}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "text/plain": {"schema": {"type": "string"}}
    });
    let intake_result = json!({"type": "object", "required": ["result"], "properties": {
        "result": {"enum": ["success", "ignored"]}, "status": {"type": "string"},
        "streak": {"type": "integer"}, "reason": {"type": "string"},
        "response_type": {"type": "string"}, "text": {"type": "string"}
    }});
    let intake_responses = with(
        json!({"200": {"description": "recorded, or ignored with a reason (Slack gets a slash-command reply)", "content": {"application/json": {"schema": intake_result}}}}),
        &["400", "403", "404", "405", "409", "413", "503"],
    );
    let paging = json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 128}}
    ]);
    let mut list_params = paging.as_array().cloned().unwrap_or_default();
    list_params.push(json!({"name": "status", "in": "query", "schema": {"enum": ["healthy", "failed", "unknown"]}}));
    list_params.push(json!({"name": "tag", "in": "query", "schema": {"type": "string"}}));
    list_params.push(json!({"name": "q", "in": "query", "description": "only monitors whose name contains this text, ignoring case", "schema": {"type": "string", "maxLength": 200}}));
    let mut event_params = id.as_array().cloned().unwrap_or_default();
    event_params.extend(paging.as_array().cloned().unwrap_or_default());
    let e = ["400", "401", "413"];
    let e_id = ["400", "401", "404", "413"];
    let resources = json!({
            "/api/v1/monitors": {
                "post": {"summary": "create a monitor", "requestBody": json_body("MonitorIn"), "responses": with(ok("201", "Monitor"), &e)},
                "get": {"summary": "list monitors", "parameters": list_params, "responses": with(ok("200", "MonitorPage"), &["400", "401"])}
            },
            "/api/v1/monitors/{id}": {
                "parameters": id,
                "get": {"summary": "one monitor with its state", "responses": with(ok("200", "Monitor"), &["401", "404"])},
                "put": {"summary": "replace a monitor's definition (state is kept)", "requestBody": json_body("MonitorIn"), "responses": with(ok("200", "Monitor"), &e_id)},
                "delete": {"summary": "delete a monitor and its history", "responses": with(json!({"204": {"description": "deleted"}}), &["401", "404"])}
            },
            "/api/v1/monitors/{id}/run": {"parameters": id, "post": {"summary": "run the check now (on the monitor's owner)", "responses": with(ok("200", "RunResult"), &["401", "404", "409", "503"])}},
            "/api/v1/monitors/{id}/fail": {"parameters": id, "post": {"summary": "mark failed by hand", "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ManualIn"}}}}, "responses": with(ok("200", "Monitor"), &e_id)}},
            "/api/v1/monitors/{id}/heal": {"parameters": id, "post": {"summary": "mark healthy by hand", "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ManualIn"}}}}, "responses": with(ok("200", "Monitor"), &e_id)}},
            "/api/v1/monitors/{id}/events": {"get": {"summary": "history, newest first", "parameters": event_params, "responses": with(ok("200", "EventPage"), &["400", "401", "404"])}},
            "/api/v1/reactions": {
                "post": {"summary": "create a reaction", "requestBody": json_body("ReactionIn"), "responses": with(ok("201", "Reaction"), &e)},
                "get": {"summary": "list reactions", "parameters": paging, "responses": with(ok("200", "ReactionPage"), &["400", "401"])}
            },
            "/api/v1/reactions/{id}": {
                "parameters": id,
                "get": {"summary": "one reaction (secrets as ***)", "responses": with(ok("200", "Reaction"), &["401", "404"])},
                "put": {"summary": "replace a reaction; *** keeps a stored secret", "requestBody": json_body("ReactionIn"), "responses": with(ok("200", "Reaction"), &e_id)},
                "delete": {"summary": "delete a reaction no monitor uses", "responses": with(json!({"204": {"description": "deleted"}}), &["401", "404", "409"])}
            },
            "/api/v1/summary": {"get": {"summary": "how many monitors are healthy, failed and unknown (in a cluster, as of each node's last heartbeat)", "responses": with(ok("200", "Summary"), &["401", "503"])}},
            "/api/v1/check-types": {"get": {"summary": "check types with JSON Schemas", "responses": with(ok("200", "TypeList"), &["401"])}},
            "/api/v1/reaction-types": {"get": {"summary": "reaction types with JSON Schemas", "responses": with(ok("200", "TypeList"), &["401"])}}
    });
    let intake = json!({
            "/api/v1/webhooks/{id}/{key}": {
                "post": {
                    "summary": "webhook intake (authenticated by the monitor's key); the body is the sender's own format, parsed by the monitor's type",
                    "security": [], "parameters": intake_params.clone(),
                    "requestBody": {"required": false, "content": intake_body.clone()},
                    "responses": intake_responses.clone()
                },
                "get": {"summary": "heartbeat ping (heartbeat monitors only)", "security": [], "parameters": intake_params.clone(), "responses": intake_responses.clone()}
            },
            "/api/v1/webhooks/{id}/{key}/{action}": {
                "post": {
                    "summary": "webhook intake with the action in the path (failed, healthy, status; heartbeat: start, fail, an exit status)",
                    "security": [], "parameters": intake_action_params.clone(),
                    "requestBody": {"required": false, "content": intake_body.clone()},
                    "responses": intake_responses.clone()
                },
                "get": {"summary": "heartbeat signal (heartbeat monitors only)", "security": [], "parameters": intake_action_params.clone(), "responses": intake_responses.clone()}
            },
            "/api/{type}/{id}/{key}/{action}": {
                "post": {
                    "summary": "the original product's webhook URL shape (`cr-api` is `webhook`)",
                    "security": [],
                    "parameters": [{"name": "type", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "action", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "requestBody": {"required": false, "content": intake_body},
                    "responses": intake_responses
                }
            }
    });
    let meta = json!({
            "/api/v1/cluster": {"get": {"summary": "nodes with liveness, zone, partitions and monitors", "responses": with(ok("200", "Cluster"), &["401", "503"])}},
            "/api/v1/cluster/nodes/{id}/drain": {"parameters": id, "post": {"summary": "move a node's partitions to the other nodes (until it restarts)", "responses": with(json!({"202": {"description": "draining", "content": {"application/json": {"schema": {"type": "object", "properties": {"node": {"type": "string"}, "draining": {"type": "boolean"}}}}}}}), &["401", "404", "409", "503"])}},
            "/api/v1/openapi.json": {"get": {"summary": "this document", "security": [], "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/": {"get": {"summary": "landing page with the node's counts and links", "security": [], "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {"summary": "liveness", "security": [], "responses": {"200": {"description": "alive", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
            "/readyz": {"get": {"summary": "readiness", "security": [], "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}, "503": {"description": "starting or stopping", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}
    });
    let mut paths = serde_json::Map::new();
    for part in [resources, intake, meta] {
        if let Value::Object(part) = part {
            paths.extend(part);
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "CloudRoutes API", "version": "1"},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": components()
    });
    security::add(&mut doc);
    doc
}

/// The shared parts: the security scheme, error responses and schemas.
fn components() -> Value {
    json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "E400": {"description": "malformed or invalid", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E401": {"description": "missing or wrong token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E404": {"description": "not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E409": {"description": "conflict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E403": {"description": "the payload's own credential (a Slack token) does not match", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E405": {"description": "this monitor's type does not take this method", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E413": {"description": "body too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "E503": {"description": "the node, the store or a monitor's owner is unavailable; retry", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}}}},
            "MonitorIn": {"type": "object", "required": ["name", "check"], "additionalProperties": false, "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                "check": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}, "description": "see /api/v1/check-types"},
                "interval_secs": {"type": ["integer", "null"], "minimum": 1, "maximum": 86400},
                "reactions": {"type": "array", "maxItems": 100, "uniqueItems": true, "items": {"type": "string"}},
                "enabled": {"type": "boolean", "default": true},
                "tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"}},
                "id": {"type": "string", "readOnly": true}, "state": {"readOnly": true}, "webhook_url": {"readOnly": true}}},
            "State": {"type": "object", "properties": {"status": {"enum": ["unknown", "healthy", "failed"]}, "streak": {"type": "integer"}, "episode": {"type": "integer"}, "manual_hold": {"type": "boolean"}, "last_check_at": {"type": ["string", "null"]}, "last_change_at": {"type": ["string", "null"]}, "last_reason": {"type": ["string", "null"]}, "owner": {"type": ["string", "null"]}, "last_duration_ms": {"type": ["integer", "null"], "description": "how long the last check run took"}}},
            "Summary": {"type": "object", "required": ["monitors"], "properties": {"monitors": {"type": "object", "required": ["total", "healthy", "failed", "unknown"], "properties": {"total": {"type": "integer"}, "healthy": {"type": "integer"}, "failed": {"type": "integer"}, "unknown": {"type": "integer"}}}}},
            "Monitor": {"allOf": [{"$ref": "#/components/schemas/MonitorIn"}, {"type": "object", "properties": {"id": {"type": "string"}, "state": {"$ref": "#/components/schemas/State"}, "webhook_url": {"type": "string"}}}]},
            "MonitorPage": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Monitor"}}, "next_cursor": {"type": ["string", "null"]}}},
            "RunResult": {"type": "object", "properties": {"outcome": {"enum": ["healthy", "failed", "unknown"]}, "reason": {"type": "string"}, "monitor": {"$ref": "#/components/schemas/Monitor"}}},
            "ManualIn": {"type": "object", "additionalProperties": false, "properties": {"reason": {"type": "string", "maxLength": 1000}}},
            "ReactionIn": {"type": "object", "required": ["name", "action"], "additionalProperties": false, "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                "action": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}, "description": "see /api/v1/reaction-types"},
                "trigger": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 0},
                "frequency_secs": {"type": "integer", "minimum": 0, "maximum": 604800, "default": 0},
                "call_on": {"enum": ["failed", "healthy", "both"], "default": "failed"},
                "id": {"type": "string", "readOnly": true}, "last_run_at": {"readOnly": true}}},
            "Reaction": {"allOf": [{"$ref": "#/components/schemas/ReactionIn"}, {"type": "object", "properties": {"id": {"type": "string"}, "last_run_at": {"type": ["string", "null"]}}}]},
            "ReactionPage": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Reaction"}}, "next_cursor": {"type": ["string", "null"]}}},
            "Event": {"type": "object", "required": ["id", "monitor_id", "at", "kind"], "properties": {"id": {"type": "string"}, "monitor_id": {"type": "string"}, "at": {"type": "string"}, "kind": {"enum": ["status_change", "reaction", "ignored", "crash"]}}},
            "Cluster": {"type": "object", "properties": {"mode": {"enum": ["single", "cluster"]}, "node_id": {"type": "string"}, "partitions": {"type": "integer"}, "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/ClusterNode"}}}},
            "ClusterNode": {"type": "object", "properties": {"id": {"type": "string"}, "http_addr": {"type": ["string", "null"]}, "cluster_addr": {"type": ["string", "null"]}, "zone": {"type": ["string", "null"]}, "alive": {"type": "boolean"}, "draining": {"type": "boolean"}, "partitions": {"type": "integer"}, "monitors": {"type": "integer"}, "last_heartbeat": {"type": ["string", "null"]}, "started_at": {"type": ["string", "null"]}}},
            "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
            "TypeList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "object", "required": ["name", "description", "secret_fields", "schema"], "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "passive": {"type": "boolean"}, "effect": {"type": "string"}, "secret_fields": {"type": "array", "items": {"type": "string"}}, "schema": {"type": "object"}}}}}},
            "EventPage": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}, "next_cursor": {"type": ["string", "null"]}}}
        }
    })
}

/// Returns the methods the document lists for a request path (`/api/v1/monitors/abc`),
/// sorted: the `Allow` header of a 405 answer.
pub fn allowed_methods(path: &str) -> Vec<String> {
    let document = document();
    let wanted: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<String> = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == wanted.len()
                && parts.iter().zip(&wanted).all(|(part, given)| {
                    part == given || (part.starts_with('{') && !given.is_empty())
                })
        })
        .flat_map(|(_, item)| item.as_object().into_iter().flatten())
        .map(|(method, _)| method.to_ascii_uppercase())
        .filter(|method| method != "PARAMETERS")
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`, with where it was found.
    fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "$ref" {
                        out.push((at.to_owned(), child.as_str().unwrap_or_default().to_owned()));
                    } else {
                        refs(child, &format!("{at}/{key}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    refs(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn allowed_methods_come_from_the_document() {
        assert_eq!(allowed_methods("/api/v1/monitors"), ["GET", "POST"]);
        assert_eq!(allowed_methods("/api/v1/monitors/abc"), ["DELETE", "GET", "PUT"]);
        assert_eq!(allowed_methods("/healthz"), ["GET"]);
        assert!(allowed_methods("/api/v1/monitors//x").is_empty());
        assert!(allowed_methods("/nowhere").is_empty());
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut found = Vec::new();
        refs(&document, "", &mut found);
        assert!(found.len() > 20, "{found:?}");
        for (at, reference) in found {
            let pointer = reference.strip_prefix('#').unwrap_or("not local");
            assert!(document.pointer(pointer).is_some(), "{at}: {reference} does not resolve");
        }
    }

    #[test]
    fn every_path_parameter_is_declared_for_every_operation() {
        let document = document();
        let paths = document["paths"].as_object().expect("paths");
        for (path, item) in paths {
            let wanted: Vec<&str> = path
                .split('/')
                .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
                .collect();
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (method, operation) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                let own = operation["parameters"].as_array().cloned().unwrap_or_default();
                let declared: Vec<String> = shared
                    .iter()
                    .chain(own.iter())
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect();
                for name in &wanted {
                    assert!(
                        declared.iter().any(|d| d == name),
                        "{method} {path}: `{name}` undeclared"
                    );
                }
                assert!(operation["responses"].is_object(), "{method} {path} has no responses");
            }
        }
    }
}

#[cfg(test)]
mod security_tests {
    use super::document;

    #[test]
    fn tokens_audit_rotation_and_limits_are_documented() {
        let doc = document();
        for path in [
            "/api/v1/tokens",
            "/api/v1/tokens/{id}",
            "/api/v1/audit",
            "/api/v1/monitors/{id}/rotate-key",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
        let create = &doc["paths"]["/api/v1/monitors"]["post"]["responses"];
        assert!(create["403"].is_object() && create["429"].is_object(), "{create}");
        let intake = &doc["paths"]["/api/v1/webhooks/{id}/{key}"]["post"]["responses"];
        assert!(intake["429"].is_object(), "{intake}");
        assert!(doc["components"]["responses"]["E429"]["headers"]["Retry-After"].is_object());
        assert!(
            doc["paths"]["/healthz"]["get"]["responses"]["429"].is_null(),
            "health is not limited"
        );
    }
}
