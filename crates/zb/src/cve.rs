//! The `cve-*` workloads: our registry's vulnerability scanning under
//! load (issue 11, point 6). They need `extensions.search.cve` with an
//! OSV *folder* source (`--osv`, which zb writes records into) and
//! `extensions.metrics` (progress is read from `/metrics`).
//!
//! - `cve-scan-100MiB`: one operation puts the manifest of a new image
//!   whose five Debian-like layers (100 MiB compressed, pushed once in the
//!   set-up; see [`crate::debian`]) the registry has never scanned under
//!   that manifest, then asks `CVEListForImage` every 10 ms until the scan
//!   shows its finding: push to inventory to matched result.
//! - `cve-storm-manifest-head`, `cve-storm-manifest-get`: the manifest
//!   workloads while scans run: the set-up queues [`STORM`] scans of the
//!   big image and waits for the first to finish.
//! - `cve-rematch-10k`: the set-up pushes [`REMATCH_IMAGES`] small Debian
//!   images (each its own dpkg status) and waits until all are scanned;
//!   one operation adds a record to the folder and waits until the
//!   registry uses the new database and has matched every stored
//!   inventory again (the registry logs the re-match's own duration).
//! - `cve-import-1GiB`: the set-up writes a zip of [`IMPORT_BYTES`] of
//!   PyPI records beside the folder; the operation moves it in as
//!   `PyPI/all.zip` and waits for the new database and its re-match.
//!   Its figure is the server's peak memory during the workload.
//!
//! Every wait has a deadline; missing it fails the operation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Client, Parts};
use crate::data::Blob;
use crate::debian::{self, LAYER_TYPE, Layer};
use crate::ops::{self, MANIFEST_TYPE, Upload};
use crate::search;
use crate::workload::Ctx;

/// Size of the big image (compressed layers).
pub const BIG: u64 = 100 << 20;
/// Scans a storm workload queues (about 0.3 s each on 2 cores: longer
/// than 30,000 manifest requests take).
pub const STORM: usize = 40;
/// Small images whose inventories `cve-rematch-10k` re-matches.
pub const REMATCH_IMAGES: usize = 10_000;
const REMATCH_REPOS: usize = 10;
/// Bytes of record JSON in the import workload's zip.
pub const IMPORT_BYTES: u64 = 1 << 30;
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const POLL: Duration = Duration::from_millis(10);
const METRICS_POLL: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CveOp {
    Scan,
    StormHead,
    StormGet,
    Rematch,
    Import,
}

/// Name, operation, fixed concurrency, fixed operation count.
pub const WORKLOADS: [(&str, CveOp, Option<usize>, Option<u64>); 5] = [
    ("cve-scan-100MiB", CveOp::Scan, Some(1), None),
    ("cve-storm-manifest-head", CveOp::StormHead, None, None),
    ("cve-storm-manifest-get", CveOp::StormGet, None, None),
    ("cve-rematch-10k", CveOp::Rematch, Some(1), None),
    ("cve-import-1GiB", CveOp::Import, Some(1), Some(1)),
];

/// What the CVE workloads share within a run.
#[derive(Default)]
pub struct CveSet {
    /// The registry's OSV folder (`extensions.search.cve.osv.path`).
    pub osv: Option<PathBuf>,
    big: tokio::sync::OnceCell<Arc<Vec<Layer>>>,
    /// The database holds the record the images are affected by.
    ready: tokio::sync::OnceCell<()>,
    /// The import zip written by the set-up.
    import: std::sync::Mutex<Option<PathBuf>>,
    storms: AtomicU64,
}

impl CveSet {
    pub fn new(osv: Option<PathBuf>) -> Self {
        CveSet {
            osv,
            ..CveSet::default()
        }
    }
}

fn osv(ctx: &Ctx) -> anyhow::Result<&Path> {
    ctx.cve
        .osv
        .as_deref()
        .context("the cve-* workloads need --osv DIR (the registry's cve.osv.path)")
}

