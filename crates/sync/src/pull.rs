//! Streaming pull-through: one upstream transfer of a blob, stored and
//! served to any number of clients while it arrives.
//!
//! A [`Pull`] is one blob (per local repository and digest) coming from
//! upstream. Its task streams the bytes into an upload session of the
//! store, which hashes them as it writes. Readers ([`Pull::reader`],
//! `reader.rs`) take the newest bytes from the pull's tail (at most
//! about 1 MiB in memory, the upstream's own buffers) while they keep
//! pace, and otherwise read a file, never a whole blob in memory: on the
//! local driver, the upload's own file as far as the session reports it
//! written (the bytes are written once); where that file cannot be read
//! (S3's multipart upload, sessions shared through Redis), a spool file
//! (an anonymous file under the root's `_zot/tmp`: nothing is left by a
//! crash) that each batch is written to before the upload takes it.
//!
//! Invariants:
//! - At most one transfer per (repository, digest) is in flight: a caller
//!   finding one joins it ([`Pulls::pull`]); the table forgets a pull when
//!   its transfer has ended (stored or not; one that ended is never
//!   joined, even before it left), and holds at most [`MAX_PULLS`].
//! - A reader never completes a body that was not verified: until the
//!   blob is stored (storage's `complete_upload` checked its digest; the
//!   size was checked as it arrived), the last byte a reader asked for is
//!   held back, so a mismatch or a dropped upstream ends every reader with
//!   an error (a truncated response), never a complete-looking wrong body.
//!   The bytes are hashed once, by the upload session as it writes them.
//! - A failed transfer cancels the upload session, so nothing is stored.
//! - The transfer is a task of its own: clients leaving do not stop it.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use zot_client::BlobStream;
use zot_oci::{Digest, RepoName};
use zot_storage::Registry;

use crate::SyncError;

mod pace;
mod reader;
use pace::Pace;
use reader::Tail;

/// Pulls in flight at most; beyond, a blob request is not pulled through
/// (it is answered from local content, so 404).
pub const MAX_PULLS: usize = 1024;
/// Batches (of up to this many upstream chunks) queued for the upload.
const BATCH_CHUNKS: usize = 16;
const QUEUED_BATCHES: usize = 4;

/// Where a pull is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asking upstream.
    Connecting,
    /// No upstream has the blob (or none could be asked).
    Absent,
    /// Already stored in the repository when the pull began (by a
    /// transfer that just ended): read it there.
    Present,
    /// Bytes arriving.
    Streaming,
    /// Transfer failed (transport, digest or size mismatch, spool or
    /// storage I/O); nothing stored.
    Failed,
    /// Every byte arrived, matched the digest and is stored.
    Stored,
}

impl Phase {
    fn ended(self) -> bool {
        !matches!(self, Phase::Connecting | Phase::Streaming)
    }
}

/// The state readers watch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub phase: Phase,
    /// Bytes in the file readers follow.
    pub received: u64,
    /// Bytes arrived from upstream (in the file, or in the pull's tail on
    /// their way there).
    pub arrived: u64,
    /// The blob's size, when upstream (or the descriptor) said.
    pub size: Option<u64>,
}

/// The upstream side of a pull: resolves to the blob's stream, or `None`
/// when no upstream has it.
pub type Source = Pin<Box<dyn Future<Output = Result<Option<BlobStream>, SyncError>> + Send>>;

/// One blob arriving from upstream.
pub struct Pull {
    progress: watch::Receiver<Progress>,
    spool: OnceLock<Arc<File>>,
    /// The newest bytes, for readers keeping pace.
    tail: Mutex<Tail>,
    /// The readers keeping pace, which the transfer waits for.
    pace: Pace,
}

/// The pulls in flight.
pub struct Pulls {
    spool_dir: PathBuf,
    map: Mutex<HashMap<(RepoName, Digest), Arc<Pull>>>,
}

