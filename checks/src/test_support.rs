//! Loopback servers for the check tests: every one binds `127.0.0.1:0`.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use warp::Filter;

/// Serves every request with `status` and `body` until the test ends; returns the address.
pub(crate) async fn serve_http(status: u16, body: Vec<u8>) -> SocketAddr {
    let route = warp::any()
        .map(move || warp::http::Response::builder().status(status).body(body.clone()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

/// Returns a loopback port nobody listens on: bound, read, then released.
pub(crate) async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Accepts connections and never answers; keeps them open until the test ends.
pub(crate) async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// Serves `HTTP/1.1 200` with a 32 KiB body on keep-alive connections and counts the
/// connections it accepted.
pub(crate) async fn counting_keep_alive_server()
-> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        // A body bigger than what arrives with the headers: a client that
                        // drops it unread cannot reuse the connection.
                        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 32768\r\n\r\n";
                        if stream.write_all(head).await.is_err() {
                            return;
                        }
                        tokio::task::yield_now().await;
                        if stream.write_all(&[b'x'; 32_768]).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connections)
}
