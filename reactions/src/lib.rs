//! CloudRoutes reaction types.
//!
//! - [`Reaction`]: the trait every reaction implements; [`Effect`] says whether running it twice
//!   is harmless (the cluster's claim policy retries only idempotent ones).
//! - [`ReactionType`]: what one type's config implements; the `registry!` table lists them all,
//!   generating [`ReactionConfig`] ([`ReactionConfig::parse`] validates a reaction's `action`
//!   object, [`ReactionConfig::build`] makes it runnable) and [`reaction_types`].
//! - [`redact`] and [`restore_secrets`]: secret fields are write-only through the API.
//! - One file per type, named after it (`http-webhook` lives in [`http_webhook`]).

use std::fmt;
use std::sync::Arc;

use cloudroutes_engine::egress::Egress;
use cloudroutes_engine::{Method, MonitorId, PluginSpec, ReactionId, Status, Timestamp};
use schemars::JsonSchema;
use serde::Serialize;

pub mod api;
pub mod aws_ec2;
pub mod aws_ec2restart;
pub mod aws_ec2start;
pub mod aws_ec2stop;
pub mod cloudflare;
pub mod cloudflare_dns_failover;
pub mod cloudflare_rec_add;
pub mod cloudflare_rec_remove;
pub mod cloudflare_rec_update;
pub mod digitalocean;
pub mod digitalocean_assign_floatingip;
pub mod digitalocean_snapshot;
pub mod docker;
pub mod docker_kill_container;
pub mod docker_pull_image;
pub mod docker_restart_container;
pub mod docker_start_container;
pub mod egress;
pub mod email_notification;
pub mod error;
pub mod execute_shell_command;
pub mod heroku;
pub mod http_webhook;
pub mod linode;
pub mod linux_manage_services;
pub mod notes;
mod notify;
pub mod pagerduty_notification;
pub mod saltstack;
pub mod saltstack_cmdrun;
pub mod saltstack_generic;
pub mod saltstack_highstate;
pub mod saltstack_services;
pub mod slack_webhook;
pub mod smtp;
#[cfg(test)]
mod smtp_test_server;
pub mod ssh;
pub mod stathat;
#[cfg(test)]
mod test_api;
#[cfg(test)]
mod test_sshd;
pub mod twilio_sms_notification;

pub use error::{ConfigError, ReactionError};
pub use notes::Notes;

/// What running a reaction twice does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Running it again is harmless (notifications, webhooks with an idempotency key, DNS sets).
    Idempotent,
    /// Running it again does harm (reboot, power cycle): never retried automatically.
    Destructive,
}

/// Everything a reaction knows about the result it answers.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// The monitor.
    pub monitor_id: MonitorId,
    /// Its name.
    pub monitor_name: String,
    /// The reaction being run.
    pub reaction_id: ReactionId,
    /// Its name.
    pub reaction_name: String,
    /// The monitor's status after the result.
    pub status: Status,
    /// The episode answered.
    pub episode: u64,
    /// The result's reason.
    pub reason: String,
    /// How the result arrived.
    pub method: Method,
    /// When the result arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// The firing's stable key (monitor, reaction, episode, phase, window): the same on a retry.
    pub idempotency_key: String,
    /// The node running the reaction.
    pub node: String,
}

/// What a successful reaction run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// The action was carried out; the detail says what answered (e.g. `HTTP 202`).
    Executed(String),
    /// The reaction chose not to act, and why.
    Skipped(String),
}

/// A runnable reaction.
#[async_trait::async_trait]
pub trait Reaction: Send + Sync + fmt::Debug {
    /// Returns the type name, e.g. `http-webhook`.
    fn kind(&self) -> &'static str;
    /// Returns whether a repeat run is harmless.
    fn effect(&self) -> Effect;
    /// Runs the reaction once for `incident`.
    ///
    /// # Errors
    /// Returns a [`ReactionError`]; [`ReactionError::is_retryable`] says whether trying again
    /// may help.
    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError>;
}

