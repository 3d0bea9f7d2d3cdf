//! Cluster mode with three real `zot` processes on loopback, one storage
//! root each, the same `cluster` section: every repository is stored by its
//! owner only (SipHash-2-4 of the name, as the Go zot), whichever member a
//! client talks to; catalog and GraphQL search are merged across members;
//! a member down makes them partial (200 with a marker) and its
//! repositories a 502; a forwarded request that would be forwarded again is
//! refused; credentials are checked before anything is forwarded.

mod auth_common;
mod cluster_common;
mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use auth_common::pki::Pki;
use auth_common::{basic, write_htpasswd};
use cluster_common::*;
use common::fixtures::{Image, multi_layer_image, noise};
use common::{Client, OciLayout, Registry, run, run_stdout, sha256_digest, skopeo, tool};

#[test]
fn repositories_live_on_their_owner_and_are_served_by_every_member() {
    let mut members = start_cluster(&[]);
    let clients: Vec<Client> = members.iter().map(Registry::client).collect();
    let all: Vec<String> = REPOS.iter().map(|(r, _)| (*r).to_owned()).collect();

    // Everything pushed through member 0.
    let images: Vec<Image> = REPOS.iter().map(|(repo, _)| small(repo)).collect();
    for ((repo, _), image) in REPOS.iter().zip(&images) {
        image.push(&clients[0], repo, "v1");
    }
    for (repo, owner) in REPOS {
        for (i, member) in members.iter().enumerate() {
            assert_eq!(
                stored(member.root(), repo),
                i == *owner,
                "{repo} must be stored by member {owner} only (checked member {i})"
            );
        }
    }

    // Every repository pulled through every member.
    for ((repo, _), image) in REPOS.iter().zip(&images) {
        for client in &clients {
            let m = client.get_manifest(repo, "v1");
            m.expect_status(200, &format!("GET {repo}:v1"));
            assert_eq!(m.body, image.manifest.bytes);
            assert_eq!(
                m.header("docker-content-digest"),
                Some(sha256_digest(&image.manifest.bytes).as_str())
            );
            let head = client.request(
                "HEAD",
                &format!("/v2/{repo}/manifests/v1"),
                &[("accept", image.manifest.media_type.as_str())],
                None,
            );
            head.expect_status(200, "HEAD manifest");
            assert_eq!(
                head.header("content-length"),
                Some(image.manifest.bytes.len().to_string().as_str()),
                "{head}"
            );
            for blob in image.blobs() {
                let d = sha256_digest(&blob.bytes);
                let b = client.get(&format!("/v2/{repo}/blobs/{d}"));
                b.expect_status(200, &format!("GET {repo} blob"));
                assert_eq!(b.body, blob.bytes);
                // A range goes through too.
                let r = client.request(
                    "GET",
                    &format!("/v2/{repo}/blobs/{d}"),
                    &[("range", "bytes=1-3")],
                    None,
                );
                r.expect_status(206, "ranged GET");
                assert_eq!(r.body, blob.bytes[1..4]);
            }
            let tags = client.get(&format!("/v2/{repo}/tags/list"));
            tags.expect_status(200, "tags");
            assert_eq!(tags.json()["tags"], json!(["v1"]));
        }
    }

    // A chunked upload through a member that does not own the repository.
    let (repo, owner) = ("project/app-1", 2);
    let via = &clients[0];
    let data = noise("chunked", 300_000);
    let digest = sha256_digest(&data);
    let start = via.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    start.expect_status(202, "POST upload through a non-owner");
    let mut location = start.header("location").expect("Location").to_owned();
    assert!(
        location.starts_with('/'),
        "the client keeps talking to the member it knows: {location}"
    );
    for (from, to) in [(0, 100_000), (100_000, 300_000)] {
        let range = format!("{from}-{}", to - 1);
        let r = via.request(
            "PATCH",
            &location,
            &[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
            ],
            Some(&data[from..to]),
        );
        r.expect_status(202, "PATCH through a non-owner");
        assert_eq!(r.header("range"), Some(format!("0-{}", to - 1).as_str()));
        location = r.header("location").expect("Location").to_owned();
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    via.request("PUT", &format!("{location}{sep}digest={digest}"), &[], None)
        .expect_status(201, "PUT closing the upload");
    assert!(
        members[owner]
            .root()
            .join(repo)
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
            .exists(),
        "the chunked blob is on its owner"
    );
    let b = clients[1].get(&format!("/v2/{repo}/blobs/{digest}"));
    b.expect_status(200, "GET the chunked blob through a third member");
    assert_eq!(b.body, data);

    // The catalog is the same from every member, whole and page by page.
    for client in &clients {
        let r = client.get("/v2/_catalog");
        r.expect_status(200, "catalog");
        assert_eq!(r.json()["repositories"], json!(all));
        assert_eq!(catalog_pages(client, 4), all);
        assert_eq!(catalog_pages(client, 1), all);
        let after = client.get("/v2/_catalog?n=2&last=project/app-2");
        assert_eq!(
            after.json()["repositories"],
            json!(["project/app-3", "project/app-4"])
        );
    }

    // GlobalSearch merged from every member, the same answer from each.
    let answers: Vec<Value> = clients
        .iter()
        .map(|c| global_search(c, "project/app").json())
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    for client in &clients {
        let r = global_search(client, "project/app");
        r.expect_status(200, "GlobalSearch");
        let doc = r.json();
        assert!(doc["errors"].is_null(), "no errors: {doc}");
        assert_eq!(repo_names(&doc), all);
        assert_eq!(doc["data"]["GlobalSearch"]["Page"]["TotalCount"], 6);
    }

    // Pages of the merged answer: the same from every member, together
    // every repository once.
    for client in &clients {
        let mut seen = Vec::new();
        for offset in [0, 2, 4, 6] {
            let q = format!(
                "{{ GlobalSearch(query: \"project/app\", requestedPage: {{limit: 2, offset: {offset}, sortBy: ALPHABETIC_ASC}}) {{ Page {{ TotalCount ItemCount }} Repos {{ Name }} }} }}"
            );
            let body = serde_json::to_vec(&json!({ "query": q })).expect("JSON");
            let r = client.request(
                "POST",
                "/v2/_zot/ext/search",
                &[("content-type", "application/json")],
                Some(&body),
            );
            r.expect_status(200, "a page of GlobalSearch");
            let doc = r.json();
            let page = repo_names(&doc);
            assert_eq!(page.len(), if offset < 6 { 2 } else { 0 }, "{doc}");
            assert_eq!(doc["data"]["GlobalSearch"]["Page"]["TotalCount"], 6);
            assert_eq!(doc["data"]["GlobalSearch"]["Page"]["ItemCount"], page.len());
            seen.extend(page);
        }
        seen.sort();
        assert_eq!(seen, all, "pages overlap or skip");
    }

    // Other queries merge the same way (GET form of GraphQL here).
    let r = clients[1].get(
        "/v2/_zot/ext/search?query=%7B%20RepoListWithNewestImage%20%7B%20Page%20%7B%20TotalCount%20%7D%20Results%20%7B%20Name%20%7D%20%7D%20%7D",
    );
    r.expect_status(200, "RepoListWithNewestImage");
    let doc = r.json();
    let list = &doc["data"]["RepoListWithNewestImage"];
    let mut names: Vec<&str> = list["Results"]
        .as_array()
        .unwrap_or_else(|| panic!("Results: {doc}"))
        .iter()
        .filter_map(|r| r["Name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, all, "{doc}");
    assert_eq!(list["Page"]["TotalCount"], 6, "{doc}");

    // A forwarded request that would be forwarded again is refused.
    let looped = clients[0].request("GET", "/v2/project/app-1/tags/list", &[(HOP, "1")], None);
    looped.expect_oci_error(500, "UNKNOWN", "a request forwarded twice");
    assert!(looped.text().contains("cluster"), "{looped}");
    // The member is still up and serving.
    clients[0]
        .get_manifest("project/app-2", "v1")
        .expect_status(200, "member 0 after refusing a loop");

    // One member down: partial catalog and search, clean errors for its repositories.
    let down = members[2].addr().to_owned();
    members[2].kill9();
    let alive: Vec<String> = REPOS
        .iter()
        .filter(|(_, owner)| *owner != 2)
        .map(|(r, _)| (*r).to_owned())
        .collect();
    for client in &clients[..2] {
        let r = client.get("/v2/_catalog");
        r.expect_status(200, "catalog with a member down");
        assert_eq!(r.json()["repositories"], json!(alive));
        let partial = r.header(PARTIAL).unwrap_or_else(|| panic!("partial: {r}"));
        assert!(partial.contains(&down), "{partial} names {down}");

        let s = global_search(client, "project/app");
        s.expect_status(200, "GlobalSearch with a member down");
        let doc = s.json();
        assert_eq!(repo_names(&doc), alive);
        let errors = doc["errors"].to_string();
        assert!(errors.contains(&down), "errors name {down}: {doc}");
        assert!(s.header(PARTIAL).is_some_and(|p| p.contains(&down)));

        client.get_manifest("project/app-1", "v1").expect_oci_error(
            502,
            "UNAVAILABLE",
            "a repository of the stopped member",
        );
        client
            .request("POST", "/v2/project/app-3/blobs/uploads/", &[], Some(b""))
            .expect_oci_error(502, "UNAVAILABLE", "an upload to the stopped member");
        client
            .get_manifest("project/app-0", "v1")
            .expect_status(200, "a repository of a live member");
    }
}

#[test]
fn big_blobs_stream_through_a_non_owner() {
    let members = start_cluster(&[]);
    let (repo, owner) = ("project/app-2", 0);
    let via = &members[1];
    // 96 MiB: well above what a buffering proxy could hide.
    let data = noise("big", 96 << 20);
    let before = via.peak_rss_kib();
    let digest = via.client().push_blob(repo, &data);
    let got = members[2]
        .client()
        .get(&format!("/v2/{repo}/blobs/{digest}"));
    got.expect_status(200, "GET the big blob through another non-owner");
    assert!(got.body == data, "the big blob comes back whole");
    let grown = via.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "the forwarding member's peak memory grew by {grown} KiB for a 96 MiB blob"
    );
    assert!(
        members[owner]
            .root()
            .join(repo)
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
            .exists()
    );
}

#[test]
fn credentials_are_checked_before_forwarding_and_by_the_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    write_htpasswd(&htpasswd, &[("alice", "alice-pw")]);
    let members = start_cluster(&[("auth", json!({ "htpasswd": { "path": htpasswd } }))]);
    let alice = basic("alice", "alice-pw");
    let (repo, owner) = ("project/app-0", 1);
    let via = members[0].client();
    let owner_client = members[owner].client();

    // Anonymous, through a non-owner: refused there.
    via.get(&format!("/v2/{repo}/tags/list"))
        .expect_status(401, "anonymous through a non-owner");
    via.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    )
    .expect_status(401, "anonymous upload through a non-owner");
    // The hop header opens nothing on the owner.
    owner_client
        .request("GET", &format!("/v2/{repo}/tags/list"), &[(HOP, "1")], None)
        .expect_status(401, "anonymous with the hop header");
    // Wrong password: refused.
    via.request(
        "GET",
        &format!("/v2/{repo}/tags/list"),
        &[("authorization", &basic("alice", "nope"))],
        None,
    )
    .expect_status(401, "a wrong password through a non-owner");

    // Alice pushes through the non-owner; the owner stores it.
    let image = small("secured");
    let auth = [("authorization", alice.as_str())];
    for blob in image.blobs() {
        let start = via.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &auth,
            Some(b""),
        );
        start.expect_status(202, "POST as alice");
        let location = start.header("location").expect("Location");
        let sep = if location.contains('?') { '&' } else { '?' };
        let digest = sha256_digest(&blob.bytes);
        via.request(
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &auth,
            Some(&blob.bytes),
        )
        .expect_status(201, "PUT as alice");
    }
    via.request(
        "PUT",
        &format!("/v2/{repo}/manifests/v1"),
        &[
            auth[0],
            ("content-type", image.manifest.media_type.as_str()),
        ],
        Some(&image.manifest.bytes),
    )
    .expect_status(201, "PUT manifest as alice");
    assert!(stored(members[owner].root(), repo));
    assert!(!stored(members[0].root(), repo));
    let tags = via.request("GET", &format!("/v2/{repo}/tags/list"), &auth, None);
    tags.expect_status(200, "tags as alice");
    // The merged catalog needs credentials too, and forwards them.
    via.get("/v2/_catalog")
        .expect_status(401, "anonymous catalog");
    let catalog = via.request("GET", "/v2/_catalog", &auth, None);
    catalog.expect_status(200, "catalog as alice");
    assert_eq!(catalog.json()["repositories"], json!([repo]));
    assert_eq!(catalog.header(PARTIAL), None, "{catalog}");
}