impl Pulls {
    /// Pulls spooling into `spool_dir` (created when missing).
    pub fn new(spool_dir: PathBuf) -> Pulls {
        Pulls {
            spool_dir,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Pulls in flight now.
    pub fn in_flight(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    /// The pull of `digest` into `repo` in flight, if any.
    pub fn find(&self, repo: &RepoName, digest: &Digest) -> Option<Arc<Pull>> {
        let key = (repo.clone(), digest.clone());
        self.map.lock().ok()?.get(&key).cloned()
    }

    /// The pull of `digest` into `repo`: the one in flight, or a new one
    /// whose task gets the stream from `source` (called only then). `None`
    /// when [`MAX_PULLS`] are in flight.
    pub fn pull(
        self: &Arc<Self>,
        registry: &Arc<Registry>,
        repo: &RepoName,
        digest: &Digest,
        source: impl FnOnce() -> Source,
    ) -> Option<Arc<Pull>> {
        let key = (repo.clone(), digest.clone());
        let mut map = self.map.lock().ok()?;
        // A pull whose transfer ended (about to leave the table) is not
        // joined: a new one starts (its bytes are stored by now, or it
        // failed).
        if let Some(p) = map.get(&key)
            && !p.progress().phase.ended()
        {
            return Some(p.clone());
        }
        if map.len() >= MAX_PULLS {
            tracing::warn!(%repo, %digest, "sync: too many blobs pulled through at once; not pulling this one");
            return None;
        }
        let (tx, rx) = watch::channel(Progress {
            phase: Phase::Connecting,
            received: 0,
            arrived: 0,
            size: None,
        });
        let pull = Arc::new(Pull {
            progress: rx,
            spool: OnceLock::new(),
            tail: Mutex::new(Tail::default()),
            pace: Pace::default(),
        });
        map.insert(key.clone(), pull.clone());
        drop(map);
        let transfer = Transfer {
            pull: pull.clone(),
            progress: Arc::new(tx),
            registry: registry.clone(),
            repo: repo.clone(),
            digest: digest.clone(),
        };
        let (this, source) = (self.clone(), source());
        tokio::spawn(async move {
            let phase = transfer.run(&this.spool_dir, source).await;
            tracing::debug!(repo = %key.0, digest = %key.1, ?phase, "sync: pull-through ended");
            if let Ok(mut map) = this.map.lock()
                && map
                    .get(&key)
                    .is_some_and(|p| Arc::ptr_eq(p, &transfer.pull))
            {
                map.remove(&key);
            }
        });
        Some(pull)
    }
}

/// The task side of a pull.
struct Transfer {
    pull: Arc<Pull>,
    progress: Arc<watch::Sender<Progress>>,
    registry: Arc<Registry>,
    repo: RepoName,
    digest: Digest,
}

impl Transfer {
    fn set(&self, f: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(f);
    }

    async fn run(&self, spool_dir: &std::path::Path, source: Source) -> Phase {
        let result = self.transfer(spool_dir, source).await;
        let phase = *result.as_ref().unwrap_or(&Phase::Failed);
        // Set before the failure is logged: from then on a request for
        // the blob starts a new pull rather than join this one.
        self.set(|p| p.phase = phase);
        if let Err(e) = result {
            tracing::warn!(repo = %self.repo, digest = %self.digest, error = %e, "sync: pull-through failed; nothing stored");
        }
        phase
    }

    async fn transfer(
        &self,
        spool_dir: &std::path::Path,
        source: Source,
    ) -> Result<Phase, SyncError> {
        if self
            .registry
            .blob_size(&self.repo, &self.digest)
            .await?
            .is_some()
        {
            return Ok(Phase::Present);
        }
        let Some(stream) = source.await? else {
            return Ok(Phase::Absent);
        };
        let stream = stream.unhashed();
        let size = stream.size();
        let id = self.registry.start_upload(&self.repo).await?;
        let stored = match self.registry.upload_file(&self.repo, &id).await {
            Ok(Some(file)) => self.store_once(file, stream, size, &id).await,
            Ok(None) => self.spool_and_store(spool_dir, stream, size, &id).await,
            Err(e) => Err(e.into()),
        };
        match stored {
            Ok(()) => Ok(Phase::Stored),
            Err(e) => {
                if let Err(c) = self.registry.cancel_upload(&self.repo, &id).await {
                    tracing::debug!(error = %c, "cancelling a failed pull-through upload");
                }
                Err(e)
            }
        }
    }

    /// The bytes go once, straight into the upload session (which hashes
    /// them); readers follow the upload's own file as far as the session
    /// says it is written.
    async fn store_once(
        &self,
        file: File,
        stream: BlobStream,
        size: Option<u64>,
        id: &uuid::Uuid,
    ) -> Result<(), SyncError> {
        let _ = self.pull.spool.set(Arc::new(file));
        self.set(|p| {
            p.size = size;
            p.phase = Phase::Streaming;
        });
        let progress = self.progress.clone();
        let hook: zot_storage::WrittenHook =
            Arc::new(move |n| progress.send_modify(|p| p.received = n));
        // Before each chunk, the transfer waits for the readers keeping
        // pace (bounded, see `pace.rs`); each chunk goes to the tail.
        let state = (stream, 0u64, self.pull.clone(), self.progress.clone());
        let stream = Box::pin(futures_util::stream::unfold(
            state,
            |(mut stream, at, pull, progress)| async move {
                pull.pace.wait(at).await;
                let item = stream.next().await?;
                let mut next = at;
                if let Ok(chunk) = &item {
                    if let Ok(mut tail) = pull.tail.lock() {
                        tail.push(at, chunk.clone());
                    }
                    next += chunk.len() as u64;
                    progress.send_modify(|p| p.arrived = next);
                }
                Some((item, (stream, next, pull, progress)))
            },
        ));
        self.registry
            .append_upload_watched(&self.repo, id, Some(0), stream, Some(hook))
            .await?;
        self.complete(id).await
    }

    /// Where the upload's file cannot be followed (S3, shared sessions):
    /// writes each batch to a spool file (then tells readers) and queues
    /// it for the upload session, which hashes it.
    async fn spool_and_store(
        &self,
        spool_dir: &std::path::Path,
        stream: BlobStream,
        size: Option<u64>,
        id: &uuid::Uuid,
    ) -> Result<(), SyncError> {
        let dir = spool_dir.to_owned();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::tempfile_in(&dir)
        })
        .await
        .map_err(|e| SyncError::NotStored(e.to_string()))?
        .map_err(|e| SyncError::NotStored(format!("spool file: {e}")))?;
        let file = Arc::new(file);
        let _ = self.pull.spool.set(file.clone());
        self.set(|p| {
            p.size = size;
            p.phase = Phase::Streaming;
        });
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(QUEUED_BATCHES);
        let feed = async move {
            let mut batches = stream.ready_chunks(BATCH_CHUNKS);
            let mut offset = 0u64;
            while let Some(batch) = batches.next().await {
                let mut data = BytesMut::new();
                let mut failed = None;
                for item in batch {
                    match item {
                        Ok(b) => data.extend_from_slice(&b),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                if !data.is_empty() {
                    let data = data.freeze();
                    let (f, d, at) = (file.clone(), data.clone(), offset);
                    tokio::task::spawn_blocking(move || f.write_all_at(&d, at))
                        .await
                        .map_err(|e| SyncError::NotStored(e.to_string()))?
                        .map_err(|e| SyncError::NotStored(format!("spool file: {e}")))?;
                    offset += data.len() as u64;
                    self.set(|p| {
                        p.received = offset;
                        p.arrived = offset;
                    });
                    if tx.send(Ok(data)).await.is_err() {
                        return Err(SyncError::NotStored("the upload ended early".into()));
                    }
                }
                if let Some(e) = failed {
                    return Err(e.into());
                }
            }
            Ok(())
        };
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let upload = self.registry.append_upload(&self.repo, id, Some(0), body);
        let (fed, appended) = tokio::join!(feed, upload);
        fed?;
        appended?;
        self.complete(id).await
    }

    /// Completes the upload with the digest: storage checks it against
    /// its running hash and stores nothing on a mismatch.
    async fn complete(&self, id: &uuid::Uuid) -> Result<(), SyncError> {
        self.registry
            .complete_upload(
                &self.repo,
                id,
                &self.digest,
                None,
                None::<futures_util::stream::Empty<Result<Bytes, io::Error>>>,
            )
            .await?;
        Ok(())
    }
}
