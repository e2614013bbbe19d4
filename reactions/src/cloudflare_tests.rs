//! The shared Cloudflare client against a fake of API v4, and helpers the `cloudflare-*`
//! type tests share. Request shapes: <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/list/>
//! (and `create`, `get`, `edit`, `delete` beside it); auth: an API token as
//! `Authorization: Bearer`, or the legacy `X-Auth-Email` + `X-Auth-Key`.

use std::time::Duration;

use cloudroutes_engine::{Method as RunMethod, MonitorId, ReactionId, Status};
use serde_json::{Value, json};

use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ConfigError, Incident, ReactionConfig, ReactionError};

/// A zone id as Cloudflare shows them.
pub(crate) const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// The list path of [`ZONE`] on the fake (base URL ends in `/client/v4`, as the real one).
pub(crate) const RECORDS: &str = "/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records";

/// The `api_base_url` of `fake`, with the real API's path.
pub(crate) fn base(fake: &FakeApi) -> String {
    format!("{}/client/v4", fake.base_url())
}

/// The path of record `id` of [`ZONE`].
pub(crate) fn record_path(id: &str) -> String {
    format!("{RECORDS}/{id}")
}

/// A successful answer carrying `result`.
pub(crate) fn ok(result: Value) -> Reply {
    Reply::json(200, json!({"success": true, "errors": [], "messages": [], "result": result}))
}

/// A listing page: `records` as page `page` of `total_pages`.
pub(crate) fn page(records: Vec<Value>, page: usize, total_pages: usize) -> Reply {
    let count = records.len();
    Reply::json(
        200,
        json!({
            "success": true, "errors": [], "messages": [], "result": records,
            "result_info": {"page": page, "per_page": PER_PAGE, "count": count,
                            "total_count": count, "total_pages": total_pages},
        }),
    )
}

/// A failed answer with `status` and one error.
pub(crate) fn failure(status: u16, code: i64, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [],
               "result": null}),
    )
}

/// A record as the API shows it.
pub(crate) fn record(id: &str, record_type: &str, name: &str, content: &str) -> Value {
    json!({
        "id": id, "zone_id": ZONE, "zone_name": "example.com", "name": name,
        "type": record_type, "content": content, "proxiable": true, "proxied": false, "ttl": 1,
        "locked": false, "created_on": "2024-01-01T05:20:00.12345Z",
        "modified_on": "2024-01-01T05:20:00.12345Z",
    })
}

/// An incident of reaction `01hreaction` on monitor `01hmonitor` with `status`.
pub(crate) fn incident(status: Status) -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "fail dns over".into(),
        status,
        episode: 3,
        reason: "HTTP 503, expected one of 200".into(),
        method: RunMethod::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:3:failed:0".into(),
        node: "node-a".into(),
    }
}

/// Parses a reaction's `action` object.
pub(crate) fn parse(value: Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

/// A base URL where nothing listens.
pub(crate) async fn refused_base_url() -> String {
    let (_closed, port) = closed_port();
    format!("http://127.0.0.1:{port}/client/v4")
}

/// The shared config checks every type runs: each case is `(fields to merge into a valid
/// action, field named by the error)`.
pub(crate) fn shared_rejections() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"zone_id": "example.com"}), "zone_id"),
        (json!({"zone_id": "023e105f4ecef8ad9ca31a8372d0c35"}), "zone_id"),
        (json!({"api_token": null}), "api_token"),
        (json!({"api_token": ""}), "api_token"),
        (json!({"api_token": "has space"}), "api_token"),
        (json!({"api_token": "***"}), "api_token"),
        (json!({"email": "ops@example.com"}), "api_token"),
        (json!({"api_token": null, "email": "ops@example.com"}), "api_key"),
        (json!({"api_token": null, "api_key": "k"}), "email"),
        (json!({"api_token": null, "email": "ops", "api_key": "k"}), "email"),
        (json!({"api_base_url": "ftp://api.example.com"}), "api_base_url"),
        (json!({"timeout_ms": 0}), "timeout_ms"),
        (json!({"timeout_ms": 120_001}), "timeout_ms"),
        (json!({"bogus": 1}), "bogus"),
    ]
}

