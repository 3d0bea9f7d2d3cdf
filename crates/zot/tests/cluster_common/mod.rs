//! Three `zot` processes on loopback as cluster members (one storage root
//! each, the same `cluster` section), and what the cluster tests ask them.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the harness"
)]

use std::net::TcpListener;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::fixtures::{Image, image, noise};
use crate::common::{Client, Config, Registry, Response};

pub const HASH_KEY: &str = "loremipsumdolors";
pub const HOP: &str = "X-Zot-Cluster-Hop-Count";
pub const PARTIAL: &str = "x-zot-cluster-partial";

/// Repositories and the index of their owner among three members, as
/// dchest/siphash's Go code computes them with [`HASH_KEY`] (the same table
/// as the unit test of `zot_api::cluster::ring`).
pub const REPOS: &[(&str, usize)] = &[
    ("project/app-0", 1),
    ("project/app-1", 2),
    ("project/app-2", 0),
    ("project/app-3", 2),
    ("project/app-4", 0),
    ("project/app-5", 2),
];

pub fn free_ports(n: usize) -> Vec<u16> {
    // Held together so that the OS hands out distinct ports.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").port())
        .collect()
}

/// Three members with search on; `http` holds more keys of each one's
/// `http` section.
pub fn start_cluster(http: &[(&str, Value)]) -> Vec<Registry> {
    start_cluster_with(http, None, json!({ "search": { "enable": true } }))
}

/// Like [`start_cluster`], with `cluster.tls` when given, and `extensions`.
pub fn start_cluster_with(
    http: &[(&str, Value)],
    tls: Option<Value>,
    extensions: Value,
) -> Vec<Registry> {
    let ports = free_ports(3);
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut cluster = json!({ "members": members, "hashKey": HASH_KEY });
    if let Some(tls) = tls {
        cluster["tls"] = tls;
    }
    ports
        .iter()
        .map(|port| {
            let mut config = Config::default()
                .with_http("port", json!(port.to_string()))
                .with_section("cluster", cluster.clone())
                .with_extensions(extensions.clone());
            for (key, value) in http {
                config = config.with_http(key, value.clone());
            }
            Registry::start_with(config)
        })
        .collect()
}

pub fn small(seed: &str) -> Image {
    image(
        ("linux", "amd64"),
        &[vec![("seed.txt", noise(seed, 4096))]],
        false,
    )
}

pub fn stored(root: &Path, repo: &str) -> bool {
    root.join(repo).join("index.json").exists()
}

pub fn catalog_pages(client: &Client, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut next = format!("/v2/_catalog?n={n}");
    loop {
        let r = client.get(&next);
        r.expect_status(200, "catalog page");
        assert_eq!(r.header(PARTIAL), None, "nobody is down: {r}");
        let page = r.json()["repositories"].clone();
        names.extend(
            page.as_array()
                .expect("repositories")
                .iter()
                .map(|v| v.as_str().expect("name").to_owned()),
        );
        match r.header("link") {
            Some(link) => {
                next = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("link target")
                    .to_owned()
            }
            None => return names,
        }
    }
}

pub fn global_search(client: &Client, query: &str) -> Response {
    let body = json!({
        "query": format!("{{ GlobalSearch(query: \"{query}\") {{ Page {{ TotalCount ItemCount }} Repos {{ Name }} }} }}")
    });
    client.request(
        "POST",
        "/v2/_zot/ext/search",
        &[("content-type", "application/json")],
        Some(&serde_json::to_vec(&body).expect("JSON")),
    )
}

pub fn repo_names(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer["data"]["GlobalSearch"]["Repos"]
        .as_array()
        .unwrap_or_else(|| panic!("no Repos in {answer}"))
        .iter()
        .map(|r| r["Name"].as_str().expect("Name").to_owned())
        .collect();
    names.sort();
    names
}
