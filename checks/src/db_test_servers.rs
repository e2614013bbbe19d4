//! Real database servers for the `redis`, `postgres` and `mysql` check tests.
//!
//! Each server runs from a fresh temp dir, listens on 127.0.0.1 and a free port, and is stopped
//! by its own pid when its guard drops (also when a test panics). A missing server program fails
//! the test with the name of the Debian package that provides it.

use std::fs;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to accept its first client.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A server process and its temp dir: dropping it stops the process by pid, then removes the dir.
struct ServerProcess {
    child: Option<Child>,
    stop_signal: &'static str,
    log: PathBuf,
    _dir: TempDir,
}

impl ServerProcess {
    fn spawn(mut command: Command, stop_signal: &'static str, dir: TempDir) -> Self {
        let log = dir.path().join("server.log");
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command.spawn().unwrap_or_else(|error| panic!("spawning {command:?}: {error}"));
        Self { child: Some(child), stop_signal, log, _dir: dir }
    }

    /// Panics with the server's log when it has exited.
    fn assert_running(&mut self) {
        let child = self.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            panic!("server exited early ({status}); its log:\n{log}");
        }
    }

    /// Waits until `ready` returns true, panicking with the log if the server exits or is slow.
    async fn wait_until_ready<F, Fut>(&mut self, mut ready: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            self.assert_running();
            if ready().await {
                return;
            }
            if started.elapsed() > START_TIMEOUT {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                panic!("server not ready after {START_TIMEOUT:?}; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if !matches!(child.try_wait(), Ok(None)) {
            return; // already exited and reaped: its pid may belong to another process now
        }
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-s", self.stop_signal, &pid]).status();
        // Wait on another thread so a server that ignores the signal can be killed after a
        // grace period; until `wait` returns the pid stays ours (an unreaped child).
        let (exited, has_exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let _ = child.wait();
            let _ = exited.send(());
        });
        if has_exited.recv_timeout(STOP_GRACE).is_err() {
            let _ = Command::new("kill").args(["-s", "KILL", &pid]).status();
        }
        let _ = waiter.join();
    }
}

/// Returns a loopback port nobody listens on: bound, read, then released.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Finds `name` on PATH or in `fallbacks`, else fails naming the Debian `package`.
fn program(name: &str, fallbacks: &[&str], package: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    let in_fallbacks = fallbacks.iter().map(|dir| Path::new(dir).join(name));
    on_path.into_iter().chain(in_fallbacks).find(|path| path.is_file()).unwrap_or_else(|| {
        panic!(
            "`{name}` not found on PATH nor in {fallbacks:?}: install the Debian package {package}"
        )
    })
}

/// Runs `command` to completion, panicking with its output when it fails.
async fn run_to_completion(command: Command) {
    let description = format!("{command:?}");
    let output = tokio::process::Command::from(command).output().await.unwrap();
    assert!(
        output.status.success(),
        "{description} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `redis-server` on 127.0.0.1.
pub(crate) struct RedisServer {
    /// The port it listens on.
    pub(crate) port: u16,
    _process: ServerProcess,
}

/// Starts `redis-server` without persistence, plus `extra_args` (e.g. `--requirepass`,
/// `--replicaof`), and waits until it accepts connections.
pub(crate) async fn start_redis(extra_args: &[&str]) -> RedisServer {
    let binary = program("redis-server", &["/usr/bin"], "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly"])
        .args(["no", "--dir"])
        .arg(dir.path())
        .args(extra_args);
    let mut process = ServerProcess::spawn(command, "KILL", dir);
    process
        .wait_until_ready(|| async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
    RedisServer { port, _process: process }
}

/// Where Debian installs PostgreSQL's server programs, newest version first.
fn postgres_bin_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().join("bin").display().to_string())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_unstable_by(|a, b| b.cmp(a));
    dirs
}

/// Returns whether this process runs as root (real uid 0), as `/proc/self/status` tells.
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
    })
}

/// Runs `program` as `nobody` when we are root (PostgreSQL refuses to run as root), else as us.
fn unprivileged(program_path: &Path) -> Command {
    if !running_as_root() {
        return Command::new(program_path);
    }
    let setpriv = program("setpriv", &["/usr/bin"], "util-linux");
    let mut command = Command::new(setpriv);
    command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]).arg(program_path);
    command
}

/// A PostgreSQL server on 127.0.0.1 whose superuser `postgres` logs in with [`Self::password`].
pub(crate) struct PostgresServer {
    /// The port it listens on.
    pub(crate) port: u16,
    /// The superuser's password (scram-sha-256).
    pub(crate) password: &'static str,
    _process: ServerProcess,
}

