//! Upload sessions shared between instances (`storage.remoteCache` with
//! Redis): the same operations as the sessions in memory (`blobs.rs`,
//! `uploads.rs`), with the session's state in a Redis record
//! (`shared/sessions.rs`) and its data where the backend's
//! [`UploadState`] says, so that any instance can continue, query, finish
//! or cancel a session another one started.
//!
//! Invariants:
//! - Every request that changes a session (append, complete, cancel) holds
//!   the session's lease (`upload:<uuid>`, see `shared/lease.rs`) for its
//!   whole duration; a second request for the same session, on any
//!   instance, waits for it, then sees the new size (and, at the wrong
//!   offset, answers 416), as with the session's lock in memory.
//! - A write is acknowledged only by the compare-and-set of the record on
//!   the size it started from; a writer whose lease was lost (it stalled
//!   past the lease's time to live) cannot commit, and removes only its own
//!   objects.
//! - A session is closed in the record (by compare-and-set) before its data
//!   is verified and published or removed: a racing request finds it
//!   unknown and can never append to data being published.
//! - The running SHA-256 ([`HashState`]) in the record covers exactly the
//!   acknowledged bytes, so completion never reads the data back, except
//!   for a digest of another algorithm.

use crate::backend::{SharedSink, UploadState};
use crate::error::{Result, StorageError};
use crate::paths;
use crate::registry::Registry;
use crate::shared::SharedState;
use crate::shared::lease::{LeaseGuard, Leases};
use crate::shared::sessions::{Caps, Created, Session, SessionRecord, SessionRecords};
use crate::upload_writer::IoLock;
use bytes::Bytes;
use futures_util::Stream;
use zot_oci::{Algorithm, Digest, HashState, RepoName};

/// How long a session's lease outlives a crashed holder: a request that
/// continues the session on another instance waits at most this long.
const SESSION_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The shared session table, the leases that serialize each session, and
/// the leases of the store's background work.
pub(crate) struct SharedUploads {
    records: SessionRecords,
    session_leases: Leases,
    pub(crate) leases: Leases,
    /// Per-digest leases and placement marks (`digest_guard.rs`).
    pub(crate) digest_leases: Leases,
    pub(crate) shared: SharedState,
}

