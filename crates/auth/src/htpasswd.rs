//! The htpasswd file: `user:bcrypt-hash` lines. Only bcrypt (`$2a$`, `$2b$`,
//! `$2x$`, `$2y$`) is accepted; a file with any other kind of hash is refused
//! at start-up naming the line. Whitespace around a line, its user name and
//! its hash is ignored (a line saved with CRLF, or `alice : $2y$...`); a line
//! with an empty user name is refused, and a user listed twice is refused
//! (which line wins would be a guess).
//!
//! Invariants:
//! - **Reloads fail closed.** The file is re-read when its size, mtime or
//!   inode change (checked at most once a second, on use). The users are
//!   then exactly the valid lines of the new file: a user the file no longer
//!   lists, or lists on an invalid line (not bcrypt, listed twice), can no
//!   longer log in, and the problem is logged as an error. An unreadable
//!   file leaves no users at all. Nothing of the previous file survives a
//!   change (an old password of a user whose line changed stops working).
//! - **An unknown user costs what a known one costs.** An unknown name is
//!   checked against a dummy hash whose bcrypt cost is that of one of the
//!   file's users, picked by a keyed hash of the name (the key derives from
//!   the file's content, which clients never see). So the time a failed
//!   login takes follows the file's own mix of costs whether or not the
//!   name exists, and is the same on every try for the same name: with
//!   mixed costs, timing does not tell which users exist. (Checking unknown
//!   names at the highest cost, as before, made every user of a lower cost
//!   stand out.)
//! - **Bounded hashing.** At most [`hashing_slots`] bcrypt verifications run
//!   at once (half the CPUs, at least one); a login waits at most
//!   [`HASH_WAIT`] for a slot and is otherwise refused as [`Busy`] (the API
//!   answers 429), so failed logins cannot pin every CPU. A slot is held
//!   until its verification ends, even when the client has gone.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::{digest, hmac};
use tokio::sync::Semaphore;

use crate::SetupError;

const RECHECK: Duration = Duration::from_secs(1);

/// How long a login waits for a free hashing slot before it is refused.
pub(crate) const HASH_WAIT: Duration = Duration::from_secs(5);

