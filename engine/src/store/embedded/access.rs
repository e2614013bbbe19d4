//! API tokens and the audit trail on the embedded store.
//!
//! Tables: `tokens` (token id → record), `token_hashes` (hex SHA-256 of the secret → token id)
//! and `audit` (entry id → record; ids are time-ordered, so the newest sorts last).

use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::{EmbeddedStore, embedded, encode, get_record, put_record, remove_record};
use crate::access::{ApiToken, AuditEntry};
use crate::error::StoreError;
use crate::store::record::decode;

pub(super) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
pub(super) const TOKEN_HASHES: TableDefinition<&str, &str> = TableDefinition::new("token_hashes");
pub(super) const AUDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("audit");

/// Creates the tables (at open) so that readers never meet a missing one.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TOKENS).map_err(embedded("create table"))?;
    txn.open_table(TOKEN_HASHES).map_err(embedded("create table"))?;
    txn.open_table(AUDIT).map_err(embedded("create table"))?;
    Ok(())
}

impl EmbeddedStore {
    pub(super) async fn create_token_record(&self, token: &ApiToken) -> Result<bool, StoreError> {
        let (token, bytes) = (token.clone(), encode(token)?);
        self.write(move |txn| {
            {
                let tokens = txn.open_table(TOKENS).map_err(embedded("open table"))?;
                for entry in tokens.iter().map_err(embedded("iterate"))? {
                    let (key, value) = entry.map_err(embedded("iterate"))?;
                    let existing: ApiToken = decode("token", key.value(), value.value())?;
                    if existing.name == token.name {
                        return Ok(false);
                    }
                }
            }
            put_record(txn, TOKENS, &token.id, &bytes)?;
            let mut hashes = txn.open_table(TOKEN_HASHES).map_err(embedded("open table"))?;
            hashes.insert(token.hash.as_str(), token.id.as_str()).map_err(embedded("insert"))?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn token_record_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let hash = hash.to_owned();
        self.blocking(move |db| {
            let id = {
                let txn = db.begin_read().map_err(embedded("begin read"))?;
                let hashes = txn.open_table(TOKEN_HASHES).map_err(embedded("open table"))?;
                let id = hashes.get(hash.as_str()).map_err(embedded("get"))?;
                id.map(|id| id.value().to_owned())
            };
            match id {
                Some(id) => get_record(db, TOKENS, "token", &id),
                None => Ok(None),
            }
        })
        .await
    }

    pub(super) async fn token_records(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(embedded("begin read"))?;
            let tokens = txn.open_table(TOKENS).map_err(embedded("open table"))?;
            let mut records = Vec::new();
            for entry in tokens.iter().map_err(embedded("iterate"))? {
                let (key, value) = entry.map_err(embedded("iterate"))?;
                records.push(decode("token", key.value(), value.value())?);
            }
            Ok(records)
        })
        .await
    }

    pub(super) async fn delete_token_record(
        &self,
        id: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let id = id.to_owned();
        self.write(move |txn| {
            let existing: Option<ApiToken> = {
                let tokens = txn.open_table(TOKENS).map_err(embedded("open table"))?;
                let value = tokens.get(id.as_str()).map_err(embedded("get"))?;
                value.map(|value| decode("token", &id, value.value())).transpose()?
            };
            if let Some(token) = &existing {
                remove_record(txn, TOKENS, &id)?;
                let mut hashes = txn.open_table(TOKEN_HASHES).map_err(embedded("open table"))?;
                hashes.remove(token.hash.as_str()).map_err(embedded("remove"))?;
            }
            Ok(existing)
        })
        .await
    }

    pub(super) async fn append_audit_record(
        &self,
        entry: &AuditEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        let (id, bytes, keep) = (entry.id.clone(), encode(entry)?, keep.max(1) as u64);
        self.write(move |txn| {
            let mut audit = txn.open_table(AUDIT).map_err(embedded("open table"))?;
            audit.insert(id.as_str(), bytes.as_slice()).map_err(embedded("insert"))?;
            let excess = audit.len().map_err(embedded("len"))?.saturating_sub(keep);
            for _ in 0..excess {
                audit.pop_first().map_err(embedded("remove"))?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn audit_records(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before.map(str::to_owned);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(embedded("begin read"))?;
            let audit = txn.open_table(AUDIT).map_err(embedded("open table"))?;
            let upper = before.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let mut entries = Vec::new();
            for entry in
                audit.range::<&str>((Bound::Unbounded, upper)).map_err(embedded("range"))?.rev()
            {
                if entries.len() >= limit {
                    break;
                }
                let (key, value) = entry.map_err(embedded("range"))?;
                entries.push(decode("audit entry", key.value(), value.value())?);
            }
            Ok(entries)
        })
        .await
    }
}
