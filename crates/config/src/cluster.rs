//! The top-level `cluster` section: zot's cluster mode, where every
//! repository belongs to one member and requests for it are proxied there.
//!
//! Invariants of a parsed [`ClusterConfig`]:
//! - `members` is non-empty; each member is `host:port` (zot's form) or
//!   `http://host:port` / `https://host:port`, with a port in 1..=65535 and
//!   nothing after it. The list is kept as written: its order decides which
//!   member owns which repository, so every member must have the same list.
//! - `hashKey` is exactly 16 bytes (the 128-bit SipHash key, as zot requires).
//! - `tls`, when present, names files (`cacert`; `cert` and `key` together)
//!   used by members when they talk HTTPS to each other. Files are not
//!   opened here.

use std::path::PathBuf;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// `cluster`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `cluster.members`, as written (`host:port`, optionally with a scheme).
    pub members: Vec<String>,
    /// `cluster.hashKey`: the SipHash-2-4 key, the 16 bytes of the string.
    pub hash_key: [u8; 16],
    /// `cluster.tls`: how members reach each other over HTTPS.
    pub tls: Option<ClusterTls>,
}

/// `cluster.tls`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterTls {
    /// CA that signs the members' server certificates (`cacert`), added to
    /// the system roots.
    pub cacert: Option<PathBuf>,
    /// Client certificate presented to other members (`cert`).
    pub cert: Option<PathBuf>,
    /// Its private key (`key`).
    pub key: Option<PathBuf>,
}

/// Reads `cluster`; `None` when absent or invalid (problems pushed).
pub(crate) fn parse(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<ClusterConfig> {
    let value = value?;
    let before = problems.len();
    let mut section = Section::new("cluster".to_owned(), value, problems)?;
    let members = match fields::string_list(&mut section, "members", problems) {
        Some(list) if list.is_empty() => {
            problems.push(Problem::new(
                section.child("members"),
                "must list at least one member",
            ));
            Vec::new()
        }
        Some(list) => list
            .into_iter()
            .filter_map(|(path, member)| match member_problem(&member) {
                None => Some(member),
                Some(message) => {
                    problems.push(Problem::new(path, message));
                    None
                }
            })
            .collect(),
        None => {
            if problems.len() == before {
                problems.push(Problem::new(section.child("members"), "required"));
            }
            Vec::new()
        }
    };
    let hash_key = match fields::string(&mut section, "hashKey", problems) {
        Some(key) => match <[u8; 16]>::try_from(key.as_bytes()) {
            Ok(key) => Some(key),
            Err(_) => {
                problems.push(Problem::new(
                    section.child("hashKey"),
                    format!(
                        "must be exactly 16 bytes (a 128-bit SipHash key), found {}",
                        key.len()
                    ),
                ));
                None
            }
        },
        None => {
            if !section.has("hashKey") {
                problems.push(Problem::new(section.child("hashKey"), "required"));
            }
            None
        }
    };
    let tls = section
        .get("tls")
        .and_then(|v| tls(section.child("tls"), v, problems));
    section.finish(problems);
    let hash_key = hash_key?;
    (problems.len() == before).then_some(ClusterConfig {
        members,
        hash_key,
        tls,
    })
}

/// What is wrong with a member address, if anything.
fn member_problem(member: &str) -> Option<String> {
    let rest = member
        .strip_prefix("http://")
        .or_else(|| member.strip_prefix("https://"))
        .unwrap_or(member);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Some(format!("{member:?} is not host:port"));
    };
    if host.is_empty() || host.contains('/') {
        return Some(format!("{member:?} is not host:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => None,
        _ => Some(format!("{member:?}: the port must be 1..=65535")),
    }
}

fn tls(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<ClusterTls> {
    let mut section = Section::new(path, value, problems)?;
    let mut file = |name: &str, problems: &mut Vec<Problem>| {
        fields::string(&mut section, name, problems)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let config = ClusterTls {
        cacert: file("cacert", problems),
        cert: file("cert", problems),
        key: file("key", problems),
    };
    if config.cert.is_some() != config.key.is_some() {
        problems.push(Problem::new(
            section.child("cert"),
            "cert and key go together (a client certificate and its key)",
        ));
    }
    section.finish(problems);
    Some(config)
}
