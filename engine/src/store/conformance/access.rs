//! Conformance checks for API tokens and the audit trail.

use std::sync::Mutex;

use time::OffsetDateTime;

use crate::Store;
use crate::access::{ApiToken, AuditEntry, Role};

/// Token ids for the samples, in the order they are made even within one millisecond (plain
/// ULIDs of one millisecond sort at random, and the list is ordered by id).
static TOKEN_IDS: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());

/// Returns a token with a fresh id, name and hash; ids grow in the order tokens are made.
pub fn sample_token(role: Role) -> ApiToken {
    let next = TOKEN_IDS.lock().unwrap_or_else(|poison| poison.into_inner()).generate();
    let id = next.unwrap_or_else(|_| ulid::Ulid::new()).to_string().to_ascii_lowercase();
    ApiToken {
        name: format!("conformance-{id}"),
        hash: format!("hash-{id}"),
        id,
        role,
        created_at: OffsetDateTime::UNIX_EPOCH,
        expires_at: Some(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)),
    }
}

/// Tokens round-trip by hash and in the list; names are unique; a deleted token is gone by
/// id, by hash and by name (its name can be taken again).
pub async fn tokens_create_find_list_delete(store: &dyn Store) {
    let token = sample_token(Role::Editor);
    assert!(store.create_token(&token).await.unwrap(), "a new token is created");
    assert_eq!(store.token_by_hash(&token.hash).await.unwrap(), Some(token.clone()));
    assert_eq!(store.token_by_hash("no-such-hash").await.unwrap(), None);
    let mut same_name = sample_token(Role::Viewer);
    same_name.name = token.name.clone();
    assert!(!store.create_token(&same_name).await.unwrap(), "a taken name is refused");
    assert_eq!(store.token_by_hash(&same_name.hash).await.unwrap(), None, "nothing written");
    let second = sample_token(Role::Admin);
    assert!(store.create_token(&second).await.unwrap());
    let listed = store.list_tokens().await.unwrap();
    let mine: Vec<&ApiToken> =
        listed.iter().filter(|t| t.id == token.id || t.id == second.id).collect();
    assert_eq!(mine, vec![&token, &second], "listed oldest first");
    assert_eq!(store.delete_token(&token.id).await.unwrap(), Some(token.clone()));
    assert_eq!(store.delete_token(&token.id).await.unwrap(), None);
    assert_eq!(store.token_by_hash(&token.hash).await.unwrap(), None, "revoked at once");
    assert!(!store.list_tokens().await.unwrap().iter().any(|t| t.id == token.id));
    assert!(store.create_token(&same_name).await.unwrap(), "a freed name can be reused");
    store.delete_token(&same_name.id).await.unwrap();
    store.delete_token(&second.id).await.unwrap();
}

/// Audit entries page newest first and only the newest `keep` are kept.
pub async fn audit_pages_newest_first_and_is_bounded(store: &dyn Store) {
    let now = OffsetDateTime::now_utc();
    let mut appended = Vec::new();
    for i in 0..5 {
        let mut entry = AuditEntry::new(now, ("ci", Role::Editor), ("create", "monitor"), "ok");
        entry.resource_id = Some(format!("m{i}"));
        entry.resource_name = Some(format!("monitor {i}"));
        store.append_audit(&entry, 1_000).await.unwrap();
        appended.push(entry);
    }
    let newest: Vec<AuditEntry> = appended.iter().rev().cloned().collect();
    assert_eq!(store.list_audit(None, 3).await.unwrap(), newest[..3].to_vec(), "newest first");
    let after = store.list_audit(Some(&newest[2].id), 2).await.unwrap();
    assert_eq!(after, newest[3..5].to_vec(), "the next page starts strictly before the cursor");
    let entry = AuditEntry::new(now, ("admin", Role::Admin), ("revoke", "token"), "ok");
    store.append_audit(&entry, 3).await.unwrap();
    let kept = store.list_audit(None, 100).await.unwrap();
    assert_eq!(kept.len(), 3, "retention keeps the newest 3: {kept:?}");
    assert_eq!(kept[0], entry);
    assert_eq!(kept[1..].to_vec(), newest[..2].to_vec());
}
