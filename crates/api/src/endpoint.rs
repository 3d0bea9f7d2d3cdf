//! Parsing of `/v2/...` request paths into an [`Endpoint`], once, by hand:
//! repository names have any number of segments, so the resource is found
//! from the end of the path. The name is never percent-decoded (a valid name
//! needs no escaping, so `%2e%2e` is simply invalid); the last segment (a
//! tag, digest or upload id) is, since some clients escape `:` in digests.

use crate::errors::{ApiError, ErrorCode};
use zot_oci::{Digest, Reference, RepoName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Base,
    Catalog,
    Discover,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, uuid::Uuid),
    Referrers(RepoName, Digest),
    /// `/v2/_zot/ext/search` and any path under it (zot's `PathPrefix`):
    /// GraphQL.
    Search,
    /// `/v2/_zot/ext/userprefs` and any path under it: stars and bookmarks.
    UserPrefs,
    /// `/v2/_zot/ext/mgmt`: what the registry's login looks like.
    Mgmt,
    /// `/v2/_zot/ext/sync`: the sync extension's status (ours).
    SyncStatus,
}

/// The zot extension routes, by their path under `/v2/`. No repository can
/// be named like them: a name component starts with `[a-z0-9]`.
const ZOT_EXTENSIONS: &[(&str, Endpoint, bool)] = &[
    ("_zot/ext/search", Endpoint::Search, true),
    ("_zot/ext/userprefs", Endpoint::UserPrefs, true),
    ("_zot/ext/mgmt", Endpoint::Mgmt, false),
    ("_zot/ext/sync", Endpoint::SyncStatus, false),
];

/// The zot extension endpoint `rest` (the path after `/v2/`) names: its
/// route exactly, or a path under a route that is a prefix in zot.
fn zot_extension(rest: &str) -> Option<Endpoint> {
    ZOT_EXTENSIONS.iter().find_map(|(route, endpoint, prefix)| {
        let tail = rest.strip_prefix(route)?;
        (tail.is_empty() || (*prefix && tail.starts_with('/'))).then(|| endpoint.clone())
    })
}

fn name(segments: &[&str]) -> Result<RepoName, ApiError> {
    let joined = segments.join("/");
    joined.parse().map_err(|e: zot_oci::NameError| {
        ApiError::msg(
            ErrorCode::NameInvalid,
            format!("invalid repository name: {e}"),
        )
    })
}

