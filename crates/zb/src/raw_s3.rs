//! `zb raw-s3`: the object store on its own, the yardstick of the S3
//! storage rows of `scripts/bench-s3`. It puts one object of `--size`
//! bytes as a multipart upload with parts of `--part` bytes, one part at a
//! time (what the registry's S3 driver does with `storageDriver.chunksize`),
//! then reads it back as one streamed GET, then copies it server-side to
//! another key (`CopyObject`, what a rename costs on S3), then copies it
//! again as a parallel multipart copy (`UploadPartCopy` of `--part`-sized
//! ranges, `--copy-concurrency` at a time, what distribution's S3 driver
//! does for large objects; its content read back and checked),
//! `--rounds` times, and prints one JSON object per operation (`{"op":
//! "put"|"get"|"copy"|"copy-parts", "bytes", "seconds", "mb_per_sec"}`);
//! the objects are deleted at the end.
//!
//! The bytes are one random part sent again and again: the object store
//! does not deduplicate, and the registry's figure includes generating
//! and hashing its bytes, so this side is not slowed by either.

mod copy_parts;

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct RawS3Args {
    /// The S3 endpoint, such as http://127.0.0.1:8333.
    #[arg(long)]
    pub endpoint: String,
    #[arg(long)]
    pub bucket: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    #[arg(long, default_value = "test")]
    pub access_key: String,
    #[arg(long, default_value = "test")]
    pub secret_key: String,
    /// Object size (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, value_parser = crate::parse_size, default_value = "1GiB")]
    pub size: u64,
    /// Part size (the registry's `chunksize`; its default is 10 MiB).
    #[arg(long, value_parser = crate::parse_size, default_value = "10MiB")]
    pub part: u64,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Part copies in flight in the `copy-parts` operation.
    #[arg(long, default_value_t = 16)]
    pub copy_concurrency: usize,
}

/// Puts and gets `args.rounds` times; prints a JSON line per operation.
pub async fn run(args: &RawS3Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.part > 0 && args.size > 0, "sizes must be positive");
    let store = AmazonS3Builder::new()
        .with_bucket_name(&args.bucket)
        .with_region(&args.region)
        .with_endpoint(&args.endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id(&args.access_key)
        .with_secret_access_key(&args.secret_key)
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .build()
        .context("opening the bucket")?;
    let part = Bytes::from(random_bytes(args.part as usize));
    let path = Path::from(format!("zb-raw/{}", crate::nonce()));
    let copy = Path::from(format!("zb-raw/{}.copy", crate::nonce()));
    for _ in 0..args.rounds {
        let started = Instant::now();
        let id = store.create_multipart(&path).await.context("create")?;
        let mut parts = Vec::new();
        let mut left = args.size;
        while left > 0 {
            let n = left.min(args.part) as usize;
            let payload = PutPayload::from_bytes(part.slice(..n));
            parts.push(
                store
                    .put_part(&path, &id, parts.len(), payload)
                    .await
                    .context("put part")?,
            );
            left -= n as u64;
        }
        store
            .complete_multipart(&path, &id, parts)
            .await
            .context("complete")?;
        report("put", args.size, started);

        let started = Instant::now();
        let mut stream = store.get(&path).await.context("get")?.into_stream();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            got += chunk.context("reading")?.len() as u64;
        }
        anyhow::ensure!(got == args.size, "read {got} bytes of {}", args.size);
        report("get", got, started);

        let started = Instant::now();
        store.copy(&path, &copy).await.context("copy")?;
        report("copy", args.size, started);
        store.delete(&copy).await.context("delete the copy")?;

        let started = Instant::now();
        copy_parts::run(&store, args, &path, &copy).await?;
        report("copy-parts", args.size, started);
        copy_parts::check(&store, &copy, &part, args.size).await?;
        store.delete(&copy).await.context("delete the copy")?;
    }
    store.delete(&path).await.context("delete")?;
    Ok(())
}

fn report(op: &str, bytes: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "op": op,
            "bytes": bytes,
            "seconds": seconds,
            "mb_per_sec": bytes as f64 / 1e6 / seconds,
        })
    );
}

/// Bytes no compressor shrinks (xorshift64*).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}
