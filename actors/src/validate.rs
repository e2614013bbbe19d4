//! Validation of monitor and reaction drafts: the domain rules of API.md, shared by every way
//! in (HTTP API, `ctl apply`). Errors name the field.

use cloudroutes_checks::CheckConfig;
use cloudroutes_engine::{CallOn, PluginSpec, ReactionId};
use cloudroutes_reactions::ReactionConfig;

use crate::error::NodeError;

/// Longest monitor or reaction name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most reactions one monitor may list.
pub const MAX_REACTIONS_PER_MONITOR: usize = 100;
/// Most tags one monitor may carry.
pub const MAX_TAGS: usize = 50;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Interval bounds (API.md).
pub const INTERVAL_SECS: std::ops::RangeInclusive<u32> = 1..=86_400;
/// Trigger bounds (API.md).
pub const TRIGGER: std::ops::RangeInclusive<u32> = 0..=1_000;
/// Frequency bounds (API.md).
pub const FREQUENCY_SECS: std::ops::RangeInclusive<u64> = 0..=604_800;

/// A monitor definition as a caller gives it.
#[derive(Debug, Clone)]
pub struct MonitorDraft {
    /// Name.
    pub name: String,
    /// Check config (`type` plus fields).
    pub check: PluginSpec,
    /// Seconds between checks; required for scheduled types, absent for webhook types.
    pub interval_secs: Option<u32>,
    /// Reactions to run.
    pub reactions: Vec<ReactionId>,
    /// Whether it runs.
    pub enabled: bool,
    /// Labels.
    pub tags: Vec<String>,
}

/// A reaction definition as a caller gives it.
#[derive(Debug, Clone)]
pub struct ReactionDraft {
    /// Name.
    pub name: String,
    /// Action config (`type` plus fields, secrets included).
    pub action: PluginSpec,
    /// Streak needed; 0 acts as 1.
    pub trigger: u32,
    /// Seconds between re-firings in one episode; 0 is once per episode.
    pub frequency_secs: u64,
    /// Which results it answers.
    pub call_on: CallOn,
}

/// Validates a name field.
///
/// # Errors
/// Blank or longer than [`MAX_NAME_CHARS`].
pub fn name(name: &str) -> Result<(), NodeError> {
    if name.trim().is_empty() {
        return Err(NodeError::invalid("name", "must not be blank"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NodeError::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Validates a monitor draft's own fields and returns its parsed check.
///
/// # Errors
/// The first invalid field, by name.
pub fn monitor(draft: &MonitorDraft) -> Result<CheckConfig, NodeError> {
    name(&draft.name)?;
    let check = CheckConfig::parse(&draft.check)
        .map_err(|e| NodeError::invalid(prefixed("check", &e.field), e.message))?;
    match (check.is_passive(), draft.interval_secs) {
        (true, Some(_)) => {
            return Err(NodeError::invalid(
                "interval_secs",
                format!(
                    "a `{}` monitor gets its results from outside and takes no interval",
                    draft.check.kind()
                ),
            ));
        }
        (false, None) => return Err(NodeError::invalid("interval_secs", "is required")),
        (false, Some(secs)) if !INTERVAL_SECS.contains(&secs) => {
            let message = if secs < *INTERVAL_SECS.start() {
                "must be at least 1".to_owned()
            } else {
                format!("must be at most {}", INTERVAL_SECS.end())
            };
            return Err(NodeError::invalid("interval_secs", message));
        }
        _ => {}
    }
    if draft.reactions.len() > MAX_REACTIONS_PER_MONITOR {
        return Err(NodeError::invalid(
            "reactions",
            format!("must list at most {MAX_REACTIONS_PER_MONITOR} reactions"),
        ));
    }
    for (i, id) in draft.reactions.iter().enumerate() {
        if draft.reactions[..i].contains(id) {
            return Err(NodeError::invalid(
                format!("reactions[{i}]"),
                format!("`{id}` is listed twice"),
            ));
        }
    }
    if draft.tags.len() > MAX_TAGS {
        return Err(NodeError::invalid("tags", format!("must have at most {MAX_TAGS} tags")));
    }
    for (i, tag) in draft.tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS {
            return Err(NodeError::invalid(
                format!("tags[{i}]"),
                format!("must be 1 to {MAX_TAG_CHARS} characters"),
            ));
        }
    }
    Ok(check)
}

/// Validates a reaction draft and returns its parsed action.
///
/// # Errors
/// The first invalid field, by name.
pub fn reaction(draft: &ReactionDraft) -> Result<ReactionConfig, NodeError> {
    name(&draft.name)?;
    let action = ReactionConfig::parse(&draft.action)
        .map_err(|e| NodeError::invalid(prefixed("action", &e.field), e.message))?;
    if !TRIGGER.contains(&draft.trigger) {
        return Err(NodeError::invalid("trigger", format!("must be at most {}", TRIGGER.end())));
    }
    if !FREQUENCY_SECS.contains(&draft.frequency_secs) {
        return Err(NodeError::invalid(
            "frequency_secs",
            format!("must be at most {}", FREQUENCY_SECS.end()),
        ));
    }
    Ok(action)
}

fn prefixed(parent: &str, field: &str) -> String {
    if field.is_empty() { parent.to_owned() } else { format!("{parent}.{field}") }
}
