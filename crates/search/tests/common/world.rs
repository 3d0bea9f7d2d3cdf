//! The fixture world: a few repositories (single images, a multi-arch
//! index, a derived image, cosign and notation signatures, an SBOM
//! referrer) that most tests query.

use zot_oci::image_meta::{Annotated, HistoryEntry, ImageMeta};

use super::{M, Memory, NOTATION, RepoBuilder, index};

/// Layers of the world, by name.
pub const BASE1: &str = "layer-base1";
pub const BASE2: &str = "layer-base2";

pub fn alpine_318() -> ImageMeta {
    M {
        created: Some("2023-01-01T00:00:00Z"),
        annotated: Annotated {
            vendor: "Alpine".into(),
            vendor_in_manifest: true,
            description: "alpine 3.18".into(),
            ..Annotated::default()
        },
        ..M::new("alpine-3.18", &[BASE1])
    }
    .meta()
}

pub fn alpine_319() -> ImageMeta {
    M {
        created: Some("2024-01-01T00:00:00Z"),
        annotated: Annotated {
            vendor: "Config Vendor".into(),
            vendor_in_manifest: false,
            ..Annotated::default()
        },
        history: vec![
            HistoryEntry {
                created: Some("2023-12-31T00:00:00Z".into()),
                created_by: "ADD rootfs".into(),
                ..HistoryEntry::default()
            },
            HistoryEntry {
                created_by: "ENV A=1".into(),
                empty_layer: true,
                ..HistoryEntry::default()
            },
        ],
        ..M::new("alpine-3.19", &[BASE2])
    }
    .meta()
}

pub fn cosign_sig_for(subject: &ImageMeta) -> (String, ImageMeta) {
    let tag = format!("sha256-{}.sig", subject.digest.hex());
    let meta = M {
        platform: None,
        ..M::new("cosign-sig", &["sig-layer"])
    }
    .meta();
    (tag, meta)
}

pub fn web_1() -> ImageMeta {
    M {
        created: Some("2024-06-01T00:00:00Z"),
        ..M::new("web-1.0", &[BASE1, "layer-app1"])
    }
    .meta()
}

pub fn web_2_amd() -> ImageMeta {
    M {
        created: Some("2024-05-01T00:00:00Z"),
        annotated: Annotated {
            title: "web".into(),
            vendor: "WebCo".into(),
            vendor_in_manifest: true,
            ..Annotated::default()
        },
        ..M::new("web-2.0-amd64", &[BASE1, "layer-app2"])
    }
    .meta()
}

pub fn web_2_arm() -> ImageMeta {
    M {
        created: Some("2024-05-02T00:00:00Z"),
        platform: None,
        ..M::new("web-2.0-arm64", &["layer-base3", "layer-app3"])
    }
    .meta()
}

pub fn web_2() -> ImageMeta {
    index(
        "web-2.0",
        &[
            (&web_2_amd(), Some(("linux", "amd64"))),
            (&web_2_arm(), Some(("linux", "arm64/v8"))),
        ],
        Annotated {
            description: "web index".into(),
            ..Annotated::default()
        },
    )
}

pub fn notation_sig_for(subject: &ImageMeta) -> ImageMeta {
    M {
        artifact_type: NOTATION,
        subject: Some(subject.digest.clone()),
        platform: None,
        ..M::new("notation-sig", &["notation-layer"])
    }
    .meta()
}

pub fn sbom_for(subject: &ImageMeta) -> ImageMeta {
    M {
        artifact_type: "application/spdx+json",
        subject: Some(subject.digest.clone()),
        platform: None,
        ..M::new("sbom", &["sbom-layer"])
    }
    .meta()
}

/// The world most tests query.
pub fn world() -> Memory {
    let mem = Memory::default();
    let (sig_tag, sig) = cosign_sig_for(&alpine_319());
    mem.put(
        RepoBuilder::new("alpine")
            .tag("3.18", &alpine_318(), Some("2023-01-02T00:00:00Z"))
            .tag("3.19", &alpine_319(), None)
            .tag("latest", &alpine_318(), Some("2024-02-01T00:00:00Z"))
            .tag(&sig_tag, &sig, None)
            .stats(
                &alpine_318().digest,
                5,
                Some("2023-01-02T00:00:00Z"),
                "alice",
            )
            .stats(
                &alpine_319().digest,
                10,
                Some("2024-01-05T00:00:00Z"),
                "bob",
            )
            .stats(&sig.digest, 0, Some("2024-01-06T00:00:00Z"), "bob")
            .stars(2)
            .build(),
    );
    mem.put(
        RepoBuilder::new("apps/web")
            .tag("1.0", &web_1(), Some("2024-06-02T00:00:00Z"))
            .tag("2.0", &web_2(), Some("2024-05-03T00:00:00Z"))
            .image(&web_2_amd())
            .image(&web_2_arm())
            .referrer(&notation_sig_for(&web_1()), &[])
            .referrer(&sbom_for(&web_1()), &[("org.example.kind", "sbom")])
            .stats(&web_1().digest, 1, Some("2024-06-02T00:00:00Z"), "carol")
            .stats(&web_2().digest, 7, Some("2024-05-03T00:00:00Z"), "carol")
            .build(),
    );
    mem.put(
        RepoBuilder::new("private/secret")
            .tag(
                "v1",
                &M::new("secret-v1", &[BASE1, "layer-secret"]).meta(),
                None,
            )
            .build(),
    );
    mem.put(RepoBuilder::new("empty").build());
    mem.put(
        RepoBuilder::new("tools/alpine-utils")
            .tag(
                "0.1",
                &M::new("utils-0.1", &[BASE2, "layer-utils"]).meta(),
                None,
            )
            .build(),
    );
    mem.put(
        RepoBuilder::new("foo/myalpine")
            .tag("1", &M::new("myalpine-1", &["layer-my"]).meta(), None)
            .build(),
    );
    mem.put(
        RepoBuilder::new("alpinex/other")
            .tag("1", &M::new("alpinex-1", &["layer-x"]).meta(), None)
            .build(),
    );
    mem
}
