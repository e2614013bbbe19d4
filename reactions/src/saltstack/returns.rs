//! Reading what minions answer: salt's error strings, `cmd.run_all` exit codes, and state
//! runs (which states failed, what changed).

use serde_json::Value;

/// How many characters of one minion's failure an error quotes.
pub(crate) const FAILURE_CHARS: usize = 160;
/// The `state.*` functions that run states and answer state results.
const STATE_RUNS: &[&str] =
    &["state.apply", "state.highstate", "state.sls", "state.single", "state.sls_id", "state.top"];

/// Returns the error a minion answered instead of a result, if its return is one of salt's
/// error strings (a missing function or module, an exception, bad arguments).
pub fn minion_error(value: &Value) -> Option<String> {
    let text = value.as_str()?;
    let is_error = ["ERROR", "The minion function caused an exception", "Passed invalid arguments"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
        || ["is not available.", "__virtual__ returned False", "TypeError encountered executing"]
            .iter()
            .any(|part| text.contains(part));
    is_error.then(|| text.to_owned())
}

/// Returns why a `cmd.run_all`-shaped return (`{"retcode", "stdout", "stderr"}`) failed: a
/// non-zero `retcode`, quoting stderr (or stdout when stderr is empty).
pub fn retcode_failure(value: &Value) -> Option<String> {
    let retcode = value.get("retcode")?.as_i64()?;
    if retcode == 0 {
        return None;
    }
    let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or("").trim();
    let output = if text("stderr").is_empty() { text("stdout") } else { text("stderr") };
    Some(if output.is_empty() {
        format!("retcode {retcode}")
    } else {
        format!("retcode {retcode}: {output}")
    })
}

/// What a state run did on one minion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateRun {
    /// States run.
    pub states: usize,
    /// States that changed something.
    pub changed: usize,
    /// Failed states: their ids, with salt's comment.
    pub failed: Vec<(String, String)>,
}

/// Returns whether `fun` runs states and answers state results.
pub fn runs_states(fun: &str) -> bool {
    STATE_RUNS.contains(&fun)
}

/// Reads one minion's return of a state run: an object of state results keyed
/// `module_|-id_|-name_|-function`, each with `result`, `comment`, `changes` and `__id__`.
///
/// # Errors
/// Salt's errors instead of results (a list of strings when rendering failed, another
/// highstate was running or no top file matched; a string on other errors).
pub fn state_run(value: &Value) -> Result<StateRun, String> {
    let results = match value {
        Value::Object(results) => results,
        Value::Array(errors) => {
            let errors: Vec<_> =
                errors.iter().map(|e| e.as_str().map_or(e.to_string(), str::to_owned)).collect();
            return Err(errors.join("; "));
        }
        Value::String(error) => return Err(error.clone()),
        other => return Err(format!("unexpected state return {other}")),
    };
    let mut run = StateRun::default();
    let mut failed = Vec::new();
    for (key, state) in results {
        run.states += 1;
        if state.get("changes").and_then(Value::as_object).is_some_and(|c| !c.is_empty()) {
            run.changed += 1;
        }
        if state.get("result") == Some(&Value::Bool(false)) {
            let id = state
                .get("__id__")
                .and_then(Value::as_str)
                .map_or_else(|| key.split("_|-").nth(1).unwrap_or(key).to_owned(), str::to_owned);
            let comment = state
                .get("comment")
                .map_or(String::new(), |c| c.as_str().map_or_else(|| c.to_string(), str::to_owned));
            // Salt numbers states in the order it ran them.
            let order = state.get("__run_num__").and_then(Value::as_u64).unwrap_or(u64::MAX);
            failed.push((order, id, comment));
        }
    }
    failed.sort_by_key(|(order, _, _)| *order);
    run.failed = failed.into_iter().map(|(_, id, comment)| (id, comment)).collect();
    Ok(run)
}

/// Returns why one minion's state run failed, naming the failed state ids, if it did.
pub fn state_failure(value: &Value) -> Option<String> {
    match state_run(value) {
        Err(errors) => Some(errors),
        Ok(run) if run.failed.is_empty() => None,
        Ok(run) => {
            let ids: Vec<_> = run.failed.iter().map(|(id, _)| id.as_str()).collect();
            let first = &run.failed[0].1;
            let plural = if ids.len() == 1 { "state" } else { "states" };
            Some(format!("{plural} {} failed ({first})", ids.join(", ")))
        }
    }
}

/// Returns `value` as one short line (strings unquoted).
pub fn excerpt(value: &Value) -> String {
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    cut(&text, FAILURE_CHARS)
}

/// Returns `text` with whitespace runs collapsed, cut to `max` characters.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut short: String = flat.chars().take(max).collect();
    short.push('…');
    short
}
