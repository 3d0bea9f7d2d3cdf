//! Where the database comes from, and the update that rebuilds it.
//!
//! - [`Source::Url`]: `<base>/<ecosystem>/all.zip` per ecosystem family,
//!   fetched with the validators of the previous download
//!   (`If-None-Match`, `If-Modified-Since`); a `304` reuses the zip kept
//!   in `cache/`. A body is streamed to `cache/<eco>.zip.part` (memory: one
//!   chunk), its length checked against `Content-Length`.
//! - [`Source::Path`]: `<path>/<ecosystem>/all.zip`, else the
//!   `<path>/<ecosystem>/*.json` records; an ecosystem without either is
//!   skipped.
//!
//! An update imports every input into a new index (one zip entry or file
//! at a time, each record at most [`MAX_RECORD`] bytes) and swaps it in
//! only when all succeeded: an unreachable URL, an HTTP error, a
//! truncated download, a corrupt zip or a malformed record fails the
//! update with an error naming it, the previous index stays in use, and
//! new downloads are discarded. When no input changed (same validators
//! or file stamps), the index in use is kept.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::db::{Builder, DbInfo, VulnDb, now};
use crate::error::DbError;
use crate::osv;

/// OSV's public bucket.
pub const DEFAULT_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// The largest record read (bytes).
pub const MAX_RECORD: u64 = 8 << 20;

/// Where the records come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A base URL holding `<ecosystem>/all.zip`.
    Url(String),
    /// A folder holding `<ecosystem>/all.zip` or `<ecosystem>/*.json`.
    Path(PathBuf),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Url(u) => u.clone(),
            Source::Path(p) => p.display().to_string(),
        }
    }
}

/// What an update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new index is in use.
    Updated(DbInfo),
    /// Nothing changed; the index in use is kept.
    Unchanged(DbInfo),
}

#[derive(Default, Serialize, Deserialize)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

enum Input {
    Zip { label: String, path: PathBuf },
    Files { files: Vec<PathBuf> },
}

fn file_name(eco: &str) -> String {
    eco.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn stamp(path: &Path) -> String {
    match fs::metadata(path) {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{}:{t}", path.display(), m.len())
        }
        Err(_) => path.display().to_string(),
    }
}

struct Download {
    eco: String,
    part: PathBuf,
    zip: PathBuf,
    validators: Validators,
}

