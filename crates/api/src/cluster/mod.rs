//! Cluster mode (zot's top-level `cluster` section): every repository
//! belongs to one member ([`ring`]); a request for a repository of another
//! member is proxied to it ([`proxy`]); the catalog and GraphQL search ask
//! every member and merge ([`fanout`]).
//!
//! Invariants:
//! - Routing happens after authentication and authorization on the
//!   receiving member (as zot); the owner checks the forwarded credentials
//!   again. An unauthenticated request is refused before it could be
//!   forwarded.
//! - A request forwarded by a member carries [`HOP_HEADER`]. A member that
//!   receives such a request for a repository it does not own answers 500
//!   with an OCI error naming the misconfiguration, instead of forwarding it
//!   again (zot exits the process there).
//! - Proxying is on only with two members or more; this member is the first
//!   in `members` whose address resolves to an IP of this host and whose
//!   port is `http.port` (zot's rule); none is a start-up error.
//! - Members talk HTTPS to each other exactly when this member serves
//!   HTTPS (`http.tls`), verifying certificates against the system roots
//!   and `cluster.tls.cacert`, presenting `cluster.tls.cert` when set.

pub mod fanout;
pub mod paging;
pub mod proxy;
pub mod ring;
mod tls;

use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use axum::extract::Request;
use zot_config::ClusterConfig;

use crate::endpoint::Endpoint;
use crate::errors::{ApiError, ErrorCode};

/// zot's header marking a request forwarded by another member.
pub const HOP_HEADER: &str = "x-zot-cluster-hop-count";
/// Names the members whose part is missing from a merged catalog.
pub const PARTIAL_HEADER: &str = "x-zot-cluster-partial";

/// How long a member waits to connect to another.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A cluster configuration that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no cluster member is this instance: none of {members:?} resolves to an address of this host with port {port}"
    )]
    NoLocalMember { members: Vec<String>, port: u16 },
    #[error("cluster TLS: {0}")]
    Tls(String),
    #[error("the HTTP client for cluster members: {0}")]
    Client(#[from] reqwest::Error),
}

/// One member as written in `members`, and the URL it is reached at.
#[derive(Debug, Clone)]
pub struct Member {
    /// As written in the config (`host:port`).
    pub name: String,
    /// `http(s)://host:port`, without a trailing `/`.
    pub base: String,
}

/// The cluster as this member sees it.
pub struct Cluster {
    members: Vec<Member>,
    local: usize,
    key: [u8; 16],
    client: reqwest::Client,
}

/// What to do with a request for a repository.
#[derive(Debug)]
pub enum Route<'a> {
    /// Serve it here.
    Local,
    /// Forward it to its owner.
    Forward(&'a Member),
}

impl Cluster {
    /// The cluster of `config` for the member listening on `port`, HTTPS
    /// between members when `https`.
    pub fn new(config: &ClusterConfig, port: u16, https: bool) -> Result<Cluster, ClusterError> {
        let local = local_member(&config.members, port)?;
        Self::with_local(config, local, https)
    }

    /// Like [`Cluster::new`], with this member's index given.
    pub fn with_local(
        config: &ClusterConfig,
        local: usize,
        https: bool,
    ) -> Result<Cluster, ClusterError> {
        let scheme = if https { "https" } else { "http" };
        let members = config
            .members
            .iter()
            .map(|m| {
                let host = strip_scheme(m);
                Member {
                    name: m.clone(),
                    base: format!("{scheme}://{host}"),
                }
            })
            .collect();
        let tls = tls::client_config(config.tls.as_ref())?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Cluster {
            members,
            local,
            key: config.hash_key,
            client,
        })
    }

    /// This member.
    pub fn local(&self) -> &Member {
        &self.members[self.local]
    }

    /// Every member, in the configured order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The index of this member in [`Cluster::members`].
    pub fn local_index(&self) -> usize {
        self.local
    }

    /// Every other member, in the configured order.
    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != self.local)
            .map(|(_, m)| m)
    }

    /// Whether requests are ever forwarded (two members or more).
    pub fn proxying(&self) -> bool {
        self.members.len() > 1
    }

    /// The member owning `repo`.
    pub fn owner(&self, repo: &str) -> &Member {
        &self.members[ring::owner_index(&self.key, repo, self.members.len())]
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Where a request for `endpoint` is served; an error for a forwarded
    /// request that would be forwarded again.
    pub(crate) fn route(&self, endpoint: &Endpoint, req: &Request) -> Result<Route<'_>, ApiError> {
        let Some(repo) = endpoint.repository() else {
            return Ok(Route::Local);
        };
        if !self.proxying() {
            return Ok(Route::Local);
        }
        let index = ring::owner_index(&self.key, repo.as_str(), self.members.len());
        if index == self.local {
            return Ok(Route::Local);
        }
        let owner = &self.members[index];
        if is_forwarded(req) {
            tracing::error!(
                repository = %repo,
                owner = %owner.name,
                local = %self.local().name,
                "a request forwarded by a cluster member is for a repository of another member: members disagree on cluster.members or cluster.hashKey"
            );
            return Err(ApiError::msg(
                ErrorCode::Unknown,
                format!(
                    "cluster misconfigured: this request was already forwarded by a member, but {} says repository {repo} belongs to {}; check that every member has the same cluster.members and cluster.hashKey",
                    self.local().name,
                    owner.name
                ),
            ));
        }
        Ok(Route::Forward(owner))
    }
}

