//! The frame limit on a duplex pipe: what passes unchanged, what is refused, and what is logged.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::cluster::transport::rejection_tests::Logs;

const LIMIT: u64 = 64;

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], 40_123))
}

fn frame(len: usize, fill: u8) -> Vec<u8> {
    let mut bytes = u64::try_from(len).unwrap().to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(fill, len));
    bytes
}

fn pipe() -> (DuplexStream, FrameReader<DuplexStream>) {
    let (writer, reader) = tokio::io::duplex(1024);
    (writer, FrameReader::new(reader, peer(), LIMIT))
}

/// Reads one frame the way ractor_cluster does: the prefix, then the body.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let len = reader.read_u64().await?;
    let mut body = vec![0; usize::try_from(len).unwrap()];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

#[tokio::test]
async fn frames_fed_byte_by_byte_pass_unchanged() {
    let (mut writer, mut reader) = pipe();
    let sizes = [0, 1, 7, 8, 9, 63, 64];
    let bytes: Vec<u8> =
        sizes.iter().zip(1u8..).flat_map(|(&len, fill)| frame(len, fill)).collect();
    let feed = tokio::spawn(async move {
        for byte in bytes {
            writer.write_all(&[byte]).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    for (&len, fill) in sizes.iter().zip(1u8..) {
        assert_eq!(read_frame(&mut reader).await.unwrap(), vec![fill; len], "frame of {len}");
    }
    feed.await.unwrap();
}

#[tokio::test]
async fn many_frames_in_one_write_pass_in_any_read_sizes() {
    let bytes: Vec<u8> =
        (0..200).flat_map(|n| frame(n % 65, u8::try_from(n % 251).unwrap())).collect();
    let (mut writer, mut reader) = tokio::io::duplex(bytes.len() + 16);
    writer.write_all(&bytes).await.unwrap();
    drop(writer);
    // One big read sees many frames at once, and frames split across the buffer's end.
    let mut reader = FrameReader::new(&mut reader, peer(), LIMIT);
    let mut seen = Vec::new();
    let mut chunk = [0; 1000];
    loop {
        let n = reader.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(seen, bytes);
    assert_eq!(reader.position, Position::START, "ends on a frame boundary");
}

#[tokio::test]
async fn a_frame_exactly_at_the_limit_passes_and_one_byte_more_is_refused() {
    let (mut writer, mut reader) = pipe();
    writer.write_all(&frame(64, 9)).await.unwrap();
    assert_eq!(read_frame(&mut reader).await.unwrap(), vec![9; 64]);

    let logs = Logs::default();
    let _guard = logs.install();
    writer.write_all(&frame(65, 9)).await.unwrap();
    let err = read_frame(&mut reader).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let message = err.to_string();
    assert!(message.contains("65") && message.contains("cluster.max_frame_bytes"), "{message}");
    // The session is over: every later read fails too, even with good data waiting.
    writer.write_all(&frame(1, 1)).await.unwrap();
    assert!(read_frame(&mut reader).await.is_err());

    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning per refused connection: {text}");
    for expected in ["192.0.2.7:40123", "announced=65", "limit=64", "cluster.max_frame_bytes"] {
        assert!(warnings[0].contains(expected), "`{expected}` missing from: {text}");
    }
}

#[tokio::test]
async fn a_refused_prefix_split_across_reads_never_reaches_the_caller_whole() {
    let (mut writer, mut reader) = pipe();
    let prefix = u64::MAX.to_be_bytes();
    writer.write_all(&prefix[..5]).await.unwrap();
    let mut buf = [0; 16];
    // The first part passes (it may be a legal prefix) ...
    assert_eq!(reader.read(&mut buf).await.unwrap(), 5);
    writer.write_all(&prefix[5..]).await.unwrap();
    writer.write_all(&[0; 8]).await.unwrap();
    // ... the read that completes it fails and hands over nothing.
    let mut buf = tokio::io::ReadBuf::new(&mut buf);
    let read = std::future::poll_fn(|cx| Pin::new(&mut reader).poll_read(cx, &mut buf));
    let err = tokio::time::timeout(Duration::from_secs(2), read).await.unwrap().unwrap_err();
    assert!(err.to_string().contains(&u64::MAX.to_string()), "{err}");
    assert!(buf.filled().is_empty());
}

#[tokio::test]
async fn limited_stream_splits_into_a_limited_reader_and_a_plain_writer() {
    let (near, far) = tokio::io::duplex(1024);
    let local = SocketAddr::from(([127, 0, 0, 1], 7001));
    let stream = Box::new(FrameLimited::new(near, peer(), local, LIMIT));
    assert_eq!(stream.peer_label().as_deref(), Some("192.0.2.7:40123"));
    assert_eq!(stream.local_label().as_deref(), Some("127.0.0.1:7001"));
    let (mut read, mut write) = stream.split();
    let (mut far_read, mut far_write) = tokio::io::split(far);
    // Writes are not limited: this node's own messages are bounded by what it sends.
    write.write_all(&frame(100, 3)).await.unwrap();
    assert_eq!(read_frame(&mut far_read).await.unwrap(), vec![3; 100]);
    far_write.write_all(&frame(10, 4)).await.unwrap();
    assert_eq!(read_frame(&mut read).await.unwrap(), vec![4; 10]);
    far_write.write_all(&frame(100, 5)).await.unwrap();
    assert!(read_frame(&mut read).await.is_err());
}
