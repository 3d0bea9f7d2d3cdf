//! Property: whatever sequence of pushes, mounts, tag and manifest
//! deletes, blob deletes, GC runs, moves of parked blobs (a layer over one
//! part is pushed chunked and parked, `parked.rs`) and losses of the
//! metadata store (a rebuild from the bucket, then going on; parked blobs
//! stay parked through it) two registries on one bucket
//! (and, for now, one metadata store) go through with dedupe on, every
//! blob a remaining manifest references reads back whole with its digest,
//! through either instance, and again after a final rebuild; and each
//! digest's content is stored at most once.
//!
//! Cases run against SeaweedFS, so there are few of them by default;
//! `PROPTEST_CASES` asks for more.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod dedupe_common;
mod gc_common;
mod s3_common;

use dedupe_common::{Bucket, CHUNK, dedupe};
use gc_common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use zot_oci::{Digest, Reference};
use zot_storage::{Backend, GcOptions, Registry, StorageError};

const REPOS: [&str; 3] = ["r0", "r1", "team/r2"];
const TAGS: [&str; 2] = ["t0", "t1"];

/// Layer contents: the empty blob among them (it must never be taken for
/// a placeholder).
fn layers() -> Vec<Vec<u8>> {
    vec![
        (0..3000u32).map(|i| (i % 251) as u8).collect(),
        (0..1200u32).map(|i| (i % 13) as u8 ^ 0x5a).collect(),
        Vec::new(),
        b"small".to_vec(),
        // Over one part: pushed chunked, so parked.
        (0..CHUNK as u32 + 4097)
            .map(|i| (i % 241) as u8 ^ 0x33)
            .collect(),
    ]
}

/// The layer pushed as a chunked upload (and so parked).
const PARKED_LAYER: usize = 4;

/// Images as sets of layers (indexes into [`layers`]).
const IMAGES: [&[usize]; 6] = [&[0], &[0, 1], &[1, 2, 3], &[3, 0], &[2], &[4, 1]];

#[derive(Debug, Clone)]
enum Op {
    Push {
        inst: usize,
        repo: usize,
        image: usize,
        tag: usize,
    },
    Mount {
        inst: usize,
        from: usize,
        to: usize,
        layer: usize,
    },
    /// Of a tag the model has (`pick` modulo their number), or of one it
    /// does not when it has none.
    DeleteTag {
        inst: usize,
        pick: usize,
    },
    /// Of a manifest the model has (`pick` modulo their number).
    DeleteManifest {
        inst: usize,
        pick: usize,
    },
    /// A blob delete, only of a blob no manifest of the repository needs.
    DeleteBlob {
        inst: usize,
        repo: usize,
        layer: usize,
    },
    Gc {
        inst: usize,
    },
    /// The moves of every parked blob, copy and clean-up.
    MoveParked {
        inst: usize,
    },
    /// The metadata store is lost: both registries restart on a new one,
    /// rebuilt from the bucket.
    Rebuild,
}

fn op() -> impl Strategy<Value = Op> {
    let (i, r, t, l, m) = (
        0..2usize,
        0..REPOS.len(),
        0..TAGS.len(),
        0..5usize,
        0..IMAGES.len(),
    );
    prop_oneof![
        4 => (i.clone(), r.clone(), m.clone(), t.clone())
            .prop_map(|(inst, repo, image, tag)| Op::Push { inst, repo, image, tag }),
        1 => (i.clone(), r.clone(), r.clone(), l.clone())
            .prop_map(|(inst, from, to, layer)| Op::Mount { inst, from, to, layer }),
        1 => (i.clone(), any::<usize>()).prop_map(|(inst, pick)| Op::DeleteTag { inst, pick }),
        2 => (i.clone(), any::<usize>()).prop_map(|(inst, pick)| Op::DeleteManifest { inst, pick }),
        1 => (i.clone(), r, l).prop_map(|(inst, repo, layer)| Op::DeleteBlob { inst, repo, layer }),
        2 => i.clone().prop_map(|inst| Op::Gc { inst }),
        1 => i.prop_map(|inst| Op::MoveParked { inst }),
        1 => Just(Op::Rebuild),
    ]
}

