//! Monitors and reactions as code: the file `ctl apply` reads and `ctl export` writes.
//!
//! A manifest has two lists, `reactions` and `monitors`, each item a definition as the API
//! takes it, without `id`: items are matched with the node's by `name`, and a monitor names
//! its reactions by their names too. TOML, YAML and JSON all hold the same document. A string
//! that is exactly `${NAME}` is replaced by the environment variable `NAME`, so secrets can
//! stay out of the file; `"***"` (what the API and `export` show for a secret) keeps the value
//! the node already has.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// The formats a manifest can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// TOML: `[[reactions]]` and `[[monitors]]` tables.
    Toml,
    /// YAML: `reactions:` and `monitors:` lists.
    Yaml,
    /// JSON: `{"reactions": [...], "monitors": [...]}`.
    Json,
}

impl Format {
    /// The format a file's extension names, if any.
    pub(super) fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// The keys an item may not carry: the node assigns or computes them.
const READ_ONLY: [&str; 4] = ["id", "state", "webhook_url", "last_run_at"];

/// What a manifest file declares, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Manifest {
    /// Reaction definitions, each with a unique `name`.
    pub(super) reactions: Vec<Map<String, Value>>,
    /// Monitor definitions, each with a unique `name`; `reactions` holds reaction names.
    pub(super) monitors: Vec<Map<String, Value>>,
}

impl Manifest {
    /// Parses a manifest from `text` in `format`; `source` names it in errors.
    pub(super) fn parse(text: &str, format: Format, source: &str) -> anyhow::Result<Manifest> {
        let document: Value = match format {
            Format::Toml => {
                let table: toml::Table =
                    toml::from_str(text).with_context(|| format!("{source} is not valid TOML"))?;
                toml_to_json(toml::Value::Table(table))
            }
            Format::Yaml => serde_yaml_ng::from_str(text)
                .with_context(|| format!("{source} is not valid YAML"))?,
            Format::Json => {
                serde_json::from_str(text).with_context(|| format!("{source} is not valid JSON"))?
            }
        };
        Manifest::from_document(document, &|name| std::env::var(name).ok())
            .with_context(|| format!("in {source}"))
    }

    /// Checks a parsed document and expands `${NAME}` strings with `env`.
    fn from_document(
        document: Value,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut document = match document {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => bail!("the file must hold `reactions` and `monitors` lists at its top level"),
        };
        if let Some(key) = document.keys().find(|k| *k != "reactions" && *k != "monitors") {
            bail!(
                "unknown top-level key `{key}`: a manifest holds only `reactions` and `monitors`"
            );
        }
        let mut manifest = Manifest::default();
        for (kind, list) in
            [("reactions", &mut manifest.reactions), ("monitors", &mut manifest.monitors)]
        {
            let items = match document.remove(kind) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(_) => bail!("`{kind}` must be a list"),
            };
            let mut seen = HashSet::new();
            for (index, item) in items.into_iter().enumerate() {
                let Value::Object(mut item) = item else {
                    bail!("{kind}[{index}] must be a table of fields");
                };
                let name = match item.get("name") {
                    Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
                    _ => bail!("{kind}[{index}] needs a `name`: items are matched by name"),
                };
                if let Some(key) = READ_ONLY.iter().find(|k| item.contains_key(**k)) {
                    bail!(
                        "{kind} \"{name}\" has `{key}`, which the node sets: remove it (items are matched by name)"
                    );
                }
                if !seen.insert(name.clone()) {
                    bail!("two {kind} are named \"{name}\": names must be unique in a manifest");
                }
                for value in item.values_mut() {
                    expand(value, env).with_context(|| format!("{kind} \"{name}\""))?;
                }
                list.push(item);
            }
        }
        for monitor in &manifest.monitors {
            match monitor.get("reactions") {
                None => {}
                Some(Value::Array(names)) if names.iter().all(Value::is_string) => {}
                Some(_) => bail!(
                    "monitors \"{}\": `reactions` must be a list of reaction names",
                    text(&monitor["name"])
                ),
            }
        }
        Ok(manifest)
    }

    /// Writes the manifest in `format`.
    pub(super) fn render(&self, format: Format) -> anyhow::Result<String> {
        let mut document = Map::new();
        document.insert(
            "reactions".into(),
            Value::Array(self.reactions.iter().cloned().map(Value::Object).collect()),
        );
        document.insert(
            "monitors".into(),
            Value::Array(self.monitors.iter().cloned().map(Value::Object).collect()),
        );
        let document = Value::Object(document);
        Ok(match format {
            Format::Toml => {
                toml::to_string(&document).context("cannot write the manifest as TOML")?
            }
            Format::Yaml => serde_yaml_ng::to_string(&document).context("cannot write YAML")?,
            Format::Json => format!("{}\n", serde_json::to_string_pretty(&document)?),
        })
    }

    /// Builds the manifest of what a node holds: API items without their read-only fields
    /// and nulls, monitors naming their reactions by name.
    pub(super) fn from_api(reactions: &[Value], monitors: &[Value]) -> Manifest {
        let names: BTreeMap<&str, &str> = reactions
            .iter()
            .filter_map(|r| Some((r["id"].as_str()?, r["name"].as_str()?)))
            .collect();
        let clean = |item: &Value| -> Map<String, Value> {
            let mut item = item.as_object().cloned().unwrap_or_default();
            item.retain(|key, value| !READ_ONLY.contains(&key.as_str()) && !value.is_null());
            item
        };
        let monitors = monitors
            .iter()
            .map(|monitor| {
                let mut item = clean(monitor);
                if let Some(Value::Array(ids)) = item.get_mut("reactions") {
                    for id in ids.iter_mut() {
                        if let Some(name) = id.as_str().and_then(|id| names.get(id)) {
                            *id = Value::String((*name).to_owned());
                        }
                    }
                }
                item
            })
            .collect();
        Manifest { reactions: reactions.iter().map(clean).collect(), monitors }
    }
}

/// A JSON value as text: strings bare, the rest as JSON.
pub(super) fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// Replaces every string that is exactly `${NAME}` with the variable's value.
fn expand(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    match value {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) {
                let Some(found) = env(name) else {
                    bail!(
                        "the environment variable {name} is not set (the file asks for ${{{name}}})"
                    );
                };
                *s = found;
            }
        }
        Value::Array(items) => items.iter_mut().try_for_each(|item| expand(item, env))?,
        Value::Object(map) => map.values_mut().try_for_each(|item| expand(item, env))?,
        _ => {}
    }
    Ok(())
}

/// TOML to JSON; datetimes become their RFC 3339 text.
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(at) => Value::String(at.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => {
            Value::Object(table.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
