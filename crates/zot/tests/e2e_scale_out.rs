//! Several `zot serve` processes on one bucket (SeaweedFS) and one Redis
//! (`storage.remoteCache: true`, a redis `cacheDriver`), as behind a round
//! robin load balancer:
//! - a chunked upload started on one instance is continued, queried and
//!   finished on the others (chunks smaller and larger than a part), a
//!   chunk at a wrong offset on another instance is refused with 416, and
//!   the blob is pulled through every instance;
//! - an instance killed with `kill -9` in the middle of a PATCH: the
//!   session goes on through another instance from its last acknowledged
//!   size;
//! - GC and scrub configured on every instance run on one at a time (their
//!   rounds, read from the logs, never overlap), and when the holder of the
//!   scrub lease is killed with `kill -9` another instance takes over only
//!   once the lease has expired;
//! - skopeo pushes an image through nginx (Debian's, round robin, no
//!   stickiness) in front of two instances: its uploads' POST, PATCH and
//!   PUT land on different instances; every instance serves the result;
//! - three instances behind nginx: six clients push different images to
//!   the same three tags at once (through nginx and straight to each
//!   instance); every instance then names the same manifest per tag, lists
//!   the same tags and catalog, and serves every pushed image by digest;
//!   and the bucket's layouts agree (Redis emptied, an instance rebuilds
//!   the same tags from the bucket).

mod common;

#[path = "../../storage/tests/s3_common/redis.rs"]
mod redis_server;
#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use common::nginx::Nginx;
use common::registry::Config;
use common::{Registry, sha256_digest};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

/// `n` instances of one configuration on a new bucket and `redis`.
fn instances(
    n: usize,
    redis: &redis_server::Redis,
    extra: impl Fn(Config) -> Config,
) -> Vec<Registry> {
    let server = seaweed::shared();
    let bucket = server.bucket();
    (0..n)
        .map(|_| {
            let config = Config::default()
                .with_storage("storageDriver", server.driver_json(&bucket))
                .with_storage("remoteCache", json!(true))
                .with_storage(
                    "cacheDriver",
                    json!({"name": "redis", "url": redis.url, "keyprefix": "scale"}),
                );
            Registry::start_with(extra(config))
        })
        .collect()
}

fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

fn range_end(r: &common::Response) -> String {
    r.header("range").unwrap_or_default().to_owned()
}

fn patch(reg: &Registry, location: &str, start: usize, chunk: &[u8]) -> common::Response {
    let range = format!("{start}-{}", start + chunk.len() - 1);
    reg.client().request(
        "PATCH",
        location,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", &range),
        ],
        Some(chunk),
    )
}

fn start_upload(reg: &Registry, repo: &str) -> String {
    let r = reg
        .client()
        .request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], None);
    r.expect_status(202, "POST upload");
    r.header("location")
        .unwrap_or_else(|| panic!("no Location"))
        .to_owned()
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

fn pull_everywhere(regs: &[&Registry], repo: &str, digest: &str, data: &[u8]) {
    for reg in regs {
        let got = reg.client().get(&format!("/v2/{repo}/blobs/{digest}"));
        got.expect_status(200, "GET blob");
        assert!(
            got.body == data,
            "the blob pulled from {} differs",
            reg.addr()
        );
    }
}

