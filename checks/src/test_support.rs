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
