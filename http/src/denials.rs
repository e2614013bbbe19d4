//! Denied calls in the audit trail, without letting a flood flood the store.
//!
//! A call answered 401 (no valid token), 403 (a token whose role is too small, or a webhook
//! payload whose own credential does not match) or 429 (rate limited) is audited as action
//! `denied`, resource kind `request`, the method and path (webhook keys masked) as the
//! resource name, the error code as the outcome, the client address and a `count`.
//!
//! Bounding: per caller and kind (`unauthorized`, `forbidden`, `rate_limited`) a window of
//! `limits.denied_audit_window_ms` opens at the first denial, which is recorded at once
//! (count 1). Later denials in that window are only counted; when it ends, one more entry
//! carries their count. So each caller costs at most two entries per window and kind, however
//! many calls it makes. The caller is the token name for a 403, the client address for a 401
//! and a 429 (a 429's entry still names the token when the request carried a valid one). At
//! most `limits.max_tracked_clients` windows are open; denials past that are only counted in
//! a warning log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cloudroutes_engine::access::{AuditEntry, Role};
use time::OffsetDateTime;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use crate::ApiState;
use crate::auth::Caller;

/// What [`DenialLog::note`] decided about one denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// It opens a window: record it now, then hand the entry to [`DenialLog::attach`].
    Opened,
    /// Counted in an open window; its entry comes when the window ends.
    Folded,
    /// Too many windows are open: only counted for a log line.
    Dropped,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    folded: u64,
    entry: Option<AuditEntry>,
}

#[derive(Debug, Default)]
struct Windows {
    open: HashMap<(String, &'static str), Window>,
    ready: Vec<AuditEntry>,
    dropped: u64,
}

/// Open windows of denials, by caller and kind.
#[derive(Debug)]
pub struct DenialLog {
    window: Duration,
    max_windows: usize,
    windows: Mutex<Windows>,
}

impl DenialLog {
    /// Returns a log with windows of `window`, at most `max_windows` open at once.
    pub fn new(window: Duration, max_windows: usize) -> Self {
        Self { window, max_windows: max_windows.max(1), windows: Mutex::default() }
    }

    /// Returns how long a window lasts.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Notes one denial of `kind` for `who` at `now`.
    pub fn note(&self, who: &str, kind: &'static str, now: Instant) -> Noted {
        let mut windows = self.lock();
        let key = (who.to_owned(), kind);
        if let Some(window) = windows.open.get_mut(&key)
            && now.saturating_duration_since(window.opened) < self.window
        {
            window.folded += 1;
            return Noted::Folded;
        }
        if let Some(ended) = windows.open.remove(&key) {
            windows.ready.extend(trailer(ended));
        }
        if windows.open.len() >= self.max_windows {
            self.close_ended(&mut windows, now);
        }
        if windows.open.len() >= self.max_windows {
            windows.dropped += 1;
            return Noted::Dropped;
        }
        windows.open.insert(key, Window { opened: now, folded: 0, entry: None });
        Noted::Opened
    }

    /// Keeps `entry`, the one recorded when `who`'s window of `kind` opened, as the model of
    /// the entry that will carry the rest of the window's count.
    pub fn attach(&self, who: &str, kind: &'static str, entry: AuditEntry) {
        if let Some(window) = self.lock().open.get_mut(&(who.to_owned(), kind)) {
            window.entry = Some(entry);
        }
    }

    /// Closes the windows that have ended by `now` and returns the entries to record: one per
    /// window that folded denials, with their count.
    pub fn due(&self, now: Instant) -> Vec<AuditEntry> {
        let mut windows = self.lock();
        self.close_ended(&mut windows, now);
        self.take_ready(&mut windows)
    }

    /// Closes every window (at shutdown) and returns the entries to record.
    pub fn drain(&self) -> Vec<AuditEntry> {
        let mut windows = self.lock();
        let open = std::mem::take(&mut windows.open);
        let trailers: Vec<AuditEntry> = open.into_values().filter_map(trailer).collect();
        windows.ready.extend(trailers);
        self.take_ready(&mut windows)
    }

