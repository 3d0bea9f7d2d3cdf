//! `storage.storageDriver`: where a store keeps its layouts when not on the
//! local disk. Only `name: s3` is built; `gcs` and `azure` (which zot
//! knows) are refused as not supported by this build, any other name as
//! unknown.
//!
//! Invariants of a parsed [`S3Config`]:
//! - `bucket` is non-empty; `region` is set (zot's driver needs it unless
//!   `regionendpoint` is given; then it defaults to `us-east-1`).
//! - `chunk_size` is at least 5 MiB (S3's smallest part), default 10 MiB.
//! - `root_directory` has no leading or trailing `/` (`""` is the bucket's
//!   root). The Go zot doubles it (`<rd>/<rd>/<repo>/...`); this build uses
//!   it once, so a bucket written by the Go zot with `rootdirectory: /zot`
//!   is served with `rootdirectory: /zot/zot`.
//! - `regionendpoint` without `forcepathstyle` means path-style requests,
//!   as zot decides.
//! - Credentials are optional here: `accesskey`/`secretkey` (both or
//!   neither), else `credentialsfile` (an AWS shared-credentials file, its
//!   `[default]` profile or `AWS_PROFILE`'s), else the environment
//!   (`AWS_ACCESS_KEY_ID`, ...), else `~/.aws/credentials`.
//! - zot's other driver keys (`encrypt`, `keyid`, `v4auth`,
//!   `multipartcopy*`, `objectacl`, `useragent`, `usedualstack`,
//!   `accelerate`, `usefipsendpoint`, `loglevel`) are accepted and ignored.

use std::path::PathBuf;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// S3's smallest multipart part (except the last).
pub const MIN_CHUNK_SIZE: u64 = 5 << 20;
/// zot's default part size.
pub const DEFAULT_CHUNK_SIZE: u64 = 10 << 20;

/// Keys of zot's S3 driver this build accepts without acting on them.
const IGNORED: &[&str] = &[
    "encrypt",
    "keyid",
    "v4auth",
    "multipartcopychunksize",
    "multipartcopymaxconcurrency",
    "multipartcopythresholdsize",
    "objectacl",
    "useragent",
    "usedualstack",
    "accelerate",
    "usefipsendpoint",
    "loglevel",
];

/// An S3 (or S3-compatible) bucket holding a store's layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Endpoint URL of an S3-compatible server (`regionendpoint`).
    pub endpoint: Option<String>,
    /// Path-style requests (`forcepathstyle`) rather than virtual hosts.
    pub force_path_style: bool,
    /// HTTPS (`secure`, default true); an endpoint's own scheme wins.
    pub secure: bool,
    /// Accept any TLS certificate (`skipverify`).
    pub skip_verify: bool,
    /// Key prefix of the store inside the bucket, without slashes at the ends.
    pub root_directory: String,
    /// Multipart part size in bytes (`chunksize`).
    pub chunk_size: u64,
    /// `storageclass`; `None` for the bucket's default (`NONE`).
    pub storage_class: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// An AWS shared-credentials file (`credentialsfile`, this build's key).
    pub credentials_file: Option<PathBuf>,
}

/// A bool or a string spelling one (zot's driver takes both).
fn flag(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Option<bool> {
    match section.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => {
            problems.push(Problem::new(section.child(name), "expected true or false"));
            None
        }
    }
}

/// Reads `storageDriver` at `path`; `None` (with problems) when unusable.
pub(crate) fn parse(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<S3Config> {
    let mut section = Section::new(path.clone(), value, problems)?;
    let name = fields::string(&mut section, "name", problems);
    match name.as_deref() {
        Some("s3") => {}
        Some("gcs" | "azure") => {
            problems.push(Problem::new(path, "not supported by this build"));
            return None;
        }
        Some(other) => {
            problems.push(Problem::new(
                section.child("name"),
                format!("unknown storage driver {other:?} (expected s3)"),
            ));
            return None;
        }
        None => {
            problems.push(Problem::new(path, "needs a name (s3)"));
            return None;
        }
    }
    let bucket = fields::string(&mut section, "bucket", problems).unwrap_or_default();
    let endpoint =
        fields::string(&mut section, "regionendpoint", problems).filter(|e| !e.trim().is_empty());
    let region = fields::string(&mut section, "region", problems).filter(|r| !r.is_empty());
    let force_path_style = flag(&mut section, "forcepathstyle", problems);
    let secure = flag(&mut section, "secure", problems).unwrap_or(true);
    let skip_verify = flag(&mut section, "skipverify", problems).unwrap_or(false);
    let root_directory = fields::string(&mut section, "rootdirectory", problems)
        .unwrap_or_default()
        .trim_matches('/')
        .to_owned();
    let chunk_size = match section.get("chunksize") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
        None => Some(DEFAULT_CHUNK_SIZE),
    };
    let storage_class = fields::string(&mut section, "storageclass", problems)
        .filter(|c| !c.eq_ignore_ascii_case("NONE") && !c.is_empty());
    let access_key = fields::string(&mut section, "accesskey", problems).filter(|k| !k.is_empty());
    let secret_key = fields::string(&mut section, "secretkey", problems).filter(|k| !k.is_empty());
    let credentials_file =
        fields::string(&mut section, "credentialsfile", problems).map(PathBuf::from);
    for key in IGNORED {
        let _ = section.get(key);
    }
    let at = |key: &str| section.child(key);
    if bucket.is_empty() {
        problems.push(Problem::new(at("bucket"), "required"));
    }
    let region = match (region, &endpoint) {
        (Some(r), _) => r,
        (None, Some(_)) => "us-east-1".to_owned(),
        (None, None) => {
            problems.push(Problem::new(
                at("region"),
                "required (unless regionendpoint is set)",
            ));
            String::new()
        }
    };
    let chunk_size = match chunk_size {
        Some(c) if c >= MIN_CHUNK_SIZE => c,
        _ => {
            problems.push(Problem::new(
                at("chunksize"),
                format!("must be a number of bytes, at least {MIN_CHUNK_SIZE} (5 MiB)"),
            ));
            DEFAULT_CHUNK_SIZE
        }
    };
    if access_key.is_some() != secret_key.is_some() {
        problems.push(Problem::new(
            at("accesskey"),
            "accesskey and secretkey go together",
        ));
    }
    let bad = bucket.is_empty() || region.is_empty();
    section.finish(problems);
    (!bad).then(|| S3Config {
        bucket,
        region,
        // zot: an endpoint without forcepathstyle means path style.
        force_path_style: force_path_style.unwrap_or(endpoint.is_some()),
        endpoint,
        secure,
        skip_verify,
        root_directory,
        chunk_size,
        storage_class,
        access_key,
        secret_key,
        credentials_file,
    })
}
