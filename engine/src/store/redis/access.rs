//! API tokens and the audit trail on Redis (unfenced definitions, tag `{defs}`).
//!
//! - `cr:{defs}:tokens`: hash token id → token record;
//! - `cr:{defs}:token_hashes`: hash hex SHA-256 of the secret → token id;
//! - `cr:{defs}:token_names`: hash name → token id (`HSETNX` keeps names unique);
//! - `cr:{defs}:audit`: sorted set (score 0) of `ENTRY_ID` `\n` record: entry ids are
//!   time-ordered and of one length, so `ZREVRANGEBYLEX` pages newest first and
//!   `ZREMRANGEBYRANK` drops the oldest.

use ::redis::Cmd;

use super::wire::reply;
use super::{RedisStore, decode, encode, keys};
use crate::access::{ApiToken, AuditEntry};
use crate::error::StoreError;

fn cmd(name: &str) -> Cmd {
    ::redis::cmd(name)
}

/// Splits an audit member `ID\nRECORD` and decodes the record.
fn decode_audit(member: &[u8]) -> Result<AuditEntry, StoreError> {
    let split = member.iter().position(|b| *b == b'\n').unwrap_or(member.len());
    let id = String::from_utf8_lossy(&member[..split]).into_owned();
    decode("audit entry", &id, member.get(split + 1..).unwrap_or_default())
}

impl RedisStore {
    pub(super) async fn create_token_record(&self, token: &ApiToken) -> Result<bool, StoreError> {
        let context = "create token";
        let claim = cmd("HSETNX").arg(keys::TOKEN_NAMES).arg(&token.name).arg(&token.id).take();
        let claimed: i64 = reply(context, self.send_one(context, claim).await?)?;
        if claimed == 0 {
            return Ok(false);
        }
        let hset = cmd("HSET").arg(keys::TOKENS).arg(&token.id).arg(encode(token)?).take();
        let index = cmd("HSET").arg(keys::TOKEN_HASHES).arg(&token.hash).arg(&token.id).take();
        if let Err(error) = self.transaction(context, vec![hset, index]).await {
            // Free the name again, so a failed create does not keep it taken.
            let release = cmd("HDEL").arg(keys::TOKEN_NAMES).arg(&token.name).take();
            let _ = self.send_one(context, release).await;
            return Err(error);
        }
        Ok(true)
    }

    pub(super) async fn token_record_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let context = "get token";
        let get = cmd("HGET").arg(keys::TOKEN_HASHES).arg(hash).take();
        let id: Option<String> = reply(context, self.send_one(context, get).await?)?;
        match id {
            Some(id) => self.token_record(&id).await,
            None => Ok(None),
        }
    }

    async fn token_record(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let context = "get token";
        let get = cmd("HGET").arg(keys::TOKENS).arg(id).take();
        let bytes: Option<Vec<u8>> = reply(context, self.send_one(context, get).await?)?;
        bytes.map(|bytes| decode("token", id, &bytes)).transpose()
    }

    pub(super) async fn token_records(&self) -> Result<Vec<ApiToken>, StoreError> {
        let context = "list tokens";
        let all = self.send_one(context, cmd("HGETALL").arg(keys::TOKENS).take()).await?;
        let records: Vec<(String, Vec<u8>)> = reply(context, all)?;
        let mut tokens = records
            .iter()
            .map(|(id, bytes)| decode("token", id, bytes))
            .collect::<Result<Vec<ApiToken>, _>>()?;
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tokens)
    }

    pub(super) async fn delete_token_record(
        &self,
        id: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let Some(token) = self.token_record(id).await? else {
            return Ok(None);
        };
        let commands = vec![
            cmd("HDEL").arg(keys::TOKEN_HASHES).arg(&token.hash).take(),
            cmd("HDEL").arg(keys::TOKENS).arg(&token.id).take(),
            cmd("HDEL").arg(keys::TOKEN_NAMES).arg(&token.name).take(),
        ];
        self.transaction("delete token", commands).await?;
        Ok(Some(token))
    }

    pub(super) async fn append_audit_record(
        &self,
        entry: &AuditEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut member = entry.id.clone().into_bytes();
        member.push(b'\n');
        member.extend(encode(entry)?);
        let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
        let commands = vec![
            cmd("ZADD").arg(keys::AUDIT).arg(0).arg(member).take(),
            cmd("ZREMRANGEBYRANK").arg(keys::AUDIT).arg(0).arg(-keep - 1).take(),
        ];
        self.transaction("append audit entry", commands).await
    }

    pub(super) async fn audit_records(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let context = "list audit entries";
        let max = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let range = cmd("ZREVRANGEBYLEX")
            .arg(keys::AUDIT)
            .arg(max)
            .arg("-")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .take();
        let members: Vec<Vec<u8>> = reply(context, self.send_one(context, range).await?)?;
        members.iter().map(|member| decode_audit(member)).collect()
    }
}
