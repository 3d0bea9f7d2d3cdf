//! The configuration the process runs on: reloads attempted since start-up
//! by result (`zot_config_reloads_total{result}`) and the loaded file's
//! hash (`zot_config_info{hash}`, always 1). Set by the binary's reloader
//! after every attempt; nothing here is on a request path.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::render::{escape, header, load};

/// Reload counts and the hash of the configuration in use.
#[derive(Debug, Default)]
pub struct ConfigState {
    succeeded: AtomicU64,
    failed: AtomicU64,
    /// Empty until the binary sets it (then rendered).
    hash: Mutex<String>,
}

impl ConfigState {
    /// Sets the totals (the reloader keeps them, so that metrics turned on
    /// after some reloads still count them) and the hash in use.
    pub fn set(&self, succeeded: u64, failed: u64, hash: &str) {
        self.succeeded.store(succeeded, Ordering::Relaxed);
        self.failed.store(failed, Ordering::Relaxed);
        let mut current = self.hash.lock().unwrap_or_else(|e| e.into_inner());
        if *current != hash {
            *current = hash.to_owned();
        }
    }

    pub(crate) fn render(&self, out: &mut String, om: bool) {
        let hash = self.hash.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if hash.is_empty() {
            return;
        }
        let name = "zot_config_reloads_total";
        header(
            out,
            om,
            name,
            "counter",
            "Reloads of the configuration file (on change or SIGHUP), by result",
        );
        let _ = writeln!(
            out,
            "{name}{{result=\"success\"}} {}",
            load(&self.succeeded)
        );
        let _ = writeln!(out, "{name}{{result=\"failure\"}} {}", load(&self.failed));
        let name = "zot_config_info";
        header(
            out,
            om,
            name,
            "gauge",
            "The configuration in use: hash is the SHA-256 of its file",
        );
        let _ = writeln!(out, "{name}{{hash=\"{}\"}} 1", escape(&hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nothing_until_set_then_counts_and_hash() {
        let state = ConfigState::default();
        let mut out = String::new();
        state.render(&mut out, false);
        assert!(out.is_empty(), "{out}");
        state.set(2, 1, "abc");
        state.render(&mut out, false);
        assert!(
            out.contains("zot_config_reloads_total{result=\"success\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("zot_config_reloads_total{result=\"failure\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("zot_config_info{hash=\"abc\"} 1\n"), "{out}");
        let mut om = String::new();
        state.render(&mut om, true);
        assert!(om.contains("# TYPE zot_config_reloads counter\n"), "{om}");
    }
}