#[test]
fn a_chunked_upload_spreads_over_instances_and_survives_a_crash() {
    let redis = redis_server::Redis::start();
    let mut regs = instances(3, &redis, |c| c);
    let repo = "scale/app";

    // POST on A, PATCHes alternating A/B/C (smaller and larger than the
    // 5 MiB part), PUT on C.
    let sizes = [1 << 20, 7 << 20, 300 << 10, 6 << 20, 1];
    let total: usize = sizes.iter().sum::<usize>() + (2 << 20);
    let data = content(total, 1);
    let location = start_upload(&regs[0], repo);
    let mut at = 0;
    for (i, n) in sizes.iter().enumerate() {
        let r = patch(&regs[i % 3], &location, at, &data[at..at + n]);
        r.expect_status(202, "PATCH");
        at += n;
        assert_eq!(range_end(&r), format!("0-{}", at - 1));
        // Every instance knows where the session stands.
        for reg in &regs {
            let status = reg.client().get(&location);
            status.expect_status(204, "GET upload status");
            assert_eq!(range_end(&status), format!("0-{}", at - 1));
        }
        if i == 1 {
            // A chunk at a wrong offset on another instance: 416.
            let wrong = patch(&regs[2], &location, 5, b"xyz");
            wrong.expect_oci_error(416, "BLOB_UPLOAD_INVALID", "PATCH at a wrong offset");
        }
    }
    let digest = sha256_digest(&data);
    let put = regs[2].client().request(
        "PUT",
        &with_digest(&location, &digest),
        &[("Content-Type", "application/octet-stream")],
        Some(&data[at..]),
    );
    put.expect_status(201, "PUT on C");
    pull_everywhere(&regs.iter().collect::<Vec<_>>(), repo, &digest, &data);
    regs[1]
        .client()
        .get(&location)
        .expect_status(404, "a finished session is unknown everywhere");

    // A killed with kill -9 in the middle of a PATCH: the session goes on
    // through B from its last acknowledged size, and is finished on C.
    let data = content(5 << 20, 2);
    let location = start_upload(&regs[0], repo);
    patch(&regs[0], &location, 0, &data[..2 << 20]).expect_status(202, "first PATCH");
    let path = location
        .strip_prefix(&regs[0].url())
        .unwrap_or(&location)
        .to_owned();
    let mut socket =
        std::net::TcpStream::connect(regs[0].addr()).unwrap_or_else(|e| panic!("connect: {e}"));
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Range: {}-{}\r\nContent-Length: {}\r\n\r\n",
        regs[0].addr(),
        2 << 20,
        (5 << 20) - 1,
        3 << 20
    );
    socket
        .write_all(head.as_bytes())
        .and_then(|()| socket.write_all(&data[2 << 20..3 << 20]))
        .unwrap_or_else(|e| panic!("sending half a PATCH: {e}"));
    std::thread::sleep(Duration::from_millis(500));
    regs[0].kill9();
    drop(socket);
    let status = regs[1].client().get(&location);
    status.expect_status(204, "status after the crash");
    assert_eq!(range_end(&status), format!("0-{}", (2 << 20) - 1));
    // B waits for the dead holder's session lease to expire (10 s at most).
    patch(&regs[1], &location, 2 << 20, &data[2 << 20..]).expect_status(202, "PATCH on B");
    let digest = sha256_digest(&data);
    regs[2]
        .client()
        .request("PUT", &with_digest(&location, &digest), &[], None)
        .expect_status(201, "PUT on C");
    pull_everywhere(&[&regs[1], &regs[2]], repo, &digest, &data);
}

/// A round's start and end, from one instance's log.
#[derive(Debug, Clone)]
struct Round {
    instance: usize,
    started: String,
    finished: Option<String>,
}