/// Runs [`shared_rejections`] against `valid`, a valid action object.
pub(crate) fn assert_shared_rejections(valid: &Value) {
    for (change, field) in shared_rejections() {
        let mut action = valid.clone();
        for (key, value) in change.as_object().unwrap() {
            if value.is_null() {
                action.as_object_mut().unwrap().remove(key);
            } else {
                action[key] = value.clone();
            }
        }
        let error = parse(action.clone()).unwrap_err();
        assert_eq!(error.field, field, "{action}: {error}");
        assert!(!error.message.contains("has space"), "a secret is quoted: {error}");
    }
}

fn client(base: &str, auth: Auth, timeout_ms: u64) -> Client {
    Client::new(
        "test",
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
        base,
        auth,
        timeout_ms,
    )
    .unwrap()
}

fn token_client(fake: &FakeApi) -> Client {
    client(&base(fake), Auth::Token(Secret::new("cf-token")), 2000)
}

#[tokio::test]
async fn listing_walks_every_page_with_the_filter_and_a_bearer_token() {
    let fake = FakeApi::start().await;
    let first = vec![record("a1", "A", "www.example.com", "192.0.2.1")];
    let second = vec![record("a2", "A", "api.example.com", "192.0.2.1")];
    fake.reply("GET", RECORDS, vec![page(first, 1, 2), page(second, 2, 2)]);
    let records = token_client(&fake)
        .list_records(ZONE, &[("type", "A"), ("content", "192.0.2.1")])
        .await
        .unwrap();
    let ids: Vec<_> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "stops after total_pages");
    assert_eq!(requests[0].path, RECORDS);
    assert_eq!(requests[0].query.as_deref(), Some("type=A&content=192.0.2.1&page=1&per_page=100"));
    assert_eq!(requests[1].query.as_deref(), Some("type=A&content=192.0.2.1&page=2&per_page=100"));
    assert_eq!(requests[0].header("authorization"), Some("Bearer cf-token"));
    assert_eq!(requests[0].header("x-auth-key"), None);
    assert!(requests[0].body.is_empty());
}

#[tokio::test]
async fn a_listing_without_page_counts_stops_at_a_short_page() {
    let fake = FakeApi::start().await;
    let full: Vec<Value> = (0..PER_PAGE)
        .map(|i| record(&format!("r{i}"), "A", "www.example.com", "192.0.2.1"))
        .collect();
    let short = vec![record("last", "A", "www.example.com", "192.0.2.1")];
    fake.reply("GET", RECORDS, vec![ok(json!(full)), ok(json!(short)), ok(json!([]))]);
    let records = token_client(&fake).list_records(ZONE, &[]).await.unwrap();
    assert_eq!(records.len(), PER_PAGE + 1);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn the_global_key_goes_in_x_auth_headers() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    let auth = Auth::GlobalKey { email: "ops@example.com".into(), key: Secret::new("gk-123") };
    client(&base(&fake), auth, 2000).list_records(ZONE, &[]).await.unwrap();
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.header("x-auth-email"), Some("ops@example.com"));
    assert_eq!(request.header("x-auth-key"), Some("gk-123"));
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn api_errors_quote_the_api_and_say_whether_to_retry() {
    let fake = FakeApi::start().await;
    let client = token_client(&fake);
    let cases = [
        (failure(403, 9109, "Invalid access token"), false, "HTTP 403 9109 Invalid access token"),
        (failure(429, 971, "Please wait and consider throttling"), true, "HTTP 429 971 Please"),
        (failure(500, 10000, "Internal error"), true, "HTTP 500 10000 Internal error"),
        (failure(200, 1004, "DNS Validation Error"), false, "success false: 1004 DNS Validation"),
        (Reply::json(502, json!("bad gateway")), true, "HTTP 502 \"bad gateway\""),
        (Reply::json(200, json!({"result": []})), false, "no `success` field"),
    ];
    for (reply, retryable, quoted) in cases {
        fake.reply("GET", RECORDS, vec![reply]);
        let error = client.list_records(ZONE, &[]).await.unwrap_err();
        assert_eq!(error.is_retryable(), retryable, "{error}");
        assert!(error.to_string().contains(quoted), "{error} lacks {quoted}");
        assert!(!error.to_string().contains("cf-token"));
    }
}

