//! Heroku dyno actions through the Platform API: `heroku-restart-dyno`,
//! `heroku-restart-all-dynos` and `heroku-scale-out`.
//!
//! Every request carries `Accept: application/vnd.heroku+json; version=3` and a bearer API key
//! (<https://devcenter.heroku.com/articles/platform-api-reference#clients>). Restarts are
//! `DELETE /apps/{app}/dynos/{dyno}` and `DELETE /apps/{app}/dynos`, answered 202 `{}`; scaling
//! is `PATCH /apps/{app}/formation/{process_type}` with `{"quantity": N}`, answered 200 with the
//! formation (`#dyno-restart`, `#dyno-restart-all` and `#formation-update` on that page).
//! Errors come as `{"id": "not_found", "message": …}`.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::api::{self, ApiCall, Body};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
};

/// The real API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.heroku.com";
/// The media type selecting version 3 of the Platform API.
pub const ACCEPT: &str = "application/vnd.heroku+json; version=3";
/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_key"];
/// Largest accepted `quantity` of `heroku-scale-out`.
pub const MAX_QUANTITY: u32 = 100;

/// Serde default of `api_base_url`.
pub fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

fn default_process_type() -> String {
    "web".into()
}

/// Checks an app name as Heroku allows it: a lowercase letter, then 2 to 29 lowercase letters,
/// digits or dashes.
fn validate_app(app: &str) -> Result<(), ConfigError> {
    let mut chars = app.chars();
    let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(first_is_letter && rest_ok && (3..=30).contains(&app.len())) {
        let message = "must be 3 to 30 lowercase letters, digits or dashes, starting with a letter";
        return Err(ConfigError::invalid("app", message));
    }
    Ok(())
}

/// Checks a dyno name (`web.1`) or id, or a process type name (`web`, `worker_2`): 1 to 64
/// letters, digits, `_`, `-` or `.`, starting with a letter or digit (it becomes a path segment).
fn validate_name(field: &str, name: &str, allow_dot: bool) -> Result<(), ConfigError> {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (allow_dot && c == '.');
    let starts_well = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(starts_well && name.len() <= 64 && name.chars().all(allowed)) {
        let dot = if allow_dot { ", `.`" } else { "" };
        let message = format!(
            "must be 1 to 64 letters, digits, `_`, `-`{dot}, starting with a letter or digit"
        );
        return Err(ConfigError::invalid(field, message));
    }
    Ok(())
}

/// Checks the base URL and the timeout; returns the base URL.
fn validate_endpoint(api_base_url: &str, timeout_ms: u64) -> Result<Url, ConfigError> {
    let base = api::parse_base_url(api_base_url)?;
    api::validate_timeout_ms(timeout_ms)?;
    Ok(base)
}

/// Config of `heroku-restart-dyno`: restarts one dyno (`web.1`), or every dyno of a process
/// type when given its name (`web`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartDynoConfig {
    /// Heroku API key or OAuth token; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub api_key: Secret,
    /// The app's name.
    #[schemars(length(min = 3, max = 30))]
    pub app: String,
    /// The dyno's name (`web.1`) or id; a process type name (`web`) restarts all its dynos.
    #[schemars(length(min = 1, max = 64))]
    pub dyno: String,
    /// Base URL of the Heroku Platform API (a proxy or a compatible API).
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for RestartDynoConfig {
    const NAME: &'static str = "heroku-restart-dyno";
    const DESCRIPTION: &'static str = "restart one dyno of a Heroku app";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let base = self.checked()?;
        let url = api::endpoint(&base, &format!("apps/{}/dynos/{}", self.app, self.dyno));
        let detail = format!("restart of dyno {} of {}", self.dyno, self.app);
        Ok(HerokuReaction::new(
            Self::NAME,
            Self::EFFECT,
            context,
            &self.api_key,
            url,
            self.timeout_ms,
        )
        .boxed(HerokuRequest::Restart, detail))
    }
}

impl RestartDynoConfig {
    fn checked(&self) -> Result<Url, ConfigError> {
        api::validate_token("api_key", self.api_key.expose())?;
        validate_app(&self.app)?;
        validate_name("dyno", &self.dyno, true)?;
        validate_endpoint(&self.api_base_url, self.timeout_ms)
    }
}

/// Config of `heroku-restart-all-dynos`: restarts every dyno of an app.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartAllDynosConfig {
    /// Heroku API key or OAuth token; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub api_key: Secret,
    /// The app's name.
    #[schemars(length(min = 3, max = 30))]
    pub app: String,
    /// Base URL of the Heroku Platform API (a proxy or a compatible API).
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for RestartAllDynosConfig {
    const NAME: &'static str = "heroku-restart-all-dynos";
    const DESCRIPTION: &'static str = "restart every dyno of a Heroku app";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let base = self.checked()?;
        let url = api::endpoint(&base, &format!("apps/{}/dynos", self.app));
        let detail = format!("restart of all dynos of {}", self.app);
        Ok(HerokuReaction::new(
            Self::NAME,
            Self::EFFECT,
            context,
            &self.api_key,
            url,
            self.timeout_ms,
        )
        .boxed(HerokuRequest::Restart, detail))
    }
}

