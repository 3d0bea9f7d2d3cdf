//! TLS settings of the server: the rustls configuration (certificate, key,
//! and with `http.tls.cacert` verification of client certificates), and the
//! verified client certificate a connection carries (the user it names is
//! found by `mtls`).
//!
//! With a CA, a client *may* present a certificate; one that does not chain
//! to the CA ends the handshake. A client without one is anonymous at the
//! TLS level and may still authenticate with a password or token.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::SetupError;

/// The end-entity certificate a client presented (DER), already verified.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Vec<u8>);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server's rustls configuration from PEM files.
pub fn server_config(
    cert: &Path,
    key: &Path,
    cacert: Option<&Path>,
) -> Result<rustls::ServerConfig, SetupError> {
    let fail =
        |what: &str, path: &Path, e: String| SetupError(format!("{what} {}: {e}", path.display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail("http.tls.cert", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail("http.tls.cert", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(fail("http.tls.cert", cert, "no certificate".into()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| fail("http.tls.key", key, e.to_string()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError(format!("TLS: {e}")))?;
    let builder = match cacert {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| fail("http.tls.cacert", ca, e.to_string()))?
            {
                let c = c.map_err(|e| fail("http.tls.cacert", ca, e.to_string()))?;
                roots
                    .add(c)
                    .map_err(|e| fail("http.tls.cacert", ca, e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| fail("http.tls.cacert", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| fail("http.tls.key", key, e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