#[tokio::test]
async fn a_slow_api_times_out_and_a_closed_port_is_a_transport_error() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![Reply::slow(Duration::from_secs(5))]);
    let slow = client(&base(&fake), Auth::Token(Secret::new("t")), 200);
    let error = slow.list_records(ZONE, &[]).await.unwrap_err();
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 200, .. }), "{error}");
    assert!(error.is_retryable());

    let refused = client(&refused_base_url().await, Auth::Token(Secret::new("t")), 2000);
    let error = refused.list_records(ZONE, &[]).await.unwrap_err();
    assert!(matches!(error, ReactionError::Transport { .. }), "{error}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_missing_record_reads_as_none_and_an_identical_one_is_not_created_twice() {
    let fake = FakeApi::start().await;
    fake.reply("GET", &record_path("gone1"), vec![failure(404, 81044, "Record does not exist.")]);
    assert_eq!(token_client(&fake).get_record(ZONE, "gone1").await.unwrap(), None);
    fake.reply("POST", RECORDS, vec![failure(400, 81058, "An identical record already exists.")]);
    let created = token_client(&fake).create_record(ZONE, json!({"type": "A"})).await.unwrap();
    assert_eq!(created, None);
    fake.reply("POST", RECORDS, vec![failure(400, 9005, "Content for A record is invalid.")]);
    let error = token_client(&fake).create_record(ZONE, json!({})).await.unwrap_err();
    assert!(matches!(error, ReactionError::Rejected { status: 400, .. }), "{error}");
    // A delete of a record already gone is done.
    fake.reply(
        "DELETE",
        &record_path("gone1"),
        vec![failure(404, 81044, "Record does not exist.")],
    );
    token_client(&fake).delete_record(ZONE, "gone1").await.unwrap();
}

#[tokio::test]
async fn a_record_id_that_would_leave_the_path_is_refused() {
    let fake = FakeApi::start().await;
    let error = token_client(&fake).patch_record(ZONE, "../../zones", json!({})).await.unwrap_err();
    assert!(matches!(error, ReactionError::Failed { .. }), "{error}");
    assert!(fake.requests().is_empty());
}

#[test]
fn credentials_are_a_token_or_an_email_with_a_key() {
    let token = Secret::new("t0ken");
    let key = Secret::new("k3y");
    assert!(matches!(Auth::from_fields(Some(&token), None, None), Ok(Auth::Token(_))));
    assert!(matches!(
        Auth::from_fields(None, Some("ops@example.com"), Some(&key)),
        Ok(Auth::GlobalKey { .. })
    ));
    let both = Auth::from_fields(Some(&token), Some("ops@example.com"), Some(&key));
    assert_eq!(both.unwrap_err().field, "api_token");
    let debug = format!("{:?}", Auth::from_fields(Some(&token), None, None).unwrap());
    assert!(!debug.contains("t0ken"), "{debug}");
}

#[test]
fn contents_compare_as_addresses_or_host_names() {
    assert!(same_content("AAAA", "2001:db8::1", "2001:DB8:0:0::1"));
    assert!(!same_content("A", "192.0.2.1", "192.0.2.10"));
    assert!(same_content("CNAME", "Origin.example.com.", "origin.example.com"));
    assert!(!same_content("TXT", "Hello", "hello"));
    assert!(same_name("WWW.example.com.", "www.example.com"));
    assert_eq!(RecordType::Aaaa.content("content", "2001:DB8:0::1").unwrap(), "2001:db8::1");
    assert_eq!(RecordType::A.content("content", "2001:db8::1").unwrap_err().field, "content");
}
