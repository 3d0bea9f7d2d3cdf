//! Open upload sessions. A session's data lives in
//! `<repo>/.uploads/<uuid>`; its state (size, running SHA-256) lives in
//! memory. After a restart a session is adopted from its file, its hash
//! recomputed at completion. Requests on one session are serialized by the
//! session's own lock, so a second chunk sent concurrently sees the first's
//! size and is refused if it does not follow it.
//!
//! A session that completes, is cancelled or expires is marked `closed`
//! while its lock is held, and leaves the table only after its file is gone
//! (published or deleted): a request that finds it meanwhile waits for the
//! lock, sees `closed` and answers "unknown upload", and no request can
//! adopt the file as a new session. So nothing is ever appended to content
//! being verified or published.
//!
//! Open (not closed) sessions are counted per repository and in all, and
//! capped: a new session is checked against the caps and inserted in one
//! step under the table's lock, and closing uncounts it in the same step
//! that marks it closed. A closed session that is not locked was left by a
//! request dropped mid-way (a client that disconnected); the expiry sweep
//! removes it with its file.

use crate::error::{Result, StorageError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use zot_oci::{Algorithm, Hasher, RepoName};

#[derive(Debug)]
pub struct Session {
    /// Bytes acknowledged so far; the file may hold more, left by a request
    /// dropped mid-body, which the next write cuts off.
    pub size: u64,
    /// SHA-256 of exactly those bytes, or `None` when it must be recomputed
    /// from the file (after a restart, a failed write, or a request dropped
    /// mid-body).
    pub hasher: Option<Hasher>,
    pub touched: Instant,
    /// Completed, cancelled or expired: no request may use it any more.
    pub closed: bool,
    /// Held by every write to the session's file (see `upload_writer`).
    pub io: crate::upload_writer::IoLock,
}

pub type SessionRef = Arc<tokio::sync::Mutex<Session>>;

/// Bounds on open sessions.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_repo: usize,
    pub total: usize,
}

#[derive(Default)]
struct Table {
    sessions: HashMap<uuid::Uuid, (RepoName, SessionRef)>,
    /// Sessions not closed, per repository and in all.
    open: HashMap<RepoName, usize>,
    open_total: usize,
}

impl Table {
    fn count_open(&mut self, repo: &RepoName) {
        *self.open.entry(repo.clone()).or_default() += 1;
        self.open_total += 1;
    }

    fn uncount(&mut self, repo: &RepoName) {
        self.open_total = self.open_total.saturating_sub(1);
        if let Some(n) = self.open.get_mut(repo) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(repo);
            }
        }
    }
}

#[derive(Default)]
pub struct UploadSessions {
    table: Mutex<Table>,
}

fn new_session(size: u64) -> SessionRef {
    Arc::new(tokio::sync::Mutex::new(Session {
        size,
        // Data from before a restart must be hashed from the file.
        hasher: (size == 0).then(|| Algorithm::Sha256.hasher()),
        touched: Instant::now(),
        closed: false,
        io: Default::default(),
    }))
}

impl UploadSessions {
    /// Registers the new, empty session `id` of `repo`, unless that would
    /// pass a cap: the check and the insertion are one step, so concurrent
    /// requests cannot together pass a cap.
    pub fn open(&self, id: uuid::Uuid, repo: &RepoName, caps: Caps) -> Result<SessionRef> {
        let mut table = self.lock();
        if table.open.get(repo).copied().unwrap_or(0) >= caps.per_repo {
            return Err(StorageError::TooManyUploads(caps.per_repo));
        }
        if table.open_total >= caps.total {
            return Err(StorageError::TooManyOpenUploads(caps.total));
        }
        let session = new_session(0);
        table.sessions.insert(id, (repo.clone(), session.clone()));
        table.count_open(repo);
        Ok(session)
    }

    /// The session `id`, adopted from its file of `size` bytes if the table
    /// has none (after a restart). Two requests adopting the same session
    /// get the same one.
    pub fn get_or_insert(&self, id: uuid::Uuid, repo: &RepoName, size: u64) -> Option<SessionRef> {
        let mut table = self.lock();
        if let Some((owner, session)) = table.sessions.get(&id) {
            return (owner == repo).then(|| session.clone());
        }
        let session = new_session(size);
        table.sessions.insert(id, (repo.clone(), session.clone()));
        table.count_open(repo);
        Some(session)
    }

    pub fn get(&self, repo: &RepoName, id: &uuid::Uuid) -> Option<SessionRef> {
        self.lock()
            .sessions
            .get(id)
            .filter(|(r, _)| r == repo)
            .map(|(_, s)| s.clone())
    }

    /// Marks `session` (locked by the caller) closed and stops counting it
    /// against the caps, in one step: a request dropped at any point after
    /// this leaves no open session counted.
    pub fn close(&self, repo: &RepoName, session: &mut Session) {
        if !session.closed {
            session.closed = true;
            self.lock().uncount(repo);
        }
    }

    /// Sessions open (not closed) now, in all repositories.
    pub fn open_total(&self) -> usize {
        self.lock().open_total
    }

    /// Forgets a closed session (its file is gone).
    pub fn remove(&self, id: &uuid::Uuid) {
        self.lock().sessions.remove(id);
    }

    /// Closes the sessions idle for longer than `ttl`, and returns them with
    /// the closed sessions whose request was dropped before it removed them
    /// (closed and not locked: the request that closed it is gone). The
    /// caller removes their files, then [`UploadSessions::remove`]s them.
    pub fn sweep(&self, ttl: std::time::Duration) -> Vec<(uuid::Uuid, RepoName)> {
        let mut table = self.lock();
        let mut swept = Vec::new();
        let mut expired = Vec::new();
        for (id, (repo, s)) in &table.sessions {
            // A session busy with a request is not idle.
            let Ok(mut s) = s.try_lock() else { continue };
            if s.closed {
                swept.push((*id, repo.clone()));
            } else if s.touched.elapsed() > ttl {
                s.closed = true;
                expired.push((*id, repo.clone()));
            }
        }
        for (_, repo) in &expired {
            table.uncount(repo);
        }
        swept.extend(expired);
        swept
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_total_counts_sessions_until_closed() {
        let table = UploadSessions::default();
        let caps = Caps {
            per_repo: 10,
            total: 10,
        };
        let repo: RepoName = "a/b".parse().unwrap();
        let one = table.open(uuid::Uuid::new_v4(), &repo, caps).unwrap();
        table.open(uuid::Uuid::new_v4(), &repo, caps).unwrap();
        assert_eq!(table.open_total(), 2);
        let mut s = one.try_lock().unwrap();
        table.close(&repo, &mut s);
        table.close(&repo, &mut s);
        assert_eq!(table.open_total(), 1);
    }
}