/// What every reaction on a node shares.
#[derive(Debug, Clone)]
pub struct ReactionContext {
    /// The node's pooled HTTP client for outgoing API calls, bound to its egress policy.
    pub http: egress::GuardedClient,
    /// What reactions remember between runs (the node's store; in memory until
    /// [`ReactionContext::with_notes`]).
    pub notes: Arc<dyn Notes>,
    /// The node's SMTP relay, used by `email-notification` reactions without their own (none
    /// until [`ReactionContext::with_smtp`]).
    pub smtp: Option<smtp::SmtpSettings>,
}

impl ReactionContext {
    /// Builds the shared context under the egress policy `egress` (every connection a
    /// reaction makes goes through it), with notes kept in memory.
    ///
    /// # Errors
    /// Fails when the TLS backend cannot be initialised.
    pub fn new(egress: Egress) -> Result<Self, reqwest::Error> {
        let http = egress::GuardedClient::new(Arc::new(egress))?;
        Ok(Self { http, notes: Arc::new(notes::MemoryNotes::default()), smtp: None })
    }

    /// Returns the context with `notes` keeping what reactions remember.
    #[must_use]
    pub fn with_notes(mut self, notes: Arc<dyn Notes>) -> Self {
        self.notes = notes;
        self
    }

    /// Returns the context with `smtp` as the node's relay for `email-notification` (`None`:
    /// reactions must bring their own).
    #[must_use]
    pub fn with_smtp(mut self, smtp: Option<smtp::SmtpSettings>) -> Self {
        self.smtp = smtp;
        self
    }
}

/// One reaction type: its config struct is the type. Adding a type is one file that
/// implements this trait and one line in the `registry!` table below.
pub trait ReactionType: serde::de::DeserializeOwned + JsonSchema + fmt::Debug + Clone {
    /// Type name as the API spells it, e.g. `http-webhook`.
    const NAME: &'static str;
    /// One line on what it does, as `/api/v1/reaction-types` lists it.
    const DESCRIPTION: &'static str;
    /// Whether a repeat run is harmless (the claim policy and retries depend on it), as
    /// `/api/v1/reaction-types` lists it.
    const EFFECT: Effect;
    /// Top-level config fields that are write-only: the API shows them as `"***"` (for an
    /// object field, each of its values).
    const SECRET_FIELDS: &'static [&'static str] = &[];

    /// Checks every field.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field, relative to the `action` object.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Builds the runnable reaction.
    ///
    /// # Errors
    /// Fails when the configuration cannot be turned into a reaction.
    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError>;

    /// Returns this configuration's effect: the type's [`ReactionType::EFFECT`] unless the
    /// config changes it (`linux-manage-services` restarting is destructive, starting is not).
    fn effect(&self) -> Effect {
        Self::EFFECT
    }
}

