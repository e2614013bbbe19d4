//! Bad input gets the documented error (status, code, field) and changes nothing stored.

use serde_json::{Value, json};

use crate::common::{Auth, Node, assert_error, id_of, send_big_body};

/// What is stored: every monitor and reaction, and each monitor's history.
async fn snapshot(node: &Node) -> Value {
    let (status, monitors) = node.get("/monitors?limit=1000").await;
    assert_eq!(status, 200, "{monitors}");
    let (status, reactions) = node.get("/reactions?limit=1000").await;
    assert_eq!(status, 200, "{reactions}");
    let mut histories = serde_json::Map::new();
    for monitor in monitors["items"].as_array().unwrap() {
        let id = id_of(monitor);
        histories.insert(id.clone(), Value::Array(node.events(&id).await));
    }
    json!({"monitors": monitors, "reactions": reactions, "histories": histories})
}

/// One bad request and the error it must get.
struct Case {
    method: &'static str,
    path: String,
    body: Option<String>,
    auth: Auth<'static>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(method: &'static str, path: impl Into<String>, body: Option<Value>) -> Case {
    Case {
        method,
        path: path.into(),
        body: body.map(|b| b.to_string()),
        auth: Auth::Admin,
        status: 400,
        code: "invalid_field",
        field: None,
    }
}

impl Case {
    fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }
    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
    fn error(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
    fn auth(mut self, auth: Auth<'static>) -> Self {
        self.auth = auth;
        self
    }
}

fn tcp(port: Value, interval: Value) -> Value {
    json!({
        "name": "db",
        "check": {"type": "tcp-check", "host": "127.0.0.1", "port": port},
        "interval_secs": interval,
    })
}

