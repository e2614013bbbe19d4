//! A valid example config for every check and reaction type that has secret fields, with a
//! fresh canary string in each secret field it can set, and every address pointing at a
//! closed port on loopback (so reactions fire and fail fast).

use std::process::Command;

use serde_json::{Value, json};

/// Hands out unique canary strings and remembers them.
pub struct Canaries {
    seed: u64,
    /// Every canary handed out: none may come back out of the node.
    pub all: Vec<String>,
}

impl Canaries {
    /// A set whose canaries share a random prefix.
    pub fn new() -> Canaries {
        Canaries { seed: rand::random::<u64>(), all: Vec::new() }
    }

    /// A new canary: 32 hexadecimal digits (valid as a token, a key or a password).
    pub fn next(&mut self) -> String {
        let canary =
            format!("{:016x}{:016x}", self.seed, 0x00c0_ffee_0000_u64 + self.all.len() as u64);
        self.all.push(canary.clone());
        canary
    }

    /// Records text that must not come back out (a private key's body).
    pub fn keep(&mut self, text: &str) {
        self.all.push(text.to_owned());
    }
}

/// An SSH key pair made with `ssh-keygen`, its private half encrypted with a canary.
pub struct SshKey {
    /// OpenSSH private key text.
    pub private: String,
    /// The passphrase it is encrypted with.
    pub passphrase: String,
    /// OpenSSH public key line (used as a host key).
    pub public: String,
}

impl SshKey {
    /// Generates a key encrypted with a new canary; the key's body is a canary too.
    pub fn generate(canaries: &mut Canaries) -> SshKey {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        let passphrase = canaries.next();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", &passphrase, "-C", "canary", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen (Debian package openssh-client, installed by scripts/test.sh)");
        assert!(status.success(), "ssh-keygen failed");
        let private = std::fs::read_to_string(&path).expect("private key");
        let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
        // The second line of the body is unique to this key.
        canaries.keep(private.lines().nth(1).expect("a key body"));
        SshKey { private, passphrase, public: public.trim().to_owned() }
    }
}

/// Returns a valid monitor `check` object of `kind` with canaries in its secret fields, or
/// `None` when the table has no entry.
pub fn check(kind: &str, c: &mut Canaries, closed: u16) -> Option<Value> {
    let password = c.next();
    Some(match kind {
        "mysql" => json!({"host": "127.0.0.1", "port": closed, "user": "u", "password": password}),
        "postgres" => json!({
            "host": "127.0.0.1", "port": closed, "user": "u", "password": password,
            "database": "d",
        }),
        "redis" => json!({"url": format!("redis://127.0.0.1:{closed}"), "password": password}),
        "slack-webhook" => json!({"token": password}),
        _ => return None,
    })
    .map(|fields| with_type(kind, fields))
}