#[test]
fn members_talk_https_and_skopeo_pushes_through_any() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "zot-member", true);
    let ca = pki.path("ca.crt");
    let members = start_cluster_with(
        &[("tls", json!({ "cert": cert, "key": key }))],
        Some(json!({ "cacert": ca })),
        json!({ "search": { "enable": true } }),
    );
    // skopeo's cert dir: our CA.
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(&ca, certs.join("ca.crt")).expect("copy CA");
    let certs = certs.to_str().expect("UTF-8 path").to_owned();
    let layout = OciLayout::create(&dir.path().join("layout"));
    layout.add_image(&multi_layer_image("cluster-tls"), "v1");

    for (repo, owner) in REPOS {
        let dest = format!("docker://{}/{repo}:v1", members[0].addr());
        run(skopeo().args([
            "copy",
            "--dest-cert-dir",
            &certs,
            &layout.reference("v1"),
            &dest,
        ]));
        for (i, member) in members.iter().enumerate() {
            assert_eq!(stored(member.root(), repo), i == *owner, "{repo} on {i}");
        }
        let src = format!("docker://{}/{repo}:v1", members[2].addr());
        let digest = run_stdout(skopeo().args([
            "inspect",
            "--cert-dir",
            &certs,
            "--format",
            "{{.Digest}}",
            &src,
        ]));
        assert!(digest.trim().starts_with("sha256:"), "{digest}");
    }
    let catalog = run_stdout(tool("curl").args([
        "-s",
        "--cacert",
        ca.to_str().expect("UTF-8 path"),
        &format!("https://{}/v2/_catalog", members[1].addr()),
    ]));
    let all: Vec<&str> = REPOS.iter().map(|(r, _)| *r).collect();
    let got: Value = serde_json::from_str(&catalog).expect("JSON catalog");
    assert_eq!(got["repositories"], json!(all), "merged over HTTPS");
}

