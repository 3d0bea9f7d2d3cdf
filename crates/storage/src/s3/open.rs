//! Opening a bucket from `storage.storageDriver`, with credentials from,
//! in order: the config's `accesskey`/`secretkey`, the file named by
//! `credentialsfile`, the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the AWS shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`; profile `AWS_PROFILE`, else `default`), and last
//! `object_store`'s own chain (web identity, container, instance metadata).

use super::{S3Backend, Store};
use object_store::ClientOptions;
use object_store::aws::AmazonS3Builder;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zot_config::S3Config;

/// The request timeout of a server-side copy (`CopyObject`): a copy of
/// several GiB can take minutes, and the default request timeout (30 s,
/// or `S3Options::timeout_secs`) would fail it every time.
pub(super) const COPY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What [`S3Backend::open`] needs beyond the config.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Seconds before a request is given up (default: `object_store`'s).
    pub timeout_secs: Option<u64>,
}

/// `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token`
/// of `profile` in an AWS shared-credentials file (INI).
fn read_credentials_file(
    path: &Path,
    profile: &str,
) -> io::Result<(String, String, Option<String>)> {
    let text = std::fs::read_to_string(path)?;
    let mut section = String::new();
    let mut found: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        if section == profile
            && let Some((k, v)) = line.split_once('=')
        {
            found.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    match (
        found.remove("aws_access_key_id"),
        found.remove("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok((id, secret, found.remove("aws_session_token"))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: no aws_access_key_id and aws_secret_access_key in profile [{profile}]",
                path.display()
            ),
        )),
    }
}

fn shared_credentials_file() -> Option<PathBuf> {
    std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
        .filter(|p| p.is_file())
}

impl S3Backend {
    /// A driver over the bucket of `config` (nothing is requested yet).
    pub fn open(config: &S3Config, options: &S3Options) -> io::Result<S3Backend> {
        let scheme = if config.secure { "https" } else { "http" };
        let mut client = ClientOptions::new()
            .with_allow_http(!config.secure || config.endpoint.is_some())
            .with_allow_invalid_certificates(config.skip_verify);
        if let Some(t) = options.timeout_secs {
            client = client.with_timeout(std::time::Duration::from_secs(t));
        }
        let reach = Arc::new(super::reach::Reachability::default());
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.force_path_style)
            .with_client_options(client.clone())
            .with_retry(super::reach::retry_config())
            .with_http_connector(super::reach::WatchedConnector(reach.clone()));
        if let Some(endpoint) = &config.endpoint {
            let endpoint = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!("{scheme}://{endpoint}")
            };
            builder = builder.with_endpoint(endpoint);
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let credentials = match (&config.access_key, &config.secret_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), None)),
            _ => {
                let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
                if let Some(file) = &config.credentials_file {
                    Some(read_credentials_file(file, &profile)?)
                } else if let (Some(id), Some(secret)) =
                    (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
                {
                    Some((id, secret, env("AWS_SESSION_TOKEN")))
                } else if let Some(file) = shared_credentials_file() {
                    Some(read_credentials_file(&file, &profile)?)
                } else {
                    None
                }
            }
        };
        if let Some((id, secret, token)) = credentials {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
            if let Some(token) = token {
                builder = builder.with_token(token);
            }
        }
        let copier = builder
            .clone()
            .with_client_options(client.with_timeout(COPY_TIMEOUT))
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let s3 = builder
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(S3Backend {
            store: Arc::new(Store {
                s3,
                copier,
                storage_class: config.storage_class.clone(),
            }),
            prefix: config.root_directory.trim_matches('/').to_owned(),
            chunk_size: usize::try_from(config.chunk_size).unwrap_or(usize::MAX),
            pending: Mutex::new(HashMap::new()),
            reach,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_named_profile() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[other]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=T\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let got = read_credentials_file(&file, "default").ok();
        assert_eq!(got, Some(("A".into(), "B".into(), None)));
        let got = read_credentials_file(&file, "other").ok();
        assert_eq!(got, Some(("C".into(), "D".into(), Some("T".into()))));
        let missing = read_credentials_file(&file, "nope").err().map(|e| e.kind());
        assert_eq!(missing, Some(io::ErrorKind::InvalidData));
    }
}