/// Declares the registry: the [`ReactionConfig`] enum, its parser and dispatch, and
/// [`reaction_types`], from one `Variant(module::Config)` line per type.
macro_rules! registry {
    ($($variant:ident($module:ident::$config:ident)),+ $(,)?) => {
        /// The registry of reaction types: one variant per type name.
        #[derive(Debug, Clone)]
        pub enum ReactionConfig {
            $(
                #[doc = concat!("`", stringify!($module), "`.")]
                $variant($module::$config),
            )+
        }

        impl ReactionConfig {
            fn from_fields(kind: &str, fields: serde_json::Value) -> Result<Self, ConfigError> {
                match kind {
                    $(<$module::$config as ReactionType>::NAME => {
                        Ok(Self::$variant(error::from_json(fields)?))
                    })+
                    other => {
                        let known: Vec<_> = reaction_types().iter().map(|t| t.name).collect();
                        Err(ConfigError::invalid(
                            "type",
                            format!(
                                "unknown reaction type `{other}`, expected one of {}",
                                known.join(", ")
                            ),
                        ))
                    }
                }
            }

            fn validate(&self) -> Result<(), ConfigError> {
                match self {
                    $(Self::$variant(c) => c.validate(),)+
                }
            }

            fn secret_fields(&self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant(_) => <$module::$config as ReactionType>::SECRET_FIELDS,)+
                }
            }

            /// Returns the type name, e.g. `http-webhook`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$module::$config as ReactionType>::NAME,)+
                }
            }

            /// Returns whether a repeat run is harmless.
            pub fn effect(&self) -> Effect {
                match self {
                    $(Self::$variant(c) => c.effect(),)+
                }
            }

            /// Builds the runnable reaction.
            ///
            /// # Errors
            /// Fails when the configuration cannot be turned into a reaction.
            pub fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
                match self {
                    $(Self::$variant(c) => c.build(context),)+
                }
            }
        }

        /// Returns the write-only fields of type `kind` (none for an unknown type), without
        /// building any schema.
        pub fn secret_fields_of(kind: &str) -> &'static [&'static str] {
            match kind {
                $(<$module::$config as ReactionType>::NAME => <$module::$config as ReactionType>::SECRET_FIELDS,)+
                _ => &[],
            }
        }

        /// Returns every reaction type with its JSON Schema, sorted by name.
        pub fn reaction_types() -> Vec<TypeInfo> {
            let mut types = vec![$(TypeInfo::of::<$module::$config>(),)+];
            types.sort_by_key(|t| t.name);
            types
        }
    };
}

registry! {
    AwsEc2restart(aws_ec2restart::Config),
    AwsEc2start(aws_ec2start::Config),
    AwsEc2stop(aws_ec2stop::Config),
    CloudflareDnsFailover(cloudflare_dns_failover::Config),
    CloudflareRecAdd(cloudflare_rec_add::Config),
    CloudflareRecRemove(cloudflare_rec_remove::Config),
    CloudflareRecUpdate(cloudflare_rec_update::Config),
    DigitaloceanPowercycle(digitalocean::PowercycleConfig),
    DigitaloceanPoweroff(digitalocean::PoweroffConfig),
    DigitaloceanPoweron(digitalocean::PoweronConfig),
    DigitaloceanReboot(digitalocean::RebootConfig),
    DigitaloceanShutdown(digitalocean::ShutdownConfig),
    DigitaloceanAssignFloatingip(digitalocean_assign_floatingip::Config),
    DigitaloceanSnapshot(digitalocean_snapshot::Config),
    DockerKillContainer(docker_kill_container::Config),
    DockerPullImage(docker_pull_image::Config),
    DockerRestartContainer(docker_restart_container::Config),
    DockerStartContainer(docker_start_container::Config),
    EmailNotification(email_notification::Config),
    ExecuteShellCommand(execute_shell_command::Config),
    HerokuRestartAllDynos(heroku::RestartAllDynosConfig),
    HerokuRestartDyno(heroku::RestartDynoConfig),
    HerokuScaleOut(heroku::ScaleOutConfig),
    HttpWebhook(http_webhook::Config),
    LinodeBoot(linode::BootConfig),
    LinodeReboot(linode::RebootConfig),
    LinodeShutdown(linode::ShutdownConfig),
    LinuxManageServices(linux_manage_services::Config),
    PagerdutyNotification(pagerduty_notification::Config),
    SaltstackCmdrun(saltstack_cmdrun::Config),
    SaltstackGeneric(saltstack_generic::Config),
    SaltstackHighstate(saltstack_highstate::Config),
    SaltstackServices(saltstack_services::Config),
    SlackWebhook(slack_webhook::Config),
    Stathat(stathat::Config),
    TwilioSmsNotification(twilio_sms_notification::Config),
}

impl ReactionConfig {
    /// Parses and validates a reaction's `action` object.
    ///
    /// # Errors
    /// Returns an error naming the offending field (relative to the `action` object).
    pub fn parse(spec: &PluginSpec) -> Result<Self, ConfigError> {
        let (kind, fields) = cloudroutes_engine::plugin::split_type(spec)?;
        let config = Self::from_fields(&kind, fields)?;
        cloudroutes_engine::plugin::refuse_placeholders(spec, config.secret_fields())?;
        config.validate()?;
        Ok(config)
    }
}

