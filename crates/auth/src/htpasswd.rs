//! The htpasswd file: `user:bcrypt-hash` lines. Only bcrypt (`$2a$`, `$2b$`,
//! `$2x$`, `$2y$`) is accepted; a file with any other kind of hash is refused
//! at start-up naming the line. The file is re-read when its size, mtime or
//! inode change (checked at most once a second, on use); a changed file that
//! no longer parses is refused with a warning and the previous users kept.
//!
//! Whitespace around a line, its user name and its hash is ignored (a line
//! saved with CRLF, or `alice : $2y$...`); a line with an empty user name
//! is refused, and a user listed twice is refused (which line wins would be
//! a guess). An unknown user is checked against a dummy hash of the file's
//! bcrypt cost, so a failed login takes as long whether or not the user
//! exists.

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
    users: Arc<Users>,
    fingerprint: Option<(u64, i64, i64, u64)>,
    checked: Instant,
}

fn fingerprint(path: &Path) -> Option<(u64, i64, i64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// The users of a file, and the hash an unknown user is checked against.
pub(crate) struct Users {
    hashes: HashMap<String, String>,
    dummy: String,
}

/// A well-formed bcrypt hash with the highest cost of `hashes` (10 if
/// none), that no password matches in practice.
fn dummy_hash(hashes: &HashMap<String, String>) -> String {
    let cost = hashes
        .values()
        .filter_map(|h| h.get(4..6)?.parse::<u32>().ok())
        .filter(|c| (4..=31).contains(c))
        .max()
        .unwrap_or(10);
    // Salt and hash of a published bcrypt test vector ("U*U" at cost 5),
    // well-formed in bcrypt's base64; at another cost nothing matches it.
    format!("$2b${cost:02}$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
}

/// Parses the file's text.
pub(crate) fn parse(text: &str) -> Result<Users, String> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {}: expected user:hash", i + 1));
        };
        let (user, hash) = (user.trim(), hash.trim());
        if user.is_empty() {
            return Err(format!("line {}: empty user name", i + 1));
        }
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
        if users.insert(user.to_owned(), hash.to_owned()).is_some() {
            return Err(format!("line {}: user {user:?} is listed twice", i + 1));
        }
    }
    let dummy = dummy_hash(&users);
    Ok(Users {
        hashes: users,
        dummy,
    })
}

fn load(path: &Path) -> Result<Users, String> {
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
                tracing::info!(file = %self.path.display(), users = users.hashes.len(), "htpasswd file reloaded");
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
        let (hash, known) = {
            let Ok(state) = self.state.lock() else {
                return false;
            };
            match state.users.hashes.get(user) {
                Some(hash) => (hash.clone(), true),
                None => (state.users.dummy.clone(), false),
            }
        };
        let password = password.to_owned();
        let matched =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        matched && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_empty_and_duplicate_users() {
        let users = parse("  alice : $2y$05$abc \r\n\tbob:$2b$10$x\t\n").expect("parses");
        assert_eq!(
            users.hashes.get("alice").map(String::as_str),
            Some("$2y$05$abc")
        );
        assert_eq!(
            users.hashes.get("bob").map(String::as_str),
            Some("$2b$10$x")
        );
        assert!(parse(":$2y$05$abc").is_err());
        assert!(parse("  :$2y$05$abc").is_err());
        let e = parse("a:$2y$05$abc\na:$2y$05$def")
            .err()
            .unwrap_or_default();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn unknown_users_cost_a_bcrypt_verification() {
        let hash = bcrypt::hash("right", 10).expect("hash");
        let users = parse(&format!("known:{hash}\n")).expect("parses");
        assert_eq!(bcrypt::verify("anything", &users.dummy).ok(), Some(false));
        assert!(users.dummy.starts_with("$2b$10$"), "{}", users.dummy);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, format!("known:{hash}\n")).expect("write");
        let htpasswd = Htpasswd::open(&path).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            assert!(htpasswd.verify("known", "right").await);
            assert!(!htpasswd.verify("known", "wrong").await);
            let start = Instant::now();
            assert!(!htpasswd.verify("unknown", "right").await);
            // bcrypt at cost 10 takes tens of milliseconds on any machine;
            // a plain table miss takes microseconds.
            assert!(
                start.elapsed() >= Duration::from_millis(10),
                "{:?}",
                start.elapsed()
            );
        });
    }

    #[test]
    fn only_bcrypt() {
        assert!(parse("a:$2y$05$abc\n# c\n\nb:$2b$10$x").is_ok());
        let e = parse("a:$apr1$xyz$abc").err().unwrap_or_default();
        assert!(e.contains("only bcrypt"), "{e}");
        assert!(parse("a:{SHA}abc").is_err());
        assert!(parse("nocolon").is_err());
    }
}
