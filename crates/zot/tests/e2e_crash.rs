//! Crash consistency: pushes stream in from two clients, the registry is
//! SIGKILLed mid-stream, restarted on the same root, and every push that
//! was acknowledged (201 on its manifest) must pull back intact; index.json
//! must parse and no blob file may be torn. Done twice, so recovery from a
//! crashed state is itself crash-tested.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::fixtures::{self, Image, OciLayout};
use common::{Client, Config, Registry};

const REPO: &str = "e2e/crash/stream";

/// An upload in chunks (POST, PATCH..., PUT), so that a kill is likely to
/// land in the middle of one.
fn push_blob_chunked(
    client: &Client,
    repo: &str,
    bytes: &[u8],
    chunk: usize,
) -> Result<(), String> {
    let digest = fixtures::sha256_digest(bytes);
    let start = client.try_request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    )?;
    if start.status != 202 {
        return Err(format!("POST: {start}"));
    }
    let mut location = start.header("location").ok_or("no Location")?.to_owned();
    let mut offset = 0;
    for part in bytes.chunks(chunk) {
        let range = format!("{}-{}", offset, offset + part.len() - 1);
        let patch = client.try_request(
            "PATCH",
            &location,
            &[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
            ],
            Some(part),
        )?;
        if patch.status != 202 {
            return Err(format!("PATCH {range}: {patch}"));
        }
        location = patch
            .header("location")
            .ok_or("no Location after PATCH")?
            .to_owned();
        offset += part.len();
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = client.try_request(
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        &[],
        Some(b""),
    )?;
    if put.status != 201 {
        return Err(format!("PUT: {put}"));
    }
    Ok(())
}

/// Push images tagged `{prefix}-{n}` until the registry goes away; report
/// each acknowledged one. Returns why it stopped.
fn stream(
    client: Client,
    prefix: String,
    layer_size: usize,
    chunked: bool,
    acked: mpsc::Sender<(String, Image)>,
) -> String {
    for n in 0..10_000 {
        let tag = format!("{prefix}-{n}");
        let image = fixtures::image(
            ("linux", "amd64"),
            &[
                vec![("data.bin", fixtures::noise(&tag, layer_size))],
                vec![("tag.txt", tag.clone().into_bytes())],
            ],
            false,
        );
        let pushed = image.blobs().into_iter().try_for_each(|blob| {
            if chunked {
                push_blob_chunked(&client, REPO, &blob.bytes, 64 * 1024)
            } else {
                client.try_push_blob(REPO, &blob.bytes).map(|_| ())
            }
        });
        if let Err(e) = pushed {
            return stopped(&client, &tag, &e);
        }
        match client.try_put_manifest(
            REPO,
            &tag,
            &image.manifest.media_type,
            &image.manifest.bytes,
        ) {
            Ok(response) if response.status == 201 => {
                if acked.send((tag, image)).is_err() {
                    return "receiver gone".to_owned();
                }
            }
            Ok(response) => return stopped(&client, &tag, &format!("manifest PUT: {response}")),
            Err(e) => return stopped(&client, &tag, &e),
        }
    }
    "ran out of tags".to_owned()
}

/// Why a stream stopped: `REFUSED` if the registry is still answering (so
/// the failure was its answer, not the crash).
fn stopped(client: &Client, tag: &str, error: &str) -> String {
    match client.try_request("GET", "/v2/", &[], None) {
        Ok(_) => format!("REFUSED {tag}: {error}"),
        Err(_) => format!("stopped by the crash at {tag}: {error}"),
    }
}

/// Run two push streams, SIGKILL the registry once `min_acked` pushes are
/// acknowledged, and return everything acknowledged.
fn push_then_crash(registry: &mut Registry, round: &str, min_acked: usize) -> Vec<(String, Image)> {
    let (tx, rx) = mpsc::channel();
    let small = {
        let (client, tx) = (registry.client(), tx.clone());
        let prefix = format!("{round}-small");
        thread::spawn(move || stream(client, prefix, 16 * 1024, false, tx))
    };
    let large = {
        let client = registry.client();
        let prefix = format!("{round}-large");
        thread::spawn(move || stream(client, prefix, 768 * 1024, true, tx))
    };
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < min_acked {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(push) => acked.push(push),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(
                    Instant::now() < deadline,
                    "only {} pushes acknowledged in 120 s",
                    acked.len()
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let reasons: Vec<String> =
                    [small, large].map(|p| p.join().unwrap_or_default()).into();
                panic!(
                    "push streams stopped with the registry up after {} pushes: {reasons:#?}",
                    acked.len()
                );
            }
        }
    }
    registry.kill9().expect("registry was running");
    for pusher in [small, large] {
        match pusher.join() {
            Ok(reason) => assert!(
                !reason.starts_with("REFUSED"),
                "a push failed while the registry was up: {reason}"
            ),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    acked.extend(rx.try_iter());
    eprintln!(
        "round {round}: {} pushes acknowledged before SIGKILL",
        acked.len()
    );
    acked
}

/// Every acknowledged push pulls back byte for byte; the layout on disk is
/// sound.
fn verify(registry: &Registry, acked: &[(String, Image)]) {
    let client = registry.client();
    for (tag, image) in acked {
        let got = client.get_manifest(REPO, tag);
        got.expect_status(200, &format!("acknowledged manifest {tag} after the crash"));
        assert!(
            got.body == image.manifest.bytes,
            "manifest {tag} changed across the crash"
        );
        for blob in image.blobs() {
            let got = client.get(&format!("/v2/{REPO}/blobs/{}", blob.digest));
            got.expect_status(200, &format!("blob {} of acknowledged {tag}", blob.digest));
            assert!(
                got.body == blob.bytes,
                "blob {} of {tag} is corrupt after the crash",
                blob.digest
            );
        }
    }
    let layout = OciLayout::open(&registry.root().join(REPO));
    let index = layout.index();
    assert!(
        index["manifests"].is_array(),
        "index.json after the crash: {index}"
    );
    for (tag, image) in acked {
        let tagged = layout
            .tagged(tag)
            .unwrap_or_else(|| panic!("tag {tag} missing from index.json: {index}"));
        assert_eq!(
            tagged["digest"],
            image.manifest.digest.as_str(),
            "{tag} in index.json"
        );
    }
    // Panics on any blob file whose content does not hash to its name.
    let blobs = layout.blobs();
    for (_, image) in acked {
        assert!(
            blobs.contains_key(&image.manifest.digest),
            "{} not on disk",
            image.manifest.digest
        );
    }
}

#[test]
fn acknowledged_pushes_survive_sigkill() {
    // `commit: true` so the fsync path is the one crashed through.
    let mut registry = Registry::start_with(Config::default().with_commit(true));
    let mut acked = push_then_crash(&mut registry, "one", 20);
    registry.restart();
    verify(&registry, &acked);

    acked.extend(push_then_crash(&mut registry, "two", 10));
    registry.restart();
    verify(&registry, &acked);

    // And it still takes pushes, including of blobs whose upload was cut.
    let after = fixtures::multi_layer_image("crash-after");
    after.push(&registry.client(), REPO, "after");
    verify(&registry, &[("after".to_owned(), after)]);

    let tags = registry.client().get(&format!("/v2/{REPO}/tags/list"));
    tags.expect_status(200, "tags after two crashes");
    let listed = tags.json()["tags"].as_array().cloned().unwrap_or_default();
    for (tag, _) in &acked {
        assert!(
            listed.iter().any(|t| t == tag.as_str()),
            "{tag} missing from tags/list: {tags}"
        );
    }
}
