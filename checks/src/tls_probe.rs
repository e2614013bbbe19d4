//! What `ssl-certificate-expiry` and `ssl-common-name` share: a TLS handshake that accepts any
//! certificate, and the leaf certificate's expiry and names.
//!
//! The checks inspect a certificate, they do not trust it: an expired, self-signed or
//! wrong-name certificate must still complete the handshake so that its dates and names can be
//! judged. The handshake's signatures are still verified (with rustls' aws-lc-rs provider, the
//! one `tokio-rustls` enables here), so the server does hold the certificate's private key.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};
use x509_parser::extensions::GeneralName;

use crate::ConfigError;
use crate::support::{
    io_error_outcome, no_answer_within, socket_target, unbracketed_host, validate_host,
    validate_timeout_ms,
};

/// Serde default of `port`: HTTPS.
pub(crate) fn default_tls_port() -> u16 {
    443
}

/// Where a TLS check connects and which name it asks for (SNI).
#[derive(Debug)]
pub(crate) struct TlsTarget {
    egress: Arc<Egress>,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    /// The server name as reasons name it, e.g. `example.com`.
    pub(crate) name: String,
    /// `host:port` as reasons name it.
    pub(crate) target: String,
    /// The whole probe's time limit (connect and handshake).
    pub(crate) timeout: Duration,
    /// The time limit as configured, for reasons.
    pub(crate) timeout_ms: u64,
}

/// What the checks judge of the server's leaf certificate.
#[derive(Debug, Clone)]
pub(crate) struct LeafCertificate {
    /// End of the validity period.
    pub(crate) not_after: OffsetDateTime,
    /// Subject common names, then DNS and IP subjectAltNames, each once, in certificate order.
    pub(crate) names: Vec<String>,
}

impl TlsTarget {
    /// Checks the fields a TLS check shares and builds its target; `server_name` defaults to
    /// `host`.
    ///
    /// # Errors
    /// Names the first invalid field: `host`, `port`, `server_name` or `timeout_ms`.
    pub(crate) fn new(
        host: &str,
        port: u16,
        server_name: Option<&str>,
        timeout_ms: u64,
    ) -> Result<Self, ConfigError> {
        validate_host(host)?;
        if port == 0 {
            return Err(ConfigError::invalid("port", "must be between 1 and 65535"));
        }
        let (field, name) = match server_name {
            Some(name) => ("server_name", name),
            None => ("host", unbracketed_host(host)),
        };
        let server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
            ConfigError::invalid(
                field,
                "must be a dns name or ip address usable as tls server name",
            )
        })?;
        Ok(Self {
            egress: Arc::new(Egress::default()),
            host: unbracketed_host(host).to_owned(),
            port,
            server_name,
            name: name.to_owned(),
            target: socket_target(host, port),
            timeout: validate_timeout_ms(timeout_ms)?,
            timeout_ms,
        })
    }

    /// Returns the target connecting only where `egress` allows (the built-in policy until
    /// then), after refusing a host that is an IP literal `egress` denies.
    ///
    /// # Errors
    /// Names `host` and the rule.
    pub(crate) fn with_egress(mut self, egress: &Arc<Egress>) -> Result<Self, ConfigError> {
        crate::egress::refuse_denied_literal(egress, "host", &self.host, self.port)?;
        self.egress = Arc::clone(egress);
        Ok(self)
    }

    /// Connects, completes a TLS handshake (accepting any certificate) and returns the server's
    /// leaf certificate, all within the timeout.
    ///
    /// # Errors
    /// Returns the outcome to report instead: failed when the target refuses, does not answer,
    /// does not speak TLS or sends no usable certificate; unknown when this node cannot set up
    /// TLS.
    pub(crate) async fn fetch_leaf_certificate(&self) -> Result<LeafCertificate, CheckOutcome> {
        let config = inspecting_client_config()
            .map_err(|reason| CheckOutcome::Unknown { reason: reason.clone() })?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Resolved once on tokio's blocking pool, checked, then connected to that address.
        let connect = crate::egress::connect_tcp(&self.egress, &self.host, self.port, &self.target);
        let tcp = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(outcome)) => return Err(outcome),
            Err(_) => return Err(no_answer_within(self.timeout_ms)),
        };
        let handshake = TlsConnector::from(config).connect(self.server_name.clone(), tcp);
        let mut tls = match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => return Err(self.handshake_error_outcome(&error)),
            Err(_) => {
                let reason =
                    format!("no tls handshake with {} within {} ms", self.target, self.timeout_ms);
                return Err(CheckOutcome::Failed { reason });
            }
        };
        let leaf = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).cloned();
        // A polite close_notify; the outcome does not depend on it.
        let _ = tokio::time::timeout_at(deadline, tls.shutdown()).await;
        let Some(leaf) = leaf else {
            let reason = format!("{} sent no certificate", self.target);
            return Err(CheckOutcome::Failed { reason });
        };
        parse_leaf_certificate(&leaf).map_err(|error| CheckOutcome::Failed {
            reason: format!("certificate from {} does not parse: {error}", self.target),
        })
    }

    /// Returns the outcome of a failed handshake: the target's fault unless this node ran out
    /// of something.
    fn handshake_error_outcome(&self, error: &std::io::Error) -> CheckOutcome {
        let target = &self.target;
        let tls_error = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let reason = match tls_error {
            // The first bytes back were no TLS record: a plain-text service (HTTP, SSH, Redis).
            Some(rustls::Error::InvalidMessage(_)) => {
                format!("{target} does not speak tls: {error}")
            }
            Some(tls_error) => format!("tls handshake with {target} failed: {tls_error}"),
            None if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                format!("{target} closed the connection during the tls handshake")
            }
            None => return io_error_outcome(error, target),
        };
        CheckOutcome::Failed { reason }
    }
}