fn webhook_reaction(extra: Value) -> Value {
    let mut reaction = json!({
        "name": "notify",
        "action": {"type": "http-webhook", "url": "http://127.0.0.1:9/hook"},
    });
    for (key, value) in extra.as_object().unwrap() {
        reaction[key] = value.clone();
    }
    reaction
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_error_and_changes_nothing() {
    let node = Node::start().await;
    // Something stored to protect: a reaction, a disabled scheduled monitor that uses it (its
    // state stays put), and a webhook monitor with a result.
    let reaction = id_of(&node.create_reaction(webhook_reaction(json!({"trigger": 2}))).await);
    let mut disabled = tcp(json!(1), json!(60));
    disabled["enabled"] = json!(false);
    disabled["reactions"] = json!([reaction]);
    let scheduled = node.create_monitor(disabled).await;
    let monitor = id_of(&scheduled);
    let hook = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let hook_id = id_of(&hook);
    let hook_url = hook["webhook_url"].as_str().unwrap().to_owned();
    let answer = node.http().post(&hook_url).json(&json!({"action": "failed"})).send().await;
    assert_eq!(answer.unwrap().status().as_u16(), 200);
    let before = snapshot(&node).await;

    let m = "/monitors";
    let one = format!("/monitors/{monitor}");
    let r = "/reactions";
    let r_one = format!("/reactions/{reaction}");
    let valid_monitor = tcp(json!(5432), json!(30));
    let with = |mut base: Value, key: &str, value: Value| {
        base[key] = value;
        base
    };
    let mut wrong_check = valid_monitor.clone();
    wrong_check["check"]["port"] = json!("5432");
    let mut zero_port = valid_monitor.clone();
    zero_port["check"]["port"] = json!(0);
    let mut unknown_check = valid_monitor.clone();
    unknown_check["check"] = json!({"type": "carrier-pigeon"});
    let mut missing_host = valid_monitor.clone();
    missing_host["check"].as_object_mut().unwrap().remove("host");
    let mut ftp_check = valid_monitor.clone();
    ftp_check["check"] = json!({"type": "http-get-statuscode", "url": "ftp://example.com/"});
    let no_interval = json!({"name": "db", "check": {"type": "tcp-check", "host": "h", "port": 1}});
    let webhook_interval = json!({"name": "h", "check": {"type": "webhook"}, "interval_secs": 30});
    let unknown_reaction_type = json!({"name": "x", "action": {"type": "carrier-pigeon"}});
    let ftp_reaction = json!({"name": "x", "action": {"type": "http-webhook", "url": "ftp://a/b"}});
    let placeholder_secret = json!({"name": "x", "action": {"type": "http-webhook",
        "url": "http://127.0.0.1:9/", "headers": {"X-Key": "***"}}});

    let cases = vec![
        // Malformed JSON and non-objects.
        case("POST", m, None).raw(r#"{"name": "db", "check": "#).error(400, "malformed_json"),
        case("POST", m, None).raw("[1, 2]").error(400, "malformed_json"),
        case("POST", m, None).raw("").error(400, "malformed_json"),
        case("PUT", &one, None).raw("{not json}").error(400, "malformed_json"),
        case("POST", r, None).raw("{\"name\": ").error(400, "malformed_json"),
        case("PUT", &r_one, None).raw("nope").error(400, "malformed_json"),
        // Unknown fields and wrong types.
        case("POST", m, Some(with(valid_monitor.clone(), "bogus", json!(1)))).field("bogus"),
        case("PUT", &one, Some(with(valid_monitor.clone(), "bogus", json!(1)))).field("bogus"),
        case("POST", m, Some(with(valid_monitor.clone(), "name", json!(5)))).field("name"),
        case("POST", m, Some(with(valid_monitor.clone(), "name", json!("  ")))).field("name"),
        case("POST", m, Some(with(valid_monitor.clone(), "name", json!("n".repeat(201)))))
            .field("name"),
        case("POST", m, Some(with(valid_monitor.clone(), "interval_secs", json!("30"))))
            .field("interval_secs"),
        case("POST", m, Some(with(valid_monitor.clone(), "tags", json!("shop")))).field("tags"),
        case("POST", m, Some(with(valid_monitor.clone(), "enabled", json!("yes"))))
            .field("enabled"),
        case("POST", m, Some(with(valid_monitor.clone(), "id", json!("chosen")))).field("id"),
        case("POST", m, Some(wrong_check.clone())).field("check.port"),
        case("POST", m, Some(zero_port)).field("check.port"),
        case("POST", m, Some(missing_host)).field("check.host"),
        case("POST", m, Some(ftp_check)).field("check.url"),
        case("POST", r, Some(webhook_reaction(json!({"bogus": true})))).field("bogus"),
        case("POST", r, Some(webhook_reaction(json!({"trigger": "3"})))).field("trigger"),
        case("POST", r, Some(webhook_reaction(json!({"trigger": -1})))).field("trigger"),
        // Ranges.
        case("POST", m, Some(tcp(json!(5432), json!(0)))).field("interval_secs"),
        case("POST", m, Some(tcp(json!(5432), json!(86_401)))).field("interval_secs"),
        case("PUT", &one, Some(tcp(json!(5432), json!(0)))).field("interval_secs"),
        case("POST", m, Some(no_interval)).field("interval_secs"),
        case("POST", m, Some(webhook_interval)).field("interval_secs"),
        case("POST", r, Some(webhook_reaction(json!({"trigger": 1001})))).field("trigger"),
        case("PUT", &r_one, Some(webhook_reaction(json!({"trigger": 1001})))).field("trigger"),
        case("POST", r, Some(webhook_reaction(json!({"frequency_secs": 604_801}))))
            .field("frequency_secs"),
        // Unknown types, bad URLs, references that do not exist.
        case("POST", m, Some(unknown_check)).field("check.type"),
        case("POST", r, Some(unknown_reaction_type)).field("action.type"),
        case("POST", r, Some(ftp_reaction.clone())).field("action.url"),
        case("PUT", &r_one, Some(ftp_reaction)).field("action.url"),
        case("POST", r, Some(placeholder_secret)).field("action.headers"),
        case(
            "POST",
            m,
            Some(with(valid_monitor.clone(), "reactions", json!(["no-such-reaction"]))),
        )
        .field("reactions[0]"),
        case("POST", m, Some(with(valid_monitor.clone(), "reactions", json!([reaction, "nope"]))))
            .field("reactions[1]"),
        case("PUT", &one, Some(with(valid_monitor.clone(), "reactions", json!(["nope"]))))
            .field("reactions[0]"),
        // Paging and filters.
        case("GET", "/monitors?limit=0", None).field("limit"),
        case("GET", "/monitors?limit=5000", None).field("limit"),
        case("GET", "/monitors?limit=ten", None).field("limit"),
        case("GET", "/reactions?limit=0", None).field("limit"),
        case("GET", format!("/monitors/{monitor}/events?limit=0"), None).field("limit"),
        case("GET", format!("/monitors/{monitor}/events?limit=5000"), None).field("limit"),
        case("GET", "/monitors?status=sideways", None).field("status"),
        // Unknown query parameters are refused like unknown body fields (found by Schemathesis).
        case("GET", "/monitors?stauts=failed", None).field("stauts"),
        case("GET", "/reactions?limit=5&bogus=1", None).field("bogus"),
        case("GET", format!("/monitors/{monitor}/events?x=1"), None).field("x"),
        // Manual fail/heal bodies.
        case("POST", format!("{one}/fail"), Some(json!({"reason": "r".repeat(1001)})))
            .field("reason"),
        case("POST", format!("{one}/fail"), Some(json!({"bogus": 1}))).field("bogus"),
        case("POST", format!("{one}/heal"), None).raw("{oops").error(400, "malformed_json"),
        // Tokens.
        case("GET", m, None).auth(Auth::Missing).error(401, "unauthorized"),
        case("GET", m, None)
            .auth(Auth::Header("Bearer not-the-admin-token-at-all"))
            .error(401, "unauthorized"),
        case("GET", m, None).auth(Auth::Header(crate::common::TOKEN)).error(401, "unauthorized"),
        case("POST", m, Some(valid_monitor.clone())).auth(Auth::Missing).error(401, "unauthorized"),
        case("DELETE", &one, None)
            .auth(Auth::Header("Bearer wrong-token-wrong-token"))
            .error(401, "unauthorized"),
        case("POST", format!("{one}/fail"), None).auth(Auth::Missing).error(401, "unauthorized"),
        case("DELETE", &r_one, None).auth(Auth::Missing).error(401, "unauthorized"),
        case("GET", format!("{one}/events"), None).auth(Auth::Missing).error(401, "unauthorized"),
        // Unknown ids.
        case("GET", "/monitors/nope", None).error(404, "not_found"),
        case("PUT", "/monitors/nope", Some(valid_monitor.clone())).error(404, "not_found"),
        case("DELETE", "/monitors/nope", None).error(404, "not_found"),
        case("POST", "/monitors/nope/run", None).error(404, "not_found"),
        case("POST", "/monitors/nope/fail", None).error(404, "not_found"),
        case("POST", "/monitors/nope/heal", None).error(404, "not_found"),
        case("GET", "/monitors/nope/events", None).error(404, "not_found"),
        case("GET", "/reactions/nope", None).error(404, "not_found"),
        case("PUT", "/reactions/nope", Some(webhook_reaction(json!({})))).error(404, "not_found"),
        case("DELETE", "/reactions/nope", None).error(404, "not_found"),
        // Conflicts.
        case("DELETE", &r_one, None).error(409, "conflict"),
        case("POST", format!("/monitors/{hook_id}/run"), None).error(409, "conflict"),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let body = case.body.clone().map(String::into_bytes);
        let (status, answer) = node.call(case.method, &case.path, body, case.auth).await;
        let error = &answer["error"];
        let ok = status == case.status
            && error["code"] == case.code
            && error["field"] == json!(case.field)
            && error["message"].as_str().is_some_and(|m| !m.is_empty());
        if !ok {
            failures.push(format!(
                "{} {} {}: expected {} {} field {:?}, got {status} {answer}",
                case.method,
                case.path,
                case.body
                    .as_deref()
                    .map(|b| b.chars().take(120).collect::<String>())
                    .unwrap_or_default(),
                case.status,
                case.code,
                case.field,
            ));
        }
    }
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));

    // Bodies over 1 MiB, with and without Content-Length.
    for chunked in [false, true] {
        for (method, path) in [("POST", m.to_owned()), ("PUT", one.clone()), ("POST", r.to_owned())]
        {
            let answer = send_big_body(&node, method, &path, 2 << 20, chunked).await;
            assert_error(&answer, 413, "payload_too_large", None);
        }
    }

    // Webhook intake: wrong key, unknown id, bad bodies.
    let post = |url: String, body: &'static str| {
        let http = node.http().clone();
        async move {
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let key = hook_url.rsplit('/').next().unwrap().to_owned();
    let wrong_key = hook_url.replace(&key, &"f".repeat(key.len()));
    assert_error(&post(wrong_key, r#"{"action": "healthy"}"#).await, 404, "not_found", None);
    let unknown = hook_url.replace(&hook_id, "nosuchmonitor");
    assert_error(&post(unknown, r#"{"action": "healthy"}"#).await, 404, "not_found", None);
    let (status, answer) = post(hook_url.clone(), r#"{"action": "#).await;
    assert_error(&(status, answer), 400, "malformed_json", None);
    let answer = post(hook_url.clone(), r#"{"action": "healthy", "bogus": 1}"#).await;
    assert_error(&answer, 400, "invalid_field", Some("bogus"));
    let answer = post(hook_url.clone(), r#"{"action": "sideways"}"#).await;
    assert_error(&answer, 400, "invalid_field", Some("action"));
    let answer = post(hook_url.clone(), r#"{}"#).await;
    assert_error(&answer, 400, "invalid_field", Some("action"));

    let after = snapshot(&node).await;
    assert_eq!(after, before, "bad input changed what is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_call_on_names_the_call_on_field() {
    let node = Node::start().await;
    let answer = node.post("/reactions", webhook_reaction(json!({"call_on": "sometimes"}))).await;
    assert_error(&answer, 400, "invalid_field", Some("call_on"));
    let (_, page) = node.get("/reactions").await;
    assert_eq!(page["items"], json!([]));
}

/// Found by Schemathesis: a 405 lacked the `Allow` header, and an error answered before the
/// body was read left the client to reuse a connection the server then dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_gets_allow_and_an_unread_body_closes_the_connection() {
    let node = Node::start().await;
    let token = format!("Bearer {}", node.token);
    for (method, path, allow) in [
        ("PATCH", "/api/v1/monitors/abc", "DELETE, GET, PUT"),
        ("TRACE", "/api/v1/monitors/abc/heal", "POST"),
        ("DELETE", "/api/v1/monitors", "GET, POST"),
        ("POST", "/healthz", "GET"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = node
            .http()
            .request(method.clone(), node.url(path))
            .header("authorization", &token)
            .header("content-type", "application/json")
            .body(r#"{"name": "x"}"#)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        assert_eq!(header("allow").as_deref(), Some(allow), "{method} {path}");
        assert_eq!(header("connection").as_deref(), Some("close"), "{method} {path}");
    }
    // Without a body the connection stays open.
    let response =
        node.http().patch(node.url("/api/v1/monitors/abc")).header("authorization", &token);
    let response = response.send().await.expect("request");
    assert_eq!(response.status().as_u16(), 405);
    assert!(response.headers().get("connection").is_none());
}
