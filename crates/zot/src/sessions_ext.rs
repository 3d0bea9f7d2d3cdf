//! Browser sessions wired in (see `zot_auth::session`): the cookie keys
//! from `http.auth.sessionKeysFile` (without it: shared through Redis with
//! the Redis driver, else random per start, with a warning), the store named by `sessionDriver` (the default store's
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
    let mut redis_secret = None;
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
        SessionDriver::Redis { url, key_prefix } => {
            let redis = zot_auth::session_stores::RedisSessions::connect(url, key_prefix)
                .await
                .context("http.auth.sessionDriver")?;
            if auth.session_keys_file.is_none() {
                let candidate = zot_auth::session::random_secret()?;
                redis_secret = Some(
                    redis
                        .shared_secret(candidate.as_bytes())
                        .await
                        .context("http.auth.sessionDriver: the shared cookie secret")?,
                );
            }
            Arc::new(redis)
        }
    };
    let keys = match (&auth.session_keys_file, redis_secret) {
        (Some(path), _) => CookieKeys::from_file(path)?,
        (None, Some(secret)) => CookieKeys::from_secrets(&secret, b""),
        (None, None) => {
            // Loud with OpenID logins; with passwords only, sessions serve
            // zot's UI alone.
            let why = "http.auth.sessionKeysFile is not set: session cookies are sealed with \
                       keys made at start-up, so sessions end when the registry restarts";
            if auth.openid.is_some() {
                tracing::warn!("{why}");
            } else {
                tracing::info!("{why}");
            }
            CookieKeys::random()?
        }
    };
    security.enable_sessions(keys, store, auth.secure_session);
    Ok(())
}
