//! TLS before HTTP: client certificates when `http.tls.cacert` is set, and
//! the certificate and key reloaded when their files change. The limits on
//! connections (count, idleness, stalls, inactivity timeouts) are in
//! `connections.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::tls_rustls::RustlsConfig;
use zot_config::TlsConfig;

/// How often the certificate and key files are checked for changes.
const TLS_RELOAD_POLL: Duration = Duration::from_secs(2);

/// The rustls configuration of `http.tls`.
pub fn rustls_config(tls: &TlsConfig) -> anyhow::Result<RustlsConfig> {
    let config = zot_auth::tls::server_config(&tls.cert, &tls.key, tls.cacert.as_deref())?;
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

fn stamp(paths: &[PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Reloads the certificate and key (and CA) when one of their files
/// changes; a broken new pair is logged and the old one kept.
pub fn watch_tls(tls: TlsConfig, config: RustlsConfig) {
    tokio::spawn(async move {
        let mut files = vec![tls.cert.clone(), tls.key.clone()];
        files.extend(tls.cacert.clone());
        let mut last = stamp(&files);
        let mut tick = tokio::time::interval(TLS_RELOAD_POLL);
        loop {
            tick.tick().await;
            let now = stamp(&files);
            if now == last {
                continue;
            }
            last = now;
            let tls = tls.clone();
            let built = tokio::task::spawn_blocking(move || {
                zot_auth::tls::server_config(&tls.cert, &tls.key, tls.cacert.as_deref())
            })
            .await;
            match built {
                Ok(Ok(server)) => {
                    config.reload_from_config(Arc::new(server));
                    tracing::info!("TLS certificate reloaded");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "TLS files changed but cannot be used; keeping the previous certificate")
                }
                Err(e) => tracing::warn!(error = %e, "reloading the TLS certificate"),
            }
        }
    });
}

/// Hands the verified client certificate of a TLS connection to the API.
pub async fn peer_certificate(mut req: Request, next: Next) -> Response {
    let cert = req
        .extensions()
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .and_then(|info| info.peer_certificates.first().cloned());
    if let Some(der) = cert {
        req.extensions_mut()
            .insert(zot_auth::tls::PeerCertificate(der));
    }
    next.run(req).await
}
