//! The rustls client configuration members use to reach each other: ring as
//! crypto provider (the process's one TLS stack), the system roots plus
//! `cluster.tls.cacert`, and `cluster.tls.cert`/`key` as client certificate
//! when set (for members that require mutual TLS). Certificates are always
//! verified.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zot_config::ClusterTls;

use super::ClusterError;

fn tls_err(path: &Path, what: impl std::fmt::Display) -> ClusterError {
    ClusterError::Tls(format!("{}: {what}", path.display()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClusterError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(path, e))?;
    if certs.is_empty() {
        return Err(tls_err(path, "no certificate"));
    }
    Ok(certs)
}

/// The client configuration for `tls` (`None`: system roots, no client
/// certificate).
pub(super) fn client_config(
    tls: Option<&ClusterTls>,
) -> Result<rustls::ClientConfig, ClusterError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClusterError::Tls(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped, as every client does.
        let _ = roots.add(cert);
    }
    if let Some(ca) = tls.and_then(|t| t.cacert.as_deref()) {
        for cert in certs(ca)? {
            roots.add(cert).map_err(|e| tls_err(ca, e))?;
        }
    }
    let builder = builder.with_root_certificates(roots);
    let config = match tls.and_then(|t| t.cert.as_deref().zip(t.key.as_deref())) {
        Some((cert, key)) => {
            let chain = certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err(cert, e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}
