//! A storage root prepared by other tools (skopeo and umoci each writing an
//! OCI image layout per repository) is served as is, and stays a valid
//! layout for those tools after the registry adds to it.

mod common;

use common::fixtures::{self, blob_map};
use common::tools::{skopeo_copy, skopeo_raw_manifest, umoci};
use common::{Config, OciLayout, Registry, run, run_stdout, skopeo};

#[test]
fn a_root_written_by_skopeo_and_umoci_is_served() {
    let prepared = tempfile::Builder::new()
        .prefix("zot-e2e-existing-")
        .tempdir()
        .expect("tempdir");
    let root = prepared.path().join("root");
    let fixtures_dir = prepared.path().join("fixtures");

    // library/app: two tags written by skopeo into one layout.
    let image = fixtures::multi_layer_image("existing-app");
    let index = fixtures::multi_platform_index("existing-multi");
    let src = OciLayout::create(&fixtures_dir.join("src"));
    src.add_image(&image, "1.0");
    src.add_index(&index, "multi");
    let app = root.join("library/app");
    // skopeo creates the layout directory but not its parents.
    std::fs::create_dir_all(root.join("library")).expect("create root/library");
    std::fs::create_dir_all(root.join("tools")).expect("create root/tools");
    run(skopeo()
        .args(["copy", "--preserve-digests"])
        .arg(src.reference("1.0"))
        .arg(format!("oci:{}:1.0", app.display())));
    run(skopeo()
        .args(["copy", "--all", "--preserve-digests"])
        .arg(src.reference("multi"))
        .arg(format!("oci:{}:multi", app.display())));

    // tools/umoci: built by umoci from a file.
    let umoci_layout = root.join("tools/umoci");
    let hello = fixtures_dir.join("hello.txt");
    std::fs::write(&hello, "inserted by umoci\n").expect("write hello.txt");
    run(umoci().args(["init", "--layout"]).arg(&umoci_layout));
    run(umoci()
        .args(["new", "--image"])
        .arg(format!("{}:base", umoci_layout.display())));
    run(umoci()
        .args(["insert", "--image"])
        .arg(format!("{}:base", umoci_layout.display()))
        .arg(&hello)
        .arg("/hello.txt"));
    let umoci_manifest = skopeo_raw_manifest(&format!("oci:{}:base", umoci_layout.display()));

    let registry = Registry::start_with(Config::default().with_root(&root));
    let client = registry.client();
    let work = registry.work_dir();

    let tags = client.get("/v2/library/app/tags/list");
    tags.expect_status(200, "tags of a pre-existing layout");
    let mut listed: Vec<String> =
        serde_json::from_value(tags.json()["tags"].clone()).expect("tags array");
    listed.sort();
    assert_eq!(listed, ["1.0", "multi"], "{tags}");
    assert_eq!(tags.json()["name"], "library/app", "{tags}");

    let catalog = client.get("/v2/_catalog");
    catalog.expect_status(200, "catalog");
    let repos: Vec<String> =
        serde_json::from_value(catalog.json()["repositories"].clone()).expect("repositories array");
    for repo in ["library/app", "tools/umoci"] {
        assert!(
            repos.iter().any(|r| r == repo),
            "catalog lists {repo}: {catalog}"
        );
    }

    // skopeo copies both tags out, unchanged.
    let out = work.join("out-app");
    let digest = skopeo_copy(
        &["--preserve-digests"],
        &registry.docker_ref("library/app:1.0"),
        &format!("oci:{}:1.0", out.display()),
        &work,
    );
    assert_eq!(digest, image.manifest.digest);
    assert_eq!(OciLayout::open(&out).blobs(), blob_map([&image]));
    let out_multi = work.join("out-multi");
    let digest = skopeo_copy(
        &["--all", "--preserve-digests"],
        &registry.docker_ref("library/app:multi"),
        &format!("oci:{}:multi", out_multi.display()),
        &work,
    );
    assert_eq!(digest, index.index.digest);
    let mut expected = blob_map(&index.images);
    expected.insert(index.index.digest.clone(), index.index.bytes.clone());
    assert_eq!(OciLayout::open(&out_multi).blobs(), expected);

    // The umoci image comes out with the same manifest, and unpacks to the
    // file that was inserted.
    assert_eq!(
        skopeo_raw_manifest(&registry.docker_ref("tools/umoci:base")),
        umoci_manifest
    );
    let out_umoci = work.join("out-umoci");
    skopeo_copy(
        &[],
        &registry.docker_ref("tools/umoci:base"),
        &format!("oci:{}:base", out_umoci.display()),
        &work,
    );
    let bundle = work.join("bundle");
    run(umoci()
        .args(["unpack", "--image"])
        .arg(format!("{}:base", out_umoci.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).expect("hello.txt unpacked"),
        "inserted by umoci\n"
    );

    // A push into the existing layout keeps it valid for skopeo and umoci,
    // with the old tags intact.
    let extra = fixtures::multi_layer_image("existing-extra");
    extra.push(&client, "library/app", "2.0");
    let layout = OciLayout::open(&app);
    assert_eq!(
        skopeo_raw_manifest(&format!("oci:{}:2.0", app.display())),
        extra.manifest.bytes
    );
    assert_eq!(
        skopeo_raw_manifest(&format!("oci:{}:1.0", app.display())),
        image.manifest.bytes
    );
    assert_eq!(
        layout.tagged("multi").expect("tag multi kept")["digest"],
        index.index.digest.as_str()
    );
    let listing = run_stdout(umoci().args(["ls", "--layout"]).arg(&app));
    let mut umoci_tags: Vec<&str> = listing.lines().collect();
    umoci_tags.sort_unstable();
    assert_eq!(
        umoci_tags,
        ["1.0", "2.0", "multi"],
        "umoci ls of the registry's layout"
    );
}

/// Other tools accept `org.opencontainers.image.ref.name` values that are
/// not valid distribution-spec tags (skopeo writes `v1+beta` happily). Every
/// tag that tags/list reports must be pullable by that tag; a ref name that
/// cannot be a tag must not be listed as one.
#[test]
fn every_listed_tag_of_a_foreign_layout_is_pullable() {
    let prepared = tempfile::Builder::new()
        .prefix("zot-e2e-existing-")
        .tempdir()
        .expect("tempdir");
    let root = prepared.path().join("root");
    std::fs::create_dir_all(root.join("library")).expect("create root/library");
    let src = OciLayout::create(&prepared.path().join("src"));
    let image = fixtures::multi_layer_image("existing-odd-tags");
    src.add_image(&image, "1.0");
    let layout = root.join("library/odd");
    for tag in ["1.0", "v1+beta", "release/1"] {
        run(skopeo()
            .arg("copy")
            .arg(src.reference("1.0"))
            .arg(format!("oci:{}:{tag}", layout.display())));
    }

    let registry = Registry::start_with(Config::default().with_root(&root));
    let client = registry.client();
    let tags = client.get("/v2/library/odd/tags/list");
    tags.expect_status(200, "tags of a layout with odd ref names");
    let listed: Vec<String> =
        serde_json::from_value(tags.json()["tags"].clone()).expect("tags array");
    assert!(
        listed.iter().any(|t| t == "1.0"),
        "the valid tag is listed: {tags}"
    );
    for tag in &listed {
        let got = client.get_manifest("library/odd", tag);
        assert_eq!(
            got.status, 200,
            "tags/list lists {tag:?} but GET /v2/library/odd/manifests/{tag} answers:\n{got}"
        );
    }
}
