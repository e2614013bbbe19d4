//! Fuzz targets of the node configuration: `NodeConfig::load` from arbitrary TOML text, from
//! the repository's own `cluster.toml` with lines mutated, and from environment maps. Bounded
//! by `PROPTEST_CASES` / `FUZZ_SECONDS` (see `crate::fuzzing`); `scripts/fuzz.sh` runs them
//! long.
//!
//! Properties: no panic; every error names where it came from (the file or the variable) and
//! the key; secrets (`cluster.cookie`, `smtp.password`) never appear in an error; a key set by
//! its variable loads exactly as the same key written in the file.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use toml::{Table, Value};

use super::env::{KEYS, Kind, variable_name};
use super::{FlagOverrides, NodeConfig};
use crate::error::ConfigError;
use crate::fuzzing::{self, odd_string};

/// The repository's documented example: the seed of the structure-aware TOML target.
const EXAMPLE: &str = include_str!("../../../cluster.toml");

/// A secret value no error may repeat: the value of `cluster.cookie` and `smtp.password`.
const SECRET: &str = "fuzz-secret-7b1d93a0c2";

/// Keys whose values are secrets.
const SECRET_KEYS: [&str; 2] = ["cluster.cookie", "smtp.password"];

/// The example with its secrets set to [`SECRET`].
fn example() -> String {
    EXAMPLE
        .replace("cookie = \"change-me-example-cluster-cookie\"", &format!("cookie = \"{SECRET}\""))
        .replace("# username = \"cloudroutes\"", "username = \"cloudroutes\"")
        .replace("# password = \"…\"", &format!("password = \"{SECRET}\""))
}

/// Loads `text` as a config file in `dir`, with `env`.
fn load(dir: &Path, text: &str, env: &[(String, String)]) -> Result<NodeConfig, ConfigError> {
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text)
        .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    NodeConfig::load(Some(&path), env, &FlagOverrides::default())
}

/// Every error names its origin and key, and repeats no secret.
fn check_error(error: &ConfigError) -> Result<(), TestCaseError> {
    let text = error.to_string();
    prop_assert!(!text.contains(SECRET), "secret in error: {}", text);
    match error {
        ConfigError::Parse { origin, message } => {
            prop_assert!(!origin.is_empty(), "parse error without origin: {}", text);
            prop_assert!(!message.is_empty(), "parse error without message: {}", text);
        }
        ConfigError::Invalid { key, message } => {
            prop_assert!(!key.is_empty() && !message.is_empty(), "unnamed error: {}", text);
        }
        ConfigError::Read { .. } => prop_assert!(false, "the file was written: {}", text),
    }
    Ok(())
}

/// A TOML value of any kind, including the secret string.
fn toml_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![Just(0i64), Just(1), Just(-1), Just(i64::MAX), Just(65_536)]
            .prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        odd_string().prop_map(Value::String),
        Just(Value::String("127.0.0.1:0".to_owned())),
        proptest::collection::vec(odd_string().prop_map(Value::String), 0..4)
            .prop_map(Value::Array),
        (odd_string(), any::<i64>()).prop_map(|(k, v)| {
            let mut table = Table::new();
            table.insert(k, Value::Integer(v));
            Value::Table(table)
        }),
    ]
}

/// One edit of the example file's lines.
#[derive(Debug, Clone)]
enum LineEdit {
    /// Give the key on this line another value.
    Set(prop::sample::Index, Value),
    /// Delete this line.
    Delete(prop::sample::Index),
    /// Insert arbitrary text before this line.
    Insert(prop::sample::Index, String),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), toml_value()).prop_map(|(i, v)| LineEdit::Set(i, v)),
        1 => any::<prop::sample::Index>().prop_map(LineEdit::Delete),
        1 => (any::<prop::sample::Index>(), prop_oneof![
            odd_string(),
            Just("[node]".to_owned()),
            Just("unknown = 1".to_owned()),
            Just("cookie = \"".to_owned()),
        ])
        .prop_map(|(i, s)| LineEdit::Insert(i, s)),
    ]
}

fn edit(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for edit in edits {
        match edit {
            LineEdit::Set(at, value) => {
                let keyed: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].contains(" = ") && !lines[i].starts_with('#'))
                    .collect();
                if keyed.is_empty() {
                    continue;
                }
                let i = *at.get(&keyed);
                let key = lines[i].split(" = ").next().unwrap_or_default().to_owned();
                lines[i] = format!("{key} = {value}");
            }
            LineEdit::Delete(at) if !lines.is_empty() => {
                let i = at.index(lines.len());
                lines.remove(i);
            }
            LineEdit::Insert(at, line) => {
                let i = at.index(lines.len() + 1);
                lines.insert(i, line.clone());
            }
            LineEdit::Delete(_) => {}
        }
    }
    lines.join("\n")
}

