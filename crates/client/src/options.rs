//! What a [`crate::RegistryClient`] is built from: the settings of one
//! upstream registry (zot's `extensions.sync.registries[]` keys), with
//! zot's defaults.

use std::path::PathBuf;
use std::time::Duration;

use crate::credentials::CredentialsFile;

/// Retries of one request on one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`maxRetries`).
    pub max_retries: u32,
    /// Wait before the first retry (`retryDelay`), doubled each time...
    pub delay: Duration,
    /// ...up to this (`maxRetryDelay`; equal to `delay`: a fixed delay).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Without `maxRetries`: 3 retries, 1 s doubling to 30 s (regclient's
    /// own defaults, which zot uses when the keys are absent).
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Settings of one upstream registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `urls`: tried in order; `http://` means no TLS.
    pub urls: Vec<String>,
    /// `tlsVerify` (default true).
    pub tls_verify: bool,
    /// `certDir`: `*.crt` CAs, a `*.cert`/`*.key` client pair; a missing
    /// folder is no error.
    pub cert_dir: Option<PathBuf>,
    /// `credentialsFile`, read: looked up by each URL's `host[:port]`.
    pub credentials: CredentialsFile,
    pub retry: RetryPolicy,
    /// `syncTimeout` (default 3 h): a whole request, body included.
    pub timeout: Duration,
    /// `responseHeaderTimeout` (default 30 s): connecting, and each wait for
    /// bytes from the upstream.
    pub response_header_timeout: Duration,
    /// `reqConcurrent` (default 3): requests in flight per host.
    pub concurrency: usize,
    /// `reqPerSec`: request starts per second per host (unlimited when unset).
    pub requests_per_second: Option<f64>,
    /// `disableHTTP2`
    pub disable_http2: bool,
    /// `maxIdleConnsPerHost` (default: `concurrency`).
    pub max_idle_per_host: Option<usize>,
    /// Entries asked for per page of `_catalog` and `tags/list` (`n`;
    /// default 1000, as regclient).
    pub page_size: usize,
}

/// zot's default `syncTimeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3 * 3600);
/// zot's default `responseHeaderTimeout`.
pub const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default page size of listings.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// regclient's default `reqConcurrent`.
pub const DEFAULT_CONCURRENCY: usize = 3;

impl ClientOptions {
    /// Options for `urls` with every other setting at its default.
    pub fn new(urls: Vec<String>) -> ClientOptions {
        ClientOptions {
            urls,
            tls_verify: true,
            cert_dir: None,
            credentials: CredentialsFile::default(),
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            response_header_timeout: DEFAULT_RESPONSE_HEADER_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            requests_per_second: None,
            disable_http2: false,
            max_idle_per_host: None,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}
