//! What the `saltstack-*` reaction types share: a login to salt-api (its `rest_cherrypy`
//! module), one lowstate command through the `local` client (what the `salt` CLI does), and
//! reading the minions' returns.
//!
//! One run is two calls (<https://docs.saltproject.io/en/latest/ref/netapi/all/salt.netapi.rest_cherrypy.html>):
//! - `POST /login` with `{"username", "password", "eauth"}`, answered
//!   `{"return": [{"token": "…", "expire": …, …}]}`;
//! - `POST /` with `X-Auth-Token: <token>` and
//!   `[{"client": "local", "tgt", "tgt_type", "fun", "arg"}]`, answered
//!   `{"return": [{"<minion id>": <its return>, …}]}`. Minions that did not answer are absent,
//!   so an empty object means that no minion matched the target (or none answered in time).
//!
//! The token is a secret: it goes only into `X-Auth-Token` (a sensitive header), is never kept
//! in the reaction, and is scrubbed, like the password, from every error.

use std::collections::BTreeMap;
use std::time::Duration;

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::api::{ApiCall, Body, endpoint, parse_base_url, tidy, validate_timeout_ms};
use crate::{ConfigError, ReactionContext, ReactionError};

mod returns;

use returns::{FAILURE_CHARS, cut};
pub use returns::{
    StateRun, excerpt, minion_error, retcode_failure, runs_states, state_failure, state_run,
};

/// Fields whose values are write-only through the API, in every `saltstack-*` type.
pub const SECRET_FIELDS: &[&str] = &["password"];
/// The minions' returns, by minion id.
pub type Returns = BTreeMap<String, Value>;

/// How many minions a detail or an error names before it only counts the rest.
const MINIONS_NAMED: usize = 10;
/// Serde default of `eauth`.
pub fn default_eauth() -> String {
    "pam".into()
}

/// How salt matches `target` against minions (salt's `tgt_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// A shell-style glob on minion ids, e.g. `web*`.
    #[default]
    Glob,
    /// Minion ids separated by commas, e.g. `web1,web2`.
    List,
    /// A grain match, e.g. `os:Debian`.
    Grain,
    /// A Perl-compatible regular expression on minion ids, e.g. `web[0-9]+`.
    Pcre,
    /// A compound matcher, e.g. `G@os:Debian and web*`.
    Compound,
}

impl TargetType {
    /// Returns the name salt expects in `tgt_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Glob => "glob",
            Self::List => "list",
            Self::Grain => "grain",
            Self::Pcre => "pcre",
            Self::Compound => "compound",
        }
    }
}

/// The connection fields every `saltstack-*` config carries, borrowed for checking.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// `api_base_url`.
    pub api_base_url: &'a str,
    /// `username`.
    pub username: &'a str,
    /// `password`.
    pub password: &'a Secret,
    /// `eauth`.
    pub eauth: &'a str,
    /// `target`.
    pub target: &'a str,
    /// `tgt_type`.
    pub tgt_type: TargetType,
    /// `timeout_ms`.
    pub timeout_ms: u64,
}

impl Connection<'_> {
    /// Checks every connection field.
    ///
    /// # Errors
    /// Names the first invalid field; messages never quote the password.
    pub fn validate(&self) -> Result<Url, ConfigError> {
        let base = parse_base_url(self.api_base_url)?;
        check_text("username", self.username, 256)?;
        if self.password.expose().is_empty() {
            return Err(ConfigError::invalid("password", "must not be empty"));
        }
        let eauth_ok = self.eauth.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if self.eauth.is_empty() || self.eauth.len() > 64 || !eauth_ok {
            let message =
                "must name an eauth backend (letters, digits, `_`), such as pam, ldap or auto";
            return Err(ConfigError::invalid("eauth", message));
        }
        check_text("target", self.target, 1024)?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(base)
    }
}

/// Checks that `value` is 1..=`max` characters with no control characters.
///
/// # Errors
/// Names `field`.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ConfigError::invalid(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A salt-api endpoint with credentials and a target: logs in and runs one function per run.
#[derive(Debug)]
pub struct SaltApi {
    kind: &'static str,
    http: crate::egress::GuardedClient,
    base: Url,
    username: String,
    password: Secret,
    eauth: String,
    target: String,
    tgt_type: TargetType,
    timeout_ms: u64,
}