/// What the registries should hold: per repository, tags and manifests.
#[derive(Default)]
struct Model {
    tags: BTreeMap<(usize, usize), usize>,
    manifests: BTreeSet<(usize, usize)>,
}

impl Model {
    fn needs(&self, repo: usize, layer: usize) -> bool {
        self.manifests
            .iter()
            .any(|&(r, m)| r == repo && IMAGES[m].contains(&layer))
    }
}

fn layer_refs(layers: &[Vec<u8>], image: usize) -> Vec<&[u8]> {
    IMAGES[image]
        .iter()
        .map(|&l| layers[l].as_slice())
        .collect()
}

fn manifest_digest(layers: &[Vec<u8>], image: usize) -> Digest {
    Digest::sha256_of(image_manifest(&layer_refs(layers, image)).as_bytes())
}

/// Dedupe on; every chunked upload over one part parked.
fn parking() -> zot_storage::Options {
    zot_storage::Options {
        park_min_bytes: Some(1),
        ..dedupe(true)
    }
}

/// A chunked upload (POST, one PATCH, `PUT ?digest` without a body).
async fn push_chunked(reg: &Registry, r: &zot_oci::RepoName, data: &[u8]) {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    reg.append_upload(r, &id, None, s3_common::uploads::body(data))
        .await
        .unwrap();
    reg.complete_upload(r, &id, &d, None, s3_common::uploads::no_body())
        .await
        .unwrap();
}

async fn apply(regs: &[Registry], model: &mut Model, layers: &[Vec<u8>], op: &Op) {
    let gc = GcOptions {
        delay: Duration::ZERO,
        ..GcOptions::default()
    };
    match *op {
        Op::Push {
            inst,
            repo: r,
            image,
            tag: t,
        } => {
            if IMAGES[image].contains(&PARKED_LAYER) {
                push_chunked(&regs[inst], &repo(REPOS[r]), &layers[PARKED_LAYER]).await;
            }
            push_image(
                &regs[inst],
                &repo(REPOS[r]),
                TAGS[t],
                &layer_refs(layers, image),
            )
            .await;
            model.tags.insert((r, t), image);
            model.manifests.insert((r, image));
        }
        Op::Mount {
            inst,
            from,
            to,
            layer,
        } => {
            let d = Digest::sha256_of(&layers[layer]);
            regs[inst]
                .mount_blob(&repo(REPOS[to]), &d, Some(&repo(REPOS[from])))
                .await
                .unwrap();
        }
        Op::DeleteTag { inst, pick } => {
            let tags: Vec<(usize, usize)> = model.tags.keys().copied().collect();
            let (r, t) = match tags.len() {
                0 => (pick % REPOS.len(), pick % TAGS.len()),
                n => tags[pick % n],
            };
            let reference = Reference::Tag(TAGS[t].parse().unwrap());
            let deleted = regs[inst]
                .delete_manifest(&repo(REPOS[r]), &reference)
                .await;
            match model.tags.remove(&(r, t)) {
                Some(_) => deleted.unwrap(),
                None => assert!(matches!(deleted, Err(StorageError::ManifestUnknown))),
            }
        }
        Op::DeleteManifest { inst, pick } => {
            let all: Vec<(usize, usize)> = model.manifests.iter().copied().collect();
            if all.is_empty() {
                return;
            }
            let (r, image) = all[pick % all.len()];
            let reference = Reference::Digest(manifest_digest(layers, image));
            regs[inst]
                .delete_manifest(&repo(REPOS[r]), &reference)
                .await
                .unwrap();
            model.manifests.remove(&(r, image));
            model.tags.retain(|&(rr, _), &mut m| rr != r || m != image);
        }
        Op::DeleteBlob {
            inst,
            repo: r,
            layer,
        } => {
            // The config is needed by every image; layers only by some.
            if !model.needs(r, layer) {
                let d = Digest::sha256_of(&layers[layer]);
                match regs[inst].delete_blob(&repo(REPOS[r]), &d).await {
                    Ok(()) | Err(StorageError::BlobUnknown) => {}
                    Err(e) => panic!("deleting {d} from {}: {e}", REPOS[r]),
                }
            }
        }
        Op::Gc { inst } => {
            let report = regs[inst].gc_all(&gc).await.unwrap();
            assert_eq!(report.problems, 0, "{report:?}");
        }
        Op::MoveParked { inst } => {
            regs[inst].move_parked_now().await.unwrap();
        }
        Op::Rebuild => unreachable!("done by run"),
    }
}

