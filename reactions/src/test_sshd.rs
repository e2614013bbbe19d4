//! A real OpenSSH server (Debian's `openssh-server`) for the SSH reactions' tests: each test
//! starts its own `sshd` on 127.0.0.1 and a free port, with a host key and authorized keys it
//! generated, and stops it by its pid.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// A key pair as `ssh-keygen` writes it.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The private key file's text.
    pub private: String,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub public: String,
}

impl KeyPair {
    /// Returns the base64 body of the public key: key material no message may show.
    pub fn public_material(&self) -> &str {
        self.public.split_whitespace().nth(1).unwrap()
    }
}

fn require(binary: &str, package: &str) {
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install the Debian package {package} \
         (apt-get install -y --no-install-recommends {package})"
    );
}

/// Generates a key pair of `kind` (`ed25519`, `rsa`, `ecdsa`) under `dir/name`.
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> KeyPair {
    require(SSH_KEYGEN, "openssh-client");
    let path = dir.join(name);
    let mut command = Command::new(SSH_KEYGEN);
    command.args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"]).arg(&path);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    if !passphrase.is_empty() {
        // Few KDF rounds: the tests run unoptimised code.
        command.args(["-a", "2"]);
    }
    let status = command.stdin(Stdio::null()).status().unwrap();
    assert!(status.success(), "ssh-keygen -t {kind} failed");
    KeyPair {
        private: std::fs::read_to_string(&path).unwrap(),
        public: std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_owned(),
    }
}

/// A running `sshd`; dropping it kills it by its pid.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its public host key (the first of `host_key_kinds`).
    pub host_key: KeyPair,
    log: PathBuf,
}

impl Sshd {
    /// Starts `sshd` with `name` as its file prefix in `dir`, ed25519 host key, accepting
    /// `authorized` public keys for any user; `extra` lines come first in its config (the
    /// first value of a keyword wins).
    pub async fn start(dir: &Path, name: &str, authorized: &[&str], extra: &str) -> Self {
        Self::start_with_host_keys(dir, name, &["ed25519"], authorized, extra).await
    }

    /// As [`Sshd::start`], with one host key of each of `host_key_kinds`.
    pub async fn start_with_host_keys(
        dir: &Path,
        name: &str,
        host_key_kinds: &[&str],
        authorized: &[&str],
        extra: &str,
    ) -> Self {
        require(SSHD, "openssh-server");
        // The privilege separation directory sshd insists on.
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut host_keys = Vec::new();
        let mut host_key_lines = String::new();
        for kind in host_key_kinds {
            let key_name = format!("{name}_host_{kind}");
            host_keys.push(keygen(dir, &key_name, kind, ""));
            host_key_lines.push_str(&format!("HostKey {}\n", dir.join(&key_name).display()));
        }
        let authorized_keys = dir.join(format!("{name}_authorized_keys"));
        std::fs::write(&authorized_keys, authorized.join("\n") + "\n").unwrap();
        let config = dir.join(format!("{name}_sshd_config"));
        std::fs::write(
            &config,
            format!(
                "{extra}\nListenAddress 127.0.0.1\n{host_key_lines}PidFile none\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin yes\nAuthorizedKeysFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
                authorized_keys.display()
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}_sshd.log"));
        let host_key = host_keys.swap_remove(0);
        // A free port may be taken between asking and binding: then try another.
        for _ in 0..3 {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut sshd = Self { child, port, host_key: host_key.clone(), log: log.clone() };
            match sshd.wait_until_listening().await {
                Ok(()) => return sshd,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("sshd did not start:\n{log}"),
            }
        }
        panic!("sshd found no free port in 3 tries");
    }

    async fn wait_until_listening(&mut self) -> Result<(), String> {
        let listening = format!("Server listening on 127.0.0.1 port {}", self.port);
        for _ in 0..500 {
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.log());
            }
            if self.log().contains(&listening) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("not listening within 5 s:\n{}", self.log()))
    }

    /// Returns what sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // By pid: Child::kill signals exactly this process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