impl RestartAllDynosConfig {
    fn checked(&self) -> Result<Url, ConfigError> {
        api::validate_token("api_key", self.api_key.expose())?;
        validate_app(&self.app)?;
        validate_endpoint(&self.api_base_url, self.timeout_ms)
    }
}

/// Config of `heroku-scale-out`: sets how many dynos of a process type run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleOutConfig {
    /// Heroku API key or OAuth token; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub api_key: Secret,
    /// The app's name.
    #[schemars(length(min = 3, max = 30))]
    pub app: String,
    /// The process type to scale, as the Procfile names it.
    #[serde(default = "default_process_type")]
    #[schemars(length(min = 1, max = 64))]
    pub process_type: String,
    /// How many dynos of that type should run, 1 to 100.
    #[schemars(range(min = 1, max = 100))]
    pub quantity: u32,
    /// Base URL of the Heroku Platform API (a proxy or a compatible API).
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for ScaleOutConfig {
    const NAME: &'static str = "heroku-scale-out";
    const DESCRIPTION: &'static str = "set the number of dynos of a Heroku process type";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let base = self.checked()?;
        let path = format!("apps/{}/formation/{}", self.app, self.process_type);
        let url = api::endpoint(&base, &path);
        let detail = format!("{} of {}", self.process_type, self.app);
        Ok(HerokuReaction::new(
            Self::NAME,
            Self::EFFECT,
            context,
            &self.api_key,
            url,
            self.timeout_ms,
        )
        .boxed(HerokuRequest::Scale { quantity: self.quantity }, detail))
    }
}

impl ScaleOutConfig {
    fn checked(&self) -> Result<Url, ConfigError> {
        api::validate_token("api_key", self.api_key.expose())?;
        validate_app(&self.app)?;
        validate_name("process_type", &self.process_type, false)?;
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            let message = format!("must be between 1 and {MAX_QUANTITY}");
            return Err(ConfigError::invalid("quantity", message));
        }
        validate_endpoint(&self.api_base_url, self.timeout_ms)
    }
}

/// What a Heroku reaction asks for.
#[derive(Debug, Clone, Copy)]
enum HerokuRequest {
    /// `DELETE` the URL: restart.
    Restart,
    /// `PATCH` the formation with a quantity.
    Scale { quantity: u32 },
}

/// A runnable Heroku reaction: one request to the Platform API.
#[derive(Debug)]
pub struct HerokuReaction {
    kind: &'static str,
    effect: Effect,
    http: crate::egress::GuardedClient,
    api_key: Secret,
    url: Url,
    request: HerokuRequest,
    /// What was done, for the detail (`restart of dyno web.1 of shop`, `web of shop`).
    detail: String,
    timeout_ms: u64,
}

impl HerokuReaction {
    /// Builds a reaction calling `url`; [`HerokuReaction::boxed`] sets what it asks for.
    fn new(
        kind: &'static str,
        effect: Effect,
        context: &ReactionContext,
        api_key: &Secret,
        url: Url,
        timeout_ms: u64,
    ) -> Self {
        Self {
            kind,
            effect,
            http: context.http.clone(),
            api_key: api_key.clone(),
            url,
            request: HerokuRequest::Restart,
            detail: String::new(),
            timeout_ms,
        }
    }

    fn boxed(self, request: HerokuRequest, detail: String) -> Box<dyn Reaction> {
        Box::new(Self { request, detail, ..self })
    }
}

#[async_trait::async_trait]
impl Reaction for HerokuReaction {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn effect(&self) -> Effect {
        self.effect
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let (method, body) = match self.request {
            HerokuRequest::Restart => (reqwest::Method::DELETE, Body::Empty),
            HerokuRequest::Scale { quantity } => {
                (reqwest::Method::PATCH, Body::Json(serde_json::json!({"quantity": quantity})))
            }
        };
        let answer = ApiCall::new(self.kind, &self.http, method, self.url.clone(), self.timeout_ms)
            .header("Accept", ACCEPT)
            .bearer(self.api_key.expose())
            .body(body)
            .send()
            .await
            .map_err(|error| api::quote_message(error, api_message))?;
        let status = answer.status;
        match self.request {
            HerokuRequest::Restart => {
                Ok(Fired::Executed(format!("HTTP {status}, {} requested", self.detail)))
            }
            HerokuRequest::Scale { quantity } => {
                let formation = answer.json(self.kind)?;
                let quantity = formation["quantity"].as_u64().unwrap_or(quantity.into());
                let size = formation["size"].as_str().map(|size| format!(" ({size})"));
                let detail = &self.detail;
                let size = size.unwrap_or_default();
                Ok(Fired::Executed(format!("HTTP {status}, {detail} at {quantity} dynos{size}")))
            }
        }
    }
}

/// Picks the `message` of a Heroku error body (`{"id": "not_found", "message": …}`).
pub fn api_message(json: &serde_json::Value) -> Option<String> {
    json["message"].as_str().map(str::to_owned)
}

#[cfg(test)]
#[path = "heroku_tests.rs"]
mod tests;
