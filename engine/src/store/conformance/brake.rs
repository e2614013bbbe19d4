//! Conformance check for the destructive-reaction budget.

use std::time::Duration;

use crate::Store;

/// The budget grants at most `limit` runs per window, counts what it granted, and frees it
/// once the window has passed.
///
/// # Panics
/// Panics, naming the behaviour, when the store grants too much or too little.
pub async fn destructive_budget_grants_up_to_its_limit_per_window(store: &dyn Store) {
    let window = Duration::from_millis(400);
    // Whatever an earlier run granted has left the window.
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    let take = async |wanted| store.take_destructive(wanted, 2, window).await.expect("budget");
    assert_eq!(take(3).await, 2, "a budget of 2 grants 2 of 3 runs wanted");
    assert_eq!(take(1).await, 0, "a spent budget grants nothing");
    assert_eq!(
        store.take_destructive(1, 3, window).await.expect("budget"),
        1,
        "a larger limit grants what it has left"
    );
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert_eq!(take(1).await, 1, "runs older than the window no longer count");
    assert_eq!(take(5).await, 1, "the run just granted counts");
}
