//! The referrers API (distribution-spec v1.1) over plain HTTP against the
//! real binary: artifacts with a `subject`, the `OCI-Subject` header, the
//! referrers index with artifact types and annotations, the `artifactType`
//! filter, and the listing surviving a restart.

mod common;

use std::time::Duration;

use common::fixtures::{self, Blob, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use common::{Client, Registry};
use serde_json::{Value, json};

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIGNATURE: &str = "application/vnd.example.signature.v1+json";
const CUSTOM_CONFIG: &str = "application/vnd.example.config.v1+json";

/// An artifact manifest referring to `subject`. With `artifact_type` None
/// the artifact type is carried by the config's media type instead.
fn artifact(
    client: &Client,
    repo: &str,
    subject: &Blob,
    artifact_type: Option<&str>,
    payload: &str,
) -> (Blob, Value) {
    let config = match artifact_type {
        Some(_) => Blob::new(OCI_EMPTY, b"{}".to_vec()),
        None => Blob::new(
            CUSTOM_CONFIG,
            format!("{{\"payload\":\"{payload}\"}}").into_bytes(),
        ),
    };
    let layer = Blob::new("application/octet-stream", payload.as_bytes().to_vec());
    client.push_blob(repo, &config.bytes);
    client.push_blob(repo, &layer.bytes);
    let annotations = json!({
        "org.example.payload": payload,
        "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
    });
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
        "annotations": annotations,
    });
    if let Some(t) = artifact_type {
        manifest["artifactType"] = json!(t);
    }
    (Blob::json(OCI_MANIFEST, &manifest), annotations)
}

fn referrers(
    client: &Client,
    repo: &str,
    digest: &str,
    query: &str,
) -> (common::Response, Vec<Value>) {
    let response = client.get(&format!("/v2/{repo}/referrers/{digest}{query}"));
    response.expect_status(200, &format!("GET referrers of {digest}{query}"));
    assert_eq!(
        response.header("content-type"),
        Some(OCI_INDEX),
        "referrers Content-Type: {response}"
    );
    let body = response.json();
    assert_eq!(body["schemaVersion"], 2, "referrers index: {body}");
    assert_eq!(body["mediaType"], OCI_INDEX, "referrers index: {body}");
    let manifests = body["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no manifests array: {body}"));
    (response, manifests)
}

fn find<'a>(list: &'a [Value], digest: &str) -> &'a Value {
    list.iter()
        .find(|d| d["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} not listed in {list:?}"))
}

