//! The unbounded channel behind an actor's message and supervision ports.
//!
//! tokio's unbounded channel allocates its first block of 32 slots when it is made, so an
//! idle actor held two such blocks (about 7 KiB) for messages it mostly never queues. This
//! channel is futures' unbounded channel, which allocates a node per queued message instead,
//! behind the small part of tokio's API that the ports use.

use futures::channel::mpsc;
use futures::StreamExt;

use tokio::sync::mpsc::error::{SendError, TryRecvError};

/// The sending half of a port.
pub struct PortSender<T>(mpsc::UnboundedSender<T>);

impl<T> Clone for PortSender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for PortSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortSender").finish_non_exhaustive()
    }
}

impl<T> PortSender<T> {
    /// Queues `message`; gives it back when the receiver is closed or gone.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        self.0.unbounded_send(message).map_err(|e| SendError(e.into_inner()))
    }
}

/// The receiving half of a port.
pub struct PortReceiver<T>(mpsc::UnboundedReceiver<T>);

impl<T> std::fmt::Debug for PortReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortReceiver").finish_non_exhaustive()
    }
}

impl<T> PortReceiver<T> {
    /// The next message; `None` once the channel is closed and empty. Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        self.0.next().await
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            mpsc::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::TryRecvError::Closed => TryRecvError::Disconnected,
        })
    }

    /// Refuses further messages; those already queued can still be received.
    pub fn close(&mut self) {
        self.0.close();
    }
}

/// A port's channel: nothing is allocated for slots until a message is queued.
pub fn port_channel<T>() -> (PortSender<T>, PortReceiver<T>) {
    let (tx, rx) = mpsc::unbounded();
    (PortSender(tx), PortReceiver(rx))
}
