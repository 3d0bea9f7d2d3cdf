//! Upload bodies and content for the S3 tests.

#![allow(dead_code, reason = "each test binary including this uses part of it")]

use super::seaweed::Seaweed;
use bytes::Bytes;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use zot_storage::{Backend, S3Backend};

pub type Body = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>>;

/// `n` bytes that differ with `seed` (no two seeds give the same digest).
pub fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

/// `data` as a request body of 64 KiB frames.
pub fn body(data: &[u8]) -> Body {
    futures_util::stream::iter(
        data.chunks(64 << 10)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
}

/// The `PUT ?digest` of a chunked upload: no body.
pub fn no_body() -> Option<Body> {
    None
}

/// Waits until `server` has no multipart upload pending under `prefix`.
pub fn await_none_pending(server: &Seaweed, bucket: &str, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.multipart_uploads(bucket, prefix).is_empty() {
        assert!(Instant::now() < deadline, "{prefix}: still pending");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The object at `key` as stored in the bucket (no placeholder
/// resolution): what another tool reading the bucket would see.
pub async fn raw_bytes(raw: &S3Backend, key: &str) -> Option<Vec<u8>> {
    let size = raw.size(key).await.expect("size")?;
    let mut s = raw.read_stream(key, 0, size).await.expect("read");
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    Some(out)
}
