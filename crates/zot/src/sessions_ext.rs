//! Browser sessions wired in (see `zot_auth::session`): the cookie keys
//! from `http.auth.sessionKeysFile` (random per start without it, with a
//! warning), the store named by `sessionDriver` (the default store's
//! metadata store, or Redis), and the hourly purge of expired local records.
//!
//! Sessions are on when the registry has logins to make them from: OpenID
//! providers or password users (htpasswd, LDAP).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use zot_auth::Security;
use zot_auth::session::{CookieKeys, SessionStore};
use zot_auth::session_stores::MetaSessions;
use zot_config::{Config, SessionDriver};

/// How often expired local session records are removed.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Turns sessions on in `security` when it has logins to make them from.
pub async fn enable(
    cfg: &Config,
    security: &mut Security,
    default_store: &zot_storage::Registry,
) -> anyhow::Result<()> {
    let Some(auth) = cfg.http.auth.as_ref().filter(|_| security.wants_sessions()) else {
        return Ok(());
    };
    let keys = match &auth.session_keys_file {
        Some(path) => CookieKeys::from_file(path)?,
        None => {
            tracing::warn!(
                "http.auth.sessionKeysFile is not set: session cookies are sealed with keys \
                 made at start-up, so sessions end when the registry restarts and other \
                 instances do not accept them"
            );
            CookieKeys::random()?
        }
    };
    let store: Arc<dyn SessionStore> = match &auth.session_driver {
        SessionDriver::Local => {
            let local = Arc::new(MetaSessions::new(default_store.outbox()));
            let purged = local.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PURGE_EVERY);
                loop {
                    tick.tick().await;
                    if let Err(e) = purged.purge().await {
                        tracing::warn!(error = %e, "purging expired sessions");
                    }
                }
            });
            local
        }
        SessionDriver::Redis { url, key_prefix } => Arc::new(
            zot_auth::session_stores::RedisSessions::connect(url, key_prefix)
                .await
                .context("http.auth.sessionDriver")?,
        ),
    };
    security.enable_sessions(keys, store, auth.secure_session);
    Ok(())
}
