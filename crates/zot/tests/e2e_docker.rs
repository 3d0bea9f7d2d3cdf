//! The Docker engine against the real binary without authentication: push,
//! pull, cross-repository mount, `docker manifest inspect`, and a push
//! refused without `http.compat: ["docker2s2"]` with a message naming it.
//! (No container runs: the engine has no network bridge here.)

mod common;

use common::docker::Dockerd;
use common::{Config, Registry, run, run_fails, run_stdout};

#[test]
fn docker_pushes_pulls_mounts_and_inspects() {
    let engine = Dockerd::start();
    let registry = Registry::start_with(Config::default().with_compat(&["docker2s2"]));
    let cfg = registry.work_dir().join("docker-config");
    let addr = registry.addr().to_owned();
    let docker = || engine.docker(&cfg);
    let app = format!("{addr}/e2e/docker/app:v1");
    engine.import(&cfg, &app, "docker-plain");
    let out = run_stdout(docker().args(["push", &app]));
    assert!(out.contains("digest: sha256:"), "{out}");

    // The same layers under another repository: mounted, not uploaded.
    let copy = format!("{addr}/e2e/docker/copy:v1");
    run(docker().args(["tag", &app, &copy]));
    let out = run_stdout(docker().args(["push", &copy]));
    assert!(out.contains("Mounted from e2e/docker/app"), "{out}");

    // What the registry stores is what docker pushed.
    let inspect = run_stdout(docker().args(["manifest", "inspect", "--insecure", &app]));
    let manifest: serde_json::Value = serde_json::from_str(&inspect).expect("manifest JSON");
    assert_eq!(
        manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{manifest}"
    );
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(1),
        "{manifest}"
    );
    let served = registry.client().get(&format!(
        "/v2/e2e/docker/copy/blobs/{}",
        manifest["layers"][0]["digest"].as_str().unwrap_or("")
    ));
    served.expect_status(200, "mounted layer served");

    // Pull back after removing the local images.
    run(docker().args(["rmi", "-f", &app, &copy]));
    run(docker().args(["pull", &copy]));
    let id = run_stdout(docker().args(["image", "inspect", "--format", "{{.Id}}", &copy]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
}

#[test]
fn docker_push_without_compat_names_docker2s2() {
    let engine = Dockerd::start();
    let registry = Registry::start();
    let cfg = registry.work_dir().join("docker-config");
    let image = format!("{}/e2e/docker/nocompat:v1", registry.addr());
    engine.import(&cfg, &image, "docker-no-compat");
    let out = run_fails(engine.docker(&cfg).args(["push", &image]));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("docker2s2"),
        "the refusal should tell how to accept it: {text}"
    );
}
