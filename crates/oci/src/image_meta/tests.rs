use serde_json::json;

use super::*;
use crate::media_types as mt;

fn d(n: u8) -> Digest {
    Digest::sha256_of(&[n])
}

fn manifest(annotations: serde_json::Value, extra: serde_json::Value) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(1).to_string(), "size": 7},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d(2).to_string(), "size": 100},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d(3).to_string(), "size": 200},
        ],
        "annotations": annotations,
    });
    if let (Some(m), serde_json::Value::Object(extra)) = (m.as_object_mut(), extra) {
        m.extend(extra);
    }
    serde_json::to_vec(&m).unwrap()
}

fn config(labels: serde_json::Value, extra: serde_json::Value) -> Vec<u8> {
    let mut c = json!({"architecture": "amd64", "os": "linux", "config": {"Labels": labels}});
    if let (Some(c), serde_json::Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    serde_json::to_vec(&c).unwrap()
}

fn image(m: &[u8], c: Option<&[u8]>) -> (ImageMeta, ManifestMeta) {
    let meta = ImageMeta::from_manifest(d(9), m, c);
    let MetaKind::Manifest(mm) = meta.kind.clone() else {
        panic!("an image manifest gives a manifest record")
    };
    (meta, mm)
}

#[test]
fn annotation_fallback_order() {
    let oci = "org.opencontainers.image.description";
    let ls = "org.label-schema.description";
    let cases = [
        // (manifest annotations, config labels, expected)
        (
            json!({oci: "m-oci", ls: "m-ls"}),
            json!({oci: "c-oci", ls: "c-ls"}),
            "m-oci",
        ),
        (
            json!({ls: "m-ls"}),
            json!({oci: "c-oci", ls: "c-ls"}),
            "m-ls",
        ),
        (json!({oci: "", ls: "m-ls"}), json!({oci: "c-oci"}), "m-ls"),
        (json!({}), json!({oci: "c-oci", ls: "c-ls"}), "c-oci"),
        (json!({}), json!({ls: "c-ls"}), "c-ls"),
        (json!({}), json!({}), ""),
    ];
    for (ann, labels, want) in cases {
        let (meta, _) = image(
            &manifest(ann.clone(), json!({})),
            Some(&config(labels.clone(), json!({}))),
        );
        assert_eq!(meta.annotated.description, want, "{ann} / {labels}");
    }
}

#[test]
fn every_field_and_its_label_schema_key() {
    let pairs = [
        ("org.opencontainers.image.title", "org.label-schema.name"),
        (
            "org.opencontainers.image.description",
            "org.label-schema.description",
        ),
        (
            "org.opencontainers.image.documentation",
            "org.label-schema.usage",
        ),
        (
            "org.opencontainers.image.source",
            "org.label-schema.vcs-url",
        ),
        (
            "org.opencontainers.image.licenses",
            "org.label-schema.license",
        ),
        ("org.opencontainers.image.vendor", "org.label-schema.vendor"),
    ];
    let mut ls = serde_json::Map::new();
    for (i, (_, k)) in pairs.iter().enumerate() {
        ls.insert((*k).to_owned(), json!(format!("v{i}")));
    }
    ls.insert("org.label-schema.labels".into(), json!("lbl"));
    let (meta, _) = image(&manifest(serde_json::Value::Object(ls), json!({})), None);
    let a = &meta.annotated;
    assert_eq!(
        [
            &a.title,
            &a.description,
            &a.documentation,
            &a.source,
            &a.licenses,
            &a.vendor
        ],
        ["v0", "v1", "v2", "v3", "v4", "v5"]
    );
    assert_eq!(a.labels, "lbl");
    assert!(a.vendor_in_manifest);
    assert_eq!(a.authors, "");
}

#[test]
fn vendor_from_config_is_not_a_manifest_vendor() {
    let (meta, _) = image(
        &manifest(json!({}), json!({})),
        Some(&config(
            json!({"org.opencontainers.image.vendor": "acme"}),
            json!({}),
        )),
    );
    assert_eq!(meta.annotated.vendor, "acme");
    assert!(!meta.annotated.vendor_in_manifest);
}

#[test]
fn authors_fall_back_to_labels_then_config_author() {
    let key = "org.opencontainers.image.authors";
    let c = |labels| config(labels, json!({"author": "cfg-author"}));
    let (m1, _) = image(
        &manifest(json!({key: "ann"}), json!({})),
        Some(&c(json!({key: "lbl"}))),
    );
    assert_eq!(m1.annotated.authors, "ann");
    let (m2, _) = image(
        &manifest(json!({}), json!({})),
        Some(&c(json!({key: "lbl"}))),
    );
    assert_eq!(m2.annotated.authors, "lbl");
    let (m3, _) = image(&manifest(json!({}), json!({})), Some(&c(json!({}))));
    assert_eq!(m3.annotated.authors, "cfg-author");
}

#[test]
fn created_resolution() {
    const T1: &str = "2024-01-02T03:04:05Z";
    const T2: &str = "2023-05-06T07:08:09Z";
    const T3: &str = "2022-01-01T00:00:00Z";
    const T4: &str = "2021-01-01T00:00:00Z";
    let ns = |s: &str| parse_rfc3339(s).unwrap();
    let history = json!([{"created": T4}, {"created": T3, "empty_layer": true}]);
    let full = config(
        json!({"org.opencontainers.image.created": T2}),
        json!({"created": T2, "history": history}),
    );
    // The manifest's created annotation wins.
    let ann = json!({"org.opencontainers.image.created": T1});
    assert_eq!(
        image(&manifest(ann, json!({})), Some(&full)).1.created_ns,
        Some(ns(T1))
    );
    // Its label-schema key.
    let ann = json!({"org.label-schema.build-date": T1});
    assert_eq!(
        image(&manifest(ann, json!({})), Some(&full)).1.created_ns,
        Some(ns(T1))
    );
    // Unparsable: the next source.
    let ann = json!({"org.opencontainers.image.created": "yesterday"});
    let cfg = config(json!({}), json!({"created": T2, "history": history}));
    assert_eq!(
        image(&manifest(ann, json!({})), Some(&cfg)).1.created_ns,
        Some(ns(T2))
    );
    // config.created, then the last history entry.
    let cfg = config(
        json!({}),
        json!({"created": "0001-01-01T00:00:00Z", "history": history}),
    );
    assert_eq!(
        image(&manifest(json!({}), json!({})), Some(&cfg))
            .1
            .created_ns,
        Some(ns(T3))
    );
    let cfg = config(json!({}), json!({"history": history}));
    assert_eq!(
        image(&manifest(json!({}), json!({})), Some(&cfg))
            .1
            .created_ns,
        Some(ns(T3))
    );
    // Nothing: zero time.
    assert_eq!(
        image(
            &manifest(json!({}), json!({})),
            Some(&config(json!({}), json!({})))
        )
        .1
        .created_ns,
        None
    );
    assert_eq!(
        image(&manifest(json!({}), json!({})), None).1.created_ns,
        None
    );
}

#[test]
fn rfc3339() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
    assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
    assert_eq!(parse_rfc3339("1969-12-31T23:00:00-01:00"), Some(0));
    assert_eq!(
        parse_rfc3339("2024-02-29T12:00:00.123456789123Z"),
        Some(1_709_208_000_123_456_789)
    );
    for bad in [
        "",
        "2024-02-29",
        "2024-13-01T00:00:00Z",
        "2024-01-01T00:00:00",
        "x024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
    assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
}

#[test]
fn platform_layers_history_and_types() {
    let history = json!([
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD file", "author": "a", "comment": "c"},
        {"created": "not a time", "created_by": "ENV x=1", "empty_layer": true},
        {"created_by": "RUN y"},
    ]);
    let cfg = config(
        json!({}),
        json!({"architecture": "arm", "variant": "v7", "history": history}),
    );
    let (meta, mm) = image(&manifest(json!({}), json!({})), Some(&cfg));
    assert_eq!(
        mm.platform,
        Some(Platform {
            os: "linux".into(),
            arch: "arm/v7".into()
        })
    );
    assert_eq!(
        mm.layers,
        vec![
            BlobRef {
                digest: d(2),
                size: 100
            },
            BlobRef {
                digest: d(3),
                size: 200
            }
        ]
    );
    assert_eq!(
        mm.config,
        Some(BlobRef {
            digest: d(1),
            size: 7
        })
    );
    assert_eq!(
        mm.config_media_type,
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(mm.history.len(), 3);
    assert_eq!(
        mm.history[0].created.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(
        (
            mm.history[0].author.as_str(),
            mm.history[0].comment.as_str()
        ),
        ("a", "c")
    );
    assert_eq!(mm.history[1].created, None);
    assert!(mm.history[1].empty_layer && !mm.history[2].empty_layer);
    assert_eq!(mm.history[2].created_by, "RUN y");
    assert_eq!(
        meta.artifact_type,
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(meta.media_type, mt::OCI_MANIFEST);
    assert_eq!(meta.size, manifest(json!({}), json!({})).len() as u64);
    assert_eq!(meta.subject, None);
    assert!(!meta.is_signature());

    let no_platform = config(json!({}), json!({"architecture": "", "os": ""}));
    assert_eq!(
        image(&manifest(json!({}), json!({})), Some(&no_platform))
            .1
            .platform,
        None
    );
}

#[test]
fn artifact_with_subject() {
    let m = manifest(
        json!({}),
        json!({
            "artifactType": NOTATION_SIGNATURE,
            "subject": {"mediaType": mt::OCI_MANIFEST, "digest": d(5).to_string(), "size": 3},
        }),
    );
    let (meta, _) = image(&m, None);
    assert_eq!(meta.artifact_type, NOTATION_SIGNATURE);
    assert_eq!(meta.subject, Some(d(5)));
    assert!(meta.is_signature());
    assert!(is_cosign_tag("sha256-abc.sig") && !is_cosign_tag("latest"));
}

#[test]
fn bad_or_absent_config_still_gives_a_record() {
    let m = manifest(json!({"org.opencontainers.image.title": "t"}), json!({}));
    for c in [
        None,
        Some(&b"not json"[..]),
        Some(&b"[1,2]"[..]),
        Some(&br#"{"os": 7, "config": {"Labels": "x"}, "history": {}}"#[..]),
    ] {
        let (meta, mm) = image(&m, c);
        assert_eq!(meta.annotated.title, "t");
        assert_eq!(mm.platform, None);
        assert!(mm.history.is_empty());
        assert_eq!(mm.layers.len(), 2);
        assert_eq!(mm.config.as_ref().map(|c| c.size), Some(7));
    }
    // A manifest that is not JSON: an empty record of that digest and size.
    let meta = ImageMeta::from_manifest(d(9), b"{", None);
    assert_eq!(
        (meta.digest.clone(), meta.size, meta.media_type.as_str()),
        (d(9), 1, "")
    );
}

#[test]
fn docker_schema2() {
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt::DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d(1).to_string(), "size": 7},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d(2).to_string(), "size": 10}],
    }))
    .unwrap();
    let c = serde_json::to_vec(&json!({
        "architecture": "arm64", "os": "linux", "author": "docker",
        "created": "2020-06-01T10:00:00.123Z",
        "config": {"Labels": {"org.label-schema.vendor": "v"}},
        "history": [{"created": "2020-06-01T10:00:00Z", "created_by": "ADD"}],
    }))
    .unwrap();
    let meta = ImageMeta::derive(d(9), mt::DOCKER_MANIFEST, &m, Some(&c));
    assert_eq!(meta.media_type, mt::DOCKER_MANIFEST);
    assert_eq!(
        meta.artifact_type,
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(meta.annotated.vendor, "v");
    assert_eq!(meta.annotated.authors, "docker");
    let MetaKind::Manifest(mm) = meta.kind else {
        panic!("manifest")
    };
    assert_eq!(
        mm.platform,
        Some(Platform {
            os: "linux".into(),
            arch: "arm64".into()
        })
    );
    assert_eq!(mm.created_ns, parse_rfc3339("2020-06-01T10:00:00.123Z"));
    assert_eq!(mm.history.len(), 1);
}

