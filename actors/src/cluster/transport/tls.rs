//! Mutual TLS for the cluster port: each node presents its certificate and accepts a peer only
//! when the peer's certificate chains to `ca`, or (without `ca`) is the node's own certificate,
//! the usual setup when every node shares one self-signed certificate. Dialers verify the
//! peer's name against the host part of its cluster address, so the certificate must name it.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{TlsFiles, TransportError};

/// The TLS halves of one node: accepting peers and dialing them.
pub(super) struct Tls {
    pub(super) acceptor: TlsAcceptor,
    pub(super) connector: TlsConnector,
}

impl Tls {
    /// Reads the PEM files and builds both configurations.
    pub(super) fn load(files: &TlsFiles) -> Result<Self, TransportError> {
        let certs = read_certs(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|err| {
            start(format!("cannot read the tls key {}: {err}", files.key.display()))
        })?;
        let anchors = match &files.ca {
            Some(ca) => read_certs(ca)?,
            None => certs.clone(),
        };
        let mut roots = RootCertStore::empty();
        for anchor in anchors {
            roots.add(anchor).map_err(|err| start(format!("unusable tls trust anchor: {err}")))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(aws_lc_rs::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|err| start(format!("cannot verify peer certificates: {err}")))?;
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| start(format!("tls setup: {err}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|err| start(format!("the tls certificate and key do not fit: {err}")))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| start(format!("tls setup: {err}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|err| start(format!("the tls certificate and key do not fit: {err}")))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// Returns the name a dialer expects in the certificate of the peer at `host`.
pub(super) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned())
        .map_err(|err| format!("`{host}` is not a valid tls server name: {err}"))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let unreadable = |err| start(format!("cannot read tls certificates {}: {err}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(start(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}

fn start(message: String) -> TransportError {
    TransportError::Start { message }
}
