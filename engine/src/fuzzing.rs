//! Bounded property-based fuzzing on the stable toolchain, shared by the fuzz targets of every
//! crate (`checks/tests/fuzz_*.rs`, `reactions/tests/fuzz_*.rs`, the engine's config target).
//!
//! A target is a [`proptest`] strategy and a property; [`run`] feeds it cases until the case
//! count or the time budget is spent, shrinks any failure to a minimal input and panics with
//! it. The budget comes from the environment, so the normal test suite runs a few cases and
//! `scripts/fuzz.sh` runs many:
//!
//! - `PROPTEST_CASES`: cases per target (default [`DEFAULT_CASES`]);
//! - `FUZZ_SECONDS`: time per target (default [`DEFAULT_SECONDS`]); whichever ends first stops.
//! - `FUZZ_SEED`: the seed of the first batch. Unset, the normal suite (no `FUZZ_SECONDS`)
//!   uses a fixed seed, so a test run is repeatable and never fails by luck of the draw, and a
//!   budgeted run (`scripts/fuzz.sh`) draws fresh random seeds to explore.
//!
//! The strategies here make inputs that parsers get wrong: arbitrary JSON with odd unicode,
//! huge and negative numbers and deep nesting ([`json_value`]), and valid documents with a few
//! fields mutated ([`mutated`]). Compiled for the engine's own tests and, with the `fuzzing`
//! feature, for other crates' tests.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::{Map, Number, Value};

/// Cases per target when `PROPTEST_CASES` is not set: enough to catch the obvious, fast.
pub const DEFAULT_CASES: u32 = 64;

/// The seed of the normal suite's runs (no `FUZZ_SECONDS`, no `FUZZ_SEED`).
pub const FIXED_SEED: u64 = 0x00c1_0dd0_7e55;

/// Seconds per target when `FUZZ_SECONDS` is not set.
pub const DEFAULT_SECONDS: u64 = 60;

/// Cases per batch: the budget is checked between batches, each with a fresh random seed.
const BATCH: u32 = 256;

/// How much one target may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most cases to run.
    pub cases: u32,
    /// Most time to spend (checked between batches of cases).
    pub time: Duration,
    /// The first batch's seed (each later batch adds one); `None` draws random seeds.
    pub seed: Option<u64>,
}

impl Budget {
    /// Reads `PROPTEST_CASES` and `FUZZ_SECONDS`; unset or unparsable values get the defaults.
    pub fn from_env() -> Self {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse().ok());
        Self {
            cases: number("PROPTEST_CASES")
                .and_then(|n: u64| u32::try_from(n).ok())
                .unwrap_or(DEFAULT_CASES)
                .max(1),
            time: Duration::from_secs(number("FUZZ_SECONDS").unwrap_or(DEFAULT_SECONDS)),
            seed: number("FUZZ_SEED")
                .or_else(|| std::env::var_os("FUZZ_SECONDS").is_none().then_some(FIXED_SEED)),
        }
    }
}

/// What one target did: how many cases passed and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Cases run, all of which held.
    pub cases: u32,
    /// Time spent.
    pub elapsed: Duration,
}

/// Runs `property` on inputs from `strategy` within the budget from the environment, prints
/// `fuzz NAME: N cases in S s` to stderr and returns the report.
///
/// # Panics
/// When the property fails or panics: the message has the target, the reason and the shrunk
/// input, to be turned into a regression test.
pub fn run<S, F>(name: &str, strategy: S, property: F) -> Report
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(S::Value) -> Result<(), TestCaseError>,
{
    run_with(name, Budget::from_env(), strategy, property)
}

/// [`run`] with an explicit budget.
///
/// # Panics
/// As [`run`].
pub fn run_with<S, F>(name: &str, budget: Budget, strategy: S, property: F) -> Report
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(S::Value) -> Result<(), TestCaseError>,
{
    let started = Instant::now();
    let mut done = 0u32;
    while done < budget.cases && (done == 0 || started.elapsed() < budget.time) {
        let batch = BATCH.min(budget.cases - done);
        let rng_seed = budget.seed.map_or(RngSeed::Random, |seed| {
            RngSeed::Fixed(seed.wrapping_add(u64::from(done / BATCH)))
        });
        let config =
            Config { cases: batch, failure_persistence: None, rng_seed, ..Config::default() };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &property) {
            Ok(()) => done += batch,
            Err(TestError::Fail(reason, input)) => {
                panic!("fuzz target `{name}` failed: {reason}\nminimal input: {input:#?}")
            }
            Err(TestError::Abort(reason)) => panic!("fuzz target `{name}` aborted: {reason}"),
        }
    }
    let report = Report { cases: done, elapsed: started.elapsed() };
    eprintln!("fuzz {name}: {} cases in {:.1} s", report.cases, report.elapsed.as_secs_f64());
    report
}

