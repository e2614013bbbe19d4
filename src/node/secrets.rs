//! The node's secrets key and the sealed store around its backend: the key is loaded (or, on
//! the embedded store, generated), checked against the store, and plaintext left from before
//! sealing is sealed before the node serves anything.

use anyhow::Context;
use cloudroutes_engine::Store;
use cloudroutes_engine::config::{ClusterSection, NodeConfig};
use cloudroutes_engine::seal::key::{self, KeySource};
use cloudroutes_engine::store::sealed::{KeyCheck, SealedStore, SecretFields};

/// How many definitions the startup reseal reads at a time.
const RESEAL_PAGE: usize = 1_000;

/// Where the node learns which check and reaction fields are secret.
const FIELDS: SecretFields = SecretFields {
    check: cloudroutes_checks::secret_fields_of,
    action: cloudroutes_reactions::secret_fields_of,
};

/// Wraps `store` in a [`SealedStore`] with the configured key, refusing a key that does not
/// open what the store already holds. With `reseal`, seals plaintext secrets stored before
/// sealing existed (a single node only: cluster members seal on the next write).
///
/// # Errors
/// No usable key (the message names its source), a wrong key, or a store failure.
pub(super) async fn seal<S: Store>(
    store: S,
    config: &NodeConfig,
    reseal: bool,
) -> anyhow::Result<SealedStore<S>> {
    let (key, source) = key::load(&config.secrets, &config.node.data_dir, config.is_embedded())
        .context("loading the secrets key")?;
    if let KeySource::Generated(path) = &source {
        tracing::info!(path = %path.display(), "secrets are sealed with the key in this file: back it up with the data directory");
    }
    let sealed = SealedStore::new(store, key, FIELDS);
    match sealed.check_key().await {
        Ok(KeyCheck::Matches) => {}
        Ok(KeyCheck::Recorded) => {
            tracing::info!(key = %source, "secrets key recorded in the store")
        }
        Err(cloudroutes_engine::StoreError::Corrupt { .. }) => anyhow::bail!(
            "the secrets key from {source} does not open the secrets already in the store: \
             start with the key that sealed them (every node of a cluster needs the same key)"
        ),
        Err(error) => return Err(error).context("checking the secrets key against the store"),
    }
    if reseal {
        let count = sealed.reseal(RESEAL_PAGE).await.context("sealing plaintext secrets")?;
        if count > 0 {
            tracing::info!(definitions = count, "sealed secrets stored in plain text");
        }
    }
    Ok(sealed)
}

/// Returns the cluster cookie: `cluster.cookie`, or the content of `cluster.cookie_file`
/// (refused when group or others can read or write it).
///
/// # Errors
/// The cookie file is unreadable, not private, or empty.
pub(super) fn cookie(cluster: &ClusterSection) -> anyhow::Result<String> {
    if let Some(path) = &cluster.cookie_file {
        let cookie = key::read_private_file(path).context("reading cluster.cookie_file")?;
        if cookie.is_empty() {
            anyhow::bail!("cluster.cookie_file {} is empty", path.display());
        }
        return Ok(cookie);
    }
    Ok(cluster.cookie.as_ref().map(|c| c.expose().to_owned()).unwrap_or_default())
}
