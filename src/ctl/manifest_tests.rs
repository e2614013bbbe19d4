use serde_json::{Value, json};

use super::{Format, Manifest};

const TOML: &str = r#"
[[reactions]]
name = "page ops"
trigger = 2
[reactions.action]
type = "http-webhook"
url = "http://127.0.0.1:9/hook"

[[monitors]]
name = "shop"
interval_secs = 30
reactions = ["page ops"]
tags = ["shop"]
[monitors.check]
type = "tcp-check"
host = "127.0.0.1"
port = 80
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn error_of(document: Value) -> String {
    format!("{:#}", Manifest::from_document(document, &no_env).expect_err("refused"))
}

#[test]
fn toml_yaml_and_json_hold_the_same_manifest() {
    let from_toml = Manifest::parse(TOML, Format::Toml, "m.toml").expect("TOML");
    assert_eq!(from_toml.reactions[0]["action"]["type"], "http-webhook");
    assert_eq!(from_toml.monitors[0]["check"]["port"], 80);
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let text = from_toml.render(format).expect("render");
        let again = Manifest::parse(&text, format, "again").expect("parse what was rendered");
        assert_eq!(again, from_toml, "{format:?}:\n{text}");
    }
}

#[test]
fn environment_placeholders_are_expanded_and_missing_ones_named() {
    let document =
        json!({"reactions": [{"name": "r", "action": {"type": "stathat", "ezkey": "${KEY}"}}]});
    let env = |name: &str| (name == "KEY").then(|| "from-env".to_owned());
    let manifest = Manifest::from_document(document.clone(), &env).expect("expanded");
    assert_eq!(manifest.reactions[0]["action"]["ezkey"], "from-env");
    let error = error_of(document);
    assert!(error.contains("KEY is not set") && error.contains("reactions \"r\""), "{error}");
}

#[test]
fn bad_manifests_are_refused_with_the_reason() {
    let cases = [
        (json!([1]), "top level"),
        (json!({"monitor": []}), "unknown top-level key `monitor`"),
        (json!({"monitors": {}}), "`monitors` must be a list"),
        (json!({"monitors": [3]}), "monitors[0] must be a table"),
        (json!({"monitors": [{"check": {}}]}), "monitors[0] needs a `name`"),
        (json!({"monitors": [{"name": "a", "id": "x"}]}), "has `id`"),
        (json!({"reactions": [{"name": "a"}, {"name": "a"}]}), "two reactions are named \"a\""),
        (json!({"monitors": [{"name": "a", "reactions": "r"}]}), "list of reaction names"),
    ];
    for (document, expected) in cases {
        let error = error_of(document.clone());
        assert!(error.contains(expected), "{document}: {error}");
    }
    let error =
        format!("{:#}", Manifest::parse("[[monitors]\n", Format::Toml, "f.toml").expect_err("bad"));
    assert!(error.contains("f.toml is not valid TOML"), "{error}");
}

#[test]
fn export_drops_read_only_fields_and_names_reactions() {
    let reactions =
        [json!({"id": "R1", "name": "page ops", "action": {"type": "x"}, "last_run_at": null})];
    let monitors = [json!({
        "id": "M1", "name": "shop", "check": {"type": "webhook"}, "interval_secs": null,
        "reactions": ["R1", "gone"], "state": {"status": "healthy"}, "webhook_url": "http://x",
    })];
    let manifest = Manifest::from_api(&reactions, &monitors);
    assert_eq!(
        Value::Object(manifest.reactions[0].clone()),
        json!({"name": "page ops", "action": {"type": "x"}})
    );
    assert_eq!(
        Value::Object(manifest.monitors[0].clone()),
        json!({"name": "shop", "check": {"type": "webhook"}, "reactions": ["page ops", "gone"]})
    );
    assert_eq!(Format::of_path("a/b.YML".as_ref()), Some(Format::Yaml));
    assert_eq!(Format::of_path("a/b".as_ref()), None);
}
