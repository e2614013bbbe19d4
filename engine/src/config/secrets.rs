//! `[secrets]`: the key that seals secret fields of stored monitor and reaction definitions.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::seal::SealKey;
use crate::secret::Secret;

/// `[secrets]`: where the node's secrets key comes from. With neither key set, the embedded
/// store generates `node.data_dir/secrets.key`; a Redis store refuses to start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// The key itself: base64 of 32 random bytes (prefer `CLOUDROUTES_SECRETS_KEY`).
    #[serde(default)]
    pub key: Option<Secret>,
    /// A file holding the key in base64; refused when group or others can read or write it.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl SecretsSection {
    /// Checks that at most one source is set and that `key` is a key.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `secrets.…` key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &str, message: String| ConfigError::Invalid { key: key.into(), message };
        if self.key.is_some() && self.key_file.is_some() {
            return Err(invalid(
                "secrets.key_file",
                "and secrets.key are exclusive: set one".into(),
            ));
        }
        if let Some(key) = &self.key {
            SealKey::from_base64(key.expose())
                .map_err(|error| invalid("secrets.key", error.to_string()))?;
        }
        if self.key_file.as_ref().is_some_and(|path| path.as_os_str().is_empty()) {
            return Err(invalid("secrets.key_file", "must not be empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SecretsSection;
    use crate::secret::Secret;

    fn key_of(error: crate::error::ConfigError) -> String {
        match error {
            crate::error::ConfigError::Invalid { key, .. } => key,
            other => panic!("not an invalid key: {other}"),
        }
    }

    #[test]
    fn one_source_and_a_real_key_only() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let ok = SecretsSection { key: Some(Secret::new(key)), key_file: None };
        assert!(ok.validate().is_ok());
        assert!(SecretsSection::default().validate().is_ok());
        let both = SecretsSection { key: Some(Secret::new(key)), key_file: Some("/k".into()) };
        assert_eq!(key_of(both.validate().unwrap_err()), "secrets.key_file");
        let short = SecretsSection { key: Some(Secret::new("c2hvcnQ=")), key_file: None };
        let error = short.validate().unwrap_err();
        assert!(!error.to_string().contains("c2hvcnQ="), "{error}");
        assert_eq!(key_of(error), "secrets.key");
    }
}
