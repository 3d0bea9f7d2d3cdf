//! podman against the real binary: pull what skopeo pushed (by tag, by
//! digest, and the host's platform out of an index) and push an image back.
//!
//! podman runs as root with all of its state in a temporary directory: the
//! `vfs` storage driver (no overlay mounts needed), `cgroupfs`, and a file
//! events backend, so nothing touches the machine's container storage and no
//! daemon or systemd is needed. Containers are never run, only images moved.

mod common;

use common::fixtures;
use common::podman::Podman;
use common::tools::{skopeo_copy, skopeo_inspect};
use common::{OciLayout, Registry, run, run_stdout, skopeo};

/// The OCI architecture name of the machine the tests run on.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no fixture platform for host architecture {other}"),
    }
}

#[test]
fn podman_pulls_what_skopeo_pushed_and_pushes_back() {
    let registry = Registry::start();
    let work = registry.work_dir();
    let podman = Podman::new();
    let image = fixtures::multi_layer_image_for("podman-app", ("linux", host_arch()), false);
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&image, "1.0");
    let pushed = skopeo_copy(
        &[],
        &src.reference("1.0"),
        &registry.docker_ref("e2e/podman/app:1.0"),
        &work,
    );
    assert_eq!(pushed, image.manifest.digest);

    // Pull by tag.
    let by_tag = format!("{}/e2e/podman/app:1.0", registry.addr());
    run(podman
        .cmd()
        .args(["pull", "--tls-verify=false"])
        .arg(&by_tag));
    assert_eq!(
        podman.image_digest(&by_tag),
        image.manifest.digest,
        "digest podman recorded for {by_tag}"
    );
    let arch = run_stdout(
        podman
            .cmd()
            .args(["image", "inspect", "--format", "{{.Architecture}}"])
            .arg(&by_tag),
    );
    assert_eq!(arch.trim(), host_arch());

    // Pull by digest.
    let by_digest = format!(
        "{}/e2e/podman/app@{}",
        registry.addr(),
        image.manifest.digest
    );
    run(podman
        .cmd()
        .args(["pull", "--tls-verify=false"])
        .arg(&by_digest));

    // Push to another repository; podman recompresses layers, so compare the
    // uncompressed layer digests (diff_ids) in the config.
    let target = format!("{}/e2e/podman/pushed:2.0", registry.addr());
    run(podman.cmd().args(["tag"]).arg(&by_tag).arg(&target));
    run(podman
        .cmd()
        .args(["push", "--tls-verify=false"])
        .arg(&target));
    let inspect = skopeo_inspect(&registry.docker_ref("e2e/podman/pushed:2.0"));
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(3),
        "podman-pushed image: {inspect}"
    );
    let config = run(skopeo()
        .args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .arg(registry.docker_ref("e2e/podman/pushed:2.0")))
    .stdout;
    let config: serde_json::Value = serde_json::from_slice(&config).expect("config JSON");
    let original: serde_json::Value =
        serde_json::from_slice(&image.config.bytes).expect("fixture config JSON");
    assert_eq!(
        config["rootfs"]["diff_ids"], original["rootfs"]["diff_ids"],
        "layer content after a podman push"
    );

    // And podman can pull what podman pushed, into a fresh store.
    let fresh = Podman::new();
    run(fresh
        .cmd()
        .args(["pull", "--tls-verify=false"])
        .arg(&target));
    let tags = registry.client().get("/v2/e2e/podman/pushed/tags/list");
    tags.expect_status(200, "tags of the podman-pushed repository");
    assert_eq!(tags.json()["tags"], serde_json::json!(["2.0"]));
}

#[test]
fn podman_pulls_the_host_platform_out_of_an_index() {
    let registry = Registry::start();
    let work = registry.work_dir();
    let podman = Podman::new();
    let index = fixtures::multi_platform_index("podman-multi");
    let src = OciLayout::create(&work.join("src"));
    src.add_index(&index, "multi");
    skopeo_copy(
        &["--all"],
        &src.reference("multi"),
        &registry.docker_ref("e2e/podman/multi:multi"),
        &work,
    );

    let reference = format!("{}/e2e/podman/multi:multi", registry.addr());
    run(podman
        .cmd()
        .args(["pull", "--tls-verify=false"])
        .arg(&reference));
    let expected = index
        .images
        .iter()
        .find(|image| {
            let config: serde_json::Value =
                serde_json::from_slice(&image.config.bytes).expect("config JSON");
            config["architecture"] == host_arch()
        })
        .expect("the index has the host's platform");
    let id = run_stdout(
        podman
            .cmd()
            .args(["image", "inspect", "--format", "{{.Id}}"])
            .arg(&reference),
    );
    assert_eq!(
        format!("sha256:{}", id.trim()),
        expected.config.digest,
        "podman picked the host platform's image"
    );
}
