//! A small Chrome DevTools Protocol client: starts a headless Chromium on a temp profile,
//! attaches to one page over the DevTools websocket and drives it (navigate, evaluate, type,
//! screenshot). Chromium and the processes it starts run in their own process group, killed by
//! its id when the [`Browser`] drops.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// One headless Chromium with one page.
pub struct Browser {
    pgid: u32,
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
    /// Exceptions and console errors the page reported, for failure messages.
    pub page_errors: Vec<String>,
}

impl Browser {
    /// Starts Chromium with a 1280x800 window and attaches to a blank page.
    pub async fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "the dashboard test needs Chromium at {CHROMIUM}: install the Debian package \
             `chromium` (scripts/test.sh does when it is missing)"
        );
        let profile = tempfile::tempdir().expect("browser profile dir");
        let mut child = tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1280,800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let pgid = child.id().expect("chromium pid");
        let stderr = child.stderr.take().expect("chromium stderr");
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            let mut seen = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("ws://") {
                    return Ok(line[at..].trim().to_owned());
                }
                seen.push(line);
            }
            Err(seen.join("\n"))
        })
        .await;
        let url = match url {
            Ok(Ok(url)) => url,
            Ok(Err(output)) => {
                kill_group(pgid);
                panic!("chromium exited without a DevTools address:\n{output}")
            }
            Err(_) => {
                kill_group(pgid);
                panic!("chromium printed no DevTools address in 30 s")
            }
        };
        // Keep draining stderr so that Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to chromium at {url}: {e}"));
        let mut browser = Browser {
            pgid,
            _child: child,
            _profile: profile,
            socket,
            next_id: 0,
            session: String::new(),
            page_errors: Vec::new(),
        };
        let target = browser.send(None, "Target.createTarget", json!({"url": "about:blank"})).await;
        let target_id = target["targetId"].as_str().expect("target id").to_owned();
        let attached = browser
            .send(None, "Target.attachToTarget", json!({"targetId": target_id, "flatten": true}))
            .await;
        browser.session = attached["sessionId"].as_str().expect("session id").to_owned();
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    /// Sends a command to the page and returns its result; panics on a protocol error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send {method} to chromium: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("chromium did not answer {method} in 60 s"));
            let Some(Ok(Message::Text(text))) = frame else {
                match frame {
                    Some(Ok(_)) => continue,
                    other => panic!("chromium connection ended during {method}: {other:?}"),
                }
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("CDP message is JSON");
            if value["id"] == json!(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed: {error}");
                }
                return value["result"].clone();
            }
            self.note_event(&value);
        }
    }

    fn note_event(&mut self, event: &Value) {
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                self.page_errors.push(event["params"]["exceptionDetails"].to_string());
            }
            Some("Runtime.consoleAPICalled") if event["params"]["type"] == "error" => {
                self.page_errors.push(event["params"]["args"].to_string());
            }
            _ => {}
        }
    }

    /// Opens `url` in the page.
    pub async fn navigate(&mut self, url: &str) {
        let answer = self.call("Page.navigate", json!({"url": url})).await;
        assert!(answer.get("errorText").is_none(), "navigate to {url}: {answer}");
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(details) = answer.get("exceptionDetails") {
            panic!("page threw on `{expression}`: {details}");
        }
        answer["result"]["value"].clone()
    }

    /// Evaluates `expression` every 100 ms until it is truthy and returns that value; panics
    /// naming `what` (with the page's errors) after `timeout`.
    pub async fn wait_for(&mut self, timeout: Duration, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + timeout;
        let guarded = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        );
        loop {
            let value = self.eval(&guarded).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''").await;
                panic!(
                    "timed out waiting for {what}\npage text:\n{}\npage errors: {:?}",
                    text.as_str().unwrap_or_default(),
                    self.page_errors
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `selector` names (it must exist).
    pub async fn click(&mut self, selector: &str) {
        let found = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); if (!el) return false; \
                 el.scrollIntoView({{block: 'center'}}); el.click(); return true; }})()",
                js_string(selector)
            ))
            .await;
        assert_eq!(found, json!(true), "no element `{selector}` to click");
    }

    /// Replaces the text of the input `selector` names by typing `text` into it: the field is
    /// emptied, focused, and the text inserted as typing does (with its input events).
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        let found = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); if (!el) return false; \
                 el.value = ''; el.dispatchEvent(new Event('input', {{bubbles: true}})); \
                 el.focus(); return true; }})()",
                js_string(selector)
            ))
            .await;
        assert_eq!(found, json!(true), "no input `{selector}` to type into");
        if !text.is_empty() {
            self.call("Input.insertText", json!({"text": text})).await;
        }
    }

    /// Picks `value` in the `<select>` `selector` names, as a user's choice does (a change
    /// event).
    pub async fn choose(&mut self, selector: &str, value: &str) {
        let done = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); if (!el) return 'missing'; \
                 if (![...el.options].some(o => o.value === {v})) return 'no option'; \
                 el.value = {v}; el.dispatchEvent(new Event('change', {{bubbles: true}})); \
                 return 'ok'; }})()",
                js_string(selector),
                v = js_string(value)
            ))
            .await;
        assert_eq!(done, json!("ok"), "choose `{value}` in `{selector}`");
    }

    /// Returns the text of the element `selector` names, or null.
    pub async fn text(&mut self, selector: &str) -> Value {
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); return el ? el.textContent : null; }})()",
            js_string(selector)
        ))
        .await
    }

    /// Returns a PNG screenshot of the page as it shows now.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let answer = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let data = answer["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD.decode(data).expect("screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(self.pgid);
    }
}

/// Kills Chromium's process group (the browser and its helpers) by its id.
fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// `text` as a JavaScript string literal.
pub fn js_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}
