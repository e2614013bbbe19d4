//! Raw HTTP/1.1 requests for what a client library would not send: oversized bodies, with and
//! without `Content-Length`.

use std::time::Duration;

use serde_json::Value;

use super::{Node, body_value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a raw HTTP/1.1 request whose body is `body_len` bytes of `a`, either with a
/// `Content-Length` or chunked without one, and returns the response status and body. The
/// body is written while the response is read, so an early answer is seen. Retries (up to 3
/// times) when the connection is reset before a status line arrives.
pub async fn send_big_body(
    node: &Node,
    method: &str,
    path: &str,
    body_len: usize,
    chunked: bool,
) -> (u16, Value) {
    let mut last_error = String::new();
    for _ in 0..3 {
        match try_send_big_body(node, method, path, body_len, chunked).await {
            Ok(answer) => return answer,
            Err(error) => last_error = error,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("raw {method} {path} with a {body_len}-byte body failed 3 times: {last_error}");
}

async fn try_send_big_body(
    node: &Node,
    method: &str,
    path: &str,
    body_len: usize,
    chunked: bool,
) -> Result<(u16, Value), String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", node.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {body_len}")
    };
    let head = format!(
        "{method} /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n",
        node.port, node.token
    );
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let piece = vec![b'a'; 64 * 1024];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(piece.len());
            if chunked {
                writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                writer.write_all(&piece[..n]).await?;
                writer.write_all(b"\r\n").await?;
            } else {
                writer.write_all(&piece[..n]).await?;
            }
            left -= n;
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    });
    let mut response = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    response.extend_from_slice(&buf[..n]);
                    if complete_response(&response) == Some(true) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    writing.abort();
    match read {
        Err(_) => return Err("no complete response within 20 s".into()),
        Ok(Err(e)) if complete_response(&response) != Some(true) => {
            return Err(format!("read: {e}"));
        }
        Ok(_) => {}
    }
    parse_response(&response)
        .ok_or_else(|| format!("unparsable response: {:?}", String::from_utf8_lossy(&response)))
}

/// `Some(true)` when `raw` holds a whole response with a `Content-Length` body.
fn complete_response(raw: &[u8]) -> Option<bool> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    Some(length.is_some_and(|n| body.len() >= n))
}

fn parse_response(raw: &[u8]) -> Option<(u16, Value)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body_value(body.as_bytes())))
}
