//! The rustls configuration of an upstream: ring as crypto provider (the
//! process's one TLS stack), the system's roots plus `certDir/*.crt`, the
//! client pair `certDir/*.cert` + `*.key` (Docker's `certs.d` convention:
//! `client.cert` goes with `client.key`), or no verification at all with
//! `tlsVerify: false`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{ClientError, Result};

fn tls_err(what: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(what.to_string())
}

/// Files of `dir` ending in `ext`, sorted; a missing folder has none.
fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(tls_err(format!("certDir {}: {e}", dir.display()))),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    Ok(out)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_err(format!("{}: no certificate", path.display())));
    }
    Ok(certs)
}

/// The rustls client configuration for one upstream.
pub fn client_config(
    tls_verify: bool,
    cert_dir: Option<&Path>,
    http1_only: bool,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let builder = if tls_verify {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A broken system certificate is skipped, as every client does.
            let _ = roots.add(cert);
        }
        if let Some(dir) = cert_dir {
            for path in files_with(dir, "crt")? {
                for cert in certs(&path)? {
                    roots
                        .add(cert)
                        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
                }
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    };
    let pair = match cert_dir {
        Some(dir) => client_pair(dir)?,
        None => None,
    };
    let mut config = match pair {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// The first `*.cert` of `dir` with its `*.key` of the same stem.
fn client_pair(
    dir: &Path,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    let Some(cert) = files_with(dir, "cert")?.into_iter().next() else {
        return Ok(None);
    };
    let key_path = cert.with_extension("key");
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| tls_err(format!("{}: {e}", key_path.display())))?;
    Ok(Some((certs(&cert)?, key)))
}

/// `tlsVerify: false`: any certificate, for any name; signatures are still
/// checked, so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