/// Returns a valid reaction `action` object of `kind` with canaries in its secret fields, or
/// `None` when the table has no entry.
pub fn action(kind: &str, c: &mut Canaries, closed: u16) -> Option<Value> {
    let base = format!("http://127.0.0.1:{closed}");
    let fields = match kind {
        "aws-ec2restart" | "aws-ec2start" | "aws-ec2stop" => json!({
            "region": "us-east-1", "access_key_id": "AKIDCANARY",
            "secret_access_key": c.next(), "session_token": c.next(),
            "instance_ids": ["i-0123456789abcdef0"], "api_base_url": base, "timeout_ms": 2000,
        }),
        "cloudflare-dns-failover" => json!({
            "zone_id": "023e105f4ecef8ad9ca31a8372d0c353", "failed_ip": "192.0.2.1",
            "standby_ip": "198.51.100.7", "api_token": c.next(), "api_base_url": base,
            "timeout_ms": 2000,
        }),
        "cloudflare-rec-add" | "cloudflare-rec-update" => json!({
            "zone_id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "www.example.com",
            "record_type": "A", "content": "198.51.100.7", "api_token": c.next(),
            "api_base_url": base, "timeout_ms": 2000,
        }),
        "cloudflare-rec-remove" => json!({
            "zone_id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "www.example.com",
            "record_type": "A", "api_token": c.next(), "api_base_url": base, "timeout_ms": 2000,
        }),
        "digitalocean-powercycle"
        | "digitalocean-poweroff"
        | "digitalocean-poweron"
        | "digitalocean-reboot"
        | "digitalocean-shutdown"
        | "digitalocean-snapshot" => json!({
            "api_token": c.next(), "droplet_id": 42, "api_base_url": base, "timeout_ms": 2000,
        }),
        "digitalocean-assign-floatingip" => json!({
            "api_token": c.next(), "floating_ip": "45.55.96.47", "droplet_id": 42,
            "api_base_url": base, "timeout_ms": 2000,
        }),
        "docker-pull-image" => json!({
            "endpoint": base, "image": "nginx", "registry_username": "u",
            "registry_password": c.next(), "timeout_ms": 2000,
        }),
        "email-notification" => json!({
            "to": ["ops@example.com"], "timeout_ms": 2000,
            "smtp": {"host": "127.0.0.1", "port": closed, "security": "starttls",
                     "from": "cr@example.com", "username": "u", "password": c.next()},
        }),
        "execute-shell-command" | "linux-manage-services" => {
            let target = SshKey::generate(c);
            let bastion = SshKey::generate(c);
            let mut fields = json!({
                "host": "127.0.0.1", "port": closed, "user": "root",
                "private_key": target.private, "passphrase": target.passphrase,
                "host_key": target.public, "timeout_ms": 2000,
                "jump": {"host": "127.0.0.1", "port": closed, "user": "jump",
                         "private_key": bastion.private, "passphrase": bastion.passphrase,
                         "host_key": bastion.public},
            });
            let extra = if kind == "execute-shell-command" {
                json!({"command": "uptime"})
            } else {
                json!({"service": "nginx", "action": "restart"})
            };
            fields.as_object_mut()?.extend(extra.as_object()?.clone());
            fields
        }
        "heroku-restart-all-dynos" => json!({
            "api_key": c.next(), "app": "shop", "api_base_url": base, "timeout_ms": 2000,
        }),
        "heroku-restart-dyno" => json!({
            "api_key": c.next(), "app": "shop", "dyno": "web.1", "api_base_url": base,
            "timeout_ms": 2000,
        }),
        "heroku-scale-out" => json!({
            "api_key": c.next(), "app": "shop", "process_type": "web", "quantity": 2,
            "api_base_url": base, "timeout_ms": 2000,
        }),
        "http-webhook" => json!({
            "url": format!("{base}/hook"), "headers": {"Authorization": c.next()},
            "timeout_ms": 2000,
        }),
        "linode-boot" | "linode-reboot" | "linode-shutdown" => json!({
            "api_token": c.next(), "linode_id": 123, "api_base_url": base, "timeout_ms": 2000,
        }),
        "pagerduty-notification" => json!({
            "routing_key": c.next(), "api_base_url": base, "timeout_ms": 2000,
        }),
        "saltstack-cmdrun" => salt(c, &base, json!({"command": "uptime"})),
        "saltstack-generic" => salt(c, &base, json!({"fun": "test.ping"})),
        "saltstack-highstate" => salt(c, &base, json!({})),
        "saltstack-services" => salt(c, &base, json!({"service": "nginx", "action": "restart"})),
        "slack-webhook" => json!({
            "webhook_url": format!("{base}/services/{}", c.next()), "timeout_ms": 2000,
        }),
        "stathat" => json!({"ezkey": c.next(), "api_base_url": base, "timeout_ms": 2000}),
        "twilio-sms-notification" => json!({
            "account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": c.next(),
            "from": "+15017122661", "to": ["+15558675310"], "api_base_url": base,
            "timeout_ms": 2000,
        }),
        _ => return None,
    };
    Some(with_type(kind, fields))
}

fn salt(c: &mut Canaries, base: &str, extra: Value) -> Value {
    let mut fields = json!({
        "api_base_url": base, "username": "u", "password": c.next(), "target": "web*",
        "timeout_ms": 2000,
    });
    if let (Some(fields), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
        fields.extend(extra.clone());
    }
    fields
}

fn with_type(kind: &str, mut fields: Value) -> Value {
    if let Some(map) = fields.as_object_mut() {
        map.insert("type".into(), kind.into());
    }
    fields
}
