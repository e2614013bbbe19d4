//! `docker-pull-image`: pull an image through the Docker Engine API
//! (`POST /v1.43/images/create?fromImage=NAME&tag=TAG`), optionally with registry credentials in
//! `X-Registry-Auth`. Pulling again fetches nothing new, so the reaction is
//! [`Effect::Idempotent`].
//!
//! Docker answers `200` at once and then streams one JSON object per line (`{"status": …}`);
//! a failure after that shows as a line with `error`/`errorDetail`, so the reaction reads the
//! stream to its end. If the reaction times out, closing the connection cancels the pull.
//! Reference: <https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Image/operation/ImageCreate>
//! and, for the header, the API's "Authentication" section (base64url of a JSON `AuthConfig`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use cloudroutes_engine::secret::Secret;
use hyper::header::{HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::api::tidy;
use crate::docker::{self, DockerApi, DockerResponse, Target};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["registry_password"];

const KIND: &str = "docker-pull-image";
/// Default `timeout_ms`: pulls take long, and a timeout cancels them; it matches the node's
/// default cap on a reaction run (`engine.reaction_timeout_ms`).
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Docker Hub's address in `AuthConfig`, as the docker CLI writes it.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// Longest progress line kept; Docker's are a few hundred bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
const MAX_IMAGE_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Config of a `docker-pull-image` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Docker daemon: `unix:///var/run/docker.sock` (the default) or a TCP address as
    /// `http://HOST:2375` or `https://HOST:2376` (the daemon's certificate is verified; client
    /// certificates are not supported).
    #[serde(default = "docker::default_endpoint")]
    pub endpoint: String,
    /// Docker Engine API version prefix of every request, e.g. `v1.43` (Docker 24 and later).
    #[serde(default = "docker::default_api_version")]
    pub api_version: String,
    /// The image as `docker pull` takes it: `nginx`, `nginx:1.27`,
    /// `registry.example.com:5000/team/app`, `alpine@sha256:…`.
    #[schemars(length(min = 1, max = 255))]
    pub image: String,
    /// The tag to pull when `image` names none (then `latest` by default); not both.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub tag: Option<String>,
    /// Registry user name, for private images; needs `registry_password`.
    #[serde(default)]
    pub registry_username: Option<String>,
    /// Registry password or access token; write-only.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub registry_password: Option<Secret>,
    /// Registry address sent with the credentials; by default the image's registry host, or
    /// `https://index.docker.io/v1/` for Docker Hub images.
    #[serde(default)]
    pub registry_server: Option<String>,
    /// Milliseconds the whole pull may take, 1 to 120000 (default 30000); when they run out the
    /// pull is cancelled. For large images raise it, and the node's
    /// `engine.reaction_timeout_ms`, which caps every reaction run.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "pull a docker image (optionally with registry credentials) through the docker engine api";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    /// Checks every field; messages never quote the password.
    fn validate(&self) -> Result<(), ConfigError> {
        self.parts().map(|_| ())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let (target, pull) = self.parts()?;
        Ok(Box::new(DockerPullImageReaction {
            api: DockerApi::new(KIND, target, context.http.clone()),
            pull,
        }))
    }
}

/// What to pull: the query and the optional credentials.
#[derive(Debug, Clone)]
struct Pull {
    /// `fromImage`: the image without tag or digest.
    name: String,
    /// `tag`: a tag, or a digest `sha256:…`.
    tag: String,
    /// `name:tag` or `name@digest`, for details.
    reference: String,
    /// The `X-Registry-Auth` value (marked sensitive).
    auth: Option<HeaderValue>,
}

impl Config {
    fn parts(&self) -> Result<(Target, Pull), ConfigError> {
        let target = Target::parse(&self.endpoint, &self.api_version, self.timeout_ms)?;
        let (name, embedded) = split_reference(&self.image)?;
        let (tag, reference) = match (embedded, &self.tag) {
            (Some(_), Some(_)) => {
                let message = "`image` already names a tag or digest: give it in one place";
                return Err(ConfigError::invalid("tag", message));
            }
            (Some(Embedded::Digest(digest)), None) => (digest.to_owned(), self.image.clone()),
            (Some(Embedded::Tag(tag)), None) => (tag.to_owned(), self.image.clone()),
            (None, tag) => {
                let tag = tag.as_deref().unwrap_or("latest");
                if !is_tag(tag) {
                    return Err(ConfigError::invalid(
                        "tag",
                        "must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with \
                         `.` or `-`",
                    ));
                }
                (tag.to_owned(), format!("{name}:{tag}"))
            }
        };
        let auth = self.registry_auth(name)?;
        Ok((target, Pull { name: name.to_owned(), tag, reference, auth }))
    }