async fn fetch(
    client: &reqwest::Client,
    base: &str,
    eco: &str,
    cache: &Path,
) -> Result<(Input, String, Option<Download>), DbError> {
    let url = format!(
        "{}/{}/all.zip",
        base.trim_end_matches('/'),
        eco.replace(' ', "%20")
    );
    let name = file_name(eco);
    let zip = cache.join(format!("{name}.zip"));
    let meta_path = cache.join(format!("{name}.json"));
    let old: Validators = if zip.is_file() {
        fs::read(&meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    } else {
        Validators::default()
    };
    let fetch_err = |message: String| DbError::Fetch {
        url: url.clone(),
        message,
    };
    let mut req = client.get(&url);
    if let Some(etag) = &old.etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &old.last_modified {
        req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
    }
    let mut resp = req.send().await.map_err(|e| fetch_err(error_chain(&e)))?;
    let status = resp.status();
    let input = |path: PathBuf| Input::Zip {
        label: url.clone(),
        path,
    };
    if status == reqwest::StatusCode::NOT_MODIFIED && zip.is_file() {
        let fp = format!("{eco}={:?}/{:?}", old.etag, old.last_modified);
        return Ok((input(zip), fp, None));
    }
    if !status.is_success() {
        return Err(fetch_err(format!("HTTP status {status}")));
    }
    let header = |h: reqwest::header::HeaderName| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
    };
    let expected = resp.content_length();
    let part = cache.join(format!("{name}.zip.part"));
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| DbError::io(part.display().to_string(), e))?;
    let mut written: u64 = 0;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                written += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| DbError::io(part.display().to_string(), e))?;
            }
            Ok(None) => break,
            Err(e) => {
                drop(file);
                let _ = fs::remove_file(&part);
                return Err(fetch_err(format!(
                    "download interrupted: {}",
                    error_chain(&e)
                )));
            }
        }
    }
    file.flush()
        .await
        .map_err(|e| DbError::io(part.display().to_string(), e))?;
    drop(file);
    if let Some(expected) = expected
        && expected != written
    {
        let _ = fs::remove_file(&part);
        return Err(fetch_err(format!(
            "truncated download: {written} of {expected} bytes"
        )));
    }
    // The same fingerprint as a later 304 gives; without validators a
    // download always counts as new.
    let fp = if validators.etag.is_none() && validators.last_modified.is_none() {
        let t = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{eco}=unvalidated/{t}")
    } else {
        format!("{eco}={:?}/{:?}", validators.etag, validators.last_modified)
    };
    Ok((
        input(part.clone()),
        fp,
        Some(Download {
            eco: eco.to_string(),
            part,
            zip,
            validators,
        }),
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn folder_inputs(
    path: &Path,
    ecosystems: &[String],
) -> Result<(Vec<Input>, Vec<String>, String), DbError> {
    let mut ecos: Vec<String> = ecosystems.to_vec();
    if ecos.is_empty() {
        let entries = fs::read_dir(path).map_err(|e| DbError::io(path.display().to_string(), e))?;
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                ecos.push(entry.file_name().to_string_lossy().to_string());
            }
        }
        ecos.sort();
    }
    let mut inputs = Vec::new();
    let mut found = Vec::new();
    let mut fp = String::new();
    for eco in &ecos {
        let dir = path.join(eco);
        let zip = dir.join("all.zip");
        if zip.is_file() {
            fp.push_str(&stamp(&zip));
            fp.push('\n');
            inputs.push(Input::Zip {
                label: zip.display().to_string(),
                path: zip,
            });
            found.push(eco.clone());
        } else if dir.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .map_err(|e| DbError::io(dir.display().to_string(), e))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                .collect();
            files.sort();
            for f in &files {
                fp.push_str(&stamp(f));
                fp.push('\n');
            }
            inputs.push(Input::Files { files });
            found.push(eco.clone());
        } else {
            tracing::warn!(ecosystem = %eco, path = %dir.display(), "no OSV records for this ecosystem in the database folder");
        }
    }
    Ok((inputs, found, fp))
}

fn read_capped(r: &mut impl Read, what: &str) -> Result<Vec<u8>, DbError> {
    let mut buf = Vec::new();
    r.take(MAX_RECORD + 1)
        .read_to_end(&mut buf)
        .map_err(|e| DbError::Zip {
            what: what.to_string(),
            message: e.to_string(),
        })?;
    if buf.len() as u64 > MAX_RECORD {
        return Err(DbError::Record {
            what: what.to_string(),
            message: format!("larger than {MAX_RECORD} bytes"),
        });
    }
    Ok(buf)
}

fn add_bytes(builder: &mut Builder, bytes: &[u8], what: &str) -> Result<(), DbError> {
    let record = osv::parse(bytes).map_err(|e| DbError::Record {
        what: what.to_string(),
        message: e.to_string(),
    })?;
    builder.add(&record)
}

fn import(builder: &mut Builder, input: &Input) -> Result<(), DbError> {
    match input {
        Input::Zip { label, path } => {
            let file =
                fs::File::open(path).map_err(|e| DbError::io(path.display().to_string(), e))?;
            let mut reader = BufReader::new(file);
            let zip_err = |e: zip::result::ZipError| DbError::Zip {
                what: label.clone(),
                message: e.to_string(),
            };
            let mut entries = 0u64;
            while let Some(mut entry) =
                zip::read::read_zipfile_from_stream(&mut reader).map_err(zip_err)?
            {
                entries += 1;
                let name = entry.name().map_err(zip_err)?.to_string();
                if entry.is_dir() || !name.ends_with(".json") {
                    continue;
                }
                let what = format!("{label}: {name}");
                let bytes = read_capped(&mut entry, &what)?;
                add_bytes(builder, &bytes, &what)?;
            }
            if entries == 0 {
                tracing::info!(zip = %label, "an empty OSV zip");
            }
            Ok(())
        }
        Input::Files { files, .. } => {
            for f in files {
                let what = f.display().to_string();
                let file = fs::File::open(f).map_err(|e| DbError::io(what.clone(), e))?;
                let bytes = read_capped(&mut BufReader::new(file), &what)?;
                add_bytes(builder, &bytes, &what)?;
            }
            Ok(())
        }
    }
}