impl SaltApi {
    /// Checks `connection` and builds the client of reaction type `kind`.
    ///
    /// # Errors
    /// Names the first invalid field, as [`Connection::validate`] does.
    pub fn new(
        kind: &'static str,
        connection: Connection<'_>,
        context: &ReactionContext,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            kind,
            http: context.http.clone(),
            base: connection.validate()?,
            username: connection.username.to_owned(),
            password: connection.password.clone(),
            eauth: connection.eauth.to_owned(),
            target: connection.target.to_owned(),
            tgt_type: connection.tgt_type,
            timeout_ms: connection.timeout_ms,
        })
    }

    /// Returns the target as details and errors name it: `web*`, or `os:Debian` (grain).
    pub fn target_label(&self) -> String {
        match self.tgt_type {
            TargetType::Glob => format!("`{}`", self.target),
            other => format!("`{}` ({})", self.target, other.as_str()),
        }
    }

    /// Logs in and runs `fun` with `arg` on the target, both calls within `timeout_ms`.
    ///
    /// # Errors
    /// The login or the command was refused, timed out or failed; no minion answered
    /// ([`ReactionError::Failed`] naming the target).
    pub async fn run(&self, fun: &str, arg: Vec<Value>) -> Result<Returns, ReactionError> {
        let limit = Duration::from_millis(self.timeout_ms);
        match tokio::time::timeout(limit, self.login_and_run(fun, arg)).await {
            Ok(result) => result,
            Err(_) => Err(ReactionError::Timeout { kind: self.kind, timeout_ms: self.timeout_ms }),
        }
    }

    async fn login_and_run(&self, fun: &str, arg: Vec<Value>) -> Result<Returns, ReactionError> {
        let password = self.password.expose();
        let token = self.login().await.map_err(|error| scrub(error, &[password]))?;
        let returns = self.lowstate(&token, fun, arg).await;
        returns.map_err(|error| scrub(error, &[token.expose(), password]))
    }

    fn call(&self, path: &str) -> ApiCall {
        let url = endpoint(&self.base, path);
        ApiCall::new(self.kind, &self.http, reqwest::Method::POST, url, self.timeout_ms)
            .header("accept", "application/json")
    }

    async fn login(&self) -> Result<Secret, ReactionError> {
        let credentials = json!({
            "username": self.username,
            "password": self.password.expose(),
            "eauth": self.eauth,
        });
        let answer =
            self.call("login").body(Body::Json(credentials)).send().await.map_err(|error| {
                match error {
                    ReactionError::Rejected { kind, status, body } => {
                        let (user, eauth) = (&self.username, &self.eauth);
                        let body = format!("at login as `{user}` (eauth {eauth}): {body}");
                        ReactionError::Rejected { kind, status, body }
                    }
                    other => other,
                }
            })?;
        // The answer holds the token: errors describe it, never quote it.
        let document: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let token = document.get("return").and_then(|r| r.get(0)).and_then(|r| r.get("token"));
        match token.and_then(Value::as_str) {
            Some(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(Secret::new(token))
            }
            Some(_) => Err(self.failed("login answered a token that is not a valid header value")),
            None => Err(self.failed(format!(
                "login answered HTTP {} without a token in `return[0].token`",
                answer.status
            ))),
        }
    }

    async fn lowstate(
        &self,
        token: &Secret,
        fun: &str,
        arg: Vec<Value>,
    ) -> Result<Returns, ReactionError> {
        let lowstate = json!([{
            "client": "local",
            "tgt": self.target,
            "tgt_type": self.tgt_type.as_str(),
            "fun": fun,
            "arg": arg,
        }]);
        let answer = self
            .call("")
            .secret_header("x-auth-token", token.expose())
            .body(Body::Json(lowstate))
            .send()
            .await?;
        let document = answer.json(self.kind)?;
        match document.get("return").and_then(|r| r.get(0)) {
            Some(Value::Object(minions)) if minions.is_empty() => {
                Err(self.failed(format!("no minion matched {}", self.target_label())))
            }
            Some(Value::Object(minions)) => Ok(minions.clone().into_iter().collect()),
            Some(other) => {
                Err(self.failed(format!("salt-api answered {fun} with {}", excerpt(other))))
            }
            None => Err(self.failed(format!(
                "answer has no `return` list: {}",
                tidy(document.to_string().as_bytes())
            ))),
        }
    }

    /// Returns a [`ReactionError::Failed`] of this reaction type.
    pub fn failed(&self, message: impl Into<String>) -> ReactionError {
        ReactionError::Failed { kind: self.kind, message: message.into() }
    }

    /// Returns `Failed` naming every minion `judge` finds a failure in (`fun failed on 1 of 2
    /// minions: web2: …`), or `None` when all succeeded.
    pub fn failures(
        &self,
        fun: &str,
        returns: &Returns,
        judge: impl Fn(&Value) -> Option<String>,
    ) -> Option<ReactionError> {
        let failed: Vec<_> =
            returns.iter().filter_map(|(id, value)| Some((id, judge(value)?))).collect();
        if failed.is_empty() {
            return None;
        }
        let mut named: Vec<_> = failed
            .iter()
            .take(MINIONS_NAMED)
            .map(|(id, why)| format!("{id}: {}", cut(why, FAILURE_CHARS)))
            .collect();
        if failed.len() > MINIONS_NAMED {
            named.push(format!("and {} more", failed.len() - MINIONS_NAMED));
        }
        let counts = format!("{} of {} minions", failed.len(), returns.len());
        Some(self.failed(format!("{fun} failed on {counts}: {}", named.join("; "))))
    }
}

/// Returns minion ids as a detail names them: up to ten, then how many more.
pub fn minion_names(returns: &Returns) -> String {
    let mut names: Vec<_> = returns.keys().take(MINIONS_NAMED).map(String::as_str).collect();
    let more = returns.len().saturating_sub(MINIONS_NAMED);
    let more = format!("and {more} more");
    if returns.len() > MINIONS_NAMED {
        names.push(&more);
    }
    names.join(", ")
}

/// Returns `error` with each of `secrets` in its text replaced by `***`.
fn scrub(error: ReactionError, secrets: &[&str]) -> ReactionError {
    let clean = |mut text: String| {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            text = text.replace(secret, "***");
        }
        text
    };
    match error {
        ReactionError::Transport { kind, message } => {
            ReactionError::Transport { kind, message: clean(message) }
        }
        ReactionError::Rejected { kind, status, body } => {
            ReactionError::Rejected { kind, status, body: clean(body) }
        }
        ReactionError::Failed { kind, message } => {
            ReactionError::Failed { kind, message: clean(message) }
        }
        ReactionError::SmtpRejected { kind, code, message } => {
            ReactionError::SmtpRejected { kind, code, message: clean(message) }
        }
        timeout @ ReactionError::Timeout { .. } => timeout,
    }
}

#[cfg(test)]
#[path = "saltstack_tests.rs"]
pub(crate) mod tests;
