//! The document's parts for tokens, audit, key rotation, roles (403), rate limits (429) and
//! request timeouts (408).

use serde_json::{Value, json};

/// Adds the tokens, audit and rotate-key paths, the 429 and 408 responses to every operation, the
/// 403 response to every authenticated one, and their schemas.
pub(super) fn add(doc: &mut Value) {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let r = |code: &str| json!({"$ref": format!("#/components/responses/E{code}")});
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let ok = |status: &str, name: &str| json!({status: {"description": "success", "content": {"application/json": {"schema": schema(name)}}}});
    let with = |mut responses: Value, codes: &[&str]| {
        for code in codes {
            responses[*code] = r(code);
        }
        responses
    };
    let paths = [
        (
            "/api/v1/tokens",
            json!({
                "post": {"summary": "create an API token (admin); the secret `token` is in this response only", "requestBody": {"required": true, "content": {"application/json": {"schema": schema("TokenIn")}}}, "responses": with(ok("201", "TokenCreated"), &["400", "401", "409", "413"])},
                "get": {"summary": "list API tokens (admin); never their secrets", "responses": with(ok("200", "TokenPage"), &["401"])}
            }),
        ),
        (
            "/api/v1/tokens/{id}",
            json!({
                "parameters": id.clone(),
                "delete": {"summary": "revoke a token (admin): it stops working at once on this node, within limits.token_cache_ms on the others", "responses": with(json!({"204": {"description": "revoked"}}), &["401", "404"])}
            }),
        ),
        (
            "/api/v1/audit",
            json!({
                "get": {"summary": "who changed what, when, newest first (admin)", "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}}
                ], "responses": with(ok("200", "AuditPage"), &["400", "401"])}
            }),
        ),
        (
            "/api/v1/monitors/{id}/rotate-key",
            json!({
                "parameters": id,
                "post": {"summary": "give a webhook monitor a new intake key (editor); the old key stops working at once", "responses": with(ok("200", "Monitor"), &["401", "404"])}
            }),
        ),
    ];
    for (path, item) in paths {
        doc["paths"][path] = item;
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, op) in item.iter_mut() {
                if method == "parameters" || !path.starts_with("/api/") {
                    continue;
                }
                let public = op["security"].as_array().is_some_and(Vec::is_empty);
                if !public {
                    op["responses"]["403"] = r("403");
                }
                op["responses"]["429"] = r("429");
                op["responses"]["408"] = r("408");
            }
        }
    }
    let responses = &mut doc["components"]["responses"];
    responses["E403"] = error(
        "forbidden: the token's role does not allow this call (`… needs the editor role; this token is a viewer`), or a webhook payload's own credential does not match",
    );
    let mut limited =
        error("rate_limited: too many requests for this token, client address or monitor");
    limited["headers"] = json!({"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}});
    responses["E429"] = limited;
    responses["E408"] = error(
        "request_timeout: the request body did not arrive within limits.request_timeout_ms; the connection is closed",
    );
    let schemas = &mut doc["components"]["schemas"];
    schemas["TokenIn"] = json!({"type": "object", "required": ["name", "role"], "additionalProperties": false, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"enum": ["admin", "editor", "viewer"]},
        "expires_at": {"type": ["string", "null"], "format": "date-time", "description": "RFC 3339, in the future; null never expires"},
        "expires_in_secs": {"type": "integer", "minimum": 1, "description": "instead of expires_at"}}});
    schemas["Token"] = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "role": {"enum": ["admin", "editor", "viewer"]},
        "created_at": {"type": "string"}, "expires_at": {"type": ["string", "null"]}}});
    schemas["TokenCreated"] = json!({"allOf": [schema("Token"), {"type": "object", "required": ["token"], "properties": {"token": {"type": "string", "description": "the secret, shown once: `crt_` and 64 hex digits"}}}]});
    schemas["TokenPage"] = json!({"type": "object", "properties": {"items": {"type": "array", "items": schema("Token")}, "next_cursor": {"type": "null"}}});
    schemas["AuditEntry"] = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "at": {"type": "string"}, "actor": {"type": "string", "description": "the token's name; for a call denied without a valid token, the client address"},
        "role": {"enum": ["admin", "editor", "viewer", null], "description": "null for a call denied without a valid token"},
        "action": {"enum": ["create", "update", "delete", "run", "fail", "heal", "rotate_key", "drain", "revoke", "denied"]},
        "resource_kind": {"enum": ["monitor", "reaction", "token", "node", "request"], "description": "`request` for a denied call, whose method and path are the resource_name"},
        "resource_id": {"type": ["string", "null"]}, "resource_name": {"type": ["string", "null"]},
        "outcome": {"type": "string", "description": "`ok` or the error code the caller got (`unauthorized`, `forbidden`, `rate_limited` for denied calls)"},
        "count": {"type": ["integer", "null"], "minimum": 1, "description": "denied calls only: how many denials this entry stands for; the first of a window is recorded at once, the rest of the window (limits.denied_audit_window_ms) folded into one entry"},
        "client": {"type": ["string", "null"], "description": "denied calls only: the client address"}}});
    schemas["AuditPage"] = json!({"type": "object", "properties": {"items": {"type": "array", "items": schema("AuditEntry")}, "next_cursor": {"type": ["string", "null"]}}});
}