#[test]
fn fuzz_config_toml_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = prop_oneof![
        odd_string(),
        proptest::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "(\\[[a-z.]{0,12}\\]\n)?([a-z_.]{1,20} = [0-9a-z\"\\[\\]{}., ]{0,20}\n){0,6}",
    ];
    fuzzing::run("config_toml_text", text, |text| {
        match load(dir.path(), &text, &[]) {
            Ok(_) => {}
            Err(error) => check_error(&error)?,
        }
        Ok(())
    });
}

#[test]
fn fuzz_config_example_mutated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edits = proptest::collection::vec(line_edit(), 1..4);
    fuzzing::run("config_example_mutated", edits, |edits| {
        let text = edit(&example(), &edits);
        match load(dir.path(), &text, &[]) {
            Ok(config) => {
                // What loaded once loads again the same.
                let again = load(dir.path(), &text, &[])
                    .map_err(|e| TestCaseError::fail(format!("second load failed: {e}")))?;
                prop_assert_eq!(format!("{config:?}"), format!("{again:?}"));
            }
            Err(error) => check_error(&error)?,
        }
        Ok(())
    });
}

/// A value for `key` of `kind`, as TOML and as the environment text that means the same
/// (never empty text: an empty variable leaves its key alone, as documented).
fn value_of(key: &str, kind: Kind) -> BoxedStrategy<(Value, String)> {
    if SECRET_KEYS.contains(&key) {
        return prop_oneof![Just(SECRET.to_owned()), "[A-Za-z0-9]{1,24}"]
            .prop_map(|s| (Value::String(s.clone()), s))
            .boxed();
    }
    match kind {
        Kind::Integer => prop_oneof![
            any::<i64>(),
            0i64..100_000,
            prop_oneof![Just(0i64), Just(1), Just(-1), Just(i64::MAX)],
        ]
        .prop_map(|n| (Value::Integer(n), n.to_string()))
        .boxed(),
        Kind::Bool => any::<bool>().prop_map(|b| (Value::Boolean(b), b.to_string())).boxed(),
        Kind::Text => prop_oneof![
            "[A-Za-z0-9._:/-]{1,24}",
            Just("127.0.0.1:0".to_owned()),
            Just("redis://127.0.0.1:6379/0".to_owned()),
            Just("starttls".to_owned()),
        ]
        .prop_map(|s| (Value::String(s.clone()), s))
        .boxed(),
        Kind::List => proptest::collection::vec("[A-Za-z0-9._:/-]{1,16}", 0..4)
            .prop_map(|items| {
                let text = items.join(",");
                (Value::Array(items.into_iter().map(Value::String).collect()), text)
            })
            .boxed(),
    }
}

fn set(table: &mut Table, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else { return };
    let mut at = table;
    for part in parts {
        let entry = at.entry(part.to_owned()).or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(inner) = entry else { return };
        at = inner;
    }
    at.insert(leaf.to_owned(), value);
}

#[test]
fn fuzz_config_env_matches_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = any::<prop::sample::Index>().prop_flat_map(|i| {
        let (key, kind) = *i.get(KEYS);
        value_of(key, kind).prop_map(move |value| (key, value))
    });
    let pairs = proptest::collection::vec(pair, 1..5);
    fuzzing::run("config_env_matches_file", pairs, |pairs| {
        let mut table = Table::new();
        let mut env = Vec::new();
        for (key, (value, text)) in pairs {
            set(&mut table, key, value);
            env.retain(|(name, _)| *name != variable_name(key));
            env.push((variable_name(key), text));
        }
        let file_text =
            toml::to_string(&table).map_err(|e| TestCaseError::fail(format!("toml: {e}")))?;
        let from_file = load(dir.path(), &file_text, &[]);
        let from_env = load(dir.path(), "", &env);
        match (&from_file, &from_env) {
            (Ok(file), Ok(env)) => prop_assert_eq!(format!("{file:?}"), format!("{env:?}")),
            (Err(file), Err(env)) => {
                check_error(file)?;
                check_error(env)?;
            }
            _ => prop_assert!(false, "file {:?} but environment {:?}", from_file, from_env),
        }
        Ok(())
    });
}

#[test]
fn fuzz_config_env_arbitrary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = prop_oneof![
        any::<prop::sample::Index>().prop_map(|i| variable_name(i.get(KEYS).0)),
        "CLOUDROUTES_[A-Z_]{0,20}",
        Just("CLOUDROUTES_COOKIE".to_owned()),
    ];
    let env = proptest::collection::vec((name, odd_string()), 0..6).prop_map(|mut env| {
        env.push(("CLOUDROUTES_SMTP_USERNAME".to_owned(), "cloudroutes".to_owned()));
        env.push(("CLOUDROUTES_SMTP_PASSWORD".to_owned(), SECRET.to_owned()));
        env
    });
    fuzzing::run("config_env_arbitrary", env, |env| {
        match load(dir.path(), "", &env) {
            Ok(_) => {}
            Err(error) => check_error(&error)?,
        }
        Ok(())
    });
}
