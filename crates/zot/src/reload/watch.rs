//! What starts a reload: `SIGHUP`, and a change of the configuration
//! file's content.
//!
//! The file is polled every [`POLL_EVERY`]: its path is read (following
//! symbolic links) and the bytes hashed. So every way of replacing it is
//! seen alike: a write in place, a new file renamed over it, and
//! Kubernetes' swap of the `..data` symbolic link to a new directory (the
//! path resolves to another file); a directory watch would need one rule
//! per style, and inotify misses a symbolic link swapped above the
//! watched directory. A missing or unreadable file is waited out (a swap
//! in progress). A change is acted on once the content has stayed the same
//! for [`SETTLE`], so a burst of writes (an editor saving in steps, a
//! writer still writing) is one reload, and a half-written file is not
//! validated.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::Sender;

use super::Trigger;

/// How often the file is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a changed content must stay the same before it is reloaded.
pub const SETTLE: Duration = Duration::from_millis(300);
/// How long a content that keeps changing is waited for at most.
const SETTLE_AT_MOST: Duration = Duration::from_secs(10);

/// The hash of the file's content now; `None` while it cannot be read.
async fn content_hash(path: &PathBuf) -> Option<String> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    Some(super::hash(&text))
}

/// Polls `path` (whose content hashes to `loaded` now) and sends
/// [`Trigger::File`] after each settled change.
pub fn watch_file(path: PathBuf, loaded: String, triggers: Sender<Trigger>) {
    tokio::spawn(async move {
        let mut last = loaded;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(seen) = content_hash(&path).await else {
                continue;
            };
            if seen == last {
                continue;
            }
            // Wait for the content to settle.
            let mut settled = seen;
            let since = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(SETTLE).await;
                match content_hash(&path).await {
                    Some(now) if now == settled => break,
                    Some(now) => settled = now,
                    None => {}
                }
                if since.elapsed() > SETTLE_AT_MOST {
                    break;
                }
            }
            last = settled;
            if triggers.send(Trigger::File).await.is_err() {
                return;
            }
        }
    });
}

/// Listens for `SIGHUP` from now on: each one sends [`Trigger::Signal`]
/// (or, without a configuration file, is logged and ignored).
pub fn on_sighup(triggers: Option<Sender<Trigger>>) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match &triggers {
                Some(t) => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if t.send(Trigger::Signal).await.is_err() {
                        return;
                    }
                }
                None => tracing::warn!(
                    "SIGHUP: the registry runs on its embedded default configuration, nothing to reload"
                ),
            }
        }
    });
    Ok(())
}
