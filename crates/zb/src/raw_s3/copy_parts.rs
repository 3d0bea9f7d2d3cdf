//! A parallel multipart copy: CreateMultipartUpload at the target, one
//! `UploadPartCopy` per `--part`-sized range of the source with
//! `--copy-concurrency` in flight, then CompleteMultipartUpload. The
//! create and the completion go through `object_store`; it has no ranged
//! part copy, so each part is a request of our own, signed with
//! `object_store`'s SigV4 (`AwsAuthorizer`) and sent with its HTTP client
//! (path-style addressing, as the benchmarks use). A failed part aborts
//! the multipart upload, so nothing is left at the target.

use super::RawS3Args;
use anyhow::Context;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ClientOptions;
use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AwsAuthorizer, AwsCredential};
use object_store::client::{
    HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector,
};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;

/// Copies `from` (of `args.size` bytes) to `to` part by part.
pub async fn run(store: &AmazonS3, args: &RawS3Args, from: &Path, to: &Path) -> anyhow::Result<()> {
    let client = ReqwestConnector::default()
        .connect(&ClientOptions::new().with_allow_http(true))
        .context("HTTP client")?;
    let credential = AwsCredential {
        key_id: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        token: None,
    };
    let id = store.create_multipart(to).await.context("create")?;
    let ranges: Vec<(usize, u64, u64)> = (0..args.size.div_ceil(args.part))
        .map(|i| {
            let first = i * args.part;
            (i as usize, first, (first + args.part).min(args.size) - 1)
        })
        .collect();
    let copied: anyhow::Result<Vec<PartId>> = futures_util::stream::iter(ranges)
        .map(|(idx, first, last)| {
            let part = Part {
                client: &client,
                credential: &credential,
                args,
                from,
                to,
                upload_id: &id,
            };
            async move { part.copy(idx, first, last).await }
        })
        .buffered(args.copy_concurrency.max(1))
        .try_collect()
        .await;
    let done = match copied {
        Ok(parts) => store
            .complete_multipart(to, &id, parts)
            .await
            .context("complete"),
        Err(e) => Err(e),
    };
    if done.is_err() {
        let _ = store.abort_multipart(to, &id).await;
    }
    done.map(|_| ())
}

/// What each part copy of one multipart upload shares.
#[derive(Clone, Copy)]
struct Part<'a> {
    client: &'a HttpClient,
    credential: &'a AwsCredential,
    args: &'a RawS3Args,
    from: &'a Path,
    to: &'a Path,
    upload_id: &'a str,
}

impl Part<'_> {
    /// `UploadPartCopy` of bytes `first..=last` of the source as part `idx`.
    async fn copy(self, idx: usize, first: u64, last: u64) -> anyhow::Result<PartId> {
        let a = self.args;
        let url = format!(
            "{}/{}/{}?partNumber={}&uploadId={}",
            a.endpoint.trim_end_matches('/'),
            a.bucket,
            self.to,
            idx + 1,
            encode(self.upload_id)
        );
        let mut request: HttpRequest = hyper::Request::builder()
            .method(hyper::Method::PUT)
            .uri(&url)
            .header("x-amz-copy-source", format!("{}/{}", a.bucket, self.from))
            .header("x-amz-copy-source-range", format!("bytes={first}-{last}"))
            .body(HttpRequestBody::empty())
            .context("part copy request")?;
        AwsAuthorizer::new(self.credential, "s3", &a.region)
            .try_authorize(&mut request, None)
            .context("signing")?;
        let response = self
            .client
            .execute(request)
            .await
            .with_context(|| format!("part {}", idx + 1))?;
        let status = response.status();
        let body = response
            .into_body()
            .bytes()
            .await
            .context("part copy answer")?;
        let text = String::from_utf8_lossy(&body);
        anyhow::ensure!(
            status.is_success(),
            "part {} copy: {status}: {text}",
            idx + 1
        );
        // S3 may answer 200 with an error document: only an ETag is success.
        let etag = text
            .split_once("<ETag>")
            .and_then(|(_, rest)| rest.split_once("</ETag>"))
            .map(|(etag, _)| etag.replace("&quot;", "\"").replace("&#34;", "\""))
            .with_context(|| format!("part {} copy: no ETag in {text}", idx + 1))?;
        Ok(PartId { content_id: etag })
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads `path` back: `size` bytes, each `part[offset % part.len()]` (what
/// the put wrote).
pub async fn check(store: &AmazonS3, path: &Path, part: &Bytes, size: u64) -> anyhow::Result<()> {
    let mut stream = store.get(path).await.context("get the copy")?.into_stream();
    let mut at = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the copy")?;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let off = (at % part.len() as u64) as usize;
            let n = rest.len().min(part.len() - off);
            anyhow::ensure!(
                rest[..n] == part[off..off + n],
                "the part copy differs from the original at byte {at}"
            );
            rest = &rest[n..];
            at += n as u64;
        }
    }
    anyhow::ensure!(at == size, "the part copy has {at} bytes, not {size}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn upload_ids_are_encoded_for_a_query() {
        assert_eq!(encode("a.B_c-9~"), "a.B_c-9~");
        assert_eq!(encode("x/y+z=="), "x%2Fy%2Bz%3D%3D");
    }
}
