//! A gate that holds monitor actors back before their first check.
//!
//! In cluster mode a node spawns the monitors of a partition it is about to take over ahead of
//! time, while the partition's lease still belongs to a peer that went silent (see
//! `node/standby.rs`). Those actors wait behind their partition's closed gate: they check
//! nothing and report nothing until the lease is granted here and the gate opens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::monitor::random_phase;

/// Longest spread of the first checks of monitors whose first check fell due while they were
/// held back: they start within it once the gate opens, not all in the same instant.
const OPENING_SPREAD: Duration = Duration::from_secs(1);

/// A one-way gate: closed when made, open for good once [`Gate::open`] is called.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicBool,
    opened: Notify,
}

impl Gate {
    /// Opens the gate and wakes every monitor waiting behind it.
    pub fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.opened.notify_waiters();
    }

    /// Returns whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until the gate is open, then returns when the first check is due: `due` if it is
    /// still ahead, else soon (within [`OPENING_SPREAD`], or the interval if shorter).
    pub async fn pass(&self, due: Instant, interval: Duration) -> Instant {
        if self.is_open() {
            return due;
        }
        loop {
            // Registered before the flag is read: an opening in between still wakes it.
            let opened = self.opened.notified();
            if self.is_open() {
                break;
            }
            opened.await;
        }
        let now = Instant::now();
        if due > now { due } else { now + random_phase(interval.min(OPENING_SPREAD)) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_holds_until_opened_and_spreads_what_fell_due() {
        let gate = Arc::new(Gate::default());
        let interval = Duration::from_secs(60);
        let due = Instant::now() + Duration::from_secs(2);
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.pass(due, interval).await }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!waiting.is_finished(), "passed a closed gate");
        let opened_at = Instant::now();
        gate.open();
        let first = waiting.await.unwrap();
        assert!(first >= opened_at && first < opened_at + OPENING_SPREAD, "{first:?}");
        // Once open, a due instant still ahead is kept as it is.
        let ahead = Instant::now() + Duration::from_secs(30);
        assert_eq!(gate.pass(ahead, interval).await, ahead);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_check_still_ahead_at_the_opening_keeps_its_instant() {
        let gate = Arc::new(Gate::default());
        let due = Instant::now() + Duration::from_secs(30);
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.pass(due, Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        gate.open();
        assert_eq!(waiting.await.unwrap(), due);
    }
}