/// Whether a member forwarded this request.
pub(crate) fn is_forwarded(req: &Request) -> bool {
    req.headers().contains_key(HOP_HEADER)
}

fn strip_scheme(member: &str) -> &str {
    let rest = member
        .strip_prefix("http://")
        .or_else(|| member.strip_prefix("https://"))
        .unwrap_or(member);
    rest.strip_suffix('/').unwrap_or(rest)
}

/// The index of the first member that resolves to an address of this host
/// with port `port`.
pub fn local_member(members: &[String], port: u16) -> Result<usize, ClusterError> {
    members
        .iter()
        .position(|m| {
            let host = strip_scheme(m);
            host.to_socket_addrs()
                .map(|mut addrs| addrs.any(|a| a.port() == port && is_local_ip(a.ip())))
                .unwrap_or(false)
        })
        .ok_or_else(|| ClusterError::NoLocalMember {
            members: members.to_vec(),
            port,
        })
}

/// Whether `ip` belongs to this host: a socket can be bound to it.
fn is_local_ip(ip: IpAddr) -> bool {
    !ip.is_unspecified() && UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(members: &[&str]) -> ClusterConfig {
        ClusterConfig {
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            hash_key: *b"loremipsumdolors",
            tls: None,
        }
    }

    #[test]
    fn the_local_member_is_found_by_address_and_port() {
        let members = ["192.0.2.1:9000", "127.0.0.1:9001", "localhost:9002"].map(String::from);
        assert_eq!(local_member(&members, 9001).expect("local"), 1);
        assert_eq!(local_member(&members, 9002).expect("local"), 2);
        // 192.0.2.1 (TEST-NET-1) is nobody's address.
        assert!(matches!(
            local_member(&members, 9000),
            Err(ClusterError::NoLocalMember { port: 9000, .. })
        ));
    }

    #[test]
    fn requests_route_to_the_owner() {
        let c = Cluster::with_local(
            &config(&["127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"]),
            1,
            false,
        )
        .expect("cluster");
        // Owners from `ring`'s Go-checked table.
        assert_eq!(c.owner("alpine").name, "127.0.0.1:9001");
        assert_eq!(c.owner("zot").base, "http://127.0.0.1:9002");
        let get = |path: &str, hop: bool| {
            let mut b = Request::builder().uri(path);
            if hop {
                b = b.header(HOP_HEADER, "1");
            }
            b.body(axum::body::Body::empty()).expect("request")
        };
        let route = |path: &str, hop: bool| {
            let endpoint = Endpoint::parse(path).expect("an API path").expect("parses");
            c.route(&endpoint, &get(path, hop))
                .map(|r| match r {
                    Route::Local => None,
                    Route::Forward(m) => Some(m.name.clone()),
                })
                .map_err(|e| e.code)
        };
        assert_eq!(route("/v2/alpine/tags/list", false), Ok(None));
        assert_eq!(route("/v2/alpine/tags/list", true), Ok(None));
        assert_eq!(
            route("/v2/zot/manifests/latest", false),
            Ok(Some("127.0.0.1:9002".to_owned()))
        );
        assert_eq!(
            route("/v2/library/alpine/blobs/uploads/", false),
            Ok(Some("127.0.0.1:9000".to_owned()))
        );
        // Forwarded once already: refused, never forwarded again.
        assert_eq!(
            route("/v2/zot/manifests/latest", true),
            Err(ErrorCode::Unknown)
        );
        // No repository: always here.
        assert_eq!(route("/v2/_catalog", true), Ok(None));
        assert_eq!(route("/v2/", false), Ok(None));
    }

    #[test]
    fn one_member_never_forwards() {
        let c = Cluster::with_local(&config(&["127.0.0.1:9000"]), 0, false).expect("cluster");
        assert!(!c.proxying());
        let endpoint = Endpoint::parse("/v2/zot/tags/list")
            .expect("api")
            .expect("parses");
        let req = Request::builder()
            .uri("/v2/zot/tags/list")
            .header(HOP_HEADER, "1")
            .body(axum::body::Body::empty())
            .expect("request");
        assert!(matches!(c.route(&endpoint, &req), Ok(Route::Local)));
    }
}
