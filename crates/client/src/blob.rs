//! [`BlobStream`]: a blob body that verifies itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::OwnedSemaphorePermit;
use zot_oci::{Digest, Hasher};

use crate::ClientError;

type Inner = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The body of a blob as it arrives, hashed on the way. After the last
/// chunk, a digest (or size) that does not match is one more item, an
/// error; a body longer than announced fails as soon as it is.
pub struct BlobStream {
    inner: Inner,
    hasher: Option<Hasher>,
    expected: Digest,
    size: Option<u64>,
    seen: u64,
    url: String,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("digest", &self.expected)
            .field("size", &self.size)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl BlobStream {
    pub(crate) fn new(
        resp: reqwest::Response,
        permit: OwnedSemaphorePermit,
        expected: Digest,
        size: Option<u64>,
        url: String,
    ) -> BlobStream {
        BlobStream {
            inner: Box::pin(resp.bytes_stream()),
            hasher: Some(expected.algorithm().hasher()),
            expected,
            size,
            seen: 0,
            url,
            done: false,
            _permit: permit,
        }
    }

    /// The same stream without hashing (the size is still checked): for a
    /// consumer that verifies the digest itself, as storage does on
    /// completing an upload, so the bytes are hashed once.
    pub fn unhashed(mut self) -> BlobStream {
        self.hasher = None;
        self
    }

    /// The size the blob must have, when known (given, or `Content-Length`).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    fn fail(&mut self, e: ClientError) -> Poll<Option<Result<Bytes, ClientError>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Err(e))) => {
                let url = self.url.clone();
                self.fail(ClientError::Transport { url, source: e })
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if let Some(size) = self.size
                    && self.seen > size
                {
                    let (digest, actual) = (self.expected.to_string(), self.seen);
                    return self.fail(ClientError::SizeMismatch {
                        digest,
                        expected: size,
                        actual,
                    });
                }
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                self.done = true;
                if let Some(size) = self.size
                    && self.seen != size
                {
                    return Poll::Ready(Some(Err(ClientError::SizeMismatch {
                        digest: self.expected.to_string(),
                        expected: size,
                        actual: self.seen,
                    })));
                }
                let actual = match self.hasher.take() {
                    Some(h) => h.finish(),
                    None => return Poll::Ready(None),
                };
                if actual != self.expected {
                    return Poll::Ready(Some(Err(ClientError::DigestMismatch {
                        expected: self.expected.to_string(),
                        actual: actual.to_string(),
                    })));
                }
                Poll::Ready(None)
            }
        }
    }
}
