//! `grafana-webhook`: results from Grafana's webhook contact point. Grafana's unified alerting
//! posts Alertmanager's format (plus `title`, `state`, `message`), so each alert drives its own
//! status as in `alertmanager-webhook` ([`crate::alerts`]). The legacy dashboard-alert payload
//! (`state`: `alerting`, `no_data`, `ok`, …, without `alerts`) is accepted too.

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::alerts::{Alert, AlertBook, AlertRules};
use crate::intake::{clip, json_body};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `grafana-webhook` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Config(pub AlertRules);

impl CheckType for Config {
    const NAME: &'static str = "grafana-webhook";
    const DESCRIPTION: &'static str =
        "results from Grafana alerting: failed while any of the monitor's alerts fires";
    const PASSIVE: bool = true;

    fn validate(&self) -> Result<(), ConfigError> {
        self.0.validate()
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(AlertBook::new(Self::NAME, &self.0))))
    }

    fn intake(&self, request: &IntakeRequest<'_>) -> Option<Result<Intake, IntakeError>> {
        Some(parse(&self.0, request).map_err(IntakeError::from))
    }
}

/// Either payload: unified (`alerts`) or legacy (`state`, `ruleName`, `title`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    alerts: Option<Vec<Alert>>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    rule_name: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

fn parse(rules: &AlertRules, request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
    let payload: Payload = json_body(request)?;
    if let Some(alerts) = payload.alerts {
        return rules.updates(alerts);
    }
    let Some(state) = payload.state else {
        return Err(ConfigError::invalid(
            "alerts",
            "missing field `alerts` (nor a legacy `state`)",
        ));
    };
    let name = payload.rule_name.or(payload.title).unwrap_or_else(|| "grafana alert".into());
    let reason = clip(&format!("{name}: {state}"));
    match state.as_str() {
        "alerting" | "no_data" => Ok(Intake::Result(CheckOutcome::Failed { reason })),
        "ok" => Ok(Intake::Result(CheckOutcome::Healthy { reason })),
        "pending" | "paused" => {
            Ok(Intake::Ignore(format!("grafana state carries no status: {reason}")))
        }
        other => Err(ConfigError::invalid(
            "state",
            format!("`{}` is not a grafana alert state", clip(other)),
        )),
    }
}