    /// Returns the `X-Registry-Auth` header value: base64url (padded, as the docker CLI
    /// writes it) of `{"username", "password", "serveraddress"}`.
    fn registry_auth(&self, name: &str) -> Result<Option<HeaderValue>, ConfigError> {
        let (username, password) = match (&self.registry_username, &self.registry_password) {
            (None, None) => {
                if self.registry_server.is_some() {
                    let message = "applies only with registry_username and registry_password";
                    return Err(ConfigError::invalid("registry_server", message));
                }
                return Ok(None);
            }
            (Some(_), None) => {
                let message = "is required with registry_username";
                return Err(ConfigError::invalid("registry_password", message));
            }
            (None, Some(_)) => {
                let message = "is required with registry_password";
                return Err(ConfigError::invalid("registry_username", message));
            }
            (Some(username), Some(password)) => (username, password),
        };
        if username.is_empty() {
            return Err(ConfigError::invalid("registry_username", "must not be empty"));
        }
        if password.expose().is_empty() {
            return Err(ConfigError::invalid("registry_password", "must not be empty"));
        }
        let server = match &self.registry_server {
            Some(server) if server.trim().is_empty() => {
                return Err(ConfigError::invalid("registry_server", "must not be empty"));
            }
            Some(server) => server.clone(),
            None => registry_host(name).unwrap_or(DOCKER_HUB_SERVER).to_owned(),
        };
        let document = serde_json::json!({
            "username": username,
            "password": password.expose(),
            "serveraddress": server,
        });
        // Base64url is always a valid header value.
        let mut value = HeaderValue::from_str(&URL_SAFE.encode(document.to_string()))
            .map_err(|_| ConfigError::invalid("registry_password", "cannot be encoded"))?;
        value.set_sensitive(true);
        Ok(Some(value))
    }
}

/// A tag or digest written into `image`.
enum Embedded<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

/// Splits `image` into its name and the tag or digest it names, checking each part.
fn split_reference(image: &str) -> Result<(&str, Option<Embedded<'_>>), ConfigError> {
    let invalid = |message: &str| ConfigError::invalid("image", message);
    if image.is_empty() || image.len() > MAX_IMAGE_LEN {
        return Err(invalid("must be 1 to 255 characters"));
    }
    let (name, embedded) = if let Some((name, digest)) = image.split_once('@') {
        if !is_digest(digest) {
            return Err(invalid("has a digest that is not algorithm:hex, as in sha256:…"));
        }
        (name, Some(Embedded::Digest(digest)))
    } else {
        let last_slash = image.rfind('/').map_or(0, |i| i + 1);
        match image[last_slash..].rsplit_once(':') {
            Some((_, tag)) => {
                if !is_tag(tag) {
                    return Err(invalid("has a tag that is not letters, digits, `_`, `.`, `-`"));
                }
                (&image[..image.len() - tag.len() - 1], Some(Embedded::Tag(tag)))
            }
            None => (image, None),
        }
    };
    if !is_image_name(name) {
        return Err(invalid(
            "must be an image name such as nginx, team/app or registry.example.com:5000/team/app \
             (lowercase path parts)",
        ));
    }
    Ok((name, embedded))
}