/// Every manifest of the model, pulled whole (every blob hashed) through
/// every registry.
async fn check(regs: &[Registry], model: &Model, layers: &[Vec<u8>], after: &str) {
    for reg in regs {
        for &(r, image) in &model.manifests {
            let name = repo(REPOS[r]);
            let d = manifest_digest(layers, image);
            let rec = reg
                .manifest_record(&name, &Reference::Digest(d.clone()))
                .unwrap_or_else(|e| panic!("{after}: {name}@{d}: {e}"));
            reg.manifest_bytes(&name, &rec).await.unwrap();
            try_read_blob(reg, &name, &Digest::sha256_of(b"{}"))
                .await
                .unwrap_or_else(|e| panic!("{after}: config: {e}"));
            for &l in IMAGES[image] {
                try_read_blob(reg, &name, &Digest::sha256_of(&layers[l]))
                    .await
                    .unwrap_or_else(|e| panic!("{after}: layer {l}: {e}"));
            }
        }
        for &(r, t) in model.tags.keys() {
            try_pull_image(reg, &repo(REPOS[r]), TAGS[t])
                .await
                .unwrap_or_else(|e| panic!("{after}: {e}"));
        }
    }
}

async fn run(ops: Vec<Op>) {
    let layers = layers();
    let b = Bucket::new_prefix();
    let meta = b.fresh_meta();
    let mut regs = b.registries(&meta, &parking(), 2).await;
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        if let Op::Rebuild = op {
            drop(regs);
            regs = b.registries(&b.fresh_meta(), &parking(), 2).await;
        } else {
            apply(&regs, &mut model, &layers, op).await;
        }
        // Reads are checked after every step that removes something.
        if !matches!(op, Op::Push { .. } | Op::Mount { .. }) {
            check(&regs[..1], &model, &layers, &format!("step {i} {op:?}")).await;
        }
    }
    check(&regs, &model, &layers, "the end").await;
    // Stored once: at most one object with content per digest.
    let mut digests: Vec<Digest> = layers.iter().map(|l| Digest::sha256_of(l)).collect();
    digests.push(Digest::sha256_of(b"{}"));
    for d in digests.iter().filter(|d| **d != Digest::sha256_of(b"")) {
        let mut holders = Vec::new();
        for r in REPOS {
            if b.object_size(r, d).await.is_some_and(|n| n > 0) {
                holders.push(r);
            }
        }
        assert!(holders.len() <= 1, "{d} stored in {holders:?}");
    }
    // Every parked blob moved and cleaned up: nothing left parked.
    regs[0].move_parked_now().await.unwrap();
    let parked = b.raw().list(".parked").await.unwrap();
    assert!(parked.is_empty(), "left parked: {parked:?}");
    check(&regs, &model, &layers, "the moves").await;
    drop(regs);
    // The metadata store is lost: rebuilt from the bucket, nothing is.
    let regs = b.registries(&b.fresh_meta(), &parking(), 1).await;
    check(&regs, &model, &layers, "a rebuild").await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_sequence_loses_referenced_content(ops in prop::collection::vec(op(), 1..32)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(ops));
    }
}