/// A plugin object (a check or reaction config): `type` is one of `names` or any JSON value,
/// beside up to five arbitrary fields.
pub fn plugin_object(names: Vec<serde_json::Value>) -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![proptest::sample::select(names), json_value()],
        proptest::collection::btree_map(odd_string(), json_value(), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut map: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
            map.insert("type".to_owned(), kind);
            serde_json::Value::Object(map)
        })
}

/// Strings that parsers mishandle: empty, control characters, NUL, byte-order marks, right-to-
/// left marks, combining marks, astral-plane characters, very long text, and any string.
pub fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a-z_]{0,12}",
        1 => Just(String::new()),
        1 => Just("\u{0}\u{1b}[31m\r\n\t".to_owned()),
        1 => Just("\u{feff}\u{202e}évil\u{301}\u{1f4a5}\u{10ffff}".to_owned()),
        1 => (1usize..20_000).prop_map(|n| "ü".repeat(n)),
        1 => Just("%00%ZZ%%&=&&==;+".to_owned()),
    ]
}

/// Numbers at and past the edges: zero, negative, `i64`/`u64` extremes, floats, tiny and
/// huge exponents.
pub fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(0)),
        Just(Value::from(-1)),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        Just(Value::from(1e308)),
        Just(Value::from(-0.0)),
    ]
}

/// A JSON scalar: null, a boolean, an [`odd_number`] or an [`odd_string`].
pub fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        odd_number(),
        odd_string().prop_map(Value::String),
    ]
}

/// Any JSON value, up to 8 levels of arrays and objects (keys are themselves odd).
pub fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(odd_string(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// `depth` nested arrays (`[[[…]]]`) or objects around `inner`.
pub fn nested(depth: usize, objects: bool, inner: Value) -> Value {
    (0..depth).fold(inner, |value, _| {
        if objects {
            Value::Object(std::iter::once(("a".to_owned(), value)).collect())
        } else {
            Value::Array(vec![value])
        }
    })
}

/// A value that does not belong where a field is: an odd scalar, an array or object of
/// anything, or a deeply nested one.
pub fn wrong_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => json_leaf(),
        2 => json_value(),
        1 => (100usize..200, any::<bool>()).prop_map(|(depth, objects)| nested(depth, objects, Value::Null)),
    ]
}

/// One edit of a JSON document, applied by [`mutate`].
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace the value at the chosen place.
    Replace(Value),
    /// Remove the chosen member or item.
    Remove,
    /// Add a member with this key and value to the chosen object (or the root).
    Add(String, Value),
    /// Wrap the chosen value in an array.
    Wrap,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => wrong_value().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        1 => (odd_string(), json_leaf()).prop_map(|(k, v)| Mutation::Add(k, v)),
        1 => Just(Mutation::Wrap),
    ]
}

/// Every JSON pointer in `value`, the root first.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            out.push(at.clone());
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Applies `edit` to the place `index` picks in `value`.
pub fn mutate(value: &mut Value, index: &prop::sample::Index, edit: Mutation) {
    let mut all = Vec::new();
    pointers(value, String::new(), &mut all);
    let at = index.get(&all).clone();
    match edit {
        Mutation::Replace(new) => {
            if let Some(slot) = value.pointer_mut(&at) {
                *slot = new;
            }
        }
        Mutation::Wrap => {
            if let Some(slot) = value.pointer_mut(&at) {
                let old = slot.take();
                *slot = Value::Array(vec![old]);
            }
        }
        Mutation::Add(key, new) => match value.pointer_mut(&at) {
            Some(Value::Object(map)) => {
                map.insert(key, new);
            }
            Some(Value::Array(items)) => items.push(new),
            _ => {}
        },
        Mutation::Remove => {
            let Some((parent, last)) = at.rsplit_once('/') else { return };
            let last = last.replace("~1", "/").replace("~0", "~");
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
        }
    }
}

/// `valid` with one to three [`Mutation`]s applied at random places.
pub fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    proptest::collection::vec((any::<prop::sample::Index>(), mutation()), 1..4).prop_map(
        move |edits| {
            let mut value = valid.clone();
            for (index, edit) in edits {
                mutate(&mut value, &index, edit);
            }
            value
        },
    )
}

/// Bytes that look like a body: arbitrary bytes, text, or JSON text (valid or cut short).
pub fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        odd_string().prop_map(String::into_bytes),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let end = cut.index(text.len() + 1);
            text[..end].to_vec()
        }),
        (1usize..5_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
    ]
}

/// Strings a config field plausibly holds: URLs (loopback only: fuzzing sends nothing, but a
/// valid config must never point elsewhere), hosts, names, codes, and odd ones.
fn plausible_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("http://127.0.0.1:9/".to_owned()),
        Just("https://127.0.0.1/api/v1?x=1#f".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("localhost".to_owned()),
        Just("example".to_owned()),
        Just("a@example.com".to_owned()),
        Just("GET".to_owned()),
        Just("failed".to_owned()),
        "[a-z0-9._-]{1,16}",
        odd_string(),
    ]
}

