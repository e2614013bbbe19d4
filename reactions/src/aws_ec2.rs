//! What `aws-ec2restart`, `aws-ec2start` and `aws-ec2stop` share: one call of the EC2 Query API
//! on a list of instances, signed with AWS Signature Version 4, and its XML answer.
//!
//! The request (EC2 API Reference, <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/>:
//! "Query requests for Amazon EC2" and the `RebootInstances`, `StartInstances` and
//! `StopInstances` pages): `POST https://ec2.{region}.amazonaws.com/` with the form body
//! `Action=StopInstances&Version=2016-11-15&InstanceId.1=i-…` and `Content-Type:
//! application/x-www-form-urlencoded; charset=utf-8`, signed by `aws-sigv4` for service `ec2`
//! in the configured region (`Authorization: AWS4-HMAC-SHA256 Credential=…`, `X-Amz-Date`, and
//! `X-Amz-Security-Token` for temporary credentials).
//!
//! The answer is XML: `<RebootInstancesResponse>…<return>true</return>`, or for start and stop
//! an `<instancesSet>` whose items carry `<instanceId>`, `<previousState><name>` and
//! `<currentState><name>`. Errors come as `<Response><Errors><Error><Code>…</Code><Message>…`
//! with a 4xx or 5xx status (EC2 API Reference, "Error codes"). The few fields needed are read
//! with plain string search: the answers are flat and machine-written.
//!
//! Each type's config is its own file; they lend their fields to [`Fields`].

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::api::{self, ApiCall, Body, tidy};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

/// Fields of every EC2 type whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["secret_access_key", "session_token"];
/// Most instances one reaction acts on.
pub const MAX_INSTANCES: usize = 20;
/// The EC2 API version the requests name.
pub const API_VERSION: &str = "2016-11-15";
/// The content type of the signed form body.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The service name in the signature's credential scope.
const SERVICE: &str = "ec2";

/// The EC2 action a reaction type calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `RebootInstances`.
    Reboot,
    /// `StartInstances`.
    Start,
    /// `StopInstances`, with `Force=true` when `force`.
    Stop {
        /// Forces the instances to stop without flushing file system caches.
        force: bool,
    },
}

impl Action {
    /// Returns the Query API action name, e.g. `StopInstances`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reboot => "RebootInstances",
            Self::Start => "StartInstances",
            Self::Stop { .. } => "StopInstances",
        }
    }

    /// Returns the reaction type name, e.g. `aws-ec2stop`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Reboot => "aws-ec2restart",
            Self::Start => "aws-ec2start",
            Self::Stop { .. } => "aws-ec2stop",
        }
    }

    /// Returns whether a repeat run is harmless: only starting is.
    pub fn effect(self) -> Effect {
        match self {
            Self::Start => Effect::Idempotent,
            Self::Reboot | Self::Stop { .. } => Effect::Destructive,
        }
    }
}

/// The config of `aws-ec2restart` and `aws-ec2start`: credentials, region and instances.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Instances {
    /// AWS region of the instances, e.g. `us-east-1`.
    pub region: String,
    /// Access key id of an IAM identity allowed the action (`ec2:RebootInstances`, `ec2:StartInstances`), e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// Secret access key of that access key id; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub secret_access_key: Secret,
    /// Session token of temporary credentials (from STS), if any; write-only.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub session_token: Option<Secret>,
    /// Instances to act on, 1 to 20 ids like `i-0123456789abcdef0`.
    #[schemars(length(min = 1, max = 20))]
    pub instance_ids: Vec<String>,
    /// EC2 endpoint to call instead of `https://ec2.{region}.amazonaws.com` (a proxy, a VPC
    /// endpoint, a compatible API); requests are signed for its host.
    #[serde(default)]
    #[schemars(url)]
    pub api_base_url: Option<String>,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl Instances {
    /// Returns the fields the EC2 types share.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            region: &self.region,
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            session_token: self.session_token.as_ref(),
            instance_ids: &self.instance_ids,
            api_base_url: self.api_base_url.as_deref(),
            timeout_ms: self.timeout_ms,
        }
    }
}

/// The fields every EC2 type has, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// `region`.
    pub region: &'a str,
    /// `access_key_id`.
    pub access_key_id: &'a str,
    /// `secret_access_key`.
    pub secret_access_key: &'a Secret,
    /// `session_token`.
    pub session_token: Option<&'a Secret>,
    /// `instance_ids`.
    pub instance_ids: &'a [String],
    /// `api_base_url`.
    pub api_base_url: Option<&'a str>,
    /// `timeout_ms`.
    pub timeout_ms: u64,
}