    /// Returns how many windows are open.
    pub fn open_windows(&self) -> usize {
        self.lock().open.len()
    }

    fn close_ended(&self, windows: &mut Windows, now: Instant) {
        let window = self.window;
        let ended: Vec<(String, &'static str)> = windows
            .open
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.opened) >= window)
            .map(|(key, _)| key.clone())
            .collect();
        for key in ended {
            if let Some(closed) = windows.open.remove(&key) {
                windows.ready.extend(trailer(closed));
            }
        }
    }

    fn take_ready(&self, windows: &mut Windows) -> Vec<AuditEntry> {
        if windows.dropped > 0 {
            tracing::warn!(
                denials = windows.dropped,
                "denied calls not audited: too many callers denied at once (limits.max_tracked_clients)"
            );
            windows.dropped = 0;
        }
        std::mem::take(&mut windows.ready)
    }
}

/// Returns the entry carrying a closed window's folded count, if it folded any.
fn trailer(window: Window) -> Option<AuditEntry> {
    let mut entry = window.entry?;
    if window.folded == 0 {
        return None;
    }
    entry.id = cloudroutes_engine::model::new_ordered_id();
    entry.at = OffsetDateTime::now_utc();
    entry.count = Some(window.folded);
    Some(entry)
}

/// Returns the audit kind of a denied answer: `unauthorized`, `forbidden`, `rate_limited`;
/// `None` for any other answer.
pub fn denial_kind(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED => Some("unauthorized"),
        StatusCode::FORBIDDEN => Some("forbidden"),
        StatusCode::TOO_MANY_REQUESTS => Some("rate_limited"),
        _ => None,
    }
}

/// What is known of a denied request, for [`note_response`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Its method.
    pub method: &'a Method,
    /// Its path.
    pub path: &'a str,
    /// Its `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The client address.
    pub peer: Option<SocketAddr>,
}

/// Audits `response` if it denies the call (see the module's documentation). The caller of a
/// 403 comes from the response's extensions (put there by `error::recover`).
pub async fn note_response(api: &ApiState, request: Request<'_>, response: &Response) {
    let Some(kind) = denial_kind(response.status()) else { return };
    let client = request.peer.map_or_else(|| "unknown".to_owned(), |peer| peer.ip().to_string());
    let refused = response.extensions().get::<Caller>().cloned();
    let who = refused.as_ref().map_or(client.as_str(), |caller| caller.name.as_str()).to_owned();
    let log = api.limits.denials();
    if log.note(&who, kind, Instant::now()) != Noted::Opened {
        return;
    }
    let caller = match refused {
        Some(caller) => Some(caller),
        None if kind == "rate_limited" && request.authorization.is_some() => {
            api.auth.authenticate(request.authorization).await.ok()
        }
        None => None,
    };
    let mut entry = AuditEntry::new(
        OffsetDateTime::now_utc(),
        (caller.as_ref().map_or(client.as_str(), |caller| caller.name.as_str()), Role::Viewer),
        ("denied", "request"),
        kind,
    );
    entry.role = caller.map(|caller| caller.role);
    entry.resource_name =
        Some(format!("{} {}", request.method, crate::server::masked_path(request.path)));
    entry.count = Some(1);
    entry.client = Some(client);
    log.attach(&who, kind, entry.clone());
    append(api, &entry).await;
}

/// Records the entries of the windows that have ended, every `window / 4` (between 50 ms and
/// 1 s), until dropped; run it beside the server.
pub async fn record_ended_windows(api: ApiState) {
    let every = (api.limits.denials().window() / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        for entry in api.limits.denials().due(Instant::now()) {
            append(&api, &entry).await;
        }
    }
}