fn build(db_dir: &Path, dir: &Path, inputs: &[Input], mut info: DbInfo) -> Result<DbInfo, DbError> {
    let _ = db_dir;
    let mut builder = Builder::create(dir)?;
    for input in inputs {
        import(&mut builder, input)?;
    }
    info.records = builder.records;
    info.withdrawn = builder.withdrawn;
    builder.finish(&info)?;
    Ok(info)
}

impl VulnDb {
    /// Brings the database up to date from `source` for `ecosystems`
    /// (OSV family names: `Debian`, `PyPI`, ...; for a folder, empty
    /// means every folder in it). On error the index in use is kept.
    pub async fn update(&self, source: &Source, ecosystems: &[String]) -> Result<Outcome, DbError> {
        let _guard = self.updating.lock().await;
        let mut ecosystems = ecosystems.to_vec();
        ecosystems.sort();
        ecosystems.dedup();
        let mut downloads = Vec::new();
        let (inputs, found, fingerprint) = match source {
            Source::Url(base) => {
                let cache = self.dir().join("cache");
                fs::create_dir_all(&cache)
                    .map_err(|e| DbError::io(cache.display().to_string(), e))?;
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(30))
                    .read_timeout(Duration::from_secs(120))
                    .build()
                    .map_err(|e| DbError::Fetch {
                        url: base.clone(),
                        message: error_chain(&e),
                    })?;
                let mut inputs = Vec::new();
                let mut fp = String::new();
                for eco in &ecosystems {
                    match fetch(&client, base, eco, &cache).await {
                        Ok((input, f, download)) => {
                            inputs.push(input);
                            fp.push_str(&f);
                            fp.push('\n');
                            downloads.extend(download);
                        }
                        Err(e) => {
                            discard(&downloads);
                            return Err(e);
                        }
                    }
                }
                (inputs, ecosystems.clone(), fp)
            }
            Source::Path(path) => folder_inputs(path, &ecosystems)?,
        };
        let fingerprint = format!("{}\n{fingerprint}", source.describe());
        if let Some(info) = self.info()
            && info.inputs == fingerprint
        {
            discard(&downloads);
            return Ok(Outcome::Unchanged(info));
        }
        let version = self.next_version();
        let dir = self.building_dir(version);
        let info = DbInfo {
            version,
            built_at: now(),
            source: source.describe(),
            ecosystems: found,
            records: 0,
            withdrawn: 0,
            inputs: fingerprint,
        };
        let db_dir = self.dir().to_path_buf();
        let build_dir = dir.clone();
        let result = tokio::task::spawn_blocking(move || build(&db_dir, &build_dir, &inputs, info))
            .await
            .map_err(|e| DbError::index("import task", e))
            .and_then(|r| r);
        let info = match result {
            Ok(info) => info,
            Err(e) => {
                discard(&downloads);
                let _ = fs::remove_dir_all(&dir);
                tracing::warn!(error = %e, "CVE database update failed; the previous database stays in use");
                return Err(e);
            }
        };
        for d in &downloads {
            fs::rename(&d.part, &d.zip).map_err(|e| DbError::io(d.zip.display().to_string(), e))?;
            let meta = d.zip.with_extension("json");
            let bytes =
                serde_json::to_vec(&d.validators).map_err(|e| DbError::index("validators", e))?;
            fs::write(&meta, bytes).map_err(|e| DbError::io(meta.display().to_string(), e))?;
            tracing::debug!(ecosystem = %d.eco, "OSV zip downloaded");
        }
        self.install(version)?;
        tracing::info!(version = info.version, records = info.records, source = %info.source, "CVE database updated");
        Ok(Outcome::Updated(info))
    }
}

fn discard(downloads: &[Download]) {
    for d in downloads {
        let _ = fs::remove_file(&d.part);
    }
}