fn log_lines(reg: &Registry) -> Vec<Value> {
    reg.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The rounds of `what` (`gc`, `scrub`) each instance logged.
fn rounds(regs: &[&Registry], what: &str) -> Vec<Round> {
    let started = format!("{what}: round started");
    let finished = format!("{what}: round finished");
    let mut out = Vec::new();
    for (i, reg) in regs.iter().enumerate() {
        let mut open: Option<Round> = None;
        for line in log_lines(reg) {
            let time = line["timestamp"].as_str().unwrap_or_default().to_owned();
            let message = line["message"].as_str().unwrap_or_default();
            if message == started {
                assert!(open.is_none(), "two {what} rounds at once on one instance");
                open = Some(Round {
                    instance: i,
                    started: time,
                    finished: None,
                });
            } else if message == finished
                && let Some(mut r) = open.take()
            {
                r.finished = Some(time);
                out.push(r);
            }
        }
        out.extend(open);
    }
    out.sort_by(|a, b| a.started.cmp(&b.started));
    out
}

/// No round starts before the previous one (on any instance) finished.
fn assert_never_overlap(rounds: &[Round], what: &str) {
    for pair in rounds.windows(2) {
        let finished = pair[0].finished.as_deref().unwrap_or_else(|| {
            panic!(
                "{what} round {:?} still running when {:?} started",
                pair[0], pair[1]
            )
        });
        assert!(
            finished.len() == pair[1].started.len() && finished <= pair[1].started.as_str(),
            "{what} rounds overlap: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

fn seconds(rfc3339: &str) -> f64 {
    // `YYYY-MM-DDTHH:MM:SS.ffffffZ`: seconds of the day are enough here.
    let time = rfc3339
        .split('T')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
    let m: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
    let s: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
    h * 3600.0 + m * 60.0 + s
}

fn metric(reg: &Registry, name: &str) -> f64 {
    let text = reg.client().get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn gc_and_scrub_run_on_one_instance_at_a_time_and_a_crashed_holder_is_replaced() {
    let redis = redis_server::Redis::start();
    let mut regs = instances(3, &redis, |c| {
        c.with_gc(true)
            .with_storage("gcDelay", json!("1h"))
            .with_storage("gcInterval", json!("1s"))
            .with_extensions(json!({
                "scrub": {"enable": true, "interval": "1s"},
                "metrics": {"enable": true, "prometheus": {"path": "/metrics"}},
            }))
    });
    // Content for scrub to hash, so that a round lasts a while.
    for (i, reg) in regs.iter().enumerate() {
        for j in 0..2 {
            let data = content(24 << 20, (i * 2 + j) as u8);
            reg.client().push_blob(&format!("scrub/r{i}{j}"), &data);
        }
    }
    std::thread::sleep(Duration::from_secs(8));
    let all: Vec<&Registry> = regs.iter().collect();
    let gc = rounds(&all, "gc");
    let scrub = rounds(&all, "scrub");
    assert!(gc.len() >= 3, "too few GC rounds: {gc:?}");
    assert!(!scrub.is_empty(), "no scrub round");
    assert_never_overlap(&gc, "gc");
    assert_never_overlap(&scrub, "scrub");
    let skipped: f64 = regs
        .iter()
        .map(|r| metric(r, "zot_lease_skipped_total{task=\"scrub\"}"))
        .sum();
    assert!(
        skipped >= 1.0,
        "no scrub round was ever skipped for the lease"
    );

    // Kill -9 the instance in a scrub round: the others wait for its lease
    // to expire (30 s after its last renewal, at most 10 s before the kill).
    let deadline = Instant::now() + Duration::from_secs(60);
    let holder = loop {
        let now = rounds(&all, "scrub");
        if let Some(open) = now.iter().find(|r| r.finished.is_none()) {
            break open.instance;
        }
        assert!(Instant::now() < deadline, "no scrub round in progress seen");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(all);
    let killed_at = Instant::now();
    let killed_clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() % 86_400.0)
        .unwrap_or(0.0);
    regs[holder].kill9();
    let survivors: Vec<&Registry> = regs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != holder)
        .map(|(_, r)| r)
        .collect();
    let takeover = loop {
        let started_after: Option<f64> = rounds(&survivors, "scrub")
            .iter()
            .map(|r| seconds(&r.started))
            .find(|t| *t > killed_clock);
        if let Some(t) = started_after {
            break t - killed_clock;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(70),
            "no instance took the scrub lease over"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        takeover >= 15.0,
        "another instance scrubbed {takeover:.1} s after the holder died: before its lease expired"
    );
    let skipped_logged = survivors.iter().any(|r| {
        log_lines(r)
            .iter()
            .any(|l| l["message"] == "scrub: round skipped: another instance holds the lease")
    });
    assert!(skipped_logged, "no skipped round was logged");
    assert_never_overlap(&rounds(&survivors, "gc"), "gc");
}

/// Upload requests (method, path) an instance answered, from its access log.
fn upload_requests(reg: &Registry) -> Vec<(String, String)> {
    log_lines(reg)
        .iter()
        .filter(|l| l["message"] == "request")
        .filter_map(|l| {
            let path = l["path"].as_str()?;
            path.contains("/blobs/uploads/").then(|| {
                (
                    l["method"].as_str().unwrap_or_default().to_owned(),
                    path.to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn skopeo_pushes_through_nginx_round_robin_over_two_instances() {
    use common::fixtures::{self, OciLayout};
    let redis = redis_server::Redis::start();
    let regs = instances(2, &redis, |c| c);
    let nginx = Nginx::start(&regs.iter().map(|r| r.addr()).collect::<Vec<_>>());
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let image = fixtures::image(
        ("linux", "amd64"),
        // One layer: skopeo then sends its requests one after another, so
        // nginx's round robin alternates them: each upload's PATCH and PUT
        // land on different instances.
        &[vec![(
            "big.bin",
            fixtures::noise("scale-out-big", 11 << 20),
        )]],
        false,
    );
    let src = OciLayout::create(&work.path().join("src"));
    src.add_image(&image, "1.0");
    let pushed = common::tools::skopeo_copy(
        &["--preserve-digests"],
        &src.reference("1.0"),
        &format!("docker://{}/lb/app:1.0", nginx.addr),
        work.path(),
    );
    assert_eq!(pushed, image.manifest.digest);

    // The uploads were spread: both instances answered upload requests,
    // and some session was started on one and continued on the other.
    let a = upload_requests(&regs[0]);
    let b = upload_requests(&regs[1]);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "uploads not spread: {a:?} {b:?}"
    );
    let session = |p: &str| p.rsplit('/').next().unwrap_or_default().to_owned();
    let crossed = a.iter().any(|(_, pa)| {
        b.iter()
            .any(|(_, pb)| session(pa) == session(pb) && !session(pa).is_empty())
    });
    assert!(crossed, "no session used on both instances: {a:?} {b:?}");

    // Every blob reads back, byte for byte, through each instance.
    for reg in &regs {
        for blob in image.blobs() {
            let got = reg
                .client()
                .get(&format!("/v2/lb/app/blobs/sha256:{}", blob.hex()));
            got.expect_status(200, "blob through an instance");
            assert!(got.body == blob.bytes, "blob {} differs", blob.hex());
        }
    }
    // And the manifest is served by every instance (one metadata store).
    for reg in &regs {
        let got = reg.client().get("/v2/lb/app/manifests/1.0");
        got.expect_status(200, "manifest through an instance");
        assert_eq!(sha256_digest(&got.body), image.manifest.digest);
    }
    drop(nginx);
}

/// Three instances behind nginx: clients push different images to the
/// same tags at once, through the balancer and straight to each instance;
/// afterwards every instance names the same manifest for each tag (one of
/// those pushed), lists the same tags and catalog, and serves every image
/// pushed, by digest, through the balancer and directly.
#[test]
fn concurrent_pushes_of_the_same_tags_through_three_instances_agree() {
    use common::fixtures;
    let redis = redis_server::Redis::start();
    let regs = instances(3, &redis, |c| c);
    let nginx = Nginx::start(&regs.iter().map(|r| r.addr()).collect::<Vec<_>>());
    let lb = format!("http://{}", nginx.addr);
    let tags = ["1.0", "latest", "stable"];
    // Six pushers: three through nginx, one straight to each instance.
    let targets: Vec<String> = (0..3)
        .map(|_| lb.clone())
        .chain(regs.iter().map(|r| r.url()))
        .collect();
    let images: Vec<fixtures::Image> = (0..targets.len())
        .map(|i| {
            fixtures::image(
                ("linux", "amd64"),
                &[vec![(
                    "layer.bin",
                    fixtures::noise(&format!("scale-out-tag-{i}"), 64 << 10),
                )]],
                false,
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for (target, image) in targets.iter().zip(&images) {
            scope.spawn(move || {
                let client = common::Client::new(target);
                for tag in tags {
                    image.push(&client, "race/app", tag);
                }
            });
        }
    });

    let pushed: Vec<&str> = images.iter().map(|i| i.manifest.digest.as_str()).collect();
    let lb_client = common::Client::new(&lb);
    let mut clients: Vec<common::Client> = regs.iter().map(|r| r.client()).collect();
    clients.push(lb_client);
    let mut winners = Vec::new();
    for tag in tags {
        let answers: Vec<String> = clients
            .iter()
            .map(|c| {
                let r = c.get(&format!("/v2/race/app/manifests/{tag}"));
                r.expect_status(200, "tag after the race");
                sha256_digest(&r.body)
            })
            .collect();
        assert!(
            answers.iter().all(|d| d == &answers[0]),
            "instances disagree on {tag}: {answers:?}"
        );
        assert!(
            pushed.contains(&answers[0].as_str()),
            "{tag} names no pushed image"
        );
        winners.push(answers[0].clone());
    }
    let listing = |c: &common::Client, path: &str| {
        let r = c.get(path);
        r.expect_status(200, path);
        r.json()
    };
    for c in &clients {
        let t = listing(c, "/v2/race/app/tags/list");
        let mut got: Vec<String> = t["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        got.sort();
        assert_eq!(got, tags, "tags listed");
        assert_eq!(
            listing(c, "/v2/_catalog")["repositories"],
            json!(["race/app"]),
            "catalog"
        );
        // Every pushed image stays readable by digest (tags moved, the
        // manifests and their layers were not lost).
        for image in &images {
            let r = c.get(&format!("/v2/race/app/manifests/{}", image.manifest.digest));
            r.expect_status(200, "a pushed manifest by digest");
            for blob in image.blobs() {
                let got = c.get(&format!("/v2/race/app/blobs/sha256:{}", blob.hex()));
                got.expect_status(200, "a pushed blob");
                assert!(got.body == blob.bytes, "blob {} differs", blob.hex());
            }
        }
    }
    drop(nginx);

    // The bucket agrees with the metadata: with the shared store emptied,
    // an instance rebuilds it from the layouts and names the same winners.
    let mut regs = regs;
    for reg in &mut regs {
        reg.kill9();
    }
    let flushed = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "FLUSHALL"])
        .status()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    assert!(flushed.success(), "redis-cli FLUSHALL");
    regs[0].restart();
    for (tag, winner) in tags.iter().zip(&winners) {
        let r = regs[0]
            .client()
            .get(&format!("/v2/race/app/manifests/{tag}"));
        r.expect_status(200, "tag rebuilt from the bucket");
        assert_eq!(&sha256_digest(&r.body), winner, "{tag} in the bucket");
    }
}
