//! Following a sentinel failover at once, reads included.
//!
//! A connection made to the master stays connected to that server after a
//! failover: writes then fail (a read-only replica) and make a new
//! connection, but reads go on being answered by the old master, stale
//! for as long as it does not follow the new one (a resync in progress, a
//! partition), and a sentinel demoting it closes every client connection,
//! so each pooled one fails its next request. The sentinels announce each
//! switch on their channel `+switch-master`
//! (`<name> <old ip> <old port> <new ip> <new port>`).
//!
//! A [`MasterWatch`] is a thread subscribed to that channel on one sentinel
//! of the set (the next one when it cannot be reached, retried every
//! second); after every (re)connection it also asks which master the
//! sentinel names now, since a switch may have been announced while it was
//! not listening. Each switch of the watched master, and each answer naming
//! another master than the last, bumps [`MasterWatch::generation`]; the
//! users (the metadata store's pool, the shared state's link in
//! `zot_storage`) compare it, an atomic load, with the generation their
//! connections were made in before each use, and connect again (asking the
//! sentinels) when it moved. So a switch is followed within the
//! announcement's delivery, not at the next failing write.
//!
//! The thread holds only a weak reference: it ends within a second of the
//! last user dropping the watch. It is not scheduler work (it waits on a
//! socket, and no request waits on it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::redis_address::Sentinels;

/// How long the thread waits on its subscription before checking that the
/// watch is still used, and between attempts when no sentinel answers.
const TICK: Duration = Duration::from_secs(1);

/// The generation of the master the sentinels name (see the module doc).
#[derive(Debug, Default)]
pub struct MasterWatch {
    generation: AtomicU64,
}

impl MasterWatch {
    /// Bumped at each switch of the master.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Starts watching the master of `sentinels` (a thread).
    pub(crate) fn start(sentinels: &Sentinels) -> Arc<MasterWatch> {
        let watch = Arc::new(MasterWatch::default());
        let weak = Arc::downgrade(&watch);
        let sentinels = sentinels.clone();
        let spawned = std::thread::Builder::new()
            .name("sentinel-watch".into())
            .spawn(move || run(&sentinels, &weak));
        if let Err(e) = spawned {
            // Then only failing commands make new connections, as before.
            tracing::warn!(error = %e, "cannot start watching the sentinels for failovers");
        }
        watch
    }
}

/// The master's address as a sentinel gives it.
type Address = (String, String);

fn run(sentinels: &Sentinels, watch: &Weak<MasterWatch>) {
    let mut known: Option<Address> = None;
    for url in sentinels.urls.iter().cycle() {
        if watch.strong_count() == 0 {
            return;
        }
        if let Err(e) = listen(url, &sentinels.master_name, watch, &mut known) {
            tracing::debug!(error = %e, "sentinel watch: reconnecting");
            std::thread::sleep(TICK);
        }
    }
}

/// Follows one sentinel until it fails or the watch is dropped.
fn listen(
    url: &str,
    name: &str,
    watch: &Weak<MasterWatch>,
    known: &mut Option<Address>,
) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(TICK * 2)?;
    conn.set_write_timeout(Some(TICK * 2))?;
    conn.set_read_timeout(Some(TICK * 2))?;
    let (ip, port): (String, String) = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(name)
        .query(&mut conn)?;
    note(watch, known, (ip, port));
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe("+switch-master")?;
    pubsub.set_read_timeout(Some(TICK))?;
    loop {
        if watch.strong_count() == 0 {
            return Ok(());
        }
        let msg = match pubsub.get_message() {
            Ok(msg) => msg,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        let payload: String = msg.get_payload()?;
        let words: Vec<&str> = payload.split_whitespace().collect();
        if let [master, _, _, ip, port] = words[..]
            && master == name
        {
            tracing::info!(master = name, new = %format!("{ip}:{port}"), "sentinel: the master switched");
            note(watch, known, (ip.to_owned(), port.to_owned()));
        }
    }
}

/// Records the master's address, bumping the generation when it changed.
fn note(watch: &Weak<MasterWatch>, known: &mut Option<Address>, address: Address) {
    if known.as_ref().is_some_and(|k| *k != address)
        && let Some(w) = watch.upgrade()
    {
        w.bump();
    }
    *known = Some(address);
}