/// Records every open window's folded count (at shutdown).
pub async fn record_open_windows(api: &ApiState) {
    for entry in api.limits.denials().drain() {
        append(api, &entry).await;
    }
}

async fn append(api: &ApiState, entry: &AuditEntry) {
    if let Err(error) = api.node.store().append_audit(entry, api.audit_keep).await {
        tracing::error!(error = %error, outcome = %entry.outcome, "could not record a denied call in the audit trail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(who: &str) -> AuditEntry {
        let mut entry = AuditEntry::new(
            OffsetDateTime::now_utc(),
            (who, Role::Viewer),
            ("denied", "request"),
            "forbidden",
        );
        entry.count = Some(1);
        entry
    }

    #[test]
    fn a_flood_gives_one_entry_at_once_and_one_with_the_rest_of_the_window() {
        let log = DenialLog::new(Duration::from_secs(60), 100);
        let start = Instant::now();
        assert_eq!(log.note("ci", "forbidden", start), Noted::Opened);
        log.attach("ci", "forbidden", model("ci"));
        for i in 1..=999 {
            assert_eq!(
                log.note("ci", "forbidden", start + Duration::from_millis(i)),
                Noted::Folded
            );
        }
        assert!(log.due(start + Duration::from_secs(59)).is_empty(), "window still open");
        let due = log.due(start + Duration::from_secs(60));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!((due[0].actor.as_str(), due[0].count), ("ci", Some(999)));
        assert_eq!(log.open_windows(), 0);
        assert_eq!(log.note("ci", "forbidden", start + Duration::from_secs(61)), Noted::Opened);
    }

    #[test]
    fn callers_and_kinds_have_their_own_windows() {
        let log = DenialLog::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        assert_eq!(log.note("ci", "forbidden", now), Noted::Opened);
        assert_eq!(log.note("ci", "rate_limited", now), Noted::Opened);
        assert_eq!(log.note("ops", "forbidden", now), Noted::Opened);
        assert_eq!(log.note("ci", "forbidden", now), Noted::Folded);
    }

    #[test]
    fn a_lone_denial_gives_no_second_entry() {
        let log = DenialLog::new(Duration::from_millis(100), 100);
        let start = Instant::now();
        assert_eq!(log.note("10.0.0.1", "unauthorized", start), Noted::Opened);
        log.attach("10.0.0.1", "unauthorized", model("10.0.0.1"));
        assert!(log.due(start + Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn a_window_ended_but_not_yet_flushed_keeps_its_count() {
        let log = DenialLog::new(Duration::from_millis(100), 100);
        let start = Instant::now();
        log.note("ci", "forbidden", start);
        log.attach("ci", "forbidden", model("ci"));
        log.note("ci", "forbidden", start + Duration::from_millis(10));
        log.note("ci", "forbidden", start + Duration::from_millis(20));
        let later = start + Duration::from_millis(150);
        assert_eq!(log.note("ci", "forbidden", later), Noted::Opened, "a new window");
        let due = log.due(later);
        assert_eq!(due.iter().map(|e| e.count).collect::<Vec<_>>(), vec![Some(2)]);
    }

    #[test]
    fn open_windows_are_bounded_and_shutdown_drains_them() {
        let log = DenialLog::new(Duration::from_secs(60), 16);
        let now = Instant::now();
        for i in 0..1000 {
            let who = format!("10.0.{}.{}", i / 256, i % 256);
            let noted = log.note(&who, "rate_limited", now);
            assert_eq!(noted, if i < 16 { Noted::Opened } else { Noted::Dropped }, "{i}");
            if noted == Noted::Opened {
                log.attach(&who, "rate_limited", model(&who));
            }
            log.note(&who, "rate_limited", now);
        }
        assert_eq!(log.open_windows(), 16);
        let drained = log.drain();
        assert_eq!(drained.len(), 16, "each open window folded one more denial");
        assert!(drained.iter().all(|e| e.count == Some(1)));
        assert_eq!(log.open_windows(), 0);
    }
}
