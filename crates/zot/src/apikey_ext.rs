//! API keys (`http.auth.apikey`) in the binary: the keys live in the
//! default store's metadata store ([`zot_api::MetaKeyStore`]), and their
//! last uses, noted in memory at each request, are written every
//! [`USE_FLUSH`] and at shutdown (see `zot_auth`'s `apikey` module).

use std::sync::Arc;
use std::time::Duration;

use zot_auth::{ApiKeys, Security};
use zot_storage::Stores;

/// How often the last uses of API keys are written.
const USE_FLUSH: Duration = Duration::from_secs(30);

/// Attaches the key store to `security` when API keys are on, and starts
/// the periodic flush of last uses; returns the keys for the final flush.
pub fn attach(security: Security, stores: &Stores) -> (Security, Option<Arc<ApiKeys>>) {
    let store = Arc::new(zot_api::MetaKeyStore::new(stores.default_store().clone()));
    let security = security.with_api_keys(store);
    let keys = security.api_keys().cloned();
    if let Some(keys) = &keys {
        tracing::info!("API keys on: /zot/auth/apikey");
        let keys = keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(USE_FLUSH);
            loop {
                tick.tick().await;
                flush(&keys).await;
            }
        });
    }
    (security, keys)
}

/// Writes the last uses noted since the previous flush.
pub async fn flush(keys: &Arc<ApiKeys>) {
    let k = keys.clone();
    match tokio::task::spawn_blocking(move || k.flush()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "recording API key uses"),
        Err(e) => tracing::warn!(error = %e, "recording API key uses"),
    }
}
