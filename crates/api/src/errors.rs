//! The one table of error codes a client can see, with their HTTP statuses,
//! and the conversion of storage errors into them. Internal failures are
//! logged with their cause and answered with a generic `UNKNOWN` 500: no
//! path, I/O detail or stack ever reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use zot_storage::StorageError;

/// OCI Distribution error codes (and the few registry codes Docker clients know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    RangeInvalid,
    RangeNotSatisfiable,
    PaginationNumberInvalid,
    ManifestTooLarge,
    /// A delete of a manifest an image index names (zot: `405 DENIED`).
    ManifestReferenced,
    /// A reference that cannot be a tag (nor a digest) in a manifest `PUT`.
    TagInvalid,
    NotFound,
    /// A cluster member that owns the repository cannot be reached.
    Unavailable,
    /// The metadata store cannot be reached (Redis away, a failed disk):
    /// the request may work again later.
    MetadataUnavailable,
    StorageUnavailable,
    Unknown,
}

impl ErrorCode {
    /// (code, HTTP status, default message)
    pub const fn spec(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            BlobUnknown => (
                "BLOB_UNKNOWN",
                StatusCode::NOT_FOUND,
                "blob unknown to registry",
            ),
            BlobUploadInvalid => (
                "BLOB_UPLOAD_INVALID",
                StatusCode::BAD_REQUEST,
                "blob upload invalid",
            ),
            BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                StatusCode::NOT_FOUND,
                "blob upload unknown to registry",
            ),
            DigestInvalid => (
                "DIGEST_INVALID",
                StatusCode::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                StatusCode::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            ManifestInvalid => (
                "MANIFEST_INVALID",
                StatusCode::BAD_REQUEST,
                "manifest invalid",
            ),
            ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                StatusCode::NOT_FOUND,
                "manifest unknown to registry",
            ),
            NameInvalid => (
                "NAME_INVALID",
                StatusCode::BAD_REQUEST,
                "invalid repository name",
            ),
            NameUnknown => (
                "NAME_UNKNOWN",
                StatusCode::NOT_FOUND,
                "repository name not known to registry",
            ),
            SizeInvalid => (
                "SIZE_INVALID",
                StatusCode::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Unauthorized => (
                "UNAUTHORIZED",
                StatusCode::UNAUTHORIZED,
                "authentication required",
            ),
            Denied => (
                "DENIED",
                StatusCode::FORBIDDEN,
                "requested access to the resource is denied",
            ),
            Unsupported => (
                "UNSUPPORTED",
                StatusCode::METHOD_NOT_ALLOWED,
                "the operation is unsupported",
            ),
            TooManyRequests => (
                "TOOMANYREQUESTS",
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
            ),
            RangeInvalid => (
                "BLOB_UPLOAD_INVALID",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid content range",
            ),
            RangeNotSatisfiable => (
                "RANGE_INVALID",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "requested range not satisfiable",
            ),
            PaginationNumberInvalid => (
                "PAGINATION_NUMBER_INVALID",
                StatusCode::BAD_REQUEST,
                "invalid number of results requested",
            ),
            ManifestTooLarge => (
                "SIZE_INVALID",
                StatusCode::PAYLOAD_TOO_LARGE,
                "manifest is larger than the 4 MiB limit",
            ),
            ManifestReferenced => (
                "DENIED",
                StatusCode::METHOD_NOT_ALLOWED,
                "the manifest is part of an image index; delete the index first",
            ),
            TagInvalid => (
                "TAG_INVALID",
                StatusCode::BAD_REQUEST,
                "invalid tag: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
            ),
            NotFound => ("UNSUPPORTED", StatusCode::NOT_FOUND, "no such endpoint"),
            Unavailable => (
                "UNAVAILABLE",
                StatusCode::BAD_GATEWAY,
                "a cluster member is unavailable",
            ),
            MetadataUnavailable => (
                "UNAVAILABLE",
                StatusCode::SERVICE_UNAVAILABLE,
                "the metadata store is unavailable; retry later",
            ),
            StorageUnavailable => (
                "UNAVAILABLE",
                StatusCode::SERVICE_UNAVAILABLE,
                "the storage is unavailable; retry later",
            ),
            Unknown => (
                "UNKNOWN",
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error",
            ),
        }
    }
}

