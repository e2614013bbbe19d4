//! Loopback servers for the check tests: every one binds `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;

use cloudroutes_engine::egress::Egress;

use tokio::net::TcpListener;
use warp::Filter;

/// Returns the egress policy of the check tests: the built-in one with loopback allowed, since
/// every test server listens there.
pub(crate) fn loopback() -> Arc<Egress> {
    Arc::new(Egress::loopback_for_tests())
}

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

/// A self-signed certificate to serve: subject common name, subjectAltNames, validity.
#[derive(Debug, Clone)]
pub(crate) struct CertificateSpec {
    /// Subject CN.
    pub(crate) common_name: String,
    /// DNS names and IP addresses (an IP-shaped entry becomes an IP subjectAltName).
    pub(crate) alt_names: Vec<String>,
    /// Start of validity.
    pub(crate) not_before: time::OffsetDateTime,
    /// End of validity.
    pub(crate) not_after: time::OffsetDateTime,
}

impl CertificateSpec {
    /// A certificate for `names` (the first is also the CN), valid from yesterday until `days`
    /// from now.
    pub(crate) fn valid_for_days(names: &[&str], days: i64) -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self {
            common_name: names[0].to_owned(),
            alt_names: names.iter().map(|name| (*name).to_owned()).collect(),
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(days),
        }
    }

    /// A certificate for `names` that expired `days_ago` days ago.
    pub(crate) fn expired_days_ago(names: &[&str], days_ago: i64) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let mut spec = Self::valid_for_days(names, 0);
        spec.not_before = now - time::Duration::days(days_ago + 365);
        spec.not_after = now - time::Duration::days(days_ago);
        spec
    }

    /// The same certificate with another subject CN.
    pub(crate) fn with_common_name(mut self, common_name: &str) -> Self {
        common_name.clone_into(&mut self.common_name);
        self
    }

    /// Generates a key pair and signs the certificate with it.
    fn self_signed(
        &self,
    ) -> (
        tokio_rustls::rustls::pki_types::CertificateDer<'static>,
        tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(self.alt_names.clone()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, self.common_name.as_str());
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        let certificate = params.self_signed(&key).unwrap();
        let key = tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        (certificate.der().clone(), key.into())
    }

    /// Returns the DER of a freshly signed certificate.
    pub(crate) fn certificate_der(&self) -> Vec<u8> {
        self.self_signed().0.to_vec()
    }
}

/// A loopback TLS server: its port and the server name (SNI) of each handshake, in order.
pub(crate) struct TlsServer {
    /// The port on 127.0.0.1.
    pub(crate) port: u16,
    /// One entry per completed handshake: the SNI the client sent, if any.
    pub(crate) server_names: tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
}

/// Which TLS versions a test server speaks and whether it holds its certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsServerKind {
    /// TLS 1.3 and 1.2, signing with the certificate's key.
    Normal,
    /// TLS 1.2 only, signing with the certificate's key.
    Tls12Only,
    /// TLS 1.3 and 1.2, signing with another key than the certificate's: an impostor.
    WrongKey,
    /// TLS 1.2 only, signing with another key than the certificate's.
    WrongKeyTls12,
}

/// Serves `spec` over TLS 1.2 and 1.3 until the test ends.
pub(crate) async fn serve_tls(spec: &CertificateSpec) -> TlsServer {
    serve_tls_as(spec, TlsServerKind::Normal).await
}

/// Always presents one certificate, whatever the client asks for.
#[derive(Debug)]
struct FixedCertificate(std::sync::Arc<tokio_rustls::rustls::sign::CertifiedKey>);

impl tokio_rustls::rustls::server::ResolvesServerCert for FixedCertificate {
    fn resolve(
        &self,
        _hello: tokio_rustls::rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<tokio_rustls::rustls::sign::CertifiedKey>> {
        Some(std::sync::Arc::clone(&self.0))
    }
}

/// Serves `spec` as `kind` says until the test ends.
pub(crate) async fn serve_tls_as(spec: &CertificateSpec, kind: TlsServerKind) -> TlsServer {
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio_rustls::rustls::sign::CertifiedKey;
    use tokio_rustls::rustls::version::{TLS12, TLS13};
    use tokio_rustls::rustls::{ServerConfig, crypto::aws_lc_rs};
    let provider = Arc::new(aws_lc_rs::default_provider());
    let (certificate, mut key) = spec.self_signed();
    if matches!(kind, TlsServerKind::WrongKey | TlsServerKind::WrongKeyTls12) {
        key = spec.self_signed().1;
    }
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let certified = CertifiedKey::new(vec![certificate], signing_key);
    let versions: &[&'static tokio_rustls::rustls::SupportedProtocolVersion] = match kind {
        TlsServerKind::Normal | TlsServerKind::WrongKey => &[&TLS13, &TLS12],
        TlsServerKind::Tls12Only | TlsServerKind::WrongKeyTls12 => &[&TLS12],
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCertificate(Arc::new(certified))));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, server_names) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let _ = sender.send(tls.get_ref().1.server_name().map(str::to_owned));
                let mut buffer = [0u8; 1024];
                while let Ok(1..) = tls.read(&mut buffer).await {}
            });
        }
    });
    TlsServer { port, server_names }
}

/// A plain-text server where a TLS server should be: reads the client's first TLS record,
/// answers `answer`, then closes at once when `answer` is empty or else when the client does.
pub(crate) async fn serve_plain_text(answer: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the whole record first: closing with unread data would send a reset.
                let mut header = [0u8; 5];
                if stream.read_exact(&mut header).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
                if stream.read_exact(&mut body).await.is_err() || answer.is_empty() {
                    return;
                }
                let _ = stream.write_all(answer).await;
                let mut buffer = [0u8; 1024];
                while let Ok(1..) = stream.read(&mut buffer).await {}
            });
        }
    });
    port
}
