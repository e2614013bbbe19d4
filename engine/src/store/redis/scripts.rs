//! The Lua scripts, each atomic on one hash-tag slot.
//!
//! They run with EVALSHA; a NOSCRIPT answer (after a Redis restart or `SCRIPT FLUSH`) makes
//! the caller load them and resend the refused commands (see `wire.rs`).

use std::sync::LazyLock;

/// A Lua script with its SHA1 (from [`redis::Script`]).
pub(super) struct LuaScript {
    /// The Lua source, sent with `SCRIPT LOAD` at connect time and on NOSCRIPT.
    code: &'static str,
    /// The client's script handle, which knows the SHA1.
    script: ::redis::Script,
}

impl LuaScript {
    fn new(code: &'static str) -> Self {
        Self { code, script: ::redis::Script::new(code) }
    }

    /// Returns an `EVALSHA` command with `keys`; the caller appends the arguments.
    pub(super) fn evalsha(&self, keys: &[String]) -> ::redis::Cmd {
        let mut cmd = ::redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(keys.len()).arg(keys);
        cmd
    }

    /// Returns the `SCRIPT LOAD` command of this script.
    pub(super) fn load_cmd(&self) -> ::redis::Cmd {
        let mut cmd = ::redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(self.code);
        cmd
    }
}

/// The fenced write of one partition's share of a batch.
///
/// KEYS: 1 lease, 2 ids set, 3 state hash, 4 open-claims set, 5 states version (raised when
/// states are written), then per item: its event list
/// (only when it has events), one claim key per claim, one claim key per close.
/// ARGV: 1 expected lease value `node|epoch`, 2 index of the last event kept (history bound
/// minus one), 3 claim ttl (ms), 4 item count,
/// then per item: monitor id, state record (`""` for none), event count, event records…,
/// claim count, (claim name, claim record)…, close count, (claim name, outcome)….
/// Returns `{1, taken claim names}` when written, `{0, {}}` when the lease is not held at that
/// epoch (then nothing at all is written). Items of monitors missing from the ids set are
/// skipped whole (a deleted monitor is never resurrected).
pub(super) static FENCED_WRITE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, {}}
end
local claim_ttl = ARGV[3]
local items = tonumber(ARGV[4])
-- One SMISMEMBER and one HSET per CHUNK items instead of one of each per item: a batch of
-- healthy results costs a few commands, not two per check.
local CHUNK = 1000
local ids = {}
do
  local a = 5
  for i = 1, items do
    ids[i] = ARGV[a]
    a = a + 3 + tonumber(ARGV[a + 2])
    a = a + 1 + 2 * tonumber(ARGV[a])
    a = a + 1 + 2 * tonumber(ARGV[a])
  end
end
local member = {}
for i = 1, items, CHUNK do
  local found = redis.call('SMISMEMBER', KEYS[2], unpack(ids, i, math.min(i + CHUNK - 1, items)))
  for j = 1, #found do
    member[i + j - 1] = found[j] == 1
  end