/// An error answered to the client as `{"errors":[{code,message,detail}]}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: serde_json::Value,
    /// Extra headers (e.g. `Range` on a 416 for an upload).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode) -> ApiError {
        ApiError {
            code,
            message: code.spec().2.to_owned(),
            detail: serde_json::Value::Null,
            headers: Vec::new(),
        }
    }

    pub fn msg(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            message: message.into(),
            ..ApiError::new(code)
        }
    }

    /// The answer to a request of `method` that failed while its path was
    /// parsed: a reference that cannot be a tag names no manifest, so
    /// reading or deleting it is 404 `MANIFEST_UNKNOWN` (as the OCI
    /// conformance suite, distribution and zot answer); only a `PUT` of it
    /// is 400 `TAG_INVALID`.
    pub fn for_method(self, method: &axum::http::Method) -> ApiError {
        match self.code {
            ErrorCode::TagInvalid if method != axum::http::Method::PUT => {
                ApiError::new(ErrorCode::ManifestUnknown)
            }
            _ => self,
        }
    }

    pub fn detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = detail;
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: String) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(&value) {
            self.headers.push((name, v));
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, _) = self.code.spec();
        let mut entry = serde_json::json!({ "code": code, "message": self.message });
        if !self.detail.is_null() {
            entry["detail"] = self.detail;
        }
        let body = serde_json::json!({ "errors": [entry] }).to_string();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        resp.headers_mut().extend(self.headers);
        resp
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        use ErrorCode::*;
        match e {
            StorageError::BlobUnknown => ApiError::new(BlobUnknown),
            StorageError::UploadUnknown => ApiError::new(BlobUploadUnknown),
            // Redis (shared upload sessions) away: retry later, as when the
            // metadata store is away; a record unreadable is a server error.
            StorageError::Shared(zot_storage::shared::SharedError::Redis(_)) => {
                tracing::warn!(error = %e, "shared upload state unavailable");
                ApiError::new(MetadataUnavailable).header(header::RETRY_AFTER, "5".to_owned())
            }
            StorageError::Shared(_) => {
                tracing::error!(error = %e, "shared upload state");
                ApiError::new(Unknown)
            }
            StorageError::BlobIsManifest => ApiError::msg(Unsupported, e.to_string()),
            StorageError::TagExists => ApiError::msg(Denied, e.to_string()),
            StorageError::TooManyUploads(_) | StorageError::TooManyOpenUploads(_) => {
                ApiError::msg(TooManyRequests, e.to_string())
            }
            StorageError::TooManyUploadBodies { .. } => {
                ApiError::msg(TooManyRequests, e.to_string())
                    .header(header::RETRY_AFTER, "1".into())
            }
            StorageError::UploadInvalid(m) => ApiError::msg(BlobUploadInvalid, m),
            StorageError::RangeInvalid { size } => ApiError::msg(RangeInvalid, e.to_string())
                .header(header::RANGE, format!("0-{}", size.saturating_sub(1))),
            StorageError::DigestInvalid(m) => ApiError::msg(DigestInvalid, m),
            StorageError::ManifestUnknown => ApiError::new(ManifestUnknown),
            StorageError::ManifestInvalid(m) => ApiError::msg(ManifestInvalid, m.to_string()),
            StorageError::ManifestBlobUnknown(ref d) => {
                let detail = serde_json::json!({ "digest": d });
                ApiError::msg(ManifestBlobUnknown, e.to_string()).detail(detail)
            }
            StorageError::ManifestReferenced {
                ref digest,
                ref index,
            } => {
                let detail = serde_json::json!({ "digest": digest, "index": index });
                ApiError::msg(ManifestReferenced, e.to_string()).detail(detail)
            }
            StorageError::NameUnknown => ApiError::new(NameUnknown),
            StorageError::Body(m) => ApiError::msg(BlobUploadInvalid, format!("request body: {m}")),
            StorageError::Meta(ref m) if m.is_unavailable() => {
                tracing::warn!(error = %e, "metadata store unavailable");
                ApiError::new(MetadataUnavailable).header(header::RETRY_AFTER, "5".to_owned())
            }
            // The object store away (connection refused, timeout, 5xx):
            // retry later, as for Redis; other I/O errors are ours.
            StorageError::Io(_) if e.is_storage_unavailable() => {
                tracing::warn!(error = %e, "storage unavailable");
                ApiError::new(StorageUnavailable).header(header::RETRY_AFTER, "5".to_owned())
            }
            StorageError::Io(_) | StorageError::Meta(_) => {
                tracing::error!(error = %e, "internal storage error");
                ApiError::new(Unknown)
            }
        }
    }
}
