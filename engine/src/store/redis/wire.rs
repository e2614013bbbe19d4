//! Sending commands: batches (pipelines) with a deadline, NOSCRIPT recovery, error mapping and
//! the operation counters.

use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::{Cmd, ErrorKind, Pipeline, RedisResult, ServerErrorKind, Value};

use super::RedisStore;
use super::scripts::LuaScript;
use crate::error::StoreError;

/// Operation counters shared by a store's clones.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) commands: AtomicU64,
    pub(super) round_trips: AtomicU64,
}

/// Commands sent together in one round trip (a pipeline, not a transaction).
pub(super) struct Batch {
    pipe: Pipeline,
    /// The script each command runs, for NOSCRIPT recovery.
    scripts: Vec<Option<&'static LuaScript>>,
}

impl Batch {
    /// Returns an empty batch.
    pub(super) fn new() -> Self {
        let mut pipe = Pipeline::new();
        // Per-command replies, errors included: a NOSCRIPT must not hide the other replies.
        pipe.ignore_errors();
        Self { pipe, scripts: Vec::new() }
    }

    /// Adds a plain command.
    pub(super) fn push(&mut self, cmd: Cmd) {
        self.pipe.add_command(cmd);
        self.scripts.push(None);
    }

    /// Adds an EVALSHA of `script` (built by [`LuaScript::evalsha`], arguments appended).
    pub(super) fn push_script(&mut self, script: &'static LuaScript, cmd: Cmd) {
        self.pipe.add_command(cmd);
        self.scripts.push(Some(script));
    }
}

/// Returns a mapper from a client error to [`StoreError::Redis`].
pub(super) fn redis_error<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> StoreError {
    move |error| StoreError::Redis { context, message: error.to_string() }
}

/// Converts a reply to `T`, or reports an unexpected reply.
pub(super) fn reply<T: ::redis::FromRedisValue>(
    context: &'static str,
    value: Value,
) -> Result<T, StoreError> {
    ::redis::from_redis_value(value).map_err(|error| StoreError::Redis {
        context,
        message: format!("unexpected reply: {error}"),
    })
}

fn is_noscript(result: &RedisResult<Value>) -> bool {
    matches!(result, Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

impl RedisStore {
    /// Sends a pipeline (built with `ignore_errors`) within the response timeout and returns
    /// each command's reply or error.
    async fn pipeline(
        &self,
        context: &'static str,
        pipe: &Pipeline,
    ) -> Result<Vec<RedisResult<Value>>, StoreError> {
        self.count(pipe.len());
        let mut conn = self.conn.clone();
        let sent = pipe.query_async::<Vec<RedisResult<Value>>>(&mut conn);
        match tokio::time::timeout(self.response_timeout, sent).await {
            Ok(Ok(replies)) if replies.len() == pipe.len() => Ok(replies),
            Ok(Ok(replies)) => Err(StoreError::Redis {
                context,
                message: format!("{} replies to {} commands", replies.len(), pipe.len()),
            }),
            Ok(Err(error)) => Err(redis_error(context)(error)),
            Err(_) => Err(StoreError::Redis {
                context,
                message: format!("no answer within {:?}", self.response_timeout),
            }),
        }
    }

    fn count(&self, commands: usize) {
        let commands = u64::try_from(commands).unwrap_or(u64::MAX);
        self.counters.commands.fetch_add(commands, Ordering::Relaxed);
        self.counters.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends a batch in one round trip and returns each command's reply; any command error is
    /// the whole call's error. Scripts the server does not know (NOSCRIPT: it restarted or
    /// flushed its cache) are loaded and only the refused commands resent: a NOSCRIPT command
    /// did not run, so resending it cannot apply it twice.
    pub(super) async fn send(
        &self,
        context: &'static str,
        batch: Batch,
    ) -> Result<Vec<Value>, StoreError> {
        if batch.pipe.is_empty() {
            return Ok(Vec::new());
        }
        let mut replies = self.pipeline(context, &batch.pipe).await?;
        let refused: Vec<usize> =
            (0..replies.len()).filter(|i| is_noscript(&replies[*i])).collect();
        if !refused.is_empty() {
            let mut loads: Vec<&'static LuaScript> = Vec::new();
            for script in refused.iter().filter_map(|i| batch.scripts[*i]) {
                if !loads.iter().any(|loaded| std::ptr::eq(*loaded, script)) {
                    loads.push(script);
                }
            }
            let mut resend = Pipeline::with_capacity(loads.len() + refused.len());
            resend.ignore_errors();
            for script in &loads {
                resend.add_command(script.load_cmd());
            }
            let commands: Vec<&Cmd> = batch.pipe.cmd_iter().collect();
            for index in &refused {
                resend.add_command(commands[*index].clone());
            }
            let mut again = self.pipeline(context, &resend).await?;
            for (index, result) in refused.iter().zip(again.drain(loads.len()..)) {
                replies[*index] = result;
            }
            if let Some(Err(error)) = again.into_iter().find(Result::is_err) {
                return Err(redis_error(context)(error));
            }
        }
        replies.into_iter().map(|result| result.map_err(redis_error(context))).collect()
    }

    /// Sends one command and returns its reply.
    pub(super) async fn send_one(
        &self,
        context: &'static str,
        cmd: Cmd,
    ) -> Result<Value, StoreError> {
        let mut batch = Batch::new();
        batch.push(cmd);
        self.send_first(context, batch).await
    }

    /// Sends one script invocation and returns its reply.
    pub(super) async fn send_script(
        &self,
        context: &'static str,
        script: &'static LuaScript,
        cmd: Cmd,
    ) -> Result<Value, StoreError> {
        let mut batch = Batch::new();
        batch.push_script(script, cmd);
        self.send_first(context, batch).await
    }

    async fn send_first(&self, context: &'static str, batch: Batch) -> Result<Value, StoreError> {
        let reply = self.send(context, batch).await?.into_iter().next();
        reply.ok_or(StoreError::Redis { context, message: "no reply".into() })
    }

    /// Runs `commands` as one MULTI/EXEC transaction in one round trip: all or none.
    pub(super) async fn transaction(
        &self,
        context: &'static str,
        commands: Vec<Cmd>,
    ) -> Result<(), StoreError> {
        let mut pipe = Pipeline::with_capacity(commands.len());
        pipe.atomic();
        self.count(commands.len());
        for cmd in commands {
            pipe.add_command(cmd);
        }
        let mut conn = self.conn.clone();
        let sent = pipe.exec_async(&mut conn);
        match tokio::time::timeout(self.response_timeout, sent).await {
            Ok(result) => result.map_err(redis_error(context)),
            Err(_) => Err(StoreError::Redis {
                context,
                message: format!("no answer within {:?}", self.response_timeout),
            }),
        }
    }
}