impl SharedUploads {
    pub(crate) fn new(shared: SharedState, ttl: std::time::Duration) -> SharedUploads {
        SharedUploads {
            records: SessionRecords::new(shared.clone(), ttl),
            session_leases: Leases::redis(shared.clone()).with_ttl(SESSION_LEASE_TTL),
            leases: Leases::redis(shared.clone()),
            digest_leases: Leases::redis(shared.clone())
                .with_ttl(crate::digest_guard::DIGEST_LEASE_TTL),
            shared,
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Registry {
    /// Keeps this registry's upload sessions in `shared` (Redis) from now
    /// on, so that every instance using it can continue them, and takes
    /// the leases of its background work there ([`Registry::leases`]).
    /// Called once, before requests are served; `false` if the state was
    /// shared already.
    pub fn share_state(&self, shared: SharedState) -> bool {
        self.shared_uploads
            .set(SharedUploads::new(shared, self.options.upload_ttl))
            .is_ok()
    }

    /// Where background work that must run once across instances takes
    /// its lease: Redis once [`Registry::share_state`] was called, else
    /// nowhere (granted at once).
    pub fn leases(&self) -> Leases {
        self.shared_uploads
            .get()
            .map_or_else(Leases::local, |s| s.leases.clone())
    }

    /// Whether upload sessions are shared between instances.
    pub fn uploads_shared(&self) -> bool {
        self.shared_uploads.get().is_some()
    }

    pub(crate) async fn shared_start(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
    ) -> Result<uuid::Uuid> {
        let id = uuid::Uuid::new_v4();
        let rec = SessionRecord {
            repo: repo.as_str().to_owned(),
            size: 0,
            hash: HashState::new(Algorithm::Sha256),
            data: UploadState::default(),
            created: now_secs(),
        };
        let caps = Caps {
            per_repo: self.options.max_uploads_per_repo,
            total: self.options.max_uploads,
        };
        match sh.records.create(&id, &rec, caps).await? {
            Created::Yes => {}
            Created::RepoFull => return Err(StorageError::TooManyUploads(caps.per_repo)),
            Created::AllFull => return Err(StorageError::TooManyOpenUploads(caps.total)),
            Created::Taken => {
                return Err(std::io::Error::other("upload session id already in use").into());
            }
        }
        // The local driver's file exists from the start (S3 writes nothing).
        let key = paths::upload(repo, &id);
        let unused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Err(e) = self.backend.shared_sink(&key, 0, &rec.data, unused).await {
            if sh.records.close(&id, &rec.repo, 0).await.is_ok() {
                let _ = sh.records.delete(&id).await;
            }
            return Err(e.into());
        }
        Ok(id)
    }

    /// The open session `id` of `repo`.
    async fn shared_record(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
        id: &uuid::Uuid,
    ) -> Result<SessionRecord> {
        match sh.records.get(id).await? {
            Some(Session::Open(r)) if r.repo == repo.as_str() => Ok(*r),
            _ => Err(StorageError::UploadUnknown),
        }
    }

    pub(crate) async fn shared_size(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
        id: &uuid::Uuid,
    ) -> Result<u64> {
        Ok(self.shared_record(sh, repo, id).await?.size)
    }

    /// Runs `f` holding the session's lease, then releases it.
    async fn with_session_lease<T, F, Fut>(
        &self,
        sh: &SharedUploads,
        id: &uuid::Uuid,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(LeaseGuard) -> Fut,
        Fut: Future<Output = (LeaseGuard, Result<T>)>,
    {
        let lease = sh.session_leases.acquire(&format!("upload:{id}")).await?;
        let (lease, result) = f(lease).await;
        if let Err(e) = lease.release().await {
            tracing::debug!(upload = %id, error = %e, "releasing an upload lease (it expires)");
        }
        result
    }

    pub(crate) async fn shared_append<S, E>(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
        id: &uuid::Uuid,
        start: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.with_session_lease(sh, id, |lease| async move {
            let result = async {
                let rec = self.shared_record(sh, repo, id).await?;
                if let Some(start) = start
                    && start != rec.size
                {
                    return Err(StorageError::RangeInvalid { size: rec.size });
                }
                Ok(self
                    .shared_stream(sh, repo, id, rec, &lease, body)
                    .await?
                    .size)
            }
            .await;
            (lease, result)
        })
        .await
    }

    /// Writes `body` after the acknowledged bytes of `rec` and commits the
    /// new record; returns it. The loser of a race (the record moved on)
    /// removes what it wrote and answers 416 with the current size.
    async fn shared_stream<S, E>(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
        id: &uuid::Uuid,
        rec: SessionRecord,
        lease: &LeaseGuard,
        body: S,
    ) -> Result<SessionRecord>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let key = paths::upload(repo, id);
        let SharedSink { sink, committed } = self
            .backend
            .shared_sink(&key, rec.size, &rec.data, lease.lost_flag())
            .await?;
        let mut hash = rec.hash.clone();
        let outcome =
            crate::upload_writer::write_stream(sink, IoLock::default(), body, |c| hash.update(c))
                .await;
        if let Some(e) = outcome.io_error {
            return Err(e.into());
        }
        let data = committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| std::io::Error::other("the upload's writer committed nothing"))?;
        let new = SessionRecord {
            size: rec.size + outcome.written,
            hash,
            data,
            ..rec.clone()
        };
        if !sh.records.commit(id, rec.size, &new).await? {
            if let Err(e) = self
                .backend
                .forget_shared(&key, &new.data, Some(&rec.data))
                .await
            {
                tracing::warn!(upload = %id, error = %e, "removing the data of a write that lost its race");
            }
            return match sh.records.get(id).await? {
                Some(Session::Open(now)) => Err(StorageError::RangeInvalid { size: now.size }),
                _ => Err(StorageError::UploadUnknown),
            };
        }
        if let Err(e) = self
            .backend
            .forget_shared(&key, &rec.data, Some(&new.data))
            .await
        {
            tracing::warn!(upload = %id, error = %e, "removing a replaced upload tail");
        }
        match outcome.body_error {
            Some(e) => Err(StorageError::Body(e)),
            None => Ok(new),
        }
    }

    pub(crate) async fn shared_complete<S, E>(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
        id: &uuid::Uuid,
        digest: &Digest,
        start: Option<u64>,
        body: Option<S>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.with_session_lease(sh, id, |lease| async move {
            let result = async {
                let mut rec = self.shared_record(sh, repo, id).await?;
                if let Some(body) = body {
                    if let Some(start) = start
                        && start != rec.size
                    {
                        return Err(StorageError::RangeInvalid { size: rec.size });
                    }
                    rec = self.shared_stream(sh, repo, id, rec, &lease, body).await?;
                }
                if !sh.records.close(id, &rec.repo, rec.size).await? {
                    return Err(StorageError::UploadUnknown);
                }
                let key = paths::upload(repo, id);
                let placed = self.shared_place(repo, digest, &key, &rec).await;
                // A placement that failed after parking the upload (a later
                // step's error) keeps it: the marker and the placeholder
                // name it, and the move will take it.
                // (A marker that cannot be read counts as naming it.)
                let parked = placed.is_err()
                    && match self.marker(repo, digest).await {
                        Ok(m) => m.is_some_and(|m| m.upload == key),
                        Err(_) => true,
                    };
                if placed.is_err()
                    && !parked
                    && let Err(e) = self.backend.forget_shared(&key, &rec.data, None).await
                {
                    tracing::warn!(upload = %id, error = %e, "removing a failed upload's data");
                }
                if let Err(e) = sh.records.delete(id).await {
                    tracing::warn!(upload = %id, error = %e, "forgetting a closed upload (it expires)");
                }
                placed.map(|()| rec.size)
            }
            .await;
            (lease, result)
        })
        .await
    }

    /// Verifies the closed session `rec`'s data against `digest` and stores it.
    async fn shared_place(
        &self,
        repo: &RepoName,
        digest: &Digest,
        key: &str,
        rec: &SessionRecord,
    ) -> Result<()> {
        let object = self.backend.finish_shared(key, &rec.data).await?;
        let actual = if digest.algorithm() == rec.hash.algorithm() {
            rec.hash.finish()
        } else {
            self.hash_object(&object, digest.algorithm(), rec.size)
                .await?
        };
        if actual != *digest {
            return Err(StorageError::DigestInvalid(format!(
                "content has digest {actual}"
            )));
        }
        self.place_blob(repo, digest, &object, rec.size).await
    }

    pub(crate) async fn shared_cancel(
        &self,
        sh: &SharedUploads,
        repo: &RepoName,
        id: &uuid::Uuid,
    ) -> Result<()> {
        self.with_session_lease(sh, id, |lease| async move {
            let result = async {
                let rec = self.shared_record(sh, repo, id).await?;
                if !sh.records.close(id, &rec.repo, rec.size).await? {
                    return Err(StorageError::UploadUnknown);
                }
                let removed = self
                    .backend
                    .forget_shared(&paths::upload(repo, id), &rec.data, None)
                    .await;
                sh.records.delete(id).await?;
                Ok(removed?)
            }
            .await;
            (lease, result)
        })
        .await
    }

    /// Whether the object `name` in `repo`'s upload folder belongs to a
    /// live shared session (its name starts with the session's id).
    pub(crate) async fn shared_upload_live(&self, sh: &SharedUploads, name: &str) -> Result<bool> {
        let id = name.split('.').next().unwrap_or(name);
        match id.parse::<uuid::Uuid>() {
            Ok(id) => Ok(sh.records.exists(&id).await?),
            Err(_) => Ok(false),
        }
    }
}