/// The registry's metrics: `name value` lines.
async fn metric(c: &Client, name: &str) -> anyhow::Result<u64> {
    let answer = c
        .send(
            Method::GET,
            &c.url("/metrics"),
            &[],
            Parts::empty(),
            8 << 20,
        )
        .await
        .context("is extensions.metrics on?")?;
    let text = String::from_utf8_lossy(&answer.body);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .with_context(|| format!("/metrics has no {name} (is extensions.search.cve on?)"))
}

/// Polls `name` until `done` holds for it, at most `limit`.
async fn wait_metric(
    c: &Client,
    name: &str,
    limit: Duration,
    done: impl Fn(u64) -> bool,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let v = metric(c, name).await?;
        if done(v) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{name} is {v} after {} s", limit.as_secs());
        }
        tokio::time::sleep(METRICS_POLL).await;
    }
}

fn write_record(osv: &Path, record: &Value) -> anyhow::Result<bool> {
    let dir = osv.join("Debian");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.json", record["id"].as_str().unwrap_or("x")));
    if path.exists() {
        return Ok(false);
    }
    let tmp = osv.join(".zb-record.tmp");
    std::fs::write(&tmp, serde_json::to_vec(record)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

/// Makes sure the database holds the record every image is affected by:
/// writes it (once) and waits until a small canary image shows it.
async fn ensure_database(ctx: &Ctx) -> anyhow::Result<()> {
    ctx.cve
        .ready
        .get_or_try_init(|| async {
            write_record(osv(ctx)?, &debian::openssl_record())?;
            let c = &ctx.client;
            let repo = format!("{}/cve-canary", ctx.prefix);
            let (os, layer) = (debian::os_layer()?, debian::small_layer(999_999)?);
            push_missing(c, &repo, &os.blob).await?;
            push_missing(c, &repo, &layer.blob).await?;
            put_image(c, &repo, &ctx.nonce, &[&os, &layer], &ctx.nonce).await?;
            let image = format!("{repo}:{}", ctx.nonce);
            wait_scanned(c, &image, Duration::from_secs(120))
                .await
                .context("the canary image shows no finding: is the database folder --osv the registry's?")
        })
        .await?;
    Ok(())
}

async fn big(ctx: &Ctx) -> anyhow::Result<Arc<Vec<Layer>>> {
    ctx.cve
        .big
        .get_or_try_init(|| async {
            let layers = tokio::task::spawn_blocking(|| debian::big_image(BIG)).await??;
            Ok::<_, anyhow::Error>(Arc::new(layers))
        })
        .await
        .cloned()
}

async fn push_missing(c: &Client, repo: &str, blob: &Blob) -> anyhow::Result<()> {
    let url = c.url(&format!("/v2/{repo}/blobs/{}", blob.digest));
    if !c.exists(&url, &[]).await? {
        ops::push_blob(c, repo, blob, Upload::Monolithic).await?;
    }
    Ok(())
}

/// Pushes a config labelled `label` and the manifest of it and `layers` as `tag`.
async fn put_image(
    c: &Client,
    repo: &str,
    tag: &str,
    layers: &[&Layer],
    label: &str,
) -> anyhow::Result<()> {
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": { "zb.label": label } },
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>() },
    });
    let config = Blob::from_bytes(Bytes::from(config.to_string()));
    ops::push_blob(c, repo, &config, Upload::Monolithic).await?;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": { "mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.size() },
        "layers": layers.iter().map(|l| json!({
            "mediaType": LAYER_TYPE, "digest": l.blob.digest, "size": l.blob.size(),
        })).collect::<Vec<_>>(),
    });
    let url = c.url(&format!("/v2/{repo}/manifests/{tag}"));
    let body = Parts::new(vec![Bytes::from(manifest.to_string())]);
    c.send(
        Method::PUT,
        &url,
        &[("content-type", MANIFEST_TYPE)],
        body,
        0,
    )
    .await?;
    Ok(())
}

