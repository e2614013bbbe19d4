//! The dashboard's files and headers, the name search (`q`) and the summary counts, against a
//! real node on an embedded store.

use std::sync::Arc;

use cloudroutes_actors::Node;
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use serde_json::{Value, json};

use crate::{ApiState, Auth};

const TOKEN: &str = "dashboard-test-token";

async fn api() -> (ApiState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("store.redb"), 100).expect("store");
    let node =
        Node::start(NodeConfig::default(), "n1".into(), Arc::new(store)).await.expect("node");
    let api = ApiState {
        node,
        auth: Auth::new(TOKEN),
        body_limit: 64 * 1024,
        public_url: "http://127.0.0.1:1".into(),
        limits: Arc::new(crate::limits::Limiters::new(&Default::default())),
        audit_keep: 1_000,
    };
    (api, dir)
}

async fn call(api: &ApiState, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = warp::test::request()
        .method(method)
        .path(path)
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.reply(&crate::routes(api.clone())).await;
    let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

/// Creates a webhook-driven monitor (it never runs a check, so it stays `unknown` until told).
async fn monitor(api: &ApiState, name: &str) -> String {
    let body = json!({"name": name, "check": {"type": "webhook"}});
    let (status, created) = call(api, "POST", "/api/v1/monitors", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

fn names(page: &Value) -> Vec<String> {
    let mut names: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn index_and_assets_carry_the_security_and_cache_headers() {
    let (api, _dir) = api().await;
    for path in ["/", "/assets/app.js", "/assets/app.css", "/assets/no-such.js"] {
        let response = warp::test::request().path(path).reply(&crate::routes(api.clone())).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
    }
    let index = warp::test::request().path("/").reply(&crate::routes(api.clone())).await;
    assert_eq!(index.status(), 200);
    assert!(index.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let html = String::from_utf8_lossy(index.body());
    assert!(html.contains("<script type=\"module\" src=\"/assets/app.js\">"), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    let js =
        warp::test::request().path("/assets/board.js").reply(&crate::routes(api.clone())).await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().expect("ascii").starts_with("text/javascript"));
    let missing =
        warp::test::request().path("/assets/secret.txt").reply(&crate::routes(api.clone())).await;
    assert_eq!(missing.status(), 404);
    api.node.shutdown().await;
}

#[tokio::test]
async fn q_finds_monitors_by_name_ignoring_case_and_pages() {
    let (api, _dir) = api().await;
    for name in ["Shop front", "shop API", "Billing", "workshop", "Mail"] {
        monitor(&api, name).await;
    }
    let (status, page) = call(&api, "GET", "/api/v1/monitors?q=SHOP", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(names(&page), ["Shop front", "shop API", "workshop"]);
    let (_, page) = call(&api, "GET", "/api/v1/monitors?q=%20bill%20", None).await;
    assert_eq!(names(&page), ["Billing"]);
    let (_, page) = call(&api, "GET", "/api/v1/monitors?q=nothing-like-it", None).await;
    assert_eq!(names(&page), Vec::<String>::new());
    assert_eq!(page["next_cursor"], Value::Null);
    // Paging with a filter: two pages of one and two, no monitor twice.
    let (_, first) = call(&api, "GET", "/api/v1/monitors?q=shop&limit=2", None).await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, second) =
        call(&api, "GET", &format!("/api/v1/monitors?q=shop&limit=2&cursor={cursor}"), None).await;
    let mut all = names(&first);
    all.extend(names(&second));
    all.sort();
    assert_eq!(all, ["Shop front", "shop API", "workshop"]);
    let long = "x".repeat(201);
    let (status, error) = call(&api, "GET", &format!("/api/v1/monitors?q={long}"), None).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["field"], "q");
    api.node.shutdown().await;
}

#[tokio::test]
async fn summary_counts_monitors_by_status() {
    let (api, _dir) = api().await;
    let (status, empty) = call(&api, "GET", "/api/v1/summary", None).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty, json!({"monitors": {"total": 0, "healthy": 0, "failed": 0, "unknown": 0}}));
    let ids = [monitor(&api, "a").await, monitor(&api, "b").await, monitor(&api, "c").await];
    let (status, _) = call(&api, "POST", &format!("/api/v1/monitors/{}/fail", ids[0]), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&api, "POST", &format!("/api/v1/monitors/{}/heal", ids[1]), None).await;
    assert_eq!(status, 200);
    let (_, summary) = call(&api, "GET", "/api/v1/summary", None).await;
    assert_eq!(summary, json!({"monitors": {"total": 3, "healthy": 1, "failed": 1, "unknown": 1}}));
    let unauthenticated =
        warp::test::request().path("/api/v1/summary").reply(&crate::routes(api.clone())).await;
    assert_eq!(unauthenticated.status(), 401);
    api.node.shutdown().await;
}
