//! One test suite, two backends: every test written with [`on_both!`] runs
//! once against the embedded store (redb, in a temporary folder) and once
//! against Redis (a `redis-server` of its own, see `redis_common`), as
//! object_store runs one suite against every store.
#![allow(dead_code, reason = "each test binary uses a part")]

#[path = "../redis_common/mod.rs"]
pub mod redis;

use std::time::Duration;

use zot_meta::{MetaStore, RedisAddress};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Redb,
    Redis,
}

/// Where a test's store lives; [`Place::open`] opens it (again).
pub struct Place {
    pub kind: Kind,
    dir: tempfile::TempDir,
    pub server: Option<redis::RedisServer>,
    pub prefix: String,
}

pub fn address(server: &redis::RedisServer) -> RedisAddress {
    RedisAddress {
        url: server.url(),
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(5),
        sentinel: None,
        cluster: None,
    }
}

impl Place {
    pub fn new(kind: Kind) -> Place {
        Place {
            kind,
            dir: tempfile::tempdir().expect("a temporary folder"),
            server: (kind == Kind::Redis).then(redis::RedisServer::start),
            prefix: "zot".to_owned(),
        }
    }

    /// The store (a second handle on Redis; on redb, drop the first one first).
    pub fn open(&self) -> MetaStore {
        self.open_prefix(&self.prefix)
    }

    /// The store under another key prefix (Redis; redb: another file).
    pub fn open_prefix(&self, prefix: &str) -> MetaStore {
        match &self.server {
            Some(server) => MetaStore::open_redis(&address(server), prefix).expect("the store"),
            None => {
                MetaStore::open(&self.dir.path().join(format!("{prefix}.redb"))).expect("the store")
            }
        }
    }
}

/// A new store of `kind` and where it lives.
pub fn open(kind: Kind) -> (Place, MetaStore) {
    let place = Place::new(kind);
    let m = place.open();
    (place, m)
}

/// Each `fn name(kind) { body }` becomes a module `name` with two tests,
/// `redb` and `redis`, that run `body` with `kind` set to each backend.
#[macro_export]
macro_rules! on_both {
    ($($(#[$m:meta])* fn $name:ident($kind:ident) $body:block)*) => {$(
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($kind: $crate::common::Kind) $body
            #[test]
            fn redb() {
                run($crate::common::Kind::Redb)
            }
            #[test]
            fn redis() {
                run($crate::common::Kind::Redis)
            }
        }
    )*};
}
