//! A gate that holds monitor actors back before their first check.
//!
//! In cluster mode a node spawns the monitors of a partition it is about to take over ahead of
//! time, while the partition's lease still belongs to a peer that went silent (see
//! `node/standby.rs`). Those actors wait behind their partition's closed gate: they check
//! nothing and report nothing until the lease is granted here and the gate opens.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Longest spread of the first checks of monitors whose first check fell due while they were
/// held back: they start within it once the gate opens, not all in the same instant.
const OPENING_SPREAD: Duration = Duration::from_secs(1);

/// A one-way gate: closed when made, open for good once [`Gate::open`] is called.
#[derive(Debug)]
pub struct Gate {
    closed_at: Instant,
    opened_at: OnceLock<Instant>,
    opened: Notify,
}

impl Default for Gate {
    fn default() -> Self {
        Self { closed_at: Instant::now(), opened_at: OnceLock::new(), opened: Notify::new() }
    }
}

impl Gate {
    /// Opens the gate and wakes every monitor waiting behind it.
    pub fn open(&self) {
        let _ = self.opened_at.set(Instant::now());
        self.opened.notify_waiters();
    }

    /// Returns whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.opened_at.get().is_some()
    }

    /// Waits until the gate is open, then returns when the first check is due: `due` if it is
    /// still ahead. A check that fell due while the gate was closed runs within
    /// [`OPENING_SPREAD`] of the opening (or its interval, if shorter), in the order they fell
    /// due: the one overdue longest, and so nearest to its gap bound, first.
    pub async fn pass(&self, due: Instant, interval: Duration) -> Instant {
        let opened_at = loop {
            // Registered before the flag is read: an opening in between still wakes it.
            let opened = self.opened.notified();
            if let Some(at) = self.opened_at.get() {
                break *at;
            }
            opened.await;
        };
        let now = Instant::now();
        if due > now {
            return due;
        }
        let closed_for = opened_at.saturating_duration_since(self.closed_at);
        let waited = due.saturating_duration_since(self.closed_at).min(closed_for);
        let share = if closed_for.is_zero() { 0.0 } else { waited.div_duration_f64(closed_for) };
        now.max(opened_at + interval.min(OPENING_SPREAD).mul_f64(share))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn waiter(gate: &Arc<Gate>, due: Instant) -> tokio::task::JoinHandle<Instant> {
        let gate = Arc::clone(gate);
        tokio::spawn(async move { gate.pass(due, Duration::from_secs(60)).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_holds_until_opened_and_spreads_what_fell_due_in_order() {
        let gate = Arc::new(Gate::default());
        let closed_at = Instant::now();
        // Fell due 1 s, 5 s and 9 s after the gate closed; the gate opens at 10 s.
        let dues = [1, 9, 5].map(|secs| closed_at + Duration::from_secs(secs));
        let waiting = dues.map(|due| waiter(&gate, due));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(waiting.iter().all(|w| !w.is_finished()), "passed a closed gate");
        let opened_at = Instant::now();
        gate.open();
        let mut firsts = Vec::new();
        for w in waiting {
            firsts.push(w.await.unwrap());
        }
        let offsets: Vec<u128> =
            firsts.iter().map(|first| first.duration_since(opened_at).as_millis()).collect();
        // Spread over the second after the opening, longest overdue first.
        assert_eq!(offsets, [100, 900, 500]);
        // Once open, a due instant still ahead is kept as it is.
        let ahead = Instant::now() + Duration::from_secs(30);
        assert_eq!(gate.pass(ahead, Duration::from_secs(60)).await, ahead);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_check_still_ahead_at_the_opening_keeps_its_instant() {
        let gate = Arc::new(Gate::default());
        let due = Instant::now() + Duration::from_secs(30);
        let waiting = waiter(&gate, due);
        tokio::time::sleep(Duration::from_secs(5)).await;
        gate.open();
        assert_eq!(waiting.await.unwrap(), due);
    }
}
