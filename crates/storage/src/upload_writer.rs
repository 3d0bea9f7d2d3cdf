//! Streams an upload body into a file without tying a thread to the body.
//!
//! Frames are received (and hashed) on the async side and gathered into
//! batches of about [`BATCH_BYTES`]; each batch is written by one short
//! task on the blocking pool, with one vectored write. A blocking thread is
//! therefore held only while bytes are being written, never while a slow
//! client is sending them: a thousand trickling uploads hold no thread.
//! While one batch is being written the next is received (up to twice
//! the batch size while that write lasts), so receiving, hashing and
//! writing still overlap; at most about 1 MiB of an upload (a batch being
//! written and the next being received, each up to 512 KiB) is in memory.
//! An upload followed by readers (the sync extension's pull-through, whose
//! bytes arrive from upstream at memory speed and are held by its readers'
//! tail anyway) is written in batches of [`FOLLOWED_BATCH_BYTES`]: a
//! quarter of the hand-offs to the blocking pool, up to about 4 MiB in
//! memory.
//!
//! Every write holds the file's I/O lock ([`IoLock`]) for its duration. A
//! request dropped mid-body (a client that disconnects) may leave its last
//! batch being written; the next writer of the same file waits for the lock
//! before it touches the file, so two writes never interleave.

use crate::backend::BoxSink;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io;
use std::io::Write;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Bytes gathered before a write.
const BATCH_BYTES: usize = 256 * 1024;
/// Bytes gathered before a write of an upload followed by readers.
const FOLLOWED_BATCH_BYTES: usize = 1024 * 1024;
/// Frames gathered before a write: a vectored write takes at most
/// `IOV_MAX` (1024) slices, and a body of tiny frames must not pile up
/// thousands of them.
const BATCH_FRAMES: usize = 1024;

/// Serializes the writes to one file, across requests.
pub(crate) type IoLock = Arc<tokio::sync::Mutex<()>>;

/// Told, from the blocking thread that wrote them, how many bytes of a
/// stream are in the file so far (counted from the stream's start): a
/// reader of the file may read that far.
pub type WrittenHook = Arc<dyn Fn(u64) + Send + Sync>;

pub(crate) struct StreamOutcome {
    /// Bytes written, all of them handed to `on_chunk` before.
    pub written: u64,
    pub io_error: Option<io::Error>,
    pub body_error: Option<String>,
}

/// Writes every byte of `batch` with vectored writes.
fn write_batch(sink: &mut BoxSink, batch: &[Bytes]) -> io::Result<()> {
    // Empty frames are left out: a write of nothing answers 0, which would
    // read as a sink that cannot take more (`WriteZero`).
    let mut slices: Vec<io::IoSlice<'_>> = batch
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| io::IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match sink.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

type WriteTask = JoinHandle<(BoxSink, io::Result<u64>)>;

/// The sink, or the one write in flight that holds it.
struct BatchWriter {
    sink: Option<BoxSink>,
    in_flight: Option<WriteTask>,
    io: IoLock,
    written: u64,
    /// Bytes handed to writes so far (written or being written).
    submitted: u64,
    on_written: Option<WrittenHook>,
}

impl BatchWriter {
    /// Waits for the write in flight, if any, and takes its sink back.
    async fn settle(&mut self) -> io::Result<()> {
        if let Some(task) = self.in_flight.take() {
            let (sink, result) = task.await.map_err(io::Error::other)?;
            self.sink = Some(sink);
            self.written += result?;
        }
        Ok(())
    }

    /// Starts writing `batch` (then flushing, when it is the `last`) once
    /// the previous write is done.
    async fn submit(&mut self, batch: Vec<Bytes>, last: bool) -> io::Result<()> {
        self.settle().await?;
        let mut sink = self
            .sink
            .take()
            .ok_or_else(|| io::Error::other("upload sink lost"))?;
        let guard = self.io.clone().lock_owned().await;
        let len: u64 = batch.iter().map(|b| b.len() as u64).sum();
        self.submitted += len;
        // An empty (last) batch has nothing new to tell.
        let hook = self.on_written.clone().filter(|_| len > 0);
        let total = self.submitted;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let mut result = write_batch(&mut sink, &batch);
            if let (Ok(()), Some(hook)) = (&result, hook) {
                hook(total);
            }
            if last && result.is_ok() {
                result = sink.flush();
            }
            (sink, result.map(|()| len))
        }));
        Ok(())
    }
}

/// Writes the chunks of `body` to `sink`, handing each to `on_chunk`
/// (hashing) as it arrives. `on_chunk` sees exactly the bytes written
/// unless `io_error` is set (then what reached the file is unknown).
pub(crate) async fn write_stream<S, E>(
    sink: BoxSink,
    io: IoLock,
    body: S,
    on_chunk: impl FnMut(&Bytes),
) -> StreamOutcome
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    write_stream_watched(sink, io, body, on_chunk, None).await
}

/// [`write_stream`], telling `on_written` of each batch once it is in the
/// file.
pub(crate) async fn write_stream_watched<S, E>(
    sink: BoxSink,
    io: IoLock,
    mut body: S,
    mut on_chunk: impl FnMut(&Bytes),
    on_written: Option<WrittenHook>,
) -> StreamOutcome
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut writer = BatchWriter {
        sink: Some(sink),
        in_flight: None,
        io,
        written: 0,
        submitted: 0,
        on_written,
    };
    let batch_bytes = if writer.on_written.is_some() {
        FOLLOWED_BATCH_BYTES
    } else {
        BATCH_BYTES
    };
    let mut batch = Vec::new();
    let mut batched = 0;
    let mut body_error = None;
    let mut io_error = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                on_chunk(&bytes);
                batched += bytes.len();
                batch.push(bytes);
                // While the previous write still runs, keep receiving up to
                // a second batch rather than wait: a write slowed by page
                // cache reclaim does not stall the client at once.
                let writing = writer.in_flight.as_ref().is_some_and(|t| !t.is_finished());
                let full = if writing {
                    batched >= 2 * batch_bytes
                } else {
                    batched >= batch_bytes
                };
                if full || batch.len() >= BATCH_FRAMES {
                    batched = 0;
                    if let Err(e) = writer.submit(std::mem::take(&mut batch), false).await {
                        io_error = Some(e);
                        break;
                    }
                }
            }
            Err(e) => {
                body_error = Some(e.to_string());
                break;
            }
        }
    }
    if io_error.is_none() {
        io_error = writer.submit(batch, true).await.err();
    }
    if let Err(e) = writer.settle().await {
        io_error.get_or_insert(e);
    }
    let written = writer.written;
    StreamOutcome {
        written,
        io_error,
        body_error,
    }
}