/// Concurrent bcrypt verifications allowed: half the CPUs, at least one.
pub(crate) fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Every hashing slot was taken for [`HASH_WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

pub(crate) struct Htpasswd {
    path: PathBuf,
    state: Mutex<State>,
    slots: Arc<Semaphore>,
    wait: Duration,
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

/// The users of a file, and what an unknown user is checked against.
pub(crate) struct Users {
    hashes: BTreeMap<String, String>,
    /// One dummy hash per user, in user-name order, each at that user's cost.
    dummies: Vec<String>,
    /// Picks an unknown name's dummy.
    key: hmac::Key,
}

/// The lines of a file that could not be used, with what was wrong.
struct Refused(Vec<String>);

/// A well-formed bcrypt hash at `cost` that no password matches in practice.
fn dummy_hash(cost: u32) -> String {
    // Salt and hash of a published bcrypt test vector ("U*U" at cost 5),
    // well-formed in bcrypt's base64; at another cost nothing matches it.
    format!("$2b${cost:02}$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
}

fn cost_of(hash: &str) -> Option<u32> {
    hash.get(4..6)?
        .parse::<u32>()
        .ok()
        .filter(|c| (4..=31).contains(c))
}

impl Users {
    fn new(hashes: BTreeMap<String, String>, text: &str) -> Users {
        let mut dummies: Vec<String> = hashes
            .values()
            .filter_map(|h| cost_of(h))
            .map(dummy_hash)
            .collect();
        if dummies.is_empty() {
            dummies.push(dummy_hash(10));
        }
        let key = hmac::Key::new(
            hmac::HMAC_SHA256,
            digest::digest(&digest::SHA256, text.as_bytes()).as_ref(),
        );
        Users {
            hashes,
            dummies,
            key,
        }
    }

    /// The hash `user` is checked against, and whether the user exists.
    fn hash_for(&self, user: &str) -> (&str, bool) {
        if let Some(hash) = self.hashes.get(user) {
            return (hash, true);
        }
        let tag = hmac::sign(&self.key, user.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        let n = self.dummies.len() as u64;
        let i = usize::try_from(u64::from_le_bytes(first) % n).unwrap_or(0);
        (self.dummies.get(i).map_or("", String::as_str), false)
    }
}

/// Reads every line; the valid ones make the users, a user on any invalid
/// line (or listed twice) is left out, and each problem is reported.
fn parse_lines(text: &str) -> (Users, Refused) {
    let mut users = BTreeMap::new();
    let mut refused_users = HashSet::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            problems.push(format!("line {}: expected user:hash", i + 1));
            continue;
        };
        let (user, hash) = (user.trim(), hash.trim());
        if user.is_empty() {
            problems.push(format!("line {}: empty user name", i + 1));
            continue;
        }
        let bcrypt = ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| hash.starts_with(p));
        if !bcrypt {
            problems.push(format!(
                "line {} (user {user:?}): only bcrypt hashes are supported \
                 (create them with `htpasswd -B`)",
                i + 1
            ));
            refused_users.insert(user.to_owned());
            continue;
        }
        if users.insert(user.to_owned(), hash.to_owned()).is_some() {
            problems.push(format!("line {}: user {user:?} is listed twice", i + 1));
            refused_users.insert(user.to_owned());
        }
    }
    users.retain(|user, _| !refused_users.contains(user));
    (Users::new(users, text), Refused(problems))
}

/// Parses a file's text strictly: any problem refuses the whole file.
pub(crate) fn parse(text: &str) -> Result<Users, String> {
    match parse_lines(text) {
        (users, Refused(problems)) if problems.is_empty() => Ok(users),
        (_, Refused(problems)) => Err(problems.join("; ")),
    }
}

impl Htpasswd {
    pub(crate) fn open(path: &Path) -> Result<Htpasswd, SetupError> {
        Self::with_slots(path, hashing_slots(), HASH_WAIT)
    }

    /// [`Htpasswd::open`] with an explicit number of hashing slots and wait.
    pub(crate) fn with_slots(
        path: &Path,
        slots: usize,
        wait: Duration,
    ) -> Result<Htpasswd, SetupError> {
        let fail = |e: String| SetupError(format!("htpasswd file {}: {e}", path.display()));
        let fp = fingerprint(path);
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let users = parse(&text).map_err(fail)?;
        crate::warn_if_shared(path, "the htpasswd file");
        Ok(Htpasswd {
            path: path.to_owned(),
            state: Mutex::new(State {
                users: Arc::new(users),
                fingerprint: fp,
                checked: Instant::now(),
            }),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
        })
    }

    /// Whether `user` is on a valid line of the file as last read.
    pub(crate) fn has_user(&self, user: &str) -> bool {
        self.state
            .lock()
            .is_ok_and(|state| state.users.hashes.contains_key(user))
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
        let file = self.path.display();
        let users = match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let (users, Refused(problems)) = parse_lines(&text);
                if problems.is_empty() {
                    tracing::info!(file = %file, users = users.hashes.len(), "htpasswd file reloaded");
                } else {
                    tracing::error!(
                        file = %file,
                        users = users.hashes.len(),
                        problems = %problems.join("; "),
                        "htpasswd file changed and has invalid lines: only the users on its \
                         valid lines can log in (users on invalid lines and users no longer \
                         in the file are refused); fix the file"
                    );
                }
                users
            }
            Err(e) => {
                tracing::error!(
                    file = %file,
                    error = %e,
                    "htpasswd file cannot be read: no htpasswd user can log in until it can"
                );
                Users::new(BTreeMap::new(), "")
            }
        };
        state.users = Arc::new(users);
        true
    }

    /// Whether `password` is `user`'s; [`Busy`] when no hashing slot freed
    /// up in time.
    pub(crate) async fn verify(&self, user: &str, password: &str) -> Result<bool, Busy> {
        let (hash, known) = {
            let Ok(state) = self.state.lock() else {
                return Ok(false);
            };
            let (hash, known) = state.users.hash_for(user);
            (hash.to_owned(), known)
        };
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Ok(false),
            Err(_elapsed) => return Err(Busy),
        };
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            // The slot is released when the hashing ends, not when the
            // request does.
            let _permit = permit;
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        Ok(matched && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

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
        let (dummy, known) = users.hash_for("unknown");
        assert!(!known);
        assert_eq!(bcrypt::verify("anything", dummy).ok(), Some(false));
        assert!(dummy.starts_with("$2b$10$"), "{dummy}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, format!("known:{hash}\n")).expect("write");
        let htpasswd = Htpasswd::open(&path).expect("open");
        runtime().block_on(async {
            assert_eq!(htpasswd.verify("known", "right").await, Ok(true));
            assert_eq!(htpasswd.verify("known", "wrong").await, Ok(false));
            let start = Instant::now();
            assert_eq!(htpasswd.verify("unknown", "right").await, Ok(false));
            // bcrypt at cost 10 takes tens of milliseconds on any machine;
            // a plain table miss takes microseconds.
            assert!(
                start.elapsed() >= Duration::from_millis(10),
                "{:?}",
                start.elapsed()
            );
        });
    }

    /// With users at costs 4 and 12, checking unknown names at the highest
    /// cost told the cost-4 users apart. Now an unknown name's cost is drawn
    /// from the file's own costs: some unknown names cost 4, some 12, and
    /// each name always the same.
    #[test]
    fn unknown_users_follow_the_files_mix_of_costs() {
        let text = "cheap:$2y$04$abcdefghijklmnopqrstuu5Ue3m1GmSRb0Gmiip1dbAfLfxWe4Rlq\n\
                    dear:$2y$12$abcdefghijklmnopqrstuu5Ue3m1GmSRb0Gmiip1dbAfLfxWe4Rlq\n";
        let users = parse(text).expect("parses");
        let cost = |name: &str| {
            let (hash, known) = users.hash_for(name);
            assert!(!known);
            cost_of(hash).expect("a cost")
        };
        let costs: Vec<u32> = (0..64).map(|i| cost(&format!("nobody{i}"))).collect();
        assert!(costs.iter().all(|c| *c == 4 || *c == 12), "{costs:?}");
        assert!(costs.contains(&4), "{costs:?}");
        assert!(costs.contains(&12), "{costs:?}");
        assert_eq!(cost("nobody7"), cost("nobody7"));
        assert_eq!(
            parse(text).expect("parses").hash_for("nobody7").0,
            users.hash_for("nobody7").0,
            "stable for the same file"
        );
    }

    /// An edit that removes a user and adds a line that is not bcrypt used to
    /// be refused as a whole, keeping the removed user able to log in.
    #[test]
    fn a_bad_edit_fails_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("htpasswd");
        let alice = bcrypt::hash("alice-pw", 4).expect("hash");
        let bob = bcrypt::hash("bob-pw", 4).expect("hash");
        let bob2 = bcrypt::hash("bob-new-pw", 4).expect("hash");
        std::fs::write(&path, format!("alice:{alice}\nbob:{bob}\n")).expect("write");
        let htpasswd = Htpasswd::open(&path).expect("open");
        let rt = runtime();
        assert_eq!(rt.block_on(htpasswd.verify("alice", "alice-pw")), Ok(true));
        // alice removed, bob's password changed, carol added with MD5
        std::fs::write(
            &path,
            format!("bob:{bob2}\ncarol:$apr1$xyz$0123456789abcdefghijkl\n"),
        )
        .expect("write");
        htpasswd.state.lock().expect("lock").checked = Instant::now() - RECHECK;
        assert!(htpasswd.reload_if_changed(), "users replaced");
        assert_eq!(rt.block_on(htpasswd.verify("alice", "alice-pw")), Ok(false));
        assert_eq!(rt.block_on(htpasswd.verify("bob", "bob-pw")), Ok(false));
        assert_eq!(rt.block_on(htpasswd.verify("bob", "bob-new-pw")), Ok(true));
        assert_eq!(rt.block_on(htpasswd.verify("carol", "x")), Ok(false));
        // a file that cannot be read leaves no user at all
        std::fs::remove_file(&path).expect("remove");
        htpasswd.state.lock().expect("lock").checked = Instant::now() - RECHECK;
        assert!(htpasswd.reload_if_changed());
        assert_eq!(rt.block_on(htpasswd.verify("bob", "bob-new-pw")), Ok(false));
    }

    #[test]
    fn hashing_is_bounded_and_slots_outlive_cancelled_logins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("pw", 12).expect("hash");
        std::fs::write(&path, format!("u:{hash}\n")).expect("write");
        let htpasswd =
            Arc::new(Htpasswd::with_slots(&path, 1, Duration::from_millis(20)).expect("open"));
        let rt = runtime();
        rt.block_on(async {
            // One slot taken: the next login waits 20 ms, then is refused.
            let held = htpasswd
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("permit");
            assert_eq!(htpasswd.verify("u", "pw").await, Err(Busy));
            assert_eq!(htpasswd.verify("nobody", "pw").await, Err(Busy));
            drop(held);
            // A login whose request is dropped mid-hash keeps its slot
            // until the hash is done (cost 12: far longer than 50 ms).
            let h = htpasswd.clone();
            let task = tokio::spawn(async move { h.verify("u", "wrong").await });
            tokio::time::sleep(Duration::from_millis(50)).await;
            task.abort();
            assert_eq!(htpasswd.slots.available_permits(), 0, "slot still in use");
            assert_eq!(htpasswd.verify("u", "pw").await, Err(Busy));
            let deadline = Instant::now() + Duration::from_secs(60);
            while htpasswd.slots.available_permits() == 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(htpasswd.slots.available_permits(), 1);
        });
        assert!(hashing_slots() >= 1);
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
