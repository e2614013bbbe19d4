//! The lifeline: a thread of its own, with a small runtime and its own store connection, for
//! the work that tells the cluster this node is alive (the heartbeat and the lease renewals).
//!
//! On the node's main runtime that work waits its turn behind monitor work: a node spawning
//! 300,000 monitors once left its heartbeat unrefreshed for more than 4 s, so a peer took it
//! for gone and put its partitions on standby. And on the shared store connection a renewal
//! waits behind whatever the node sent before it (a partition load, a state flush). On the
//! lifeline neither waits: the operating system gives the thread its slice whatever the main
//! runtime's queue holds, and the connection carries nothing else.

use std::future::Future;
use std::sync::Arc;

use cloudroutes_engine::cluster::Coordinator;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::NodeError;

/// The lifeline's thread, runtime and coordinator. Dropping it stops the runtime, and every
/// task on it.
pub struct Lifeline {
    handle: Handle,
    coordinator: Arc<dyn Coordinator>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Lifeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifeline").finish_non_exhaustive()
    }
}

impl Lifeline {
    /// Starts the thread and its runtime, then makes the coordinator on it with `connect`, so
    /// that the connection's I/O (and its reconnections) are driven there.
    ///
    /// # Errors
    /// Fails when the thread or its runtime cannot start, or when `connect` fails (its error
    /// is in the message).
    pub async fn start<F, Fut, E>(connect: F) -> Result<Self, NodeError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Arc<dyn Coordinator>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("cloudroutes-lifeline")
            .build()
            .map_err(|e| NodeError::Unavailable(format!("lifeline runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("cloudroutes-lifeline".into())
            .spawn(move || {
                // Any outcome of the channel (a send, or the sender dropped) ends the runtime.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| NodeError::Unavailable(format!("lifeline thread: {e}")))?;
        let connection = |err: &dyn std::fmt::Display| {
            NodeError::Unavailable(format!("lifeline connection: {err}"))
        };
        let coordinator = handle
            .spawn(connect())
            .await
            .map_err(|err| connection(&err))?
            .map_err(|err| connection(&err))?;
        Ok(Self { handle, coordinator, stop: Some(stop) })
    }

    /// Starts `future` on the lifeline's runtime.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `future` on the lifeline's runtime and returns its output; a panic in it is
    /// passed on, and a stopped lifeline gives `None`.
    pub async fn run<F>(&self, future: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(future).await {
            Ok(output) => Some(output),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => None,
        }
    }

    /// The coordinator whose connection belongs to the lifeline.
    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.coordinator
    }
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