/// Creates a cluster (`initdb`, scram-sha-256 for every connection) in a temp dir (owned by
/// `nobody` when we are root), starts `postgres` on it and waits until the superuser can log in.
pub(crate) async fn start_postgres() -> PostgresServer {
    const PASSWORD: &str = "pg-test-secret";
    let dirs = postgres_bin_dirs();
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let initdb = program("initdb", &dirs, "postgresql");
    let postgres = program("postgres", &dirs, "postgresql");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pwfile");
    fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    if running_as_root() {
        let mut chown = Command::new("chown");
        chown.args(["-R", "nobody:nogroup"]).arg(dir.path());
        run_to_completion(chown).await;
    }
    let mut init = unprivileged(&initdb);
    init.arg("-D").arg(&data).args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync"]);
    init.arg(format!("--pwfile={}", pwfile.display()));
    run_to_completion(init).await;
    let port = free_port();
    let mut command = unprivileged(&postgres);
    command.arg("-D").arg(&data).args(["-p", &port.to_string(), "-k"]).arg(dir.path());
    command.args([
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "max_connections=20",
    ]);
    // SIGQUIT is PostgreSQL's immediate shutdown: it stops its backends, then exits.
    let mut process = ServerProcess::spawn(command, "QUIT", dir);
    process
        .wait_until_ready(|| async move {
            let mut config = tokio_postgres::Config::new();
            config.host("127.0.0.1").port(port).user("postgres").password(PASSWORD);
            match config.connect(tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    drop(client);
                    let _ = connection.await;
                    true
                }
                Err(_) => false,
            }
        })
        .await;
    PostgresServer { port, password: PASSWORD, _process: process }
}

/// A MariaDB server on 127.0.0.1 with one password-authenticated user.
pub(crate) struct MariadbServer {
    /// The port it listens on.
    pub(crate) port: u16,
    /// A user that may log in from anywhere with [`Self::password`].
    pub(crate) user: &'static str,
    /// That user's password.
    pub(crate) password: &'static str,
    /// The unix socket root logs in through (no password).
    pub(crate) socket: PathBuf,
    _process: ServerProcess,
}

impl MariadbServer {
    /// Options to connect as root through the socket: for test set-up, not for the check.
    pub(crate) fn root_over_socket(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .socket(Some(self.socket.display().to_string()))
            .user(Some("root"))
            .into()
    }
}

/// Creates a data dir (`mariadb-install-db`), starts `mariadbd` with grant tables on, waits
/// until root logs in through the socket, then creates the user `monitor` with a password.
pub(crate) async fn start_mariadb() -> MariadbServer {
    use mysql_async::prelude::Queryable;
    const USER: &str = "monitor";
    const PASSWORD: &str = "my-test-secret";
    let install = program("mariadb-install-db", &["/usr/bin", "/usr/sbin"], "mariadb-server");
    let mariadbd = program("mariadbd", &["/usr/sbin"], "mariadb-server");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("mysqld.sock");
    let mut init = Command::new(install);
    init.arg("--no-defaults").arg(format!("--datadir={}", data.display()));
    init.args(["--auth-root-authentication-method=normal", "--user=root", "--skip-test-db"]);
    run_to_completion(init).await;
    let port = free_port();
    let mut command = Command::new(mariadbd);
    command.arg("--no-defaults").arg(format!("--datadir={}", data.display()));
    command.arg(format!("--socket={}", socket.display()));
    command.arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()));
    command.args([&format!("--port={port}"), "--bind-address=127.0.0.1", "--user=root"]);
    command.args(["--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M"]);
    // The data dir is thrown away, so there is nothing to shut down cleanly.
    let mut process = ServerProcess::spawn(command, "KILL", dir);
    let root = mysql_async::OptsBuilder::default()
        .socket(Some(socket.display().to_string()))
        .user(Some("root"));
    let root: mysql_async::Opts = root.into();
    process
        .wait_until_ready(|| {
            let root = root.clone();
            async move {
                match mysql_async::Conn::new(root).await {
                    Ok(conn) => conn.disconnect().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
    let mut conn = mysql_async::Conn::new(root).await.unwrap();
    conn.query_drop(format!("CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")).await.unwrap();
    conn.disconnect().await.unwrap();
    MariadbServer { port, user: USER, password: PASSWORD, socket, _process: process }
}