#[test]
fn index_children_and_annotations() {
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt::DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": mt::OCI_MANIFEST, "digest": d(1).to_string(), "size": 11,
             "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
            {"mediaType": mt::OCI_MANIFEST, "digest": d(2).to_string(), "size": 12},
            {"mediaType": mt::OCI_MANIFEST, "digest": "bad", "size": 1},
        ],
        "annotations": {"org.label-schema.name": "idx", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .unwrap();
    let meta = ImageMeta::derive(d(9), mt::DOCKER_MANIFEST_LIST, &body, None);
    assert_eq!(meta.media_type, mt::OCI_INDEX);
    assert_eq!(meta.annotated.title, "idx");
    assert_eq!(meta.artifact_type, "");
    let MetaKind::Index {
        children,
        created_ns,
    } = meta.kind.clone()
    else {
        panic!("index")
    };
    assert_eq!(created_ns, parse_rfc3339("2024-01-01T00:00:00Z"));
    assert_eq!(children.len(), 2);
    assert_eq!(
        children[0].platform,
        Some(Platform {
            os: "linux".into(),
            arch: "arm/v6".into()
        })
    );
    assert_eq!(
        (
            children[1].digest.clone(),
            children[1].size,
            children[1].platform.clone()
        ),
        (d(2), 12, None)
    );
    let back: ImageMeta = serde_json::from_slice(&serde_json::to_vec(&meta).unwrap()).unwrap();
    assert_eq!(back, meta);
}