/// A reaction type as `/api/v1/reaction-types` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TypeInfo {
    /// Type name, e.g. `http-webhook`.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Whether a repeat run is harmless.
    pub effect: Effect,
    /// Fields that are write-only (shown as `"***"`).
    pub secret_fields: &'static [&'static str],
    /// JSON Schema of the type's config object (without `type`).
    pub schema: serde_json::Value,
}

impl TypeInfo {
    fn of<T: ReactionType>() -> Self {
        Self {
            name: T::NAME,
            description: T::DESCRIPTION,
            effect: T::EFFECT,
            secret_fields: T::SECRET_FIELDS,
            schema: cloudroutes_engine::plugin::config_schema::<T>(T::NAME),
        }
    }
}

pub use cloudroutes_engine::plugin::REDACTED;

/// Returns `spec` with every secret field's value (or, for an object, each of its values)
/// replaced by `"***"`.
pub fn redact(spec: &PluginSpec) -> PluginSpec {
    cloudroutes_engine::plugin::redact(spec, secret_fields_of(spec.kind()))
}

/// Replaces `"***"` placeholders in `new` with the values stored in `old` (same type only), so
/// that a definition read from the API can be written back unchanged.
pub fn restore_secrets(new: &mut PluginSpec, old: &PluginSpec) {
    cloudroutes_engine::plugin::restore(new, old, secret_fields_of(new.kind()));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> PluginSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_catalog_names_every_type_with_its_effect_and_write_only_secrets() {
        let types = reaction_types();
        let names: Vec<_> = types.iter().map(|t| t.name).collect();
        let catalog = [
            "aws-ec2restart",
            "aws-ec2start",
            "aws-ec2stop",
            "cloudflare-dns-failover",
            "cloudflare-rec-add",
            "cloudflare-rec-remove",
            "cloudflare-rec-update",
            "digitalocean-assign-floatingip",
            "digitalocean-powercycle",
            "digitalocean-poweroff",
            "digitalocean-poweron",
            "digitalocean-reboot",
            "digitalocean-shutdown",
            "digitalocean-snapshot",
            "docker-kill-container",
            "docker-pull-image",
            "docker-restart-container",
            "docker-start-container",
            "email-notification",
            "execute-shell-command",
            "heroku-restart-all-dynos",
            "heroku-restart-dyno",
            "heroku-scale-out",
            "http-webhook",
            "linode-boot",
            "linode-reboot",
            "linode-shutdown",
            "linux-manage-services",
            "pagerduty-notification",
            "saltstack-cmdrun",
            "saltstack-generic",
            "saltstack-highstate",
            "saltstack-services",
            "slack-webhook",
            "stathat",
            "twilio-sms-notification",
        ];
        assert_eq!(names, catalog, "every reaction type, sorted by name");
        let destructive = [
            "aws-ec2restart",
            "aws-ec2stop",
            "digitalocean-powercycle",
            "digitalocean-poweroff",
            "digitalocean-reboot",
            "digitalocean-shutdown",
            "digitalocean-snapshot",
            "docker-kill-container",
            "docker-restart-container",
            "execute-shell-command",
            "heroku-restart-all-dynos",
            "heroku-restart-dyno",
            "linode-reboot",
            "linode-shutdown",
            "linux-manage-services",
            "saltstack-cmdrun",
            "saltstack-generic",
            "saltstack-services",
        ];
        for t in &types {
            let expected = if destructive.contains(&t.name) {
                Effect::Destructive
            } else {
                Effect::Idempotent
            };
            assert_eq!(t.effect, expected, "{}", t.name);
            for field in t.secret_fields {
                let property = &t.schema["properties"][*field];
                assert!(property.is_object(), "{}.{field} is not in the schema", t.name);
                assert_eq!(property["writeOnly"], true, "{}.{field}: {property}", t.name);
            }
            let properties = t.schema["properties"].as_object().expect("properties");
            for (field, property) in properties {
                assert!(property["description"].is_string(), "{}.{field} undocumented", t.name);
            }
        }
    }

    #[test]
    fn redact_shows_stars_for_each_header_value() {
        let stored = spec(json!({
            "type": "http-webhook", "url": "https://hooks.example.com/",
            "headers": {"Authorization": "Bearer abc", "X-Team": "web"},
        }));
        let shown = redact(&stored);
        let expected = json!({
            "type": "http-webhook", "url": "https://hooks.example.com/",
            "headers": {"Authorization": "***", "X-Team": "***"},
        });
        assert_eq!(serde_json::to_value(&shown).unwrap(), expected);
        // No headers, nothing to hide; other types are left alone.
        let bare = spec(json!({"type": "http-webhook", "url": "https://hooks.example.com/"}));
        assert_eq!(redact(&bare), bare);
        let other = spec(json!({"type": "no-such-type", "headers": {"A": "b"}}));
        assert_eq!(redact(&other), other);
    }

    #[test]
    fn restore_secrets_puts_stored_values_back_for_stars() {
        let stored = spec(json!({
            "type": "http-webhook", "url": "https://hooks.example.com/",
            "headers": {"Authorization": "Bearer abc", "X-Team": "web"},
        }));
        let mut edited = redact(&stored);
        edited.0.insert("timeout_ms".into(), json!(3000));
        edited.0["headers"]["X-Team"] = json!("ops");
        edited.0["headers"]["X-New"] = json!("fresh");
        restore_secrets(&mut edited, &stored);
        assert_eq!(edited.0["headers"]["Authorization"], "Bearer abc");
        assert_eq!(edited.0["headers"]["X-Team"], "ops");
        assert_eq!(edited.0["headers"]["X-New"], "fresh");
        assert_eq!(edited.0["timeout_ms"], 3000);
        assert!(ReactionConfig::parse(&edited).is_ok());
    }

    #[test]
    fn a_star_with_no_stored_value_is_rejected_not_stored() {
        let stored = spec(json!({"type": "http-webhook", "url": "https://hooks.example.com/"}));
        let mut edited = spec(json!({
            "type": "http-webhook", "url": "https://hooks.example.com/",
            "headers": {"Authorization": "***"},
        }));
        restore_secrets(&mut edited, &stored);
        assert_eq!(ReactionConfig::parse(&edited).unwrap_err().field, "headers");
    }

    #[test]
    fn restore_secrets_ignores_a_definition_of_another_type() {
        let stored = spec(json!({"type": "other", "headers": {"A": "secret"}}));
        let mut edited =
            spec(json!({"type": "http-webhook", "url": "http://x/", "headers": {"A": "***"}}));
        let before = edited.clone();
        restore_secrets(&mut edited, &stored);
        assert_eq!(edited, before);
    }

    #[test]
    fn parse_names_the_type_and_lists_the_known_ones() {
        let error = ReactionConfig::parse(&spec(json!({"type": "http-webhok"}))).unwrap_err();
        assert_eq!(error.field, "type");
        assert!(error.message.contains("http-webhook"), "{error}");
        let missing = ReactionConfig::parse(&spec(json!({"url": "http://x/"}))).unwrap_err();
        assert_eq!(missing.field, "type");
    }

    #[test]
    fn every_type_has_a_titled_object_schema_with_documented_properties() {
        for info in reaction_types() {
            assert_eq!(info.schema["type"], "object", "{}", info.name);
            assert_eq!(info.schema["title"], info.name);
            let properties = info.schema["properties"].as_object().unwrap();
            for field in info.secret_fields {
                assert_eq!(properties[*field]["writeOnly"], json!(true), "{}.{field}", info.name);
            }
            for (field, property) in properties {
                assert!(property["description"].is_string(), "{}.{field} undocumented", info.name);
            }
        }
    }
}