/// A value for a JSON Schema: within its `minimum`/`maximum` and at and past their edges
/// for integers, [`plausible_string`]s for strings (`secret` among them), arrays and maps of
/// those; or, now and then, any [`wrong_value`].
fn for_schema(schema: &Value, secret: &str) -> BoxedStrategy<Value> {
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if schema["enum"].is_array() => "enum".to_owned(),
        _ => String::new(),
    };
    let secret = secret.to_owned();
    let fitting: BoxedStrategy<Value> = match kind.as_str() {
        "integer" | "number" => {
            let min = schema["minimum"].as_i64().unwrap_or(0);
            let max = schema["maximum"].as_i64().unwrap_or(min.saturating_add(1_000));
            let edges = vec![
                min,
                max,
                min.saturating_sub(1),
                max.saturating_add(1),
                (min + max) / 2,
                i64::MAX,
            ];
            prop_oneof![
                3 => (min..=max.max(min)).prop_map(Value::from),
                1 => proptest::sample::select(edges).prop_map(Value::from),
            ]
            .boxed()
        }
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        "string" => prop_oneof![
            4 => plausible_string(),
            1 => Just(secret),
            1 => proptest::collection::vec(proptest::sample::select(vec!['a', 'é', '.', '/']), 0..300)
                .prop_map(|c| c.into_iter().collect()),
        ]
        .prop_map(Value::String)
        .boxed(),
        "array" => {
            let items = for_schema(&schema["items"], &secret);
            proptest::collection::vec(items, 0..4).prop_map(Value::Array).boxed()
        }
        "object" if schema["properties"].is_object() => object_for_schema(schema, &secret),
        "object" => proptest::collection::btree_map("[A-Za-z-]{1,12}", plausible_string(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
            .boxed(),
        "enum" => {
            let options = schema["enum"].as_array().cloned().unwrap_or_default();
            if options.is_empty() { Just(Value::Null).boxed() } else { proptest::sample::select(options).boxed() }
        }
        _ if schema["oneOf"].is_array() || schema["anyOf"].is_array() => {
            let options = schema["oneOf"].as_array().or(schema["anyOf"].as_array()).cloned().unwrap_or_default();
            let strategies: Vec<BoxedStrategy<Value>> =
                options.iter().map(|s| for_schema(s, &secret)).collect();
            if strategies.is_empty() { json_leaf().boxed() } else { proptest::strategy::Union::new(strategies).boxed() }
        }
        _ => json_leaf().boxed(),
    };
    prop_oneof![9 => fitting, 1 => wrong_value()].boxed()
}

fn object_for_schema(schema: &Value, secret: &str) -> BoxedStrategy<Value> {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let value = for_schema(property, secret);
        let name = name.clone();
        let keep = if required.contains(&name) { 19 } else { 10 };
        fields.push(
            (proptest::bool::weighted(f64::from(keep) / 20.0), value)
                .prop_map(move |(present, v)| present.then(|| (name.clone(), v)))
                .boxed(),
        );
    }
    fields.prop_map(|pairs| Value::Object(pairs.into_iter().flatten().collect())).boxed()
}

/// A config object of type `kind` drawn from its JSON Schema (as `/api/v1/check-types` or
/// `/api/v1/reaction-types` lists it), with `secret` as the value of some string fields;
/// mostly fitting the schema, sometimes not. Mutate it further with [`mutated`].
pub fn from_schema(kind: &str, schema: &Value, secret: &str) -> BoxedStrategy<Value> {
    let kind = Value::String(kind.to_owned());
    object_for_schema(schema, secret)
        .prop_map(move |mut object| {
            if let Value::Object(map) = &mut object {
                map.insert("type".to_owned(), kind.clone());
            }
            object
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_property_panics_with_the_shrunk_input() {
        let budget = Budget { cases: 200, time: Duration::from_secs(10), seed: None };
        let outcome = std::panic::catch_unwind(|| {
            run_with("demo", budget, 0u32..1000, |n| {
                prop_assert!(n < 10, "too big");
                Ok(())
            })
        });
        let message = outcome.expect_err("must fail");
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("`demo` failed"), "{text}");
        assert!(text.contains("minimal input: 10"), "{text}");
    }

    #[test]
    fn the_case_count_bounds_a_run() {
        let budget = Budget { cases: 300, time: Duration::from_secs(60), seed: None };
        let report = run_with("count", budget, any::<u8>(), |_| Ok(()));
        assert_eq!(report.cases, 300);
    }

    #[test]
    fn mutations_change_valid_documents() {
        let valid = serde_json::json!({"a": {"b": [1, 2]}, "c": "x"});
        let budget = Budget { cases: 64, time: Duration::from_secs(10), seed: None };
        let changed = std::sync::atomic::AtomicU32::new(0);
        run_with("mutate", budget, mutated(valid.clone()), |value| {
            if value != valid {
                changed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        });
        assert!(changed.into_inner() > 32);
    }
}
