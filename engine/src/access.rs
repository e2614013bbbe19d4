//! Who may call the API: API tokens with a role, and the audit trail of what callers changed.
//!
//! Tokens are stored only as the SHA-256 of their secret (hex): a store dump gives no usable
//! token. The HTTP layer generates the secret, hashes it and compares in constant time; this
//! module only holds the records.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A caller's role (API.md, "Auth"): `admin` ⊃ `editor` ⊃ `viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: monitors, reactions, events, types, cluster.
    Viewer,
    /// Monitors and reactions (create, edit, delete, run, fail, heal) and every read except
    /// tokens and audit.
    Editor,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, least to most powerful.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// Returns the role's API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Parses an API name (`admin`, `editor`, `viewer`).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Returns whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API token as stored: its secret is kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Identifier (a lowercase ULID), used to revoke it.
    pub id: String,
    /// Unique name, shown in the audit trail as the caller.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the secret token.
    pub hash: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working; `None` never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl ApiToken {
    /// Returns whether the token has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// One entry of the audit trail: who did what to which resource, when, and how it went.
/// It never holds secrets or request bodies: names and ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Identifier: a time-ordered lowercase ULID, so entries sort oldest first.
    pub id: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The caller's token name (`admin` for the bootstrap admin token); for a denied call by
    /// a caller without a valid token, its client address.
    pub actor: String,
    /// The caller's role; `None` for a denied call by a caller without a valid token.
    #[serde(default)]
    pub role: Option<Role>,
    /// What was done: `create`, `update`, `delete`, `run`, `fail`, `heal`, `rotate_key`,
    /// `drain`, `revoke`; `denied` for calls refused with 401, 403 or 429.
    pub action: String,
    /// The kind of resource: `monitor`, `reaction`, `token`, `node`; `request` for a denied
    /// call (its method and path are the resource name).
    pub resource_kind: String,
    /// The resource's id, when it has one.
    pub resource_id: Option<String>,
    /// The resource's name, when known.
    pub resource_name: Option<String>,
    /// `ok`, or the error code the caller got (`not_found`, `invalid_field`, …).
    pub outcome: String,
    /// For a denied call: how many denials this entry stands for (the HTTP crate's `denials`
    /// module folds the rest of a window's denials into one entry). `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// For a denied call: the client address it came from. `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl AuditEntry {
    /// Returns a new entry at `at` with a fresh time-ordered id.
    pub fn new(
        at: OffsetDateTime,
        (actor, role): (&str, Role),
        (action, resource_kind): (&str, &str),
        outcome: &str,
    ) -> Self {
        Self {
            id: crate::model::new_ordered_id(),
            at,
            actor: actor.to_owned(),
            role: Some(role),
            action: action.to_owned(),
            resource_kind: resource_kind.to_owned(),
            resource_id: None,
            resource_name: None,
            outcome: outcome.to_owned(),
            count: None,
            client: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_admin_over_editor_over_viewer() {
        assert!(Role::Admin.allows(Role::Editor) && Role::Admin.allows(Role::Viewer));
        assert!(Role::Editor.allows(Role::Viewer) && !Role::Editor.allows(Role::Admin));
        assert!(!Role::Viewer.allows(Role::Editor) && Role::Viewer.allows(Role::Viewer));
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(serde_json::to_string(&Role::Editor).unwrap(), "\"editor\"");
    }

    #[test]
    fn entries_stored_before_denials_were_audited_still_read() {
        let old = r#"{"id":"01a","at":"2026-11-24T07:00:00Z","actor":"ci","role":"editor","action":"create","resource_kind":"monitor","resource_id":"m1","resource_name":"shop","outcome":"ok"}"#;
        let entry: AuditEntry = serde_json::from_str(old).expect("an entry without count");
        assert_eq!(
            (entry.role, entry.count, entry.client.as_deref()),
            (Some(Role::Editor), None, None)
        );
        let written = serde_json::to_string(&entry).expect("serialize");
        assert!(!written.contains("count") && !written.contains("client"), "{written}");
    }

    #[test]
    fn a_token_expires_at_its_time() {
        let now = OffsetDateTime::now_utc();
        let mut token = ApiToken {
            id: "t".into(),
            name: "ci".into(),
            role: Role::Viewer,
            hash: "h".into(),
            created_at: now,
            expires_at: None,
        };
        assert!(!token.is_expired(now));
        token.expires_at = Some(now);
        assert!(token.is_expired(now));
        token.expires_at = Some(now + time::Duration::seconds(1));
        assert!(!token.is_expired(now));
    }
}
