//! Leases: work that must run once across instances (a GC round, a scrub
//! round, a scheduled sync run) and the exclusive use of one shared upload
//! session take a lease in Redis first.
//!
//! A lease is the key `<prefix>:lease:<name>` holding a random token, set
//! with `SET NX PX` (so one holder at a time), renewed every third of its
//! time to live while held (only while the key still holds the token: a
//! compare-and-expire script), and released by compare-and-delete, so a
//! holder never removes a lease another instance took after its own
//! expired. A holder that crashes stops renewing, and its lease expires
//! after the time to live ([`DEFAULT_TTL`]).
//!
//! Invariants:
//! - A guard whose renewal found another token, or could not reach Redis
//!   for a whole time to live, reports itself lost ([`LeaseGuard::is_lost`]);
//!   holders check it between steps and stop.
//! - Without Redis ([`Leases::local`]) every lease is granted at once and
//!   never lost: one process serializes its own work.

use super::{SharedError, SharedState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a lease outlives its holder's last renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Sets the key's expiry only if it still holds the token.
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes the key only if it still holds the token.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";

/// Where leases are taken: Redis, or nowhere (one process).
#[derive(Clone, Debug)]
pub struct Leases {
    shared: Option<SharedState>,
    ttl: Duration,
}

impl Leases {
    /// Leases of one process alone: always granted.
    pub fn local() -> Leases {
        Leases {
            shared: None,
            ttl: DEFAULT_TTL,
        }
    }

    /// Leases in the shared Redis.
    pub fn redis(shared: SharedState) -> Leases {
        Leases {
            shared: Some(shared),
            ttl: DEFAULT_TTL,
        }
    }

    /// The same leases with another time to live (at least 300 ms).
    pub fn with_ttl(mut self, ttl: Duration) -> Leases {
        self.ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// Whether leases are taken in Redis (shared by several instances).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease `name` unless another holder has it (`None`).
    pub async fn try_acquire(&self, name: &str) -> Result<Option<LeaseGuard>, SharedError> {
        let Some(shared) = &self.shared else {
            return Ok(Some(LeaseGuard { held: None }));
        };
        let key = shared.key(&format!("lease:{name}"));
        let token = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .query_async(&mut shared.conn())
            .await?;
        if set.is_none() {
            return Ok(None);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = tokio::spawn(renew(
            shared.clone(),
            key.clone(),
            token.clone(),
            self.ttl,
            lost.clone(),
        ));
        Ok(Some(LeaseGuard {
            held: Some(Held {
                shared: shared.clone(),
                key,
                token,
                lost,
                renewal,
            }),
        }))
    }

    /// Takes the lease `name`, waiting (polling, 10 ms growing to 200 ms)
    /// while another holder has it.
    pub async fn acquire(&self, name: &str) -> Result<LeaseGuard, SharedError> {
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(guard) = self.try_acquire(name).await? {
                return Ok(guard);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Waits (polling as [`Leases::acquire`] does) until nobody holds the
    /// lease `name`, without taking it.
    pub async fn wait_released(&self, name: &str) -> Result<(), SharedError> {
        let mut pause = Duration::from_millis(10);
        while self.holder(name).await?.is_some() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        Ok(())
    }

    /// The token of the holder of lease `name`, if any (for logs, tests).
    pub async fn holder(&self, name: &str) -> Result<Option<String>, SharedError> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        Ok(redis::cmd("GET")
            .arg(shared.key(&format!("lease:{name}")))
            .query_async(&mut shared.conn())
            .await?)
    }
}

/// Renews the lease every third of `ttl` while it holds `token`.
async fn renew(
    shared: SharedState,
    key: String,
    token: String,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let mut last_ok = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed: Result<i64, _> = redis::cmd("EVAL")
            .arg(RENEW)
            .arg(1)
            .arg(&key)
            .arg(&token)
            .arg(ttl.as_millis() as u64)
            .query_async(&mut shared.conn())
            .await;
        match renewed {
            Ok(1) => last_ok = Instant::now(),
            Ok(_) => {
                tracing::warn!(lease = %key, "lease lost: another instance holds it now");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) if last_ok.elapsed() >= ttl => {
                tracing::warn!(lease = %key, error = %e, "lease lost: not renewed in time");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(lease = %key, error = %e, "renewing a lease failed; retrying"),
        }
    }
}

struct Held {
    shared: SharedState,
    key: String,
    token: String,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

/// A lease held; renewed until released or dropped (a drop releases it in
/// the background).
pub struct LeaseGuard {
    held: Option<Held>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.held {
            Some(h) => write!(f, "LeaseGuard({})", h.key),
            None => write!(f, "LeaseGuard(local)"),
        }
    }
}

impl LeaseGuard {
    /// Whether the lease may be held by another instance now (see the
    /// module doc): the holder must stop.
    pub fn is_lost(&self) -> bool {
        self.held
            .as_ref()
            .is_some_and(|h| h.lost.load(Ordering::SeqCst))
    }

    /// A flag that turns true when the lease is lost (for code that cannot
    /// hold the guard, such as a blocking writer).
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.held
            .as_ref()
            .map_or_else(|| Arc::new(AtomicBool::new(false)), |h| h.lost.clone())
    }

    /// The holder's token (empty for a local lease).
    pub fn token(&self) -> &str {
        self.held.as_ref().map_or("", |h| h.token.as_str())
    }

    /// Gives the lease up now (only if still ours).
    pub async fn release(mut self) -> Result<(), SharedError> {
        match self.held.take() {
            Some(h) => release(h).await,
            None => Ok(()),
        }
    }
}

async fn release(h: Held) -> Result<(), SharedError> {
    h.renewal.abort();
    let _: i64 = redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(&h.key)
        .arg(&h.token)
        .query_async(&mut h.shared.conn())
        .await?;
    Ok(())
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(h) = self.held.take() {
            h.renewal.abort();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = release(h).await {
                        tracing::warn!(error = %e, "releasing a lease (it expires by itself)");
                    }
                });
            }
        }
    }
}
