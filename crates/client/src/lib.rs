//! An OCI registry client for mirroring: the sync extension reads upstream
//! registries through it (and `zb` could).
//!
//! Invariants:
//! - Only reads (`GET`, `HEAD`): a request can always be sent again, so every
//!   failure of the transport, `429` and `5xx` answer is retried with
//!   back-off ([`RetryPolicy`]), `429`'s `Retry-After` honoured, and then the
//!   next of the upstream's URLs is tried, in the configured order.
//! - Authentication follows the registry's challenge (`WWW-Authenticate`):
//!   Basic with the credentials of the URL's `host[:port]`, or a bearer token
//!   fetched from the challenge's realm and cached per host and scope until
//!   shortly before it expires. Credentials are never sent to a host they
//!   were not configured for (redirects of blob downloads go without them).
//! - TLS is rustls with ring, the process's one TLS stack: system roots plus
//!   the `*.crt` files of `certDir`, the `*.cert`/`*.key` pair there as
//!   client certificate; `tlsVerify: false` accepts any server certificate.
//! - At most `reqConcurrent` requests per host are in flight (a blob body
//!   holds its permit until it is read or dropped).
//! - Content is verified: a manifest fetched by digest, or announced with
//!   `Docker-Content-Digest`, must hash to it (at most 4 MiB is read); a blob
//!   stream ([`BlobStream`]) hashes what passes through and ends with an
//!   error item (after the last chunk, or as soon as the size is exceeded)
//!   when the digest or size does not match, so a consumer that keeps only
//!   streams that ended well never stores wrong content. Memory is bounded
//!   by one chunk per stream.

mod api;
mod auth;
mod blob;
pub mod challenge;
mod client;
mod credentials;
pub mod names;
mod options;
pub mod paging;
mod retry;
mod tls;

pub use api::{Manifest, ManifestHead};
pub use blob::BlobStream;
pub use client::RegistryClient;
pub use credentials::{Credential, CredentialsFile};
pub use options::{ClientOptions, RetryPolicy};
pub use retry::backoff;

/// What went wrong talking to an upstream registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid upstream URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("credentials file {path}: {why}")]
    Credentials { path: String, why: String },
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: unauthorized")]
    Unauthorized { url: String },
    #[error("{url}: not found")]
    NotFound { url: String },
    #[error("token from {realm}: {why}")]
    Token { realm: String, why: String },
    #[error("content of {expected} has digest {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("content of {digest} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url}: {why}")]
    Invalid { url: String, why: String },
    #[error("no upstream URL configured")]
    NoUrl,
}

impl ClientError {
    /// The answer was "no such thing" (as opposed to a failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound { .. })
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
