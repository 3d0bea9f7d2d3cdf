//! The async face: layers read from files on disk and from a stream that
//! hands out a few bytes at a time give the same inventory as whole
//! buffers, a stream that fails mid-way fails the scan, and mutated real
//! layers (property test) end in an inventory or an error, never a panic.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use common::{GZIP, Layer, TAR, ZSTD, scan};
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};
use zot_scan::{Limits, ScanError, Scanner};

/// Hands out at most `step` bytes per read, then fails after `fail_at` bytes if set.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
    fail_at: Option<usize>,
    pending: bool,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.fail_at.is_some_and(|f| self.at >= f) {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "storage went away",
            )));
        }
        // Every other read is not ready at first, as on a network stream.
        self.pending = !self.pending;
        if self.pending {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let end = (self.at + self.step)
            .min(self.data.len())
            .min(self.at + buf.remaining());
        let chunk = self.data[self.at..end].to_vec();
        buf.put_slice(&chunk);
        self.at = end;
        Poll::Ready(Ok(()))
    }
}

fn layers() -> Vec<(&'static str, Vec<u8>)> {
    let status = std::fs::read("/var/lib/dpkg/status").expect("host dpkg status");
    vec![
        (
            GZIP,
            Layer::new()
                .file("etc/os-release", b"ID=debian\nVERSION_ID=12\n")
                .file("var/lib/dpkg/status", &status)
                .file(
                    "app/node_modules/a/package.json",
                    br#"{"name":"a","version":"1.0.0"}"#,
                )
                .gzip(),
        ),
        (
            ZSTD,
            Layer::new()
                .whiteout("app/node_modules/a")
                .file(
                    "app/Cargo.lock",
                    b"[[package]]\nname = \"x\"\nversion = \"0.1.0\"\n",
                )
                .zstd(),
        ),
    ]
}

async fn scan_trickle(
    layers: Vec<(&str, Vec<u8>)>,
    step: usize,
    fail_at: Option<usize>,
) -> Result<zot_scan::Inventory, ScanError> {
    let mut scanner = Scanner::new(Limits::default());
    for (media_type, data) in layers {
        scanner
            .add_layer(
                media_type,
                Trickle {
                    data,
                    at: 0,
                    step,
                    fail_at,
                    pending: false,
                },
            )
            .await?;
    }
    Ok(scanner.finish())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_trickling_streams_give_the_same_inventory() {
    let expected = tokio::task::spawn_blocking(|| scan(layers()))
        .await
        .expect("join");
    assert!(expected.packages.len() > 50);
    for step in [1, 7, 4096] {
        let got = scan_trickle(layers(), step, None).await.expect("scan");
        assert_eq!(got, expected, "{step} bytes per read");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scanner = Scanner::new(Limits::default());
    for (i, (media_type, data)) in layers().into_iter().enumerate() {
        let path = dir.path().join(format!("layer{i}"));
        std::fs::write(&path, data).expect("write layer");
        scanner
            .add_layer(
                media_type,
                tokio::fs::File::open(&path).await.expect("open"),
            )
            .await
            .expect("scan");
    }
    assert_eq!(scanner.finish(), expected);
}

/// The scan can run in a spawned task (its future is `Send`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_run_in_spawned_tasks() {
    let task = tokio::spawn(scan_trickle(layers(), 4096, None));
    let inventory = task.await.expect("join").expect("scan");
    assert_eq!(inventory.scanner, zot_scan::Inventory::SCANNER);
    assert!(inventory.find(zot_scan::Ecosystem::Cargo, "x").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stream_fails_the_scan() {
    let err = scan_trickle(layers(), 512, Some(20_000)).await.unwrap_err();
    assert!(
        matches!(&err, ScanError::Io { layer: 0, source } if source.kind() == std::io::ErrorKind::ConnectionReset),
        "{err}"
    );
}

fn sample_tar() -> Vec<u8> {
    Layer::new()
        .file("etc/os-release", b"ID=alpine\n")
        .file("lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\n\n")
        .file(
            "x/node_modules/b/package.json",
            br#"{"name":"b","version":"2.0.0"}"#,
        )
        .whiteout("gone")
        .tar()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_layers_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16), gzip in any::<bool>()) {
        let mut bytes = sample_tar();
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        let layer = if gzip {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).expect("gzip");
            (GZIP, e.finish().expect("gzip"))
        } else {
            (TAR, bytes)
        };
        let _ = common::try_scan_with(vec![layer], Limits::default());
    }
}
