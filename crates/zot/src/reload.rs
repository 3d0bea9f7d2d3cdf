//! Configuration reload without restart: on a change of the configuration
//! file (seen by `watch.rs`, whichever way it was replaced) and on `SIGHUP`,
//! the file is read once, hashed, and validated exactly as `zot verify`
//! validates it; then what can change live is swapped in.
//!
//! Invariants:
//! - An invalid file changes nothing: every problem is logged with the text
//!   `zot verify` prints (`<file>: <key path>: <message>`), and the
//!   running configuration stays, as does one whose security cannot be set
//!   up (an htpasswd file that cannot be read).
//! - Keys that need a restart ([`restart_only`]) keep their running values;
//!   they are named in one warning line per reload.
//! - Requests keep the snapshot they started with: security (users,
//!   access control, rate limits), the discover list and the metrics
//!   endpoint are swapped for requests that start afterwards
//!   (`zot_api::AppState`); no connection is closed, no request fails.
//! - Background work takes new settings at its next round: GC and scrub
//!   are rescheduled (`Lifecycle::reconfigure`), sync's upstreams replaced
//!   (`SyncSwitch::replace`: on-demand fetches and status at once, periodic
//!   runs restarted); a round or run in progress finishes with the settings
//!   it started with.
//! - Every attempt is counted (success or failure) and the hash of the
//!   configuration in use is logged and exposed in the metrics
//!   (`zot_config_reloads_total{result}`, `zot_config_info{hash}`).
//! - Reloads run one at a time, on one task.

pub mod restart_only;
pub mod watch;

use std::path::{Path, PathBuf};
#[cfg(feature = "events")]
use std::sync::Arc;

use sha2::Digest as _;
use zot_config::{Config, Problem};

use crate::lifecycle::{AVAILABLE, Lifecycle};
use crate::metrics_ext::MetricsSwitch;
use crate::sync_ext::SyncSwitch;

/// Changes the log filter to a `log.level`; `Err` when it cannot.
pub type LogLevelSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The file's content changed (and settled).
    File,
    /// `SIGHUP`: reload even when the file is unchanged (files it names,
    /// such as LDAP credentials, may have changed).
    Signal,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::File => "file changed",
            Trigger::Signal => "SIGHUP",
        }
    }
}

/// The SHA-256 of a configuration file's bytes, in hex.
pub fn hash(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Reads and validates the file at `path` as `zot verify` does; returns the
/// configuration and the hash of exactly the text validated.
pub fn load(path: &Path) -> Result<(Config, String), Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::new(
            path.display().to_string(),
            format!("cannot read: {e}"),
        )]
    })?;
    let config = Config::from_text_with(path, &text, AVAILABLE)?;
    Ok((config, hash(&text)))
}

/// The running configuration and everything a reload changes.
pub struct Reloader {
    pub path: PathBuf,
    pub running: Config,
    /// The hash of the running configuration's file.
    pub hash: String,
    pub state: zot_api::SharedState,
    /// `None` when `ZOT_LOG` sets the filter (then `log.level` is not used).
    pub log_level: Option<LogLevelSetter>,
    pub metrics: MetricsSwitch,
    pub lifecycle: Lifecycle,
    pub sync: SyncSwitch,
    /// The routing of repositories to stores (for sync).
    pub stores: zot_storage::Stores,
    /// The delivery of events, when on (its sinks reload live).
    #[cfg(feature = "events")]
    pub events: Option<Arc<zot_events::Delivery>>,
    /// The CVE database refresh, when scanning is on (its settings reload
    /// live; scanning on or off needs a restart).
    #[cfg(feature = "cve")]
    pub cve: Option<crate::cve_ext::CveSwitch>,
    pub succeeded: u64,
    pub failed: u64,
}

impl Reloader {
    /// Publishes the counts and the hash (metrics, when on).
    pub fn publish(&self) {
        self.metrics
            .set_config_state(self.succeeded, self.failed, &self.hash);
    }

    /// Runs reloads as `triggers` asks, one at a time, until it closes.
    pub async fn run(mut self, mut triggers: tokio::sync::mpsc::Receiver<Trigger>) {
        while let Some(trigger) = triggers.recv().await {
            self.reload(trigger).await;
        }
    }

    fn refuse(&mut self, trigger: Trigger, problems: usize) {
        self.failed += 1;
        self.publish();
        tracing::error!(
            trigger = trigger.as_str(),
            file = %self.path.display(),
            problems,
            hash = %self.hash,
            reloads_failed = self.failed,
            "configuration not reloaded: the running configuration stays"
        );
    }