fn decode(segment: &str) -> String {
    percent_decode(segment)
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

pub(crate) fn digest(s: &str) -> Result<Digest, ApiError> {
    s.parse().map_err(|e: zot_oci::DigestError| {
        ApiError::msg(ErrorCode::DigestInvalid, format!("invalid digest: {e}"))
    })
}

fn reference(s: &str) -> Result<Reference, ApiError> {
    if s.is_empty() {
        return Err(ApiError::new(ErrorCode::ManifestUnknown));
    }
    if s.contains(':') {
        return digest(s).map(Reference::Digest);
    }
    // `TAG_INVALID`, which `ApiError::for_method` turns into 404
    // `MANIFEST_UNKNOWN` for anything but a `PUT`.
    s.parse()
        .map(Reference::Tag)
        .map_err(|_| ApiError::new(ErrorCode::TagInvalid))
}

impl Endpoint {
    /// The repository the endpoint is about, if any.
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            Endpoint::Tags(r)
            | Endpoint::Manifest(r, _)
            | Endpoint::Blob(r, _)
            | Endpoint::UploadStart(r)
            | Endpoint::Upload(r, _)
            | Endpoint::Referrers(r, _) => Some(r),
            Endpoint::Base
            | Endpoint::Catalog
            | Endpoint::Discover
            | Endpoint::Search
            | Endpoint::UserPrefs
            | Endpoint::Mgmt
            | Endpoint::SyncStatus => None,
        }
    }

    /// Parses a request path. `None` for paths outside the API.
    pub fn parse(path: &str) -> Option<Result<Endpoint, ApiError>> {
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() || rest == "/" {
            return Some(Ok(Endpoint::Base));
        }
        let rest = rest.strip_prefix('/')?;
        match rest {
            "_catalog" => return Some(Ok(Endpoint::Catalog)),
            "_oci/ext/discover" => return Some(Ok(Endpoint::Discover)),
            _ => {}
        }
        if let Some(extension) = zot_extension(rest) {
            return Some(Ok(extension));
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let parsed = if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
            name(&segs[..n - 2]).map(Endpoint::Tags)
        } else if n >= 4
            && segs[n - 3] == "blobs"
            && segs[n - 2] == "uploads"
            && segs[n - 1].is_empty()
        {
            name(&segs[..n - 3]).map(Endpoint::UploadStart)
        } else if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
            name(&segs[..n - 2]).map(Endpoint::UploadStart)
        } else if n >= 3 && segs[n - 2] == "blobs" {
            name(&segs[..n - 2]).and_then(|r| Ok(Endpoint::Blob(r, digest(&decode(segs[n - 1]))?)))
        } else if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
            name(&segs[..n - 3]).and_then(|r| {
                let id = decode(segs[n - 1]).parse::<uuid::Uuid>().map_err(|_| {
                    ApiError::msg(ErrorCode::BlobUploadUnknown, "invalid upload id")
                })?;
                Ok(Endpoint::Upload(r, id))
            })
        } else if n >= 3 && segs[n - 2] == "manifests" {
            name(&segs[..n - 2])
                .and_then(|r| Ok(Endpoint::Manifest(r, reference(&decode(segs[n - 1]))?)))
        } else if n >= 3 && segs[n - 2] == "referrers" {
            name(&segs[..n - 2])
                .and_then(|r| Ok(Endpoint::Referrers(r, digest(&decode(segs[n - 1]))?)))
        } else {
            return Some(Err(ApiError::new(ErrorCode::NotFound)));
        };
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn ok(p: &str) -> Endpoint {
        Endpoint::parse(p).unwrap().unwrap()
    }

    fn code(p: &str) -> &'static str {
        Endpoint::parse(p).unwrap().unwrap_err().code.spec().0
    }

    #[test]
    fn routes() {
        let r = |s: &str| s.parse::<RepoName>().unwrap();
        assert_eq!(ok("/v2/"), Endpoint::Base);
        assert_eq!(ok("/v2"), Endpoint::Base);
        assert_eq!(ok("/v2/_catalog"), Endpoint::Catalog);
        assert_eq!(ok("/v2/a/b/c/tags/list"), Endpoint::Tags(r("a/b/c")));
        assert_eq!(ok("/v2/a/blobs/uploads/"), Endpoint::UploadStart(r("a")));
        assert_eq!(ok("/v2/a/blobs/uploads"), Endpoint::UploadStart(r("a")));
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            ok(&format!("/v2/a/b/blobs/uploads/{id}")),
            Endpoint::Upload(r("a/b"), id)
        );
        assert_eq!(
            ok(&format!("/v2/x/blobs/{D}")),
            Endpoint::Blob(r("x"), D.parse().unwrap())
        );
        assert_eq!(
            ok(&format!("/v2/x/blobs/{}", D.replace(':', "%3A"))),
            Endpoint::Blob(r("x"), D.parse().unwrap())
        );
        // Resource words are valid name segments too.
        assert_eq!(
            ok(&format!("/v2/blobs/manifests/blobs/{D}")),
            Endpoint::Blob(r("blobs/manifests"), D.parse().unwrap())
        );
        assert_eq!(
            ok("/v2/tags/manifests/latest"),
            Endpoint::Manifest(r("tags"), "latest".parse().unwrap())
        );
        assert_eq!(
            ok(&format!("/v2/a/referrers/{D}")),
            Endpoint::Referrers(r("a"), D.parse().unwrap())
        );
        assert!(Endpoint::parse("/v1/x").is_none());
    }

    #[test]
    fn zot_extensions() {
        assert_eq!(ok("/v2/_zot/ext/search"), Endpoint::Search);
        assert_eq!(ok("/v2/_zot/ext/search/"), Endpoint::Search);
        assert_eq!(ok("/v2/_zot/ext/search/anything/else"), Endpoint::Search);
        assert_eq!(ok("/v2/_zot/ext/userprefs"), Endpoint::UserPrefs);
        assert_eq!(ok("/v2/_zot/ext/userprefs/x"), Endpoint::UserPrefs);
        assert_eq!(ok("/v2/_zot/ext/mgmt"), Endpoint::Mgmt);
        // mgmt is one exact route; a longer word is no extension at all.
        assert_eq!(code("/v2/_zot/ext/mgmt/x"), "UNSUPPORTED");
        assert_eq!(code("/v2/_zot/ext/searchx"), "UNSUPPORTED");
        assert_eq!(code("/v2/_zot/ext/other"), "UNSUPPORTED");
        // Under the prefix, resource words name no repository.
        assert_eq!(ok("/v2/_zot/ext/search/tags/list"), Endpoint::Search);
        assert_eq!(code("/v2/_zot/tags/list"), "NAME_INVALID");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(code("/v2/../x/tags/list"), "NAME_INVALID");
        assert_eq!(code("/v2/%2e%2e/x/tags/list"), "NAME_INVALID");
        assert_eq!(code("/v2/Upper/tags/list"), "NAME_INVALID");
        assert_eq!(
            code(&format!("/v2/{}/tags/list", "a".repeat(256))),
            "NAME_INVALID"
        );
        assert_eq!(code("/v2/tags/list"), "UNSUPPORTED");
        assert_eq!(code("/v2/a/blobs/sha256:123"), "DIGEST_INVALID");
        assert_eq!(
            code("/v2/a/blobs/uploads/not-a-uuid"),
            "BLOB_UPLOAD_UNKNOWN"
        );
        assert_eq!(code("/v2/a/manifests/-bad"), "TAG_INVALID");
        assert_eq!(
            code(&format!("/v2/a/manifests/{}", "t".repeat(129))),
            "TAG_INVALID"
        );
        assert_eq!(code("/v2/a/whatever/x"), "UNSUPPORTED");
        assert_eq!(code("/v2//manifests/x"), "NAME_INVALID");
    }
}
