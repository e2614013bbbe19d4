//! Hand-rolled loopback HTTP and HTTPS servers for the HTTP check tests: each records every
//! request exactly as it arrived (method, target, headers, body) and answers as the test says.
//! A server stops when its [`Server`] is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Returns the values of every header called `name` (case-insensitive).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let named = self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        named.map(|(_, value)| value.as_str()).collect()
    }

    /// Returns the one value of header `name`; panics when it was sent more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.headers_named(name);
        assert!(values.len() <= 1, "{name} sent {} times: {values:?}", values.len());
        values.first().copied()
    }
}

/// An answer: raw response bytes, written after `delay`.
pub(crate) struct Reply {
    pub delay: Duration,
    pub bytes: Vec<u8>,
}

/// Returns an immediate `HTTP/1.1` reply with `headers`, `body`, its length and
/// `Connection: close`.
pub(crate) fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut head = format!("HTTP/1.1 {status} Status\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    Reply { delay: Duration::ZERO, bytes }
}

/// A running server: its address and the requests it received.
pub(crate) struct Server {
    pub addr: SocketAddr,
    scheme: &'static str,
    requests: mpsc::UnboundedReceiver<Recorded>,
    accept_loop: JoinHandle<()>,
}

impl Server {
    /// Returns the URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Returns the next request received; panics after two seconds without one.
    pub async fn next_request(&mut self) -> Recorded {
        let next = tokio::time::timeout(Duration::from_secs(2), self.requests.recv());
        next.await.expect("no request within 2 s").expect("server stopped")
    }

    /// Returns every request received so far.
    pub fn received(&mut self) -> Vec<Recorded> {
        std::iter::from_fn(|| self.requests.try_recv().ok()).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// Serves plain HTTP on `127.0.0.1:0`, answering each request with `respond(request)`.
pub(crate) async fn serve(respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Server {
    start(respond, None).await
}

/// Serves HTTPS on `127.0.0.1:0` with a fresh self-signed certificate for `localhost` and
/// `127.0.0.1`, answering each request with `respond(request)`.
pub(crate) async fn serve_tls(
    respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> Server {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    start(respond, Some(TlsAcceptor::from(Arc::new(config)))).await
}

async fn start(
    respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    tls: Option<TlsAcceptor>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, requests) = mpsc::unbounded_channel();
    let respond: Responder = Arc::new(respond);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let accept_loop = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (sender, respond, tls) = (sender.clone(), Arc::clone(&respond), tls.clone());
            tokio::spawn(async move {
                match tls {
                    // A refused handshake (verify_tls on) ends here: nothing to record.
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            answer_one(stream, &sender, &respond).await;
                        }
                    }
                    None => answer_one(stream, &sender, &respond).await,
                }
            });
        }
    });
    Server { addr, scheme, requests, accept_loop }
}

/// Reads one request, records it, answers it and closes the connection.
async fn answer_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sender: &mpsc::UnboundedSender<Recorded>,
    respond: &Responder,
) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.parse().unwrap());
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
        }
    }
    let request = Recorded { method, path, headers, body };
    let reply = respond(&request);
    let _ = sender.send(request);
    tokio::time::sleep(reply.delay).await;
    let _ = stream.write_all(&reply.bytes).await;
    let _ = stream.shutdown().await;
}
