//! The web dashboard in a real headless Chromium: sign-in (a wrong token refused), a reaction
//! and a monitor created through the schema-generated forms (a validation error shown next to
//! its field, a secret kept as `***` on edit), a failure appearing live on the board, and the
//! reaction's outcome in the monitor page's timeline. Also the summary counts of a cluster.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::browser::{Browser, js_string};
use crate::common::cluster::TestCluster;
use crate::common::{Node, Receiver, Target, id_of, secs, wait_until};

const UI_WAIT: Duration = Duration::from_secs(20);

/// Where the board screenshot goes: `$CARGO_TARGET_DIR/artifacts` (or `target/artifacts`).
fn artifact(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).expect("create the artifacts dir");
    dir.join(name)
}

/// Asserts `png` is a PNG of 1280x800 with real content, not a blank page.
fn assert_real_png(png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&png[12..16], b"IHDR", "PNG without a header chunk");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (1280, 800), "screenshot size");
    // A blank 1280x800 page compresses to about a kilobyte; the board is far bigger.
    assert!(png.len() > 20_000, "screenshot of {} bytes looks blank", png.len());
}

async fn sign_in(browser: &mut Browser, token: &str) {
    browser.type_into("#token", token).await;
    browser.click("#signin-submit").await;
}

#[tokio::test]
async fn dashboard_drives_monitors_and_reactions_end_to_end() {
    let node = Node::start().await;
    let target = Target::start(200).await;
    let receiver = Receiver::start().await;
    let mut browser = Browser::start().await;
    browser.navigate(&node.url("/")).await;
    browser.wait_for(UI_WAIT, "the sign-in form", "document.querySelector('#signin')").await;

    // A wrong token is refused with the API's own message and is not kept.
    sign_in(&mut browser, "not-the-token").await;
    let refusal = browser
        .wait_for(UI_WAIT, "the refusal", "document.querySelector('#signin-error').textContent")
        .await;
    assert!(refusal.as_str().is_some_and(|t| t.contains("invalid token")), "{refusal}");
    let kept = browser.eval("sessionStorage.getItem('cloudroutes.token')").await;
    assert_eq!(kept, Value::Null);
    assert_eq!(browser.eval("document.querySelector('#board') === null").await, json!(true));

    sign_in(&mut browser, &node.token).await;
    browser.wait_for(UI_WAIT, "the board", "document.querySelector('#board-rows')").await;
    let kept = browser.eval("sessionStorage.getItem('cloudroutes.token')").await;
    assert_eq!(kept, json!(node.token));

    // A reaction through the generated form: a bad URL is refused next to its field.
    browser.click("#nav a[href='#/reactions']").await;
    browser
        .wait_for(UI_WAIT, "the reactions page", "document.querySelector('#new-reaction')")
        .await;
    browser.click("#new-reaction").await;
    browser.wait_for(UI_WAIT, "the reaction form", "document.querySelector('#action-type')").await;
    browser.choose("#action-type", "http-webhook").await;
    let url_field = "[name='action.url']";
    browser
        .wait_for(
            UI_WAIT,
            "the generated url field",
            &format!("document.querySelector({})", js_string(url_field)),
        )
        .await;
    let label = browser.text("[data-field='action.url'] label").await;
    assert!(label.as_str().is_some_and(|l| l.contains('*')), "url is marked required: {label}");
    let help = browser.text("[data-field='action.url'] .help").await;
    assert!(help.as_str().is_some_and(|h| !h.is_empty()), "url has its description: {help}");
    browser.type_into("[name='name']", "call the receiver").await;
    browser.type_into(url_field, "ftp://127.0.0.1/hook").await;
    browser.type_into("[name='action.headers']", r#"{"X-Token": "s3cret-value"}"#).await;
    browser.click("#save").await;
    let error = browser
        .wait_for(
            UI_WAIT,
            "the url error next to its field",
            "document.querySelector(\"[data-field='action.url'].invalid .field-error\").textContent",
        )
        .await;
    assert!(error.as_str().is_some_and(|e| e.contains("url")), "{error}");
    let (_, listed) = node.get("/reactions").await;
    assert_eq!(listed["items"], json!([]), "nothing saved after the refusal");
    browser.type_into(url_field, &receiver.url("/hook")).await;
    browser.click("#save").await;
    let reaction_id = browser
        .wait_for(
            UI_WAIT,
            "the new reaction in the list",
            "[...document.querySelectorAll('#reaction-rows tr[data-id]')].find(r => r.textContent.includes('call the receiver'))?.dataset.id",
        )
        .await
        .as_str()
        .expect("reaction id")
        .to_owned();

    // Its secret header shows as *** on edit, and saving it unchanged keeps the stored value
    // (the receiver gets it below).
    browser.click(&format!("#reaction-rows tr[data-id='{reaction_id}'] a")).await;
    let headers = browser
        .wait_for(
            UI_WAIT,
            "the edit form",
            "document.querySelector(\"[name='action.headers']\")?.value",
        )
        .await;
    let headers = headers.as_str().expect("headers text");
    assert!(headers.contains("***") && !headers.contains("s3cret"), "{headers}");
    browser.click("#save").await;
    browser.wait_for(UI_WAIT, "back at the list", "location.hash === '#/reactions'").await;

    // A monitor through the generated form, with the reaction attached.
    browser.click("#nav a[href='#/']").await;
    browser.wait_for(UI_WAIT, "the board", "document.querySelector('#new-monitor')").await;
    browser.click("#new-monitor").await;
    browser.wait_for(UI_WAIT, "the monitor form", "document.querySelector('#check-type')").await;
    browser.choose("#check-type", "http-get-statuscode").await;
    browser
        .wait_for(UI_WAIT, "the check fields", "document.querySelector(\"[name='check.url']\")")
        .await;
    browser.type_into("[name='name']", "Shop front").await;
    browser.type_into("[name='check.url']", &target.url("/health")).await;
    browser.type_into("[name='check.timeout_ms']", "2000").await;
    browser.type_into("[name='interval_secs']", "1").await;
    browser.click(&format!("input[name='reactions'][value='{reaction_id}']")).await;
    let form = browser.screenshot().await;
    std::fs::write(artifact("dashboard-monitor-form.png"), &form).expect("write the screenshot");
    browser.click("#save").await;
    let hash = browser
        .wait_for(UI_WAIT, "the monitor page", "location.hash.startsWith('#/monitors/') && document.querySelector('#monitor-name')?.textContent === 'Shop front' && location.hash")
        .await;
    let monitor_id = hash.as_str().expect("hash").trim_start_matches("#/monitors/").to_owned();
    let stored = node.monitor(&monitor_id).await;
    assert_eq!(stored["reactions"], json!([reaction_id]), "{stored}");
    assert_eq!(stored["interval_secs"], json!(1), "{stored}");

    // The board shows it healthy; the failure then appears without a reload.
    browser.click("#nav a[href='#/']").await;
    let row = format!("#board-rows tr[data-id='{monitor_id}']");
    browser
        .wait_for(
            secs(30),
            "the monitor healthy on the board",
            &format!("document.querySelector({})?.dataset.status === 'healthy'", js_string(&row)),
        )
        .await;
    let state = node.state(&monitor_id).await;
    assert!(state["last_duration_ms"].is_u64(), "the check's duration is kept: {state}");
    browser.eval("window.__noReload = true").await;
    target.set_status(500);
    browser
        .wait_for(
            secs(30),
            "the failure on the board",
            &format!("document.querySelector({})?.dataset.status === 'failed'", js_string(&row)),
        )
        .await;
    assert_eq!(browser.eval("window.__noReload === true").await, json!(true), "page reloaded");
    browser
        .wait_for(
            UI_WAIT,
            "the failed count",
            "document.querySelector('#count-failed .n').textContent === '1'",
        )
        .await;
    let reason = browser.text(&format!("{row} td.reason")).await;
    assert!(reason.as_str().is_some_and(|r| r.contains("500")), "{reason}");
    let png = browser.screenshot().await;
    assert_real_png(&png);
    std::fs::write(artifact("dashboard-board.png"), &png).expect("write the screenshot");

    // The reaction ran with the stored secret header, and its outcome is in the timeline.
    let calls = receiver.wait_count_to("/hook", 1, secs(30)).await;
    assert_eq!(calls[0].header("x-token"), Some("s3cret-value"), "secret kept through the edit");
    browser.click(&format!("{row} td.name a")).await;
    let outcome = browser
        .wait_for(
            secs(30),
            "the reaction outcome in the timeline",
            "document.querySelector(\"#timeline li[data-kind='reaction']\")?.textContent",
        )
        .await;
    let outcome = outcome.as_str().expect("text");
    assert!(outcome.contains("executed") && outcome.contains("call the receiver"), "{outcome}");
    let change = browser.text("#timeline li[data-kind='status_change']").await;
    assert!(change.as_str().is_some_and(|c| c.contains("healthy → failed")), "{change}");
    browser
        .wait_for(
            UI_WAIT,
            "the status band",
            "document.querySelector(\"#chart rect[data-status='failed']\")",
        )
        .await;
    let page = browser.screenshot().await;
    assert_real_png(&page);
    std::fs::write(artifact("dashboard-monitor.png"), &page).expect("write the screenshot");

    // Actions ask first: a cancelled delete deletes nothing; a confirmed heal is recorded as
    // a manual change; a confirmed delete removes the monitor.
    browser.click("#delete").await;
    browser
        .wait_for(UI_WAIT, "the confirmation", "document.querySelector('#confirm-cancel')")
        .await;
    browser.click("#confirm-cancel").await;
    let (status, _) = node.get(&format!("/monitors/{monitor_id}")).await;
    assert_eq!(status, 200, "a cancelled delete deleted the monitor");
    browser.click("#mark-healthy").await;
    browser.wait_for(UI_WAIT, "the confirmation", "document.querySelector('#confirm-ok')").await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(UI_WAIT, "the manual heal in the timeline", "[...document.querySelectorAll(\"#timeline li[data-kind='status_change']\")].some(li => li.textContent.includes('failed → healthy') && li.textContent.includes('manual'))")
        .await;
    browser.click("#delete").await;
    browser.wait_for(UI_WAIT, "the confirmation", "document.querySelector('#confirm-ok')").await;
    browser.click("#confirm-ok").await;
    browser.wait_for(UI_WAIT, "back on the board", "location.hash === '#/'").await;
    let (status, _) = node.get(&format!("/monitors/{monitor_id}")).await;
    assert_eq!(status, 404, "the confirmed delete left the monitor");

    // The cluster page of a single node shows that node, with nowhere to drain it to.
    browser.click("#nav a[href='#/cluster']").await;
    let rows = browser
        .wait_for(
            UI_WAIT,
            "the node row",
            "document.querySelectorAll('#cluster-rows tr[data-id]').length",
        )
        .await;
    assert_eq!(rows, json!(1));
    let row = browser.text("#cluster-rows tr[data-id]").await;
    assert!(row.as_str().is_some_and(|r| r.contains("this node") && r.contains("alive")), "{row}");
    let drain_disabled =
        browser.eval("document.querySelector('#cluster-rows button').disabled").await;
    assert_eq!(drain_disabled, json!(true));

    // Signing out forgets the token.
    browser.click("#signout").await;
    browser.wait_for(UI_WAIT, "the sign-in form", "document.querySelector('#signin')").await;
    assert_eq!(browser.eval("sessionStorage.getItem('cloudroutes.token')").await, Value::Null);
    assert!(browser.page_errors.is_empty(), "page errors: {:?}", browser.page_errors);
}

/// In a cluster, `/api/v1/summary` on any node counts every node's monitors (its own board
/// plus the others' last heartbeats), not only the ones it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_counts_the_monitors_of_every_node_in_a_cluster() {
    const COUNT: usize = 20;
    let cluster = TestCluster::start(2).await;
    cluster.wait_balanced().await;
    let first = cluster.node(0);
    let mut ids = Vec::new();
    for i in 0..COUNT {
        let body = json!({"name": format!("intake {i}"), "check": {"type": "webhook"}});
        ids.push(id_of(&first.create_monitor(body).await));
    }
    for id in &ids[..2] {
        let (status, answer) = first.post_empty(&format!("/monitors/{id}/fail")).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = first.post_empty(&format!("/monitors/{}/heal", ids[2])).await;
    assert_eq!(status, 200, "{answer}");
    let expected =
        json!({"monitors": {"total": COUNT, "healthy": 1, "failed": 2, "unknown": COUNT - 3}});
    wait_until(secs(30), "every node's summary to count the whole cluster", || async {
        let mut all = true;
        for i in 0..2 {
            let (_, summary) = cluster.node(i).get("/summary").await;
            all &= summary == expected;
        }
        all
    })
    .await;
    // Each node runs only its share, so the counts above are sums over nodes.
    let view = cluster.view(0).await;
    let shares: Vec<u64> = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["monitors"].as_u64().unwrap_or(0))
        .collect();
    assert!(shares.iter().all(|&n| n > 0 && n < COUNT as u64), "{view}");
}