#[test]
fn each_member_syncs_the_repositories_it_owns() {
    let upstream = Registry::start();
    let client = upstream.client();
    for (repo, _) in REPOS {
        small(repo).push(&client, repo, "v1");
    }
    let members = start_cluster_with(
        &[],
        None,
        json!({ "sync": { "enable": true, "registries": [{
            "urls": [upstream.url()], "tlsVerify": false, "pollInterval": "1h",
            "content": [{ "prefix": "**" }] }] } }),
    );
    // Every member's first run (at start-up) ends.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut runs = Vec::new();
    for member in &members {
        let run = loop {
            let s = member.client().get("/v2/_zot/ext/sync").json();
            let registry = s["registries"][0].clone();
            if registry["runs"].as_u64().is_some_and(|n| n >= 1) {
                break registry["lastRun"].clone();
            }
            assert!(Instant::now() < deadline, "no sync run finished: {s}");
            std::thread::sleep(Duration::from_millis(200));
        };
        runs.push(run);
    }
    for (i, member) in members.iter().enumerate() {
        let owned = REPOS.iter().filter(|(_, owner)| *owner == i).count();
        assert_eq!(runs[i]["error"], Value::Null, "member {i}: {}", runs[i]);
        assert_eq!(runs[i]["copied"], owned, "member {i}: {}", runs[i]);
        for (repo, owner) in REPOS {
            assert_eq!(stored(member.root(), repo), i == *owner, "{repo} on {i}");
        }
    }
    // And every member serves every synced repository.
    for member in &members {
        let c = member.client();
        for (repo, _) in REPOS {
            c.get_manifest(repo, "v1")
                .expect_status(200, &format!("synced {repo}"));
        }
    }
}

#[test]
fn a_member_list_without_this_instance_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_ports(1)[0];
    let config = json!({
        "storage": { "rootDirectory": dir.path().join("root") },
        "http": { "address": "127.0.0.1", "port": port.to_string() },
        "cluster": { "members": ["192.0.2.1:5000", "127.0.0.1:1"], "hashKey": HASH_KEY },
    });
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).expect("write config");
    // The file is valid: which member is this one is known only at start-up.
    run(std::process::Command::new(common::registry::binary())
        .arg("verify")
        .arg(&path));
    let out = std::process::Command::new(common::registry::binary())
        .arg("serve")
        .arg(&path)
        .output()
        .expect("run zot");
    assert!(!out.status.success(), "zot must not start");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no cluster member is this instance"),
        "{text}"
    );
}