/// Returns the registry host of `name` (its first part, when it holds `.` or `:` or is
/// `localhost`), as Docker tells a registry from a Docker Hub namespace.
fn registry_host(name: &str) -> Option<&str> {
    let (first, _) = name.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// Accepts `[HOST[:PORT]/]PATH`: PATH parts of lowercase letters, digits, `.`, `_`, `-`, each
/// starting and ending with a letter or digit.
fn is_image_name(name: &str) -> bool {
    let mut parts = name.split('/');
    if let Some(host) = registry_host(name) {
        parts.next();
        let (hostname, port) = host.split_once(':').unwrap_or((host, "1"));
        let host_ok = !hostname.is_empty()
            && hostname.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        let port_ok =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !host_ok || !port_ok {
            return false;
        }
    }
    parts.all(|part| {
        let edges_ok =
            |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        edges_ok(part.bytes().next())
            && edges_ok(part.bytes().last())
            && part.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    })
}

fn is_tag(tag: &str) -> bool {
    tag.len() <= MAX_TAG_LEN
        && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_digest(digest: &str) -> bool {
    digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && hex.len() >= 32
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A runnable `docker-pull-image` reaction.
#[derive(Debug)]
pub struct DockerPullImageReaction {
    api: DockerApi,
    pull: Pull,
}

#[async_trait::async_trait]
impl Reaction for DockerPullImageReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let deadline = self.api.deadline();
        let query = [("fromImage", self.pull.name.as_str()), ("tag", self.pull.tag.as_str())];
        let headers = self
            .pull
            .auth
            .iter()
            .map(|value| (HeaderName::from_static("x-registry-auth"), value.clone()))
            .collect();
        let mut response = self.api.post("images/create", &query, headers, deadline).await?;
        if !(200..=299).contains(&response.status) {
            return Err(response.rejection(KIND, deadline).await);
        }
        let status = response.status;
        let mut progress = Progress::default();
        let read = self.read_stream(&mut response, &mut progress);
        match tokio::time::timeout_at(deadline, read).await {
            Ok(result) => result?,
            Err(_) => return Err(self.api.timed_out()),
        }
        progress.outcome(status, &self.pull.reference)
    }
}

impl DockerPullImageReaction {
    /// Reads the progress stream to its end, line by line (lines may span chunks).
    async fn read_stream(
        &self,
        response: &mut DockerResponse,
        progress: &mut Progress,
    ) -> Result<(), ReactionError> {
        let mut line = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|message| ReactionError::Transport {
                kind: KIND,
                message: format!("the pull stream of {} broke off: {message}", self.pull.reference),
            })?;
            let Some(chunk) = chunk else { break };
            for piece in chunk.split_inclusive(|b| *b == b'\n') {
                line.extend_from_slice(piece);
                if piece.ends_with(b"\n") {
                    progress.line(&line, &self.pull.reference)?;
                    line.clear();
                } else if line.len() > MAX_LINE_BYTES {
                    let message = format!("a pull progress line exceeds {MAX_LINE_BYTES} bytes");
                    return Err(ReactionError::Failed { kind: KIND, message });
                }
            }
        }
        progress.line(&line, &self.pull.reference)
    }
}

/// What the progress stream said so far.
#[derive(Debug, Default)]
struct Progress {
    /// Lines that were JSON objects.
    messages: usize,
    /// The latest `Status: …` line (the summary Docker ends a pull with), without the prefix.
    summary: Option<String>,
    /// The `Digest: …` line's digest.
    digest: Option<String>,
    /// The start of the first line that was not JSON.
    stray: Option<String>,
}

impl Progress {
    /// Takes one line; an `error`/`errorDetail` line fails the pull.
    fn line(&mut self, line: &[u8], reference: &str) -> Result<(), ReactionError> {
        if line.trim_ascii().is_empty() {
            return Ok(());
        }
        let Ok(serde_json::Value::Object(message)) = serde_json::from_slice(line) else {
            self.stray.get_or_insert_with(|| tidy(line));
            return Ok(());
        };
        self.messages += 1;
        let text =
            |value: Option<&serde_json::Value>| value.and_then(|v| v.as_str()).map(str::to_owned);
        let detail = message.get("errorDetail").and_then(|detail| text(detail.get("message")));
        if let Some(error) = detail.or_else(|| text(message.get("error"))) {
            let message = format!("pull of {reference} failed: {}", tidy(error.as_bytes()));
            return Err(ReactionError::Failed { kind: KIND, message });
        }
        if let Some(status) = text(message.get("status")) {
            if let Some(summary) = status.strip_prefix("Status: ") {
                self.summary = Some(tidy(summary.as_bytes()));
            } else if let Some(digest) = status.strip_prefix("Digest: ") {
                self.digest = Some(tidy(digest.as_bytes()));
            }
        }
        Ok(())
    }

    /// Returns the run's outcome once the stream ended without an error line.
    fn outcome(self, status: u16, reference: &str) -> Result<Fired, ReactionError> {
        if self.messages == 0 {
            let body = self.stray.unwrap_or_default();
            let message = format!("the answer is not a docker pull progress stream: {body}");
            return Err(ReactionError::Failed { kind: KIND, message });
        }
        let mut detail = format!("HTTP {status}, pulled {reference}");
        if let Some(summary) = self.summary {
            detail.push_str(": ");
            detail.push_str(&summary);
        }
        if let Some(digest) = self.digest {
            detail.push_str(", digest ");
            detail.push_str(&digest);
        }
        Ok(Fired::Executed(detail))
    }
}

#[cfg(test)]
#[path = "docker_pull_image_tests.rs"]
mod tests;
