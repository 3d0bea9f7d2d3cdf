//! Open upload sessions. A session's data lives in
//! `<repo>/.uploads/<uuid>`; its state (size, running SHA-256) lives in
//! memory. After a restart a session is adopted from its file, its hash
//! recomputed at completion. Requests on one session are serialized by the
//! session's own lock, so a second chunk sent concurrently sees the first's
//! size and is refused if it does not follow it.

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
}

pub type SessionRef = Arc<tokio::sync::Mutex<Session>>;

#[derive(Default)]
pub struct UploadSessions {
    sessions: Mutex<HashMap<uuid::Uuid, (RepoName, SessionRef)>>,
}

impl UploadSessions {
    pub fn insert(&self, id: uuid::Uuid, repo: RepoName, size: u64, hashed: bool) -> SessionRef {
        let session = Arc::new(tokio::sync::Mutex::new(Session {
            size,
            hasher: hashed.then(|| Algorithm::Sha256.hasher()),
            touched: Instant::now(),
        }));
        self.lock().insert(id, (repo, session.clone()));
        session
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

    /// Sessions idle for longer than `ttl`, removed from the table.
    pub fn take_expired(&self, ttl: std::time::Duration) -> Vec<(uuid::Uuid, RepoName)> {
        let mut expired = Vec::new();
        self.lock().retain(|id, (repo, s)| {
            // A session busy with a request is not idle.
            let idle = s
                .try_lock()
                .map(|s| s.touched.elapsed() > ttl)
                .unwrap_or(false);
            if idle {
                expired.push((*id, repo.clone()));
            }
            !idle
        });
        expired
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, (RepoName, SessionRef)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}
