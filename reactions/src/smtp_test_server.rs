//! A real SMTP server for the `email-notification` tests: Debian's `python3-aiosmtpd`, run by
//! a small script on 127.0.0.1 and a free port, optionally with STARTTLS or implicit TLS (a
//! self-signed certificate made here) and a login. Each delivered message is saved as JSON
//! (envelope, headers, and the plain and HTML parts decoded by Python's own mail parser).
//! The server is stopped by its pid when the guard drops.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Debian's interpreter, which the `python3-aiosmtpd` package installs into.
const PYTHON: &str = "/usr/bin/python3";
const START_TIMEOUT: Duration = Duration::from_secs(30);

const SCRIPT: &str = r#"
import email, json, os, ssl, sys, time
from email import policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

options = json.loads(sys.argv[1])
spool = options["spool"]

def tls_context():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options["cert"], options["key"])
    return context

def text_of(part):
    return None if part is None else part.get_content().replace("\r\n", "\n")

class Saver:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {name.lower(): str(value) for name, value in message.items()},
            "content_type": message.get_content_type(),
            "text": text_of(plain),
            "html": text_of(html),
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        path = os.path.join(spool, "%03d.json" % self.count)
        with open(path + ".part", "w") as out:
            json.dump(record, out)
        os.rename(path + ".part", path)
        return "250 2.0.0 Message accepted for delivery"

def authenticator(server, session, envelope, mechanism, auth_data):
    good = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == options["user"].encode()
        and auth_data.password == options["password"].encode()
    )
    return AuthResult(success=good, handled=False)

kwargs = {"hostname": "127.0.0.1", "port": options["port"], "server_hostname": "localhost"}
if options["mode"] == "starttls":
    kwargs.update(tls_context=tls_context(), require_starttls=True)
elif options["mode"] == "tls":
    kwargs.update(ssl_context=tls_context())
if options.get("user"):
    kwargs.update(authenticator=authenticator, auth_require_tls=options["mode"] != "none",
                  auth_required=True)
controller = Controller(Saver(), **kwargs)
controller.start()
with open(options["ready"], "w") as ready:
    ready.write("ready")
while True:
    time.sleep(3600)
"#;

/// How the test server protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Plain SMTP, no TLS offered.
    Plain,
    /// STARTTLS offered and required before mail.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// A delivered message, as the server parsed it.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Delivered {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Header names in lowercase (the last of repeated ones).
    pub headers: std::collections::HashMap<String, String>,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub tls: bool,
    pub authenticated: bool,
}

/// The running server; dropping it stops the process by its pid.
pub(crate) struct SmtpTestServer {
    child: Option<Child>,
    pub port: u16,
    spool: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl SmtpTestServer {
    /// Starts a server in `mode`, requiring a login as `user`/`password` when given.
    pub async fn start(mode: Mode, login: Option<(&str, &str)>) -> Self {
        let available = Command::new(PYTHON).args(["-c", "import aiosmtpd"]).output();
        match available {
            Ok(output) if output.status.success() => {}
            _ => panic!(
                "`{PYTHON} -c 'import aiosmtpd'` failed: \
                 install the Debian package python3-aiosmtpd"
            ),
        }
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        fs::create_dir(&spool).unwrap();
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
        fs::write(dir.path().join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
        fs::write(dir.path().join("server.py"), SCRIPT).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let mode = match mode {
            Mode::Plain => "none",
            Mode::Starttls => "starttls",
            Mode::Tls => "tls",
        };
        let options = serde_json::json!({
            "port": port,
            "spool": spool.to_string_lossy(),
            "cert": path("cert.pem"),
            "key": path("key.pem"),
            "ready": path("ready"),
            "mode": mode,
            "user": login.map(|(user, _)| user),
            "password": login.map(|(_, password)| password),
        });
        let log = dir.path().join("server.log");
        let out = fs::File::create(&log).unwrap();
        let child = Command::new(PYTHON)
            .arg(dir.path().join("server.py"))
            .arg(options.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|error| panic!("spawning {PYTHON}: {error}"));
        let mut server = Self { child: Some(child), port, spool, log, dir };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        let ready = self.dir.path().join("ready");
        while !ready.exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("smtp server exited early ({status}); its log:\n{}", self.log_text());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "smtp server not ready after {START_TIMEOUT:?}; its log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns every message delivered so far, in order.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.spool)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|path| read_delivered(path)).collect()
    }

    /// Stops the server by its pid and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `kill` signals this child's own pid; `wait` reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_delivered(path: &Path) -> Delivered {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

impl Drop for SmtpTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
