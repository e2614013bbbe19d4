//! `heartbeat`: a dead man's switch, as Healthchecks.io made popular. The watched job calls
//! the monitor's webhook URL when it finishes (`GET` or `POST`, so `curl -fsS URL` in a
//! crontab is enough); the monitor fails when no ping arrives within `period_secs` plus
//! `grace_secs`. `…/start` marks a run as started (it must then ping within the grace time),
//! `…/fail` reports a failure at once, and `…/{exit code}` does either by the code.
//!
//! While it is overdue the monitor records one failed result per period, so a reaction's
//! `trigger` counts missed periods and `frequency_secs` can act again. The clock lives on the
//! owner node: a restart, a takeover or an edit of the monitor starts a fresh period.

use std::sync::Mutex;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::time::Instant;

use crate::intake::{clip, unknown_action};
use crate::{
    Check, CheckContext, CheckType, ConfigError, Delivery, Intake, IntakeError, IntakeRequest,
};

/// Longest `period_secs` and `grace_secs`: 31 days.
const MAX_SECS: u64 = 31 * 86_400;

fn default_grace_secs() -> u64 {
    60
}

/// Config of a `heartbeat` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds between the job's expected pings, 1 to 2678400 (31 days).
    #[schemars(range(min = 1, max = 2_678_400))]
    pub period_secs: u64,
    /// Extra seconds allowed past the period before the monitor fails (and the most a started
    /// run may take), 0 to 2678400; 60 by default.
    #[serde(default = "default_grace_secs")]
    #[schemars(range(max = 2_678_400))]
    pub grace_secs: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "heartbeat";
    const DESCRIPTION: &'static str =
        "dead man's switch: failed when the job's ping does not arrive within period + grace";
    const PASSIVE: bool = true;
    const PINGABLE: bool = true;

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_SECS).contains(&self.period_secs) {
            return Err(ConfigError::invalid(
                "period_secs",
                format!("must be between 1 and {MAX_SECS}"),
            ));
        }
        if self.grace_secs > MAX_SECS {
            return Err(ConfigError::invalid("grace_secs", format!("must be at most {MAX_SECS}")));
        }
        Ok(())
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        self.validate()?;
        Ok(Some(Box::new(Heartbeat::new(self, Instant::now()))))
    }

    fn intake(&self, request: &IntakeRequest<'_>) -> Option<Result<Intake, IntakeError>> {
        Some(parse(request).map_err(IntakeError::from))
    }
}

fn parse(request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
    let text = String::from_utf8_lossy(request.body);
    let note = Some(clip(&text)).filter(|note| !note.is_empty());
    let delivery = match request.action {
        None | Some("ping" | "success") => Delivery::Ping { note },
        Some("start") => Delivery::Start,
        Some("fail") => Delivery::Fail { note },
        Some(code)
            if !code.is_empty() && code.len() <= 3 && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            match code.parse::<u8>() {
                Ok(0) => Delivery::Ping { note },
                Ok(code) => {
                    let detail = note.map_or_else(String::new, |note| format!(": {note}"));
                    Delivery::Fail { note: Some(format!("exit status {code}{detail}")) }
                }
                Err(_) => return Err(unknown_action(code, "an exit status from 0 to 255")),
            }
        }
        Some(other) => return Err(unknown_action(other, "ping, start, fail or an exit status")),
    };
    Ok(Intake::Deliver(delivery))
}

/// The owner node's clock of one heartbeat monitor.
#[derive(Debug)]
struct Clock {
    last_ping: Instant,
    /// A run that started after the last ping.
    started: Option<Instant>,
    /// A failure the job reported, holding until its next ping.
    failure: Option<String>,
    /// While failing, when the next failed result is due (one per period).
    next_report: Option<Instant>,
}

/// A runnable `heartbeat`: it reports only when pinged or overdue.
#[derive(Debug)]
pub struct Heartbeat {
    period: Duration,
    grace: Duration,
    clock: Mutex<Clock>,
}