    /// One reload: read, validate, apply what is live.
    pub async fn reload(&mut self, trigger: Trigger) {
        let (loaded, hash) = match load(&self.path) {
            Ok(loaded) => loaded,
            Err(problems) => {
                // Exactly the lines `zot verify` prints.
                for p in &problems {
                    tracing::error!(trigger = trigger.as_str(), "{}: {p}", self.path.display());
                }
                self.refuse(trigger, problems.len());
                return;
            }
        };
        if trigger == Trigger::File && hash == self.hash {
            return;
        }
        let (next, restart) = restart_only::split(&self.running, loaded);
        let previous = self.state.security();
        let security = match zot_auth::Security::reloaded(&next.http, &previous, &self.running.http)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    trigger = trigger.as_str(),
                    "{}: http: {e}",
                    self.path.display()
                );
                self.refuse(trigger, 1);
                return;
            }
        };
        // Sync's clients read files too (certDir, credentialsFile).
        let sync = if next.extension("sync") != self.running.extension("sync") {
            match crate::sync_ext::prepare(&next, &self.stores) {
                Ok(setup) => Some(setup),
                Err(e) => {
                    tracing::error!(trigger = trigger.as_str(), "{}: {e:#}", self.path.display());
                    self.refuse(trigger, 1);
                    return;
                }
            }
        } else {
            None
        };
        // The new sinks, checked before anything changes.
        #[cfg(feature = "events")]
        let events = match next.extension("events").and_then(|e| e.events()) {
            Some(events) if next.extension("events") != self.running.extension("events") => {
                if let Err(e) = zot_events::check_sinks(&events) {
                    tracing::error!(
                        trigger = trigger.as_str(),
                        "{}: extensions.events: {e}",
                        self.path.display()
                    );
                    self.refuse(trigger, 1);
                    return;
                }
                Some(events)
            }
            _ => None,
        };
        if !restart.is_empty() {
            tracing::warn!(
                keys = %restart.join(", "),
                "configuration reload: these keys need a restart, their new values are ignored until then: {}",
                restart.join(", ")
            );
        }
        let changed = changed_sections(&self.running, &next);
        self.state.set_security(security);
        #[cfg(feature = "search")]
        if next.http.auth != self.running.http.auth {
            self.state.set_mgmt(crate::search_ext::mgmt_body(&next));
        }
        if next.log.level != self.running.log.level {
            match &self.log_level {
                Some(set) => {
                    if let Err(e) = set(next.log.level.as_str()) {
                        tracing::warn!(error = %e, "log.level not changed");
                    }
                }
                None => tracing::warn!("log.level not changed: ZOT_LOG sets the log filter"),
            }
        }
        self.metrics.apply(&next, &self.state);
        if let Some(setup) = sync {
            self.sync.replace(setup);
        }
        #[cfg(feature = "cve")]
        if let Some(cve) = &mut self.cve {
            cve.replace(&next);
        }
        #[cfg(feature = "events")]
        if let (Some(events), Some(delivery)) = (events, &self.events)
            && let Err(e) = delivery.replace_sinks(&events).await
        {
            tracing::error!(error = %e, "events: the new sinks could not start");
        }
        if next.extension("lint") != self.running.extension("lint") {
            let annotations = crate::lifecycle::mandatory_annotations(&next);
            for registry in self.stores.distinct() {
                registry.set_mandatory_annotations(annotations.clone());
            }
        }
        self.state.set_extensions(crate::lifecycle::discover(&next));
        if next.storage != self.running.storage
            || next.extension("scrub") != self.running.extension("scrub")
        {
            self.lifecycle.reconfigure(&next);
        }
        self.running = next;
        self.hash = hash;
        self.succeeded += 1;
        self.publish();
        tracing::info!(
            trigger = trigger.as_str(),
            file = %self.path.display(),
            hash = %self.hash,
            changed = %changed.join(", "),
            restart_needed = %restart.join(", "),
            reloads = self.succeeded,
            "configuration reloaded"
        );
    }
}

/// The live sections that differ (for the log line).
fn changed_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("http.auth", old.http.auth != new.http.auth);
    check(
        "http.accessControl",
        old.http.access_control != new.http.access_control,
    );
    check("http.ratelimit", old.http.ratelimit != new.http.ratelimit);
    check(
        "http.realm",
        old.http.realm != new.http.realm || old.http.external_url != new.http.external_url,
    );
    check("log.level", old.log.level != new.log.level);
    check("storage", old.storage != new.storage);
    for name in ["scrub", "lint", "metrics", "sync", "events", "search"] {
        let label = match name {
            "scrub" => "extensions.scrub",
            "events" => "extensions.events",
            "lint" => "extensions.lint",
            "metrics" => "extensions.metrics",
            "sync" => "extensions.sync",
            _ => "extensions.search.cve",
        };
        check(label, old.extension(name) != new.extension(name));
    }
    out
}

/// The reloads asked for, between [`listen`] and [`start`].
pub struct Triggers {
    tx: tokio::sync::mpsc::Sender<Trigger>,
    rx: tokio::sync::mpsc::Receiver<Trigger>,
}

/// Listens for `SIGHUP` from now on (called before the registry says it
/// listens, so that a `SIGHUP` never takes its default action, ending the
/// process). Without a configuration file (`file` false) a `SIGHUP` is
/// logged and ignored, and there is nothing to start.
pub fn listen(file: bool) -> anyhow::Result<Option<Triggers>> {
    if !file {
        watch::on_sighup(None)?;
        return Ok(None);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    watch::on_sighup(Some(tx.clone()))?;
    Ok(Some(Triggers { tx, rx }))
}

/// Starts the file watcher and the reload task (`SIGHUP`s received since
/// [`listen`] are served first).
pub fn start(triggers: Triggers, reloader: Reloader) {
    reloader.publish();
    watch::watch_file(reloader.path.clone(), reloader.hash.clone(), triggers.tx);
    tokio::spawn(reloader.run(triggers.rx));
}