/// Waits until `image`'s scan shows a finding (`MaxSeverity` set).
async fn wait_scanned(c: &Client, image: &str, limit: Duration) -> anyhow::Result<()> {
    let query =
        format!("{{ CVEListForImage(image: \"{image}\") {{ Summary {{ MaxSeverity }} }} }}");
    let deadline = Instant::now() + limit;
    loop {
        let body = search::post(c, &query).await?;
        let doc: Value = serde_json::from_slice(&body).context("answer is not JSON")?;
        if let Some(e) = doc.get("errors").filter(|e| !e.is_null()) {
            bail!("{image}: {e}");
        }
        let max = &doc["data"]["CVEListForImage"]["Summary"]["MaxSeverity"];
        if max.as_str().is_some_and(|s| !s.is_empty()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{image} not scanned after {} s", limit.as_secs());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn big_repo(ctx: &Ctx) -> String {
    format!("{}/cve-scan", ctx.prefix)
}

async fn setup_big(ctx: &Ctx) -> anyhow::Result<Arc<Vec<Layer>>> {
    ensure_database(ctx).await?;
    let layers = big(ctx).await?;
    for l in layers.iter() {
        push_missing(&ctx.client, &big_repo(ctx), &l.blob).await?;
    }
    Ok(layers)
}

/// Set-up of a CVE workload (not timed).
pub async fn setup(ctx: &Arc<Ctx>, op: CveOp, name: &str) -> anyhow::Result<()> {
    match op {
        CveOp::Scan => {
            setup_big(ctx).await?;
        }
        CveOp::StormHead | CveOp::StormGet => {
            let layers = setup_big(ctx).await?;
            let refs: Vec<&Layer> = layers.iter().collect();
            let round = ctx.cve.storms.fetch_add(1, Ordering::Relaxed);
            let repo = big_repo(ctx);
            let mut first = None;
            for k in 0..STORM {
                let tag = format!("storm-{}-{round}-{k}", ctx.nonce);
                let label = format!("{}/{name}/{k}", ctx.nonce);
                put_image(&ctx.client, &repo, &tag, &refs, &label).await?;
                first.get_or_insert(tag);
            }
            if let Some(tag) = first {
                let image = format!("{repo}:{tag}");
                wait_scanned(&ctx.client, &image, Duration::from_secs(120)).await?;
            }
        }
        CveOp::Rematch => setup_rematch(ctx).await?,
        CveOp::Import => {
            let dir = osv(ctx)?.to_path_buf();
            let path = dir.join(format!(".zb-import-{}.zip", ctx.nonce));
            let p = path.clone();
            tokio::task::spawn_blocking(move || write_import_zip(&p, IMPORT_BYTES)).await??;
            *ctx.cve.import.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
        }
    }
    Ok(())
}

fn rematch_repo(ctx: &Ctx, i: usize) -> String {
    format!("{}/cve-rematch/r{:02}", ctx.prefix, i % REMATCH_REPOS)
}

async fn setup_rematch(ctx: &Arc<Ctx>) -> anyhow::Result<()> {
    ensure_database(ctx).await?;
    let c = &ctx.client;
    let last = REMATCH_IMAGES - 1;
    if !ops::manifest_exists(c, &rematch_repo(ctx, last), &format!("i{last:05}")).await? {
        let os = Arc::new(debian::os_layer()?);
        for r in 0..REMATCH_REPOS {
            push_missing(c, &rematch_repo(ctx, r), &os.blob).await?;
        }
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..crate::workload::SETUP_CONCURRENCY {
            let (ctx, os, next) = (ctx.clone(), os.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= REMATCH_IMAGES {
                        return anyhow::Ok(());
                    }
                    let layer = debian::small_layer(i as u64)?;
                    let repo = rematch_repo(&ctx, i);
                    ops::push_blob(&ctx.client, &repo, &layer.blob, Upload::Monolithic).await?;
                    let tag = format!("i{i:05}");
                    put_image(&ctx.client, &repo, &tag, &[&os, &layer], &tag).await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
    }
    // Every pushed image scanned: the queue empty in two samples in a row.
    let mut empty = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while empty < 2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        empty = if metric(c, "zot_cve_scan_queue_length").await? == 0 {
            empty + 1
        } else {
            0
        };
        if Instant::now() > deadline {
            bail!("the scans of the re-match images did not finish in 30 minutes");
        }
    }
    let image = format!("{}:i{last:05}", rematch_repo(ctx, last));
    wait_scanned(c, &image, Duration::from_secs(60)).await
}

/// Writes `dir`'s zip of PyPI records totalling about `bytes` of JSON.
fn write_import_zip(path: &Path, bytes: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path)?;
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    let noise = crate::data::random_bytes(4096, 0x7a62_696d_706f_7274);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < bytes {
        // Details differ per record (a rotating slice of noise, in hex).
        let at = (i as usize * 61) % 2048;
        let details = format!("{i:010} {}", hex::encode(&noise[at..at + 2048]));
        let record = json!({
            "id": format!("PYSEC-ZB-{i}"),
            "modified": "2026-12-01T00:00:00Z",
            "aliases": [format!("CVE-2098-{i}")],
            "summary": format!("zbpkg{i}: generated record"),
            "details": details,
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": "PyPI", "name": format!("zbpkg{}", i % 50_000)},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}],
        });
        let body = serde_json::to_vec(&record)?;
        w.start_file(format!("PYSEC-ZB-{i}.json"), options)?;
        w.write_all(&body)?;
        written += body.len() as u64;
        i += 1;
    }
    w.finish()?;
    Ok(())
}

/// One timed operation; returns the bytes it stands for.
pub async fn op(ctx: &Ctx, op: CveOp, i: u64, name: &str) -> anyhow::Result<u64> {
    let c = &ctx.client;
    match op {
        CveOp::Scan => {
            let layers = big(ctx).await?;
            let refs: Vec<&Layer> = layers.iter().collect();
            let tag = format!("{}-{i}", ctx.nonce);
            let repo = big_repo(ctx);
            put_image(c, &repo, &tag, &refs, &format!("{}/{name}/{i}", ctx.nonce)).await?;
            wait_scanned(c, &format!("{repo}:{tag}"), Duration::from_secs(300)).await?;
            Ok(layers.iter().map(|l| l.blob.size()).sum())
        }
        CveOp::StormHead => {
            let tiny = format!("{}/manifest", ctx.prefix);
            ops::manifest(c, Method::HEAD, &tiny, "latest").await
        }
        CveOp::StormGet => {
            let tiny = format!("{}/manifest", ctx.prefix);
            ops::manifest(c, Method::GET, &tiny, "latest").await
        }
        CveOp::Rematch => {
            let version = metric(c, "zot_cve_db_version").await?;
            let matched = metric(c, "zot_cve_manifests_matched_total").await?;
            let id = format!("ZB-REMATCH-{}-{i}", ctx.nonce);
            let record = debian::record(&id, &format!("CVE-2097-{i}"), "src-0003", "9.9-1");
            write_record(osv(ctx)?, &record)?;
            await_rematch(c, version, matched, REMATCH_IMAGES as u64).await?;
            Ok(0)
        }
        CveOp::Import => {
            let zip = ctx
                .cve
                .import
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .context("the import zip was not written (set-up skipped?)")?;
            let version = metric(c, "zot_cve_db_version").await?;
            let matched = metric(c, "zot_cve_manifests_matched_total").await?;
            let dir = osv(ctx)?.join("PyPI");
            std::fs::create_dir_all(&dir)?;
            std::fs::rename(&zip, dir.join("all.zip"))?;
            // The new database, then its re-match: the matched counter
            // moved and then unchanged over three samples (2 s apart).
            await_rematch(c, version, matched, 1).await?;
            let m = "zot_cve_manifests_matched_total";
            let (mut last, mut still) = (metric(c, m).await?, 0);
            while still < 3 {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                let now = metric(c, m).await?;
                still = if now == last { still + 1 } else { 0 };
                last = now;
            }
            Ok(IMPORT_BYTES)
        }
    }
}

/// Waits for a database newer than `version`, then for `count` more
/// inventories matched than `matched`.
async fn await_rematch(c: &Client, version: u64, matched: u64, count: u64) -> anyhow::Result<()> {
    let v = "zot_cve_db_version";
    wait_metric(c, v, Duration::from_secs(900), |x| x > version).await?;
    let m = "zot_cve_manifests_matched_total";
    wait_metric(c, m, Duration::from_secs(900), |x| x >= matched + count).await?;
    Ok(())
}