#[test]
fn artifacts_with_a_subject_are_listed_as_referrers() {
    let mut registry = Registry::start();
    let client = registry.client();
    let repo = "e2e/referrers/app";
    let subject = fixtures::image(
        ("linux", "amd64"),
        &[vec![("hello.txt", b"hello referrers\n".to_vec())]],
        false,
    );
    subject.push(&client, repo, "v1");

    let (sbom, sbom_annotations) = artifact(&client, repo, &subject.manifest, Some(SBOM), "sbom");
    let (signature, _) = artifact(
        &client,
        repo,
        &subject.manifest,
        Some(SIGNATURE),
        "signature",
    );
    let (untyped, _) = artifact(&client, repo, &subject.manifest, None, "config-typed");
    for blob in [&sbom, &signature, &untyped] {
        let put = client.put_manifest(repo, &blob.digest, OCI_MANIFEST, &blob.bytes);
        put.expect_status(201, "PUT artifact manifest by digest");
        assert_eq!(
            put.header("oci-subject"),
            Some(subject.manifest.digest.as_str()),
            "OCI-Subject header on the PUT of an artifact with a subject: {put}"
        );
        assert_eq!(
            put.header("docker-content-digest"),
            Some(blob.digest.as_str()),
            "{put}"
        );
        assert!(
            put.header("location").is_some(),
            "Location header on PUT manifest: {put}"
        );
    }
    // A manifest without a subject gets no OCI-Subject header.
    let plain = fixtures::image(("linux", "arm64"), &[vec![("x", b"x".to_vec())]], false);
    for blob in plain.blobs() {
        client.push_blob(repo, &blob.bytes);
    }
    let put = client.put_manifest(repo, "plain", OCI_MANIFEST, &plain.manifest.bytes);
    put.expect_status(201, "PUT plain manifest");
    assert_eq!(
        put.header("oci-subject"),
        None,
        "OCI-Subject on a manifest without subject: {put}"
    );

    let check_all = |client: &Client| {
        let (response, listed) = referrers(client, repo, &subject.manifest.digest, "");
        assert_eq!(listed.len(), 3, "three referrers expected: {response}");
        assert_eq!(
            response.header("oci-filters-applied"),
            None,
            "no filter requested: {response}"
        );
        let d = find(&listed, &sbom.digest);
        assert_eq!(d["mediaType"], OCI_MANIFEST, "{d}");
        assert_eq!(d["size"], sbom.size(), "{d}");
        assert_eq!(d["artifactType"], SBOM, "{d}");
        assert_eq!(d["annotations"], sbom_annotations, "{d}");
        assert_eq!(find(&listed, &signature.digest)["artifactType"], SIGNATURE);
        // No artifactType in the manifest: the config's media type stands in.
        assert_eq!(
            find(&listed, &untyped.digest)["artifactType"],
            CUSTOM_CONFIG
        );
    };
    check_all(&client);

    // Filtered by artifactType.
    let (response, listed) = referrers(
        &client,
        repo,
        &subject.manifest.digest,
        &format!("?artifactType={SBOM}"),
    );
    assert_eq!(
        response.header("oci-filters-applied"),
        Some("artifactType"),
        "{response}"
    );
    assert_eq!(listed.len(), 1, "only the sbom: {response}");
    assert_eq!(listed[0]["digest"], sbom.digest.as_str());
    let (response, listed) = referrers(
        &client,
        repo,
        &subject.manifest.digest,
        "?artifactType=application/vnd.example.none",
    );
    assert!(listed.is_empty(), "no referrer has that type: {response}");

    // The referrers are themselves fetchable manifests.
    let got = client.get_manifest(repo, &sbom.digest);
    got.expect_status(200, "GET artifact manifest");
    assert_eq!(got.body, sbom.bytes);

    // A digest nobody refers to: an empty index, not an error.
    let (response, listed) = referrers(&client, repo, &plain.manifest.digest, "");
    assert!(listed.is_empty(), "{response}");

    // A malformed digest is a client error (spec: 400).
    client
        .get(&format!("/v2/{repo}/referrers/sha256:not-hex"))
        .expect_oci_error(400, "DIGEST_INVALID", "referrers of a malformed digest");

    // A `+` in the filter arrives percent-encoded.
    let (response, listed) = referrers(
        &client,
        repo,
        &subject.manifest.digest,
        "?artifactType=application/vnd.example.signature.v1%2Bjson",
    );
    assert_eq!(listed.len(), 1, "only the signature: {response}");
    assert_eq!(listed[0]["digest"], signature.digest.as_str(), "{response}");

    // An artifact whose subject is not (yet) in the registry is accepted
    // and listed under that digest.
    let absent = fixtures::Blob::new(OCI_MANIFEST, b"{\"not\":\"pushed\"}".to_vec());
    let (orphan, _) = artifact(&client, repo, &absent, Some(SBOM), "orphan");
    let put = client.put_manifest(repo, &orphan.digest, OCI_MANIFEST, &orphan.bytes);
    put.expect_status(201, "PUT artifact whose subject is absent");
    assert_eq!(
        put.header("oci-subject"),
        Some(absent.digest.as_str()),
        "{put}"
    );
    let (response, listed) = referrers(&client, repo, &absent.digest, "");
    assert_eq!(listed.len(), 1, "{response}");

    // Deleting a referrer removes it from the listing.
    client
        .request(
            "DELETE",
            &format!("/v2/{repo}/manifests/{}", orphan.digest),
            &[],
            None,
        )
        .expect_status(202, "DELETE the orphan artifact");
    let (response, listed) = referrers(&client, repo, &absent.digest, "");
    assert!(
        listed.is_empty(),
        "deleted referrer still listed: {response}"
    );

    // The listing survives a restart.
    let status = registry
        .terminate(Duration::from_secs(20))
        .expect("zot exits on SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    registry.restart();
    check_all(&registry.client());
}