impl Heartbeat {
    /// Starts the clock at `now`: the first ping is due within a period plus grace.
    pub fn new(config: &Config, now: Instant) -> Self {
        let clock = Clock { last_ping: now, started: None, failure: None, next_report: None };
        Self {
            period: Duration::from_secs(config.period_secs),
            grace: Duration::from_secs(config.grace_secs),
            clock: Mutex::new(clock),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // Every write under the lock is a plain field store: a poisoned clock is consistent.
        self.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Healthy reason, or the failure reason, at `now`.
    fn verdict(&self, clock: &Clock, now: Instant) -> Result<String, String> {
        if let Some(failure) = &clock.failure {
            return Err(failure.clone());
        }
        let since_ping = now.saturating_duration_since(clock.last_ping);
        if since_ping >= self.period + self.grace {
            return Err(format!(
                "no ping for {} s (period {} s + grace {} s)",
                since_ping.as_secs(),
                self.period.as_secs(),
                self.grace.as_secs()
            ));
        }
        if let Some(started) = clock.started {
            let running = now.saturating_duration_since(started);
            if running >= self.grace {
                return Err(format!(
                    "started {} s ago and no ping within the grace of {} s",
                    running.as_secs(),
                    self.grace.as_secs()
                ));
            }
        }
        Ok(format!("last ping {} s ago", since_ping.as_secs()))
    }

    fn deliver_at(&self, delivery: &Delivery, now: Instant) -> Option<CheckOutcome> {
        let mut clock = self.clock();
        match delivery {
            Delivery::Ping { note } => {
                let took =
                    clock.started.take().map(|started| now.saturating_duration_since(started));
                *clock = Clock { last_ping: now, started: None, failure: None, next_report: None };
                let mut reason = "ping received".to_owned();
                if let Some(took) = took {
                    reason.push_str(&format!(", run took {:.1} s", took.as_secs_f64()));
                }
                if let Some(note) = note {
                    reason = clip(&format!("{reason}: {note}"));
                }
                Some(CheckOutcome::Healthy { reason })
            }
            Delivery::Start => {
                clock.started = Some(now);
                None
            }
            Delivery::Fail { note } => {
                let reason = match note {
                    Some(note) => clip(&format!("job reported failure: {note}")),
                    None => "job reported failure".to_owned(),
                };
                clock.started = None;
                clock.failure = Some(reason.clone());
                clock.next_report = Some(now + self.period);
                Some(CheckOutcome::Failed { reason })
            }
            Delivery::Alerts(_) => None,
        }
    }

    fn tick_at(&self, now: Instant) -> Option<CheckOutcome> {
        let mut clock = self.clock();
        let reason = self.verdict(&clock, now).err()?;
        if clock.next_report.is_some_and(|due| now < due) {
            return None;
        }
        clock.next_report = Some(now + self.period);
        Some(CheckOutcome::Failed { reason })
    }
}

#[async_trait::async_trait]
impl Check for Heartbeat {
    fn kind(&self) -> &'static str {
        Config::NAME
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn run(&self) -> CheckOutcome {
        let clock = self.clock();
        match self.verdict(&clock, Instant::now()) {
            Ok(reason) => CheckOutcome::Healthy { reason },
            Err(reason) => CheckOutcome::Failed { reason },
        }
    }

    /// A quarter of the tighter of period and grace, between 1 s and 60 s: a missed ping is
    /// noticed within that much of its deadline.
    fn interval(&self) -> Option<Duration> {
        let tightest = if self.grace.is_zero() { self.period } else { self.period.min(self.grace) };
        Some((tightest / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)))
    }

    async fn tick(&self) -> Option<CheckOutcome> {
        self.tick_at(Instant::now())
    }

    fn deliver(&self, delivery: &Delivery) -> Option<CheckOutcome> {
        self.deliver_at(delivery, Instant::now())
    }
}

#[cfg(test)]
#[path = "heartbeat_tests.rs"]
mod tests;