end
local states = {}
local a, k = 5, 6 -- next ARGV, next KEYS
local taken = {}
for item = 1, items do
  local monitor, state, n_events = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local exists = member[item]
  if exists and state ~= '' then
    states[#states + 1] = monitor
    states[#states + 1] = state
  end
  if n_events > 0 then
    local list = KEYS[k]
    k = k + 1
    if exists then
      -- LPUSH in order: the last event of the batch ends up first (newest first).
      for i = 0, n_events - 1 do
        redis.call('LPUSH', list, ARGV[a + i])
      end
      redis.call('LTRIM', list, 0, ARGV[2])
    end
    a = a + n_events
  end
  local n_claims = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n_claims do
    local key, name, record = KEYS[k], ARGV[a], ARGV[a + 1]
    k, a = k + 1, a + 2
    if exists then
      -- The claim itself: taken at most once, whatever its outcome (SET NX semantics).
      if redis.call('EXISTS', key) == 1 then
        taken[#taken + 1] = name
      else
        redis.call('HSET', key, 'record', record)
        redis.call('PEXPIRE', key, claim_ttl)
        redis.call('SADD', KEYS[4], name)
      end
    end
  end
  local n_closes = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n_closes do
    local key, name, outcome = KEYS[k], ARGV[a], ARGV[a + 1]
    k, a = k + 1, a + 2
    if exists then
      -- Settle it but keep the hash, so the claim key stays taken until it expires.
      redis.call('HSET', key, 'outcome', outcome)
      redis.call('PEXPIRE', key, claim_ttl)
      redis.call('SREM', KEYS[4], name)
    end
  end
end
-- HSET takes the pairs in order, so a monitor twice in a batch keeps its last state.
for i = 1, #states, 2 * CHUNK do
  redis.call('HSET', KEYS[3], unpack(states, i, math.min(i + 2 * CHUNK - 1, #states)))
end
if #states > 0 then
  redis.call('INCR', KEYS[5])
end
return {1, taken}
"#,
    )
});

/// Removes a monitor's partition data: ids entry, state, events and open claims; raises the
/// partition's definitions version.
///
/// KEYS: 1 ids set, 2 state hash, 3 event list, 4 open-claims set, 5 definitions version.
/// ARGV: 1 monitor id,
/// 2 claim key prefix. The open claims' record keys are built from the prefix; they carry the
/// same hash tag, so they live in the same slot.
pub(super) static DELETE_MONITOR_DATA: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local monitor = ARGV[1]
redis.call('SREM', KEYS[1], monitor)
redis.call('HDEL', KEYS[2], monitor)
redis.call('DEL', KEYS[3])
local mine = monitor .. ':'
for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if string.sub(name, 1, #mine) == mine then
    redis.call('DEL', ARGV[2] .. name)
    redis.call('SREM', KEYS[4], name)
  end
end
redis.call('INCR', KEYS[5])
return 1
"#,
    )
});

/// One page of definitions, ordered by id.
///
/// KEYS: 1 id index (sorted set, score 0), 2 record hash. ARGV: 1 ZRANGEBYLEX minimum (`-` or
/// `(after`), 2 limit. Returns `{ids, records}`; a record missing from the hash is nil.
pub(super) static LIST_PAGE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then
  return {{}, {}}
end
return {ids, redis.call('HMGET', KEYS[2], unpack(ids))}
"#,
    )
});

/// Acquires a partition lease.
///
/// KEYS: 1 lease, 2 epoch counter. ARGV: 1 node, 2 ttl (ms). Returns `{'held', value}` when
/// another node holds it (or the value is unreadable), else takes a new epoch and returns
/// `{'granted', epoch, previous value or ''}`.
pub(super) static ACQUIRE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local current = redis.call('GET', KEYS[1])
if current then
  local holder = string.match(current, '^(.*)|%d+$')
  if holder ~= ARGV[1] then
    return {'held', current}
  end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return {'granted', tostring(epoch), current or ''}
"#,
    )
});

/// Extends a lease only if it still holds exactly ARGV[1] (`node|epoch`) for ARGV[2] ms.
/// Returns 1 when renewed, 0 otherwise.
pub(super) static RENEW: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#,
    )
});

/// Deletes a lease only if it still holds exactly ARGV[1] (`node|epoch`). Returns 1 when
/// released, 0 otherwise.
pub(super) static RELEASE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#,
    )
});

/// Takes runs from the destructive-reaction budget, on the server's clock (`TIME`), so every
/// node counts the same window.
///
/// KEYS: 1 the budget's sorted set, 2 the counter that names its members. ARGV: 1 runs wanted,
/// 2 limit, 3 window in milliseconds. Returns the runs granted.
pub(super) static TAKE_DESTRUCTIVE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local wanted, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local granted = math.max(0, math.min(wanted, limit - redis.call('ZCARD', KEYS[1])))
if granted > 0 then
  local last = redis.call('INCRBY', KEYS[2], granted)
  for n = last - granted + 1, last do
    redis.call('ZADD', KEYS[1], now, n)
  end
end
redis.call('PEXPIRE', KEYS[1], window)
return granted
"#,
    )
});

/// Returns every script, to load them at connect time (so the first calls need no NOSCRIPT
/// round trip).
pub(super) fn all() -> [&'static LuaScript; 7] {
    [&FENCED_WRITE, &DELETE_MONITOR_DATA, &LIST_PAGE, &ACQUIRE, &RENEW, &RELEASE, &TAKE_DESTRUCTIVE]
}
