//! [`Node`]: one `cloudroutes node` process on its own data dir and port, with API helpers;
//! [`binary`]: the node binary the tests run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{PROCESS_DEADLINE, TOKEN, body_value, free_port, send_signal};

/// The node binary this test process runs: a hard link to the one cargo built, taken once, so
/// that a rebuild of `target/debug/cloudroutes` while the tests run (cargo replaces the file)
/// neither breaks a start nor mixes two versions in one run. Falls back to the built path.
pub(crate) fn binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let built = PathBuf::from(env!("CARGO_BIN_EXE_cloudroutes"));
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            // Links left by earlier test processes that are gone.
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("e2e-cloudroutes-")
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let link = dir.join(format!("e2e-cloudroutes-{}", std::process::id()));
            let _ = std::fs::remove_file(&link);
            match std::fs::hard_link(&built, &link) {
                Ok(()) => link,
                Err(_) => built,
            }
        })
        .clone()
}

/// Which `Authorization` header a raw request sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth<'a> {
    /// The node's admin token.
    Admin,
    /// No header at all.
    Missing,
    /// This exact header value.
    Header(&'a str),
}

/// One `cloudroutes node` process and its data directory.
pub struct Node {
    /// The HTTP port (kept across restarts).
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin token the API helpers send.
    pub token: String,
    /// Whether the node is given `CLOUDROUTES_ADMIN_TOKEN` (else it generates its own).
    env_token: bool,
    /// More environment for the process (cluster settings, say).
    env: Vec<(String, String)>,
    /// The address the API binds (`127.0.0.1` unless a test asks for every interface).
    http_host: &'static str,
    dir: tempfile::TempDir,
    child: Option<Child>,
    runs: usize,
    http: reqwest::Client,
}

impl Node {
    /// Starts a node with the harness token on a fresh data dir and a free port.
    pub async fn start() -> Node {
        let mut node = Node::new(true);
        node.launch().await;
        node
    }

    /// Starts a node without `CLOUDROUTES_ADMIN_TOKEN`: it generates a token on first start.
    /// The API helpers have no valid token until the caller sets [`Node::token`].
    pub async fn start_without_token() -> Node {
        let mut node = Node::new(false);
        node.launch().await;
        node
    }

    /// Starts a node with the harness token and these extra environment variables, and waits
    /// until it is ready.
    pub async fn start_with_env(env: &[(&str, String)]) -> Node {
        let mut node = Node::new(true);
        node.env = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        node.launch().await;
        node
    }

    /// Starts a node whose API binds `0.0.0.0` (every interface) with these extra environment
    /// variables, and waits until it is ready (the helpers still talk to it on 127.0.0.1).
    pub async fn start_on_every_interface(env: &[(&str, String)]) -> Node {
        let mut node = Node::new(true);
        node.http_host = "0.0.0.0";
        node.env = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        node.launch().await;
        node
    }

    /// Starts a node process with the harness token and these extra environment variables
    /// and returns at once, without waiting for it to be ready (or to fail).
    pub fn spawn_with_env(env: &[(&str, String)]) -> Node {
        let mut node = Node::new(true);
        node.env = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        node.spawn();
        node
    }

    /// Waits for the process to exit on its own and returns its exit code and stderr.
    pub async fn exit_code_and_stderr(&mut self) -> (Option<i32>, String) {
        let status = self.wait_exit().await;
        let stderr = std::fs::read_to_string(self.log_path(self.runs, "stderr"));
        (status.code(), stderr.unwrap_or_default())
    }

