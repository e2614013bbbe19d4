//! `alertmanager-webhook`: results from Prometheus Alertmanager's webhook receiver
//! (`<webhook_config>`, payload version 4). Each alert, keyed by its fingerprint or by the
//! labels the monitor names, drives its own status; see [`crate::alerts`] for the rules.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::alerts::{AlertBook, AlertRules};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of an `alertmanager-webhook` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Config(pub AlertRules);

impl CheckType for Config {
    const NAME: &'static str = "alertmanager-webhook";
    const DESCRIPTION: &'static str =
        "results from Prometheus Alertmanager: failed while any of the monitor's alerts fires";
    const PASSIVE: bool = true;

    fn validate(&self) -> Result<(), ConfigError> {
        self.0.validate()
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(AlertBook::new(Self::NAME, &self.0))))
    }

    fn intake(&self, request: &IntakeRequest<'_>) -> Option<Result<Intake, IntakeError>> {
        Some(self.0.parse(request).map_err(IntakeError::from))
    }
}