impl Fields<'_> {
    /// Checks every field in config order and returns the endpoint to call.
    ///
    /// # Errors
    /// Names the first invalid field; messages never quote a secret.
    pub fn validate(&self) -> Result<Url, ConfigError> {
        validate_region(self.region)?;
        validate_access_key_id(self.access_key_id)?;
        validate_secret("secret_access_key", self.secret_access_key)?;
        if let Some(token) = self.session_token {
            validate_secret("session_token", token)?;
        }
        validate_instance_ids(self.instance_ids)?;
        let endpoint = match self.api_base_url {
            Some(url) => api::parse_base_url(url)?,
            None => api::parse_base_url(&regional_endpoint(self.region))?,
        };
        api::validate_timeout_ms(self.timeout_ms)?;
        Ok(endpoint)
    }

    /// Builds the runnable reaction for `action`.
    ///
    /// # Errors
    /// As [`Fields::validate`].
    pub fn build(
        &self,
        action: Action,
        context: &ReactionContext,
    ) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(Ec2Reaction::new(action, self, context)?))
    }
}

/// Returns the EC2 endpoint of `region`: `https://ec2.{region}.amazonaws.com`, under
/// `amazonaws.com.cn` for the China regions.
pub fn regional_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://ec2.{region}.{domain}")
}

/// Accepts region names like `us-east-1`, `us-gov-west-1` or `ap-southeast-2`.
fn validate_region(region: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = region.split('-').collect();
    let letters = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    let valid = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(letters)
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return Err(ConfigError::invalid("region", "must be an aws region name like us-east-1"));
    }
    Ok(())
}

fn validate_access_key_id(id: &str) -> Result<(), ConfigError> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let message = "must be 1 to 128 letters and digits, like AKIAIOSFODNN7EXAMPLE";
        return Err(ConfigError::invalid("access_key_id", message));
    }
    Ok(())
}

/// Secrets go into a signature or a header: printable ASCII without spaces.
fn validate_secret(field: &str, secret: &Secret) -> Result<(), ConfigError> {
    let value = secret.expose();
    if value.is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(field, "must be printable ascii without spaces"));
    }
    Ok(())
}

fn validate_instance_ids(ids: &[String]) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::invalid("instance_ids", message);
    if ids.is_empty() || ids.len() > MAX_INSTANCES {
        return Err(invalid(format!("must list 1 to {MAX_INSTANCES} instance ids")));
    }
    for (index, id) in ids.iter().enumerate() {
        let hex = id.strip_prefix("i-").unwrap_or("");
        let valid = matches!(hex.len(), 8 | 17)
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            let message = format!(
                "`{id}` is not an instance id: `i-` and 8 or 17 lowercase hex digits, \
                 like i-0123456789abcdef0"
            );
            return Err(invalid(message));
        }
        if ids[..index].contains(id) {
            return Err(invalid(format!("`{id}` is listed twice")));
        }
    }
    Ok(())
}

/// A runnable EC2 reaction.
#[derive(Debug)]
pub struct Ec2Reaction {
    action: Action,
    http: crate::egress::GuardedClient,
    endpoint: Url,
    region: String,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    instance_ids: Vec<String>,
    timeout_ms: u64,
    /// The signing time (the tests pin it).
    clock: fn() -> SystemTime,
}

