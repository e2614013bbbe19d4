//! Fuzz targets of check configs (`CheckConfig::parse`, as a monitor's `check` object) and of
//! the URL validation behind every HTTP check (`url` fields).
//!
//! Inputs: arbitrary JSON objects; every registered type's config drawn from its own JSON
//! Schema (`check_types()`) and then mutated; arbitrary and near-valid URLs. Properties: no
//! panic; errors name a field and never repeat a secret; a config that parses parses again
//! from its JSON text (round trip), hides its secrets when redacted and gets them back when
//! restored; an accepted URL is http(s) with a host. Budget: `PROPTEST_CASES`, `FUZZ_SECONDS`.
//!
//! When the egress policy lands (`engine/src/egress.rs`), its URL and address checks get a
//! target here too: fed [`url_text`], every URL it allows must be one `parse_http_url`
//! accepts, and no error may panic.

use cloudroutes_checks::{CheckConfig, check_types, redact, restore_secrets};
use cloudroutes_engine::PluginSpec;
use cloudroutes_engine::fuzzing::{self, from_schema, mutated, odd_string};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

/// A secret value no error or redacted config may repeat.
const SECRET: &str = "fuzzCheckSecret5d0a7e";

fn spec(value: &Value) -> Option<PluginSpec> {
    serde_json::from_value(value.clone()).ok()
}

fn check_parse(value: &Value) -> Result<(), TestCaseError> {
    let Some(spec) = spec(value) else { return Ok(()) };
    match CheckConfig::parse(&spec) {
        Ok(config) => {
            // Round trip: the same object, through its JSON text, parses to the same type.
            let text =
                serde_json::to_string(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again: PluginSpec =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let reparsed = CheckConfig::parse(&again)
                .map_err(|e| TestCaseError::fail(format!("parsed once, not twice: {e}")))?;
            prop_assert_eq!(reparsed.name(), config.name());
            // Secrets are hidden when shown and come back when written back.
            let shown = redact(&spec);
            let shown_text = serde_json::to_string(&shown).unwrap_or_default();
            let secret_fields = check_types()
                .into_iter()
                .find(|t| t.name == config.name())
                .map(|t| t.secret_fields)
                .unwrap_or_default();
            for field in secret_fields {
                prop_assert!(
                    !shown_text.contains(&format!("\"{field}\":\"{SECRET}\"")),
                    "{field} shown: {shown_text}"
                );
            }
            let mut restored = shown;
            restore_secrets(&mut restored, &spec);
            prop_assert_eq!(&restored, &spec);
        }
        Err(error) => {
            prop_assert!(!error.field.is_empty(), "error names no field: {error:?}");
            prop_assert!(!error.message.is_empty(), "empty message: {error:?}");
            prop_assert!(!error.to_string().contains(SECRET), "secret in error: {error}");
        }
    }
    Ok(())
}

#[test]
fn fuzz_check_config_arbitrary_json() {
    let names: Vec<Value> = check_types().iter().map(|t| Value::from(t.name)).collect();
    let object = fuzzing::plugin_object(names);
    fuzzing::run("check_config_arbitrary_json", object, |value| check_parse(&value));
}

#[test]
fn fuzz_check_config_from_schemas() {
    let types = check_types();
    let strategies: Vec<BoxedStrategy<Value>> = types
        .iter()
        .map(|t| {
            let valid = from_schema(t.name, &t.schema, SECRET);
            prop_oneof![
                2 => valid.clone(),
                1 => valid.prop_flat_map(mutated),
            ]
            .boxed()
        })
        .collect();
    let input = proptest::strategy::Union::new(strategies);
    fuzzing::run("check_config_from_schemas", input, |value| check_parse(&value));
}

/// URLs: arbitrary text, near-valid URLs with odd parts, and valid ones.
pub fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("http://"),
        Just("https://"),
        Just("HTTP://"),
        Just("ftp://"),
        Just("file://"),
        Just("javascript:"),
        Just("http:/"),
        Just("//"),
        Just("")
    ];
    let host = prop_oneof![
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("[::ffff:127.0.0.1]".to_owned()),
        Just("localhost".to_owned()),
        Just("xn--n3h.example".to_owned()),
        Just("ü.example".to_owned()),
        Just("0x7f.1".to_owned()),
        Just("user:pass@127.0.0.1".to_owned()),
        Just(String::new()),
        Just("[".to_owned()),
        "[a-z0-9.-]{0,70}",
        odd_string(),
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":0".to_owned()),
        Just(":65535".to_owned()),
        Just(":65536".to_owned()),
        Just(":99999999999".to_owned()),
        Just(":".to_owned())
    ];
    let rest =
        prop_oneof![Just(String::new()), Just("/".to_owned()), "/[a-z%/?#=&.]{0,30}", odd_string()];
    prop_oneof![
        3 => (scheme, host, port, rest).prop_map(|(s, h, p, r)| format!("{s}{h}{p}{r}")),
        1 => odd_string(),
        1 => (1usize..10_000).prop_map(|n| format!("http://127.0.0.1/{}", "a".repeat(n))),
    ]
}

#[test]
fn fuzz_check_urls() {
    fuzzing::run("check_urls", url_text(), |url| {
        let check = json!({"type": "http-get-statuscode", "url": url});
        let Some(spec) = spec(&check) else { return Ok(()) };
        match CheckConfig::parse(&spec) {
            Ok(_) => {
                let parsed = url::Url::parse(&url)
                    .map_err(|e| TestCaseError::fail(format!("accepted {url:?}: {e}")))?;
                prop_assert!(matches!(parsed.scheme(), "http" | "https"), "accepted {}", url);
                prop_assert!(parsed.host_str().is_some_and(|h| !h.is_empty()), "no host: {}", url);
            }
            Err(error) => prop_assert_eq!(error.field, "url", "{}", error.message),
        }
        Ok(())
    });
}
