//! A read-side limit on the size of ractor_cluster frames.
//!
//! ractor_cluster frames every message, the cookie handshake included, as a big-endian `u64`
//! length followed by that many bytes of protobuf. Its reader allocates as the body arrives and
//! refuses only frames above its own limit (16 MiB by default), without naming the peer. Every
//! stream this node hands to the node server (accepted or dialed, plain TCP or TLS) goes through
//! a [`FrameLimited`] instead: its read half follows the same framing and fails the read that
//! completes a length prefix above `cluster.max_frame_bytes`, which closes the session, with a
//! warning naming the peer, the announced size and the limit. Otherwise the bytes pass through
//! unchanged, however reads split or join frames.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::warn;

/// Bytes in a frame's length prefix.
const PREFIX_LEN: usize = 8;

/// A connected stream to a peer, whose read half enforces the frame limit.
pub(super) struct FrameLimited<S> {
    stream: S,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    limit: u64,
}

impl<S> FrameLimited<S> {
    /// Wraps `stream`, connected to `peer_addr` from `local_addr`, refusing frames above `limit`.
    pub(super) fn new(
        stream: S,
        peer_addr: SocketAddr,
        local_addr: SocketAddr,
        limit: u64,
    ) -> Self {
        Self { stream, peer_addr, local_addr, limit }
    }
}

impl<S> ClusterBidiStream for FrameLimited<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (read, write) = tokio::io::split(self.stream);
        (Box::new(FrameReader::new(read, self.peer_addr, self.limit)), Box::new(write))
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer_addr.to_string())
    }

    fn local_label(&self) -> Option<String> {
        Some(self.local_addr.to_string())
    }
}

/// Where the reader is in the frame stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Inside a length prefix, `got` bytes of it seen.
    Prefix { bytes: [u8; PREFIX_LEN], got: usize },
    /// Inside a frame body, `remaining` bytes of it still to come.
    Body { remaining: u64 },
    /// A frame of `announced` bytes was refused; every later read fails.
    Refused { announced: u64 },
}

impl Position {
    const START: Self = Self::Prefix { bytes: [0; PREFIX_LEN], got: 0 };
}

/// A reader that passes bytes through while tracking frame boundaries, and fails once a frame
/// announces more than `limit` bytes.
pub(super) struct FrameReader<R> {
    inner: R,
    peer_addr: SocketAddr,
    limit: u64,
    position: Position,
}

impl<R> FrameReader<R> {
    /// Wraps `inner`, the read side of a connection to `peer_addr`.
    pub(super) fn new(inner: R, peer_addr: SocketAddr, limit: u64) -> Self {
        Self { inner, peer_addr, limit, position: Position::START }
    }

    /// Follows the framing through `data`; returns the announced size of a refused frame.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), u64> {
        while !data.is_empty() {
            match &mut self.position {
                Position::Prefix { bytes, got } => {
                    let take = (PREFIX_LEN - *got).min(data.len());
                    bytes[*got..*got + take].copy_from_slice(&data[..take]);
                    *got += take;
                    data = &data[take..];
                    if *got == PREFIX_LEN {
                        let announced = u64::from_be_bytes(*bytes);
                        self.position = if announced > self.limit {
                            Position::Refused { announced }
                        } else if announced == 0 {
                            Position::START
                        } else {
                            Position::Body { remaining: announced }
                        };
                    }
                }
                Position::Body { remaining } => {
                    let take =
                        usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                    *remaining -= u64::try_from(take).unwrap_or(*remaining);
                    data = &data[take..];
                    if *remaining == 0 {
                        self.position = Position::START;
                    }
                }
                Position::Refused { announced } => return Err(*announced),
            }
        }
        match self.position {
            Position::Refused { announced } => Err(announced),
            _ => Ok(()),
        }
    }

    fn refusal(&self, announced: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "cluster frame of {announced} bytes from {} exceeds cluster.max_frame_bytes ({})",
                self.peer_addr, self.limit
            ),
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FrameReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Position::Refused { announced } = this.position {
            return Poll::Ready(Err(this.refusal(announced)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let scanned = this.scan(&buf.filled()[before..]);
        if let Err(announced) = scanned {
            // Nothing of this read reaches ractor_cluster: it never sees the whole prefix.
            buf.set_filled(before);
            warn!(
                peer_addr = %this.peer_addr,
                announced,
                limit = this.limit,
                "closing a cluster connection: the peer announced a frame of {announced} bytes, \
                 above cluster.max_frame_bytes ({}); raise that key if peers legitimately send \
                 larger messages",
                this.limit
            );
            return Poll::Ready(Err(this.refusal(announced)));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