    /// Freezes the process (SIGSTOP): it neither runs nor answers until [`Node::resume`].
    pub fn suspend(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn new(env_token: bool) -> Node {
        let dir = tempfile::Builder::new().prefix("cloudroutes-e2e-").tempdir().expect("tempdir");
        let port = free_port();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client");
        Node {
            port,
            base: format!("http://127.0.0.1:{port}"),
            token: if env_token { TOKEN.to_owned() } else { String::new() },
            env_token,
            env: Vec::new(),
            http_host: "127.0.0.1",
            dir,
            child: None,
            runs: 0,
            http,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The HTTP client the helpers use (no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The process id of the running node.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// The process id, or `None` when the node is not running.
    pub fn pid_if_running(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `base` + `path`, e.g. `url("/healthz")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `base` + `/api/v1` + `path`.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn log_path(&self, run: usize, stream: &str) -> PathBuf {
        self.dir.path().join(format!("node-run{run}.{stream}.log"))
    }

    /// The stdout of run `run` (the first start is run 1).
    pub fn stdout_of_run(&self, run: usize) -> String {
        std::fs::read_to_string(self.log_path(run, "stdout")).unwrap_or_default()
    }

    /// Every run's stdout and stderr, for failure reports.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            for stream in ["stdout", "stderr"] {
                let text = std::fs::read_to_string(self.log_path(run, stream)).unwrap_or_default();
                out.push_str(&format!("----- node run {run} {stream} -----\n{text}\n"));
            }
        }
        out
    }

    fn panic_with_logs(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.logs())
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node already running");
        self.runs += 1;
        let stdout = File::create(self.log_path(self.runs, "stdout")).expect("stdout log");
        let stderr = File::create(self.log_path(self.runs, "stderr")).expect("stderr log");
        let mut command = Command::new(binary());
        command
            .arg("node")
            .arg("--http")
            .arg(format!("{}:{}", self.http_host, self.port))
            .arg("--data-dir")
            .arg(self.data_dir())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (key, _) in std::env::vars_os() {
            let upper = key.to_string_lossy().to_ascii_uppercase();
            if upper.starts_with("CLOUDROUTES_") || upper.ends_with("_PROXY") {
                command.env_remove(&key);
            }
        }
        command.env("CLOUDROUTES_LOG", "info").env("NO_COLOR", "1");
        // Every test target listens on loopback; the node's own ports stay denied anyway.
        command.env("CLOUDROUTES_EGRESS_ALLOW", "127.0.0.0/8,::1");
        if self.env_token {
            command.env("CLOUDROUTES_ADMIN_TOKEN", &self.token);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(command.spawn().expect("spawn the cloudroutes binary"));
    }

    async fn launch(&mut self) {
        self.spawn();
        self.wait_ready().await;
    }

    /// Waits until `GET /readyz` answers 200; panics (with the logs) if the process exits or
    /// the deadline passes.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait().expect("wait") {
                self.child = None;
                self.panic_with_logs(&format!("node exited during startup with {status}"));
            }
            if let Ok(response) = self.http.get(self.url("/readyz")).send().await
                && response.status().as_u16() == 200
            {
                return;
            }
            if Instant::now() >= deadline {
                self.panic_with_logs("node did not become ready in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                self.panic_with_logs("node did not exit in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; it must exit with code 0.
    pub async fn stop(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit().await;
        if status.code() != Some(0) {
            self.panic_with_logs(&format!("node did not exit 0 after SIGTERM: {status}"));
        }
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub async fn kill(&mut self) {
        self.signal("KILL");
        self.wait_exit().await;
    }

    /// Starts the node again on the same data dir and port.
    pub async fn start_again(&mut self) {
        self.launch().await;
    }

    /// SIGTERM, then start again on the same data dir and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Sends one API request (`path` is under `/api/v1`) and returns the status and the JSON
    /// body (`Value::Null` when the body is empty, a string when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        auth: Auth<'_>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method.clone(), self.api_url(path));
        match auth {
            Auth::Admin => {
                request = request.header("authorization", format!("Bearer {}", self.token))
            }
            Auth::Missing => {}
            Auth::Header(value) => request = request.header("authorization", value),
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => self.panic_with_logs(&format!("{method} {path} failed: {error}")),
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("response body");
        (status, body_value(&bytes))
    }

    /// `GET /api/v1{path}` with the admin token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, Auth::Admin).await
    }

    /// `POST /api/v1{path}` with a JSON body and the admin token.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body.to_string().into_bytes()), Auth::Admin).await
    }

    /// `POST /api/v1{path}` with no body and the admin token.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.call("POST", path, None, Auth::Admin).await
    }

    /// `PUT /api/v1{path}` with a JSON body and the admin token.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body.to_string().into_bytes()), Auth::Admin).await
    }

    /// `DELETE /api/v1{path}` with the admin token.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None, Auth::Admin).await
    }

    /// Creates a monitor; panics unless the answer is 201. Returns the monitor.
    pub async fn create_monitor(&self, body: Value) -> Value {
        let (status, monitor) = self.post("/monitors", body.clone()).await;
        assert_eq!(status, 201, "create monitor {body}: {monitor}");
        monitor
    }

    /// Creates a reaction; panics unless the answer is 201. Returns the reaction.
    pub async fn create_reaction(&self, body: Value) -> Value {
        let (status, reaction) = self.post("/reactions", body.clone()).await;
        assert_eq!(status, 201, "create reaction {body}: {reaction}");
        reaction
    }

    /// Returns one monitor; panics unless the answer is 200.
    pub async fn monitor(&self, id: &str) -> Value {
        let (status, monitor) = self.get(&format!("/monitors/{id}")).await;
        assert_eq!(status, 200, "get monitor {id}: {monitor}");
        monitor
    }

    /// Returns one monitor's state.
    pub async fn state(&self, id: &str) -> Value {
        self.monitor(id).await["state"].clone()
    }

    /// Returns every event of a monitor, newest first (follows cursors).
    pub async fn events(&self, id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => format!("/monitors/{id}/events?limit=1000"),
                Some(c) => format!("/monitors/{id}/events?limit=1000&cursor={c}"),
            };
            let (status, page) = self.get(&path).await;
            assert_eq!(status, 200, "events of {id}: {page}");
            out.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Waits until the monitor's state satisfies `pred`, and returns that state.
    pub async fn wait_state(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let pred = &pred;
        let mut last = Value::Null;
        let last_ref = &mut last;
        let found = tokio::time::timeout(timeout, async {
            loop {
                let state = self.state(id).await;
                if pred(&state) {
                    return state;
                }
                *last_ref = state;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        match found {
            Ok(state) => state,
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}; last state {last}"),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("node logs (data dir {}):\n{}", self.dir.path().display(), self.logs());
        }
    }
}