impl Ec2Reaction {
    /// Validates `fields` and builds the reaction on the node's shared HTTP client.
    ///
    /// # Errors
    /// As [`Fields::validate`].
    pub fn new(
        action: Action,
        fields: &Fields<'_>,
        context: &ReactionContext,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            action,
            http: context.http.clone(),
            endpoint: fields.validate()?,
            region: fields.region.to_owned(),
            access_key_id: fields.access_key_id.to_owned(),
            secret_access_key: fields.secret_access_key.clone(),
            session_token: fields.session_token.cloned(),
            instance_ids: fields.instance_ids.to_vec(),
            timeout_ms: fields.timeout_ms,
            clock: SystemTime::now,
        })
    }

    /// Returns the form body: `Action=…&Version=2016-11-15&InstanceId.1=…[&Force=true]`.
    fn form_body(&self) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", self.action.name()).append_pair("Version", API_VERSION);
        for (index, id) in self.instance_ids.iter().enumerate() {
            form.append_pair(&format!("InstanceId.{}", index + 1), id);
        }
        if self.action == (Action::Stop { force: true }) {
            form.append_pair("Force", "true");
        }
        form.finish()
    }

    fn failed(&self, message: String) -> ReactionError {
        ReactionError::Failed { kind: self.action.kind(), message }
    }

    /// Returns the headers that sign a `POST` of `body` at `at`, as (name, value, secret):
    /// `x-amz-date`, `authorization` and, with a session token, `x-amz-security-token`.
    fn signature_headers(
        &self,
        body: &str,
        at: SystemTime,
    ) -> Result<Vec<(&'static str, String, bool)>, ReactionError> {
        let token = self.session_token.as_ref().map(|t| t.expose().to_owned());
        let credentials = Credentials::new(
            self.access_key_id.as_str(),
            self.secret_access_key.expose(),
            token,
            None,
            "cloudroutes",
        );
        let identity = Identity::from(credentials);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| self.failed(format!("cannot sign the request: {error}")))?;
        let request = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            [("content-type", CONTENT_TYPE)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .and_then(|request| sign(request, &params.into()))
        .map_err(|error| self.failed(format!("cannot sign the request: {error}")))?;
        let (instructions, _signature) = request.into_parts();
        let headers = instructions.into_parts().0.into_iter();
        Ok(headers
            .map(|h| (h.name(), h.value().to_owned(), h.sensitive() || h.name() == "authorization"))
            .collect())
    }

    /// Returns `text` with the secret key and session token replaced by `***`, should an
    /// answer ever echo them.
    fn without_secrets(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let secrets = std::iter::once(&self.secret_access_key).chain(self.session_token.as_ref());
        for secret in secrets {
            text = text.replace(secret.expose(), crate::REDACTED);
        }
        text
    }

    /// Quotes an EC2 error's code and message instead of the raw XML.
    fn explain(&self, error: ReactionError) -> ReactionError {
        match error {
            ReactionError::Rejected { kind, status, body } => {
                let body = self.without_secrets(&ec2_error(&body).unwrap_or(body));
                ReactionError::Rejected { kind, status, body }
            }
            other => other,
        }
    }

    /// Describes a 2xx answer, or fails when it does not say the action was taken.
    fn describe(&self, status: u16, xml: &str) -> Result<String, ReactionError> {
        let request_id =
            element(xml, "requestId").map(|id| format!(" (request {})", unescape(id.trim())));
        let request_id = request_id.unwrap_or_default();
        let excerpt = || self.without_secrets(&tidy(xml.as_bytes()));
        if self.action == Action::Reboot {
            if element(xml, "return").map(str::trim) != Some("true") {
                let message = format!("answered HTTP {status} without <return>true</return>");
                return Err(self.failed(format!("{message}: {}", excerpt())));
            }
            let ids = self.instance_ids.join(", ");
            return Ok(format!("HTTP {status}, reboot requested for {ids}{request_id}"));
        }
        let changes = state_changes(xml);
        if changes.is_empty() {
            let message = format!("answered HTTP {status} without an instance state change");
            return Err(self.failed(format!("{message}: {}", excerpt())));
        }
        Ok(format!("HTTP {status}, {}{request_id}", changes.join(", ")))
    }
}

#[async_trait::async_trait]
impl Reaction for Ec2Reaction {
    fn kind(&self) -> &'static str {
        self.action.kind()
    }

    fn effect(&self) -> Effect {
        self.action.effect()
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let body = self.form_body();
        let signature = self.signature_headers(&body, (self.clock)())?;
        let method = reqwest::Method::POST;
        let mut call =
            ApiCall::new(self.kind(), &self.http, method, self.endpoint.clone(), self.timeout_ms)
                .body(Body::Raw { content_type: CONTENT_TYPE, bytes: body.into_bytes() });
        for (name, value, secret) in &signature {
            call = if *secret { call.secret_header(name, value) } else { call.header(name, value) };
        }
        let answer = call.send().await.map_err(|error| self.explain(error))?;
        let xml = String::from_utf8_lossy(&answer.body);
        Ok(Fired::Executed(self.describe(answer.status, &xml)?))
    }
}

/// Returns `Code: Message` of an EC2 error answer (perhaps cut short), unescaped.
fn ec2_error(xml: &str) -> Option<String> {
    let code = unescape(element(xml, "Code")?.trim());
    match element(xml, "Message") {
        Some(message) => Some(format!("{code}: {}", unescape(message.trim()))),
        None => Some(code),
    }
}

/// Returns `i-…: stopped → pending` for each item of the answer's `<instancesSet>`.
fn state_changes(xml: &str) -> Vec<String> {
    let Some(set) = element(xml, "instancesSet") else { return Vec::new() };
    let state = |item: &str, tag: &str| {
        element(item, tag).and_then(|s| element(s, "name")).map_or("?".into(), unescape)
    };
    set.split("<item>")
        .skip(1)
        .filter_map(|item| {
            let id = unescape(element(item, "instanceId")?.trim());
            let (before, now) = (state(item, "previousState"), state(item, "currentState"));
            Some(format!("{id}: {before} → {now}"))
        })
        .collect()
}

/// Returns the text of the first `<tag>` element in `xml`: up to its closing tag, or to the end
/// of an excerpt cut short.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let rest = &xml[start..];
    let end = rest.find(&format!("</{tag}>")).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Replaces XML's five predefined entities.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
#[path = "aws_ec2_sigv4_tests.rs"]
mod sigv4_tests;
#[cfg(test)]
#[path = "aws_ec2_tests.rs"]
mod tests;
