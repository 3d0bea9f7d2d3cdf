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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use zot_oci::{Algorithm, Hasher, RepoName};

#[derive(Debug)]
pub struct Session {
    /// Bytes stored so far.
    pub size: u64,
    /// SHA-256 of those bytes, or `None` when it must be recomputed from the
    /// file (after a restart or a failed write).
    pub hasher: Option<Hasher>,
    pub touched: Instant,
    /// Completed, cancelled or expired: no request may use it any more.
    pub closed: bool,
    /// Held by every write to the session's file (see `upload_writer`).
    pub io: crate::upload_writer::IoLock,
}

pub type SessionRef = Arc<tokio::sync::Mutex<Session>>;

#[derive(Default)]
pub struct UploadSessions {
    sessions: Mutex<HashMap<uuid::Uuid, (RepoName, SessionRef)>>,
}

impl UploadSessions {
    /// The session `id`, created with `size` bytes if the table has none
    /// (a new session, or one adopted from its file after a restart). Two
    /// requests adopting the same session get the same one.
    pub fn get_or_insert(&self, id: uuid::Uuid, repo: &RepoName, size: u64) -> Option<SessionRef> {
        let mut table = self.lock();
        let (owner, session) = table.entry(id).or_insert_with(|| {
            let session = Arc::new(tokio::sync::Mutex::new(Session {
                size,
                // Data from before a restart must be hashed from the file.
                hasher: (size == 0).then(|| Algorithm::Sha256.hasher()),
                touched: Instant::now(),
                closed: false,
                io: Default::default(),
            }));
            (repo.clone(), session)
        });
        (owner == repo).then(|| session.clone())
    }

    /// Sessions of `repo` currently in the table.
    pub fn count(&self, repo: &RepoName) -> usize {
        self.lock().values().filter(|(r, _)| r == repo).count()
    }

    pub fn get(&self, repo: &RepoName, id: &uuid::Uuid) -> Option<SessionRef> {
        self.lock()
            .get(id)
            .filter(|(r, _)| r == repo)
            .map(|(_, s)| s.clone())
    }

    pub fn remove(&self, id: &uuid::Uuid) {
        self.lock().remove(id);
    }

    /// Closes the sessions idle for longer than `ttl` and returns them; the
    /// caller removes their files, then [`UploadSessions::remove`]s them.
    pub fn close_expired(&self, ttl: std::time::Duration) -> Vec<(uuid::Uuid, RepoName)> {
        let mut expired = Vec::new();
        for (id, (repo, s)) in self.lock().iter() {
            // A session busy with a request is not idle.
            if let Ok(mut s) = s.try_lock()
                && !s.closed
                && s.touched.elapsed() > ttl
            {
                s.closed = true;
                expired.push((*id, repo.clone()));
            }
        }
        expired
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, (RepoName, SessionRef)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}
