//! The on-disk layout, in one place. Under the storage root:
//!
//! ```text
//! <root>/
//!   _zot/meta.redb                  metadata store (a cache of the layouts)
//!   _zot/tmp/.tmp-<uuid>            a small file being written atomically
//!                                   (emptied at start-up)
//!   <repo>/                         one OCI image layout per repository;
//!     oci-layout                    <repo> may have several path segments
//!     index.json                    every manifest of the repository; tags
//!                                   are org.opencontainers.image.ref.name
//!     blobs/<alg>/<hex>             blobs and manifests, content-addressed;
//!                                   with dedupe, hard links shared across
//!                                   repositories
//!     .uploads/<uuid>               data of an open upload session
//!   .parked/<alg>-<hex>-<repo hex>  object stores: a blob acknowledged
//!                                   before its move from its upload key
//!                                   (`parked.rs`)
//! ```
//!
//! `_zot`, `.parked` and `.uploads` can never be repository names: name components start
//! with `[a-z0-9]`.

use zot_oci::{Digest, RepoName};

pub const META_DIR: &str = "_zot";
pub const META_DB: &str = "_zot/meta.redb";
pub const TMP_DIR: &str = "_zot/tmp";
pub const UPLOADS: &str = ".uploads";
pub const PARKED: &str = ".parked";
pub const TMP_PREFIX: &str = ".tmp-";
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

pub fn oci_layout(repo: &RepoName) -> String {
    format!("{repo}/oci-layout")
}

pub fn index(repo: &RepoName) -> String {
    format!("{repo}/index.json")
}

pub fn blobs_dir(repo: &RepoName) -> String {
    format!("{repo}/blobs")
}

pub fn blob(repo: &RepoName, digest: &Digest) -> String {
    format!(
        "{repo}/blobs/{}/{}",
        digest.algorithm().as_str(),
        digest.hex()
    )
}

pub fn uploads_dir(repo: &RepoName) -> String {
    format!("{repo}/{UPLOADS}")
}

pub fn upload(repo: &RepoName, id: &uuid::Uuid) -> String {
    format!("{repo}/{UPLOADS}/{}", id.as_hyphenated())
}
