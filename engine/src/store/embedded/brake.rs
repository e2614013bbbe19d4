//! The destructive-reaction budget on the embedded store: the start times of the runs granted
//! in the current window, in one record, so that a restart does not refill the budget.

use std::time::Duration;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use time::OffsetDateTime;

use super::{EmbeddedStore, embedded};
use crate::error::StoreError;

/// `destructive` → the granted runs' times (Unix milliseconds, little-endian `u64`s).
const BRAKE: TableDefinition<&str, &[u8]> = TableDefinition::new("brake");
const DESTRUCTIVE: &str = "destructive";

/// Creates the table (at open) so that readers never meet a missing one.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(BRAKE).map_err(embedded("create table"))?;
    Ok(())
}

impl EmbeddedStore {
    pub(super) async fn take_destructive_runs(
        &self,
        wanted: u32,
        limit: u32,
        window: Duration,
    ) -> Result<u32, StoreError> {
        let now = unix_ms(OffsetDateTime::now_utc());
        let since = now.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        self.write(move |txn| {
            let mut table = txn.open_table(BRAKE).map_err(embedded("open table"))?;
            let mut runs: Vec<u64> = match table.get(DESTRUCTIVE).map_err(embedded("get"))? {
                Some(bytes) => bytes
                    .value()
                    .chunks_exact(8)
                    .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or_default()))
                    .collect(),
                None => Vec::new(),
            };
            runs.retain(|at| *at > since);
            let free = usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(runs.len());
            let granted = free.min(usize::try_from(wanted).unwrap_or(usize::MAX));
            runs.extend(std::iter::repeat_n(now, granted));
            let bytes: Vec<u8> = runs.iter().flat_map(|at| at.to_le_bytes()).collect();
            table.insert(DESTRUCTIVE, bytes.as_slice()).map_err(embedded("insert"))?;
            Ok(u32::try_from(granted).unwrap_or(u32::MAX))
        })
        .await
    }
}

fn unix_ms(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}
