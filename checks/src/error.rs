//! Errors of the checks crate.

/// An invalid check configuration; `field` names the offending field inside the `check` object.
pub use cloudroutes_engine::plugin::PluginConfigError as ConfigError;

pub use cloudroutes_engine::plugin::from_json;
