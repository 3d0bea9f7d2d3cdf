//! `credentialsFile`: a JSON object keyed by registry `host[:port]`, as
//! written in the upstream URL: `{"registry1:5000": {"username": "u",
//! "password": "p"}}`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{ClientError, Result};

/// A user name and password for one registry host.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The credentials of every host, by `host[:port]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialsFile(pub BTreeMap<String, Credential>);

impl CredentialsFile {
    /// Reads and parses the file.
    pub fn read(path: &Path) -> Result<CredentialsFile> {
        let err = |why: String| ClientError::Credentials {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        CredentialsFile::parse(&text).map_err(err)
    }

    /// Parses the file's JSON.
    pub fn parse(text: &[u8]) -> std::result::Result<CredentialsFile, String> {
        serde_json::from_slice(text)
            .map(CredentialsFile)
            .map_err(|e| e.to_string())
    }

    /// The credential for `host[:port]`.
    pub fn get(&self, host: &str) -> Option<&Credential> {
        self.0.get(host)
    }
}