/// Returns the client config every TLS check shares: aws-lc-rs, safe default protocol versions,
/// [`InspectingVerifier`]. Built once; an error means this node cannot do TLS at all.
fn inspecting_client_config() -> Result<Arc<ClientConfig>, &'static String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(InspectingVerifier { provider: Arc::clone(&provider) });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("could not set up tls: {error}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Arc::new(config))
    });
    config.as_ref().map(Arc::clone)
}

/// Accepts any certificate chain (the checks judge it afterwards) but verifies the handshake
/// signatures with the provider's algorithms, as a trusting verifier would.
#[derive(Debug)]
struct InspectingVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for InspectingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads the expiry and the names of a DER certificate.
///
/// # Errors
/// Returns the parser's message when the DER is not an X.509 certificate.
pub(crate) fn parse_leaf_certificate(der: &[u8]) -> Result<LeafCertificate, String> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|error| error.to_string())?;
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    for common_name in certificate.subject().iter_common_name() {
        if let Ok(name) = common_name.as_str() {
            add(name.to_owned());
        }
    }
    let alt_names = certificate.subject_alternative_name().map_err(|error| error.to_string())?;
    for general_name in alt_names.iter().flat_map(|extension| &extension.value.general_names) {
        match general_name {
            GeneralName::DNSName(name) => add((*name).to_owned()),
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                    _ => None,
                };
                if let Some(ip) = ip {
                    add(ip.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(LeafCertificate { not_after: certificate.validity().not_after.to_datetime(), names })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        CertificateSpec, TlsServerKind, refused_port, serve_plain_text, serve_tls, serve_tls_as,
        silent_server,
    };

    fn target(port: u16, server_name: Option<&str>, timeout_ms: u64) -> TlsTarget {
        let target = TlsTarget::new("127.0.0.1", port, server_name, timeout_ms).unwrap();
        target.with_egress(&crate::test_support::loopback()).unwrap()
    }

    fn failed_reason(result: Result<LeafCertificate, CheckOutcome>) -> String {
        match result {
            Err(CheckOutcome::Failed { reason }) => reason,
            other => panic!("expected a failed outcome, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn reads_names_and_expiry_of_an_untrusted_certificate() {
        let spec = CertificateSpec::valid_for_days(&["example.com", "www.example.com"], 90);
        let server = serve_tls(&spec).await;
        let leaf =
            target(server.port, Some("example.com"), 2000).fetch_leaf_certificate().await.unwrap();
        assert_eq!(leaf.names, ["example.com", "www.example.com"]);
        let days_left = (leaf.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((89..=90).contains(&days_left), "{days_left}");
    }

    #[tokio::test]
    async fn sends_server_name_defaulting_to_host() {
        let spec = CertificateSpec::valid_for_days(&["example.com"], 90);
        let mut server = serve_tls(&spec).await;
        let probe = TlsTarget::new("localhost", server.port, None, 2000).unwrap();
        let probe = probe.with_egress(&crate::test_support::loopback()).unwrap();
        probe.fetch_leaf_certificate().await.unwrap();
        assert_eq!(server.server_names.recv().await.unwrap().as_deref(), Some("localhost"));
        target(server.port, Some("api.example.com"), 2000).fetch_leaf_certificate().await.unwrap();
        assert_eq!(server.server_names.recv().await.unwrap().as_deref(), Some("api.example.com"));
    }

    #[tokio::test]
    async fn accepts_tls12_handshakes_too() {
        let spec = CertificateSpec::valid_for_days(&["example.com"], 90);
        let server = serve_tls_as(&spec, TlsServerKind::Tls12Only).await;
        let leaf = target(server.port, None, 2000).fetch_leaf_certificate().await.unwrap();
        assert_eq!(leaf.names, ["example.com"]);
    }

    /// Any certificate is accepted, but only from a server that holds its private key.
    #[tokio::test]
    async fn refuses_a_server_that_signs_with_another_key() {
        let spec = CertificateSpec::valid_for_days(&["example.com"], 90);
        for kind in [TlsServerKind::WrongKey, TlsServerKind::WrongKeyTls12] {
            let server = serve_tls_as(&spec, kind).await;
            let result = target(server.port, None, 2000).fetch_leaf_certificate().await;
            let reason = failed_reason(result);
            let expected = format!(
                "tls handshake with 127.0.0.1:{} failed: invalid peer certificate: BadSignature",
                server.port
            );
            assert_eq!(reason, expected, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn a_plain_text_server_does_not_speak_tls() {
        let port = serve_plain_text(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let reason = failed_reason(target(port, None, 2000).fetch_leaf_certificate().await);
        let prefix = format!("127.0.0.1:{port} does not speak tls: ");
        assert!(reason.starts_with(&prefix), "{reason}");
    }

    #[tokio::test]
    async fn a_server_that_closes_fails_the_handshake() {
        let port = serve_plain_text(b"").await;
        let reason = failed_reason(target(port, None, 2000).fetch_leaf_certificate().await);
        let expected = format!("127.0.0.1:{port} closed the connection during the tls handshake");
        assert_eq!(reason, expected);
    }

    #[tokio::test]
    async fn refused_and_silent_targets_fail() {
        let port = refused_port().await;
        let reason = failed_reason(target(port, None, 2000).fetch_leaf_certificate().await);
        assert_eq!(reason, format!("connection refused: 127.0.0.1:{port}"));
        let addr = silent_server().await;
        let started = std::time::Instant::now();
        let reason = failed_reason(target(addr.port(), None, 300).fetch_leaf_certificate().await);
        assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
        assert_eq!(reason, format!("no tls handshake with {addr} within 300 ms"));
    }

    #[test]
    fn server_names_are_validated_naming_their_field() {
        let error = TlsTarget::new("x", 443, Some("a b"), 1000).unwrap_err();
        assert_eq!(error.field, "server_name");
        let error = TlsTarget::new("bad_host!", 443, None, 1000).unwrap_err();
        assert_eq!(error.field, "host");
        assert!(TlsTarget::new("bad_host!", 443, Some("example.com"), 1000).is_ok());
        let ipv6 = TlsTarget::new("[::1]", 443, None, 1000).unwrap();
        assert_eq!((ipv6.name.as_str(), ipv6.target.as_str()), ("::1", "[::1]:443"));
    }

    #[test]
    fn ip_alt_names_are_listed_as_addresses() {
        let spec = CertificateSpec::valid_for_days(&["127.0.0.1", "::1", "example.com"], 1)
            .with_common_name("test.invalid");
        let leaf = parse_leaf_certificate(&spec.certificate_der()).unwrap();
        assert_eq!(leaf.names, ["test.invalid", "127.0.0.1", "::1", "example.com"]);
        assert!(parse_leaf_certificate(b"not a certificate").is_err());
    }
}
