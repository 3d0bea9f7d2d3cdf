//! The htpasswd file: `user:bcrypt-hash` lines. Only bcrypt (`$2a$`, `$2b$`,
//! `$2x$`, `$2y$`) is accepted; a file with any other kind of hash is refused
//! at start-up naming the line. The file is re-read when its size, mtime or
//! inode change (checked at most once a second, on use); a changed file that
//! no longer parses is refused with a warning and the previous users kept.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::SetupError;

const RECHECK: Duration = Duration::from_secs(1);

pub(crate) struct Htpasswd {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    users: Arc<HashMap<String, String>>,
    fingerprint: Option<(u64, i64, i64, u64)>,
    checked: Instant,
}

fn fingerprint(path: &Path) -> Option<(u64, i64, i64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// Parses the file's text.
pub(crate) fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {}: expected user:hash", i + 1));
        };
        let bcrypt = ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| hash.starts_with(p));
        if !bcrypt {
            return Err(format!(
                "line {} (user {user:?}): only bcrypt hashes are supported \
                 (create them with `htpasswd -B`)",
                i + 1
            ));
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

fn load(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    parse(&text)
}

impl Htpasswd {
    pub(crate) fn open(path: &Path) -> Result<Htpasswd, SetupError> {
        let fp = fingerprint(path);
        let users =
            load(path).map_err(|e| SetupError(format!("htpasswd file {}: {e}", path.display())))?;
        crate::warn_if_shared(path, "the htpasswd file");
        Ok(Htpasswd {
            path: path.to_owned(),
            state: Mutex::new(State {
                users: Arc::new(users),
                fingerprint: fp,
                checked: Instant::now(),
            }),
        })
    }

    /// Re-reads the file if it changed; true when the users were replaced.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.checked.elapsed() < RECHECK {
            return false;
        }
        state.checked = Instant::now();
        let fp = fingerprint(&self.path);
        if fp == state.fingerprint {
            return false;
        }
        state.fingerprint = fp;
        match load(&self.path) {
            Ok(users) => {
                tracing::info!(file = %self.path.display(), users = users.len(), "htpasswd file reloaded");
                state.users = Arc::new(users);
                true
            }
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "htpasswd file changed but cannot be used; keeping the previous users");
                false
            }
        }
    }

    pub(crate) async fn verify(&self, user: &str, password: &str) -> bool {
        let hash = {
            let Ok(state) = self.state.lock() else {
                return false;
            };
            state.users.get(user).cloned()
        };
        let Some(hash) = hash else {
            return false;
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bcrypt() {
        assert!(parse("a:$2y$05$abc\n# c\n\nb:$2b$10$x").is_ok());
        let e = parse("a:$apr1$xyz$abc").expect_err("not bcrypt");
        assert!(e.contains("only bcrypt"), "{e}");
        assert!(parse("a:{SHA}abc").is_err());
        assert!(parse("nocolon").is_err());
    }
}
