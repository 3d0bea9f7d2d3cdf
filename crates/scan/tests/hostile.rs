//! Hostile layers: every one ends in an error or a recorded problem within
//! the limits, never a panic, a hang or unbounded memory. Limits are
//! lowered here so the bombs stay small.

mod common;

use std::io::Write;

use common::{GZIP, Layer, TAR, ZSTD, scan, try_scan_with};
use zot_scan::{Ecosystem, Limits, ScanError};

fn limits() -> Limits {
    Limits {
        layer_bytes: 8 << 20,
        database_bytes: 1 << 20,
        metadata_bytes: 64 << 10,
        archive_bytes: 1 << 20,
        spool_memory_bytes: 256 << 10,
        ..Limits::default()
    }
}

#[test]
fn tar_bomb_stops_at_the_uncompressed_limit() {
    let zeros = vec![0u8; 12 << 20];
    for (media_type, bytes) in [
        (GZIP, Layer::new().file("big", &zeros).gzip()),
        (ZSTD, Layer::new().file("big", &zeros).zstd()),
    ] {
        assert!(bytes.len() < 1 << 20, "compresses well");
        let err = try_scan_with(vec![(media_type, bytes)], limits()).unwrap_err();
        assert!(
            matches!(
                err,
                ScanError::Limit {
                    what: "uncompressed size",
                    ..
                }
            ),
            "{media_type}: {err}"
        );
    }
}

#[test]
fn huge_file_named_like_a_database_is_skipped_and_the_layer_goes_on() {
    let big = vec![b'x'; 4 << 20];
    let layer = Layer::new()
        .file("var/lib/dpkg/status", &big)
        .file("var/lib/rpm/rpmdb.sqlite", &big)
        .file("usr/lib/python3/site-packages/x-1.dist-info/METADATA", &big)
        .file("etc/os-release", b"ID=debian\n")
        .gzip();
    let roomy = Limits {
        layer_bytes: 64 << 20,
        ..limits()
    };
    let inventory = try_scan_with(vec![(GZIP, layer)], roomy).unwrap();
    assert_eq!(inventory.os.unwrap().id, "debian");
    let skipped: Vec<(&str, &str)> = inventory
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "var/lib/dpkg/status",
                "larger than the limit of 1048576 bytes"
            ),
            (
                "var/lib/rpm/rpmdb.sqlite",
                "larger than the limit of 1048576 bytes"
            ),
            // Only the head of METADATA is read; it has no headers.
            (
                "usr/lib/python3/site-packages/x-1.dist-info/METADATA",
                "malformed: no Name and Version headers"
            ),
        ]
    );
}

#[test]
fn path_traversal_entries_are_ignored() {
    let layer = Layer::new()
        .raw_file(b"../../../etc/os-release", b"ID=evil\n")
        .raw_file(b"/var/lib/dpkg/status", b"Package: bash\nVersion: 5.2\n")
        .raw_file(
            b"usr/../../var/lib/dpkg/status",
            b"Package: evil\nVersion: 1\n",
        )
        .tar();
    let inventory = scan(vec![(TAR, layer)]);
    assert!(
        inventory.os.is_none(),
        "a path above the root is never the image's os-release"
    );
    let names: Vec<&str> = inventory.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["bash"],
        "an absolute path is read relative to the root"
    );
    let problems: Vec<&str> = inventory.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        problems,
        ["../../../etc/os-release", "usr/../../var/lib/dpkg/status"]
    );
}

fn jar_with(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .expect("test fixture");
        writer.write_all(bytes).expect("test fixture");
    }
    writer.finish().expect("test fixture").into_inner()
}

fn pom(artifact: &str) -> (String, Vec<u8>) {
    (
        format!("META-INF/maven/deep/{artifact}/pom.properties"),
        format!("groupId=deep\nartifactId={artifact}\nversion=1\n").into_bytes(),
    )
}

#[test]
fn deep_jar_nesting_stops_at_the_depth_limit() {
    let mut jar = jar_with(&[pom("level10")]);
    for level in (1..10).rev() {
        jar = jar_with(&[
            pom(&format!("level{level}")),
            ("lib/nested.jar".into(), jar),
        ]);
    }
    let layer = Layer::new().file("app.jar", &jar).gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    let mut found: Vec<String> = inventory
        .of(Ecosystem::Maven)
        .map(|p| p.name.clone())
        .collect();
    found.sort();
    assert_eq!(
        found,
        ["deep:level1", "deep:level2", "deep:level3", "deep:level4"],
        "Limits::archive_depth is 4"
    );
    let problems: Vec<(&str, &str)> = inventory
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    let deep = "app.jar!/lib/nested.jar!/lib/nested.jar!/lib/nested.jar!/lib/nested.jar";
    assert_eq!(problems, [(deep, "archive nested deeper than 4; not read")]);
}

#[test]
fn oversized_nested_archive_is_skipped_and_the_outer_one_read() {
    // The inner jar is stored (4 MiB), the outer one deflated (a few KiB):
    // a small file that expands past the limit when the inner is spooled.
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let (name, bytes) = pom("inner");
    writer.start_file(name, stored).unwrap();
    writer.write_all(&bytes).unwrap();
    writer.start_file("zeros", stored).unwrap();
    writer.write_all(&vec![0u8; 4 << 20]).unwrap();
    let inner = writer.finish().unwrap().into_inner();
    let outer = jar_with(&[pom("outer"), ("lib/inner.jar".into(), inner)]);
    assert!(outer.len() < 64 << 10);
    let layer = Layer::new().file("app.jar", &outer).gzip();
    let generous = Limits {
        archive_bytes: 16 << 20,
        ..limits()
    };
    let all = try_scan_with(vec![(GZIP, layer.clone())], generous).unwrap();
    assert_eq!(all.of(Ecosystem::Maven).count(), 2);
    let inventory = try_scan_with(vec![(GZIP, layer)], limits()).unwrap();
    let found: Vec<&str> = inventory
        .of(Ecosystem::Maven)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(found, ["deep:outer"]);
    assert_eq!(inventory.problems.len(), 1);
    assert_eq!(inventory.problems[0].path, "app.jar!/lib/inner.jar");
    assert_eq!(
        inventory.problems[0].message,
        "larger than the limit of 1048576 bytes"
    );
}

#[test]
fn malformed_elf_files_yield_nothing() {
    let mut garbage = b"\x7fELF\x02\x01\x01".to_vec();
    garbage.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 7) as u8));
    let mut header_only = b"\x7fELF\x02\x01\x01\x00".to_vec();
    header_only.resize(64, 0xff);
    // Go's magic, aligned, claiming strings longer than the file.
    let mut go_liar = b"\x7fELF".to_vec();
    go_liar.resize(64, 0);
    go_liar.extend_from_slice(b"\xff Go buildinf:\x08\x02");
    go_liar.resize(96, 0);
    go_liar.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    go_liar.resize(4096, b'A');
    // Go's magic with a pointer-format header pointing nowhere.
    let mut go_pointers = go_liar.clone();
    go_pointers[64 + 15] = 0;
    let layer = Layer::new()
        .exec("bin/garbage", &garbage)
        .exec("bin/header-only", &header_only)
        .exec("bin/go-liar", &go_liar)
        .exec("bin/go-pointers", &go_pointers)
        .exec("bin/truncated", b"\x7fELF")
        .gzip();
    let inventory = scan(vec![(GZIP, layer.clone())]);
    assert!(inventory.packages.is_empty(), "{:?}", inventory.packages);
    // The same, streamed (past the in-memory limit).
    let streaming = Limits {
        binary_bytes: 16,
        ..limits()
    };
    assert!(
        try_scan_with(vec![(GZIP, layer)], streaming)
            .unwrap()
            .packages
            .is_empty()
    );
}

#[test]
fn auditable_section_holding_a_zlib_bomb_is_refused() {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(b"{\"packages\":[").unwrap();
    z.write_all(&vec![b' '; 4 << 20]).unwrap();
    z.write_all(b"]}").unwrap();
    let section = z.finish().unwrap();
    assert!(section.len() < 64 << 10);
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<String> = section.iter().map(u8::to_string).collect();
    let source = format!(
        "#[used]\n#[no_mangle]\n#[link_section = \".dep-v0\"]\npub static AUDITABLE_VERSION_INFO: [u8; {}] = [{}];\nfn main() {{}}\n",
        section.len(),
        bytes.join(",")
    );
    std::fs::write(dir.path().join("main.rs"), source).unwrap();
    let binary = dir.path().join("bomb");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    common::run(
        std::process::Command::new(rustc)
            .args([
                "--edition",
                "2021",
                "-C",
                "link-arg=-Wl,--undefined=AUDITABLE_VERSION_INFO",
                "-o",
            ])
            .arg(&binary)
            .arg(dir.path().join("main.rs")),
    );
    let layer = Layer::new().host_file("usr/bin/bomb", &binary).gzip();
    let small = Limits {
        build_info_bytes: 1 << 20,
        ..Limits::default()
    };
    let inventory = try_scan_with(vec![(GZIP, layer)], small).unwrap();
    assert!(inventory.packages.is_empty());
    assert_eq!(inventory.problems.len(), 1);
    assert_eq!(
        inventory.problems[0].message,
        "larger than the limit of 1048576 bytes"
    );
}

#[test]
fn broken_streams_are_errors() {
    let good = Layer::new()
        .file("etc/os-release", b"ID=debian\n")
        .file("x", &[7u8; 10_000])
        .gzip();
    // Truncated inside the compressed stream.
    let err = try_scan_with(vec![(GZIP, good[..good.len() / 2].to_vec())], limits()).unwrap_err();
    assert!(matches!(err, ScanError::Io { layer: 0, .. }), "{err}");
    // A gzip header, then garbage.
    let mut corrupt = good[..10].to_vec();
    corrupt.extend_from_slice(&[0xffu8; 200]);
    assert!(try_scan_with(vec![(GZIP, corrupt)], limits()).is_err());
    // Random bytes are not a tar stream (checksums).
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let err = try_scan_with(vec![(TAR, random)], limits()).unwrap_err();
    assert!(matches!(err, ScanError::Tar { .. }), "{err}");
    // A tar stream cut inside an entry, in the second layer.
    let tar = Layer::new()
        .file("etc/os-release", b"ID=debian\n")
        .file("x", &[7u8; 10_000])
        .tar();
    let err = try_scan_with(
        vec![(TAR, tar.clone()), (TAR, tar[..3000].to_vec())],
        limits(),
    )
    .unwrap_err();
    assert!(matches!(err, ScanError::Io { layer: 1, .. }), "{err}");
    // Not a layer.
    let err = try_scan_with(
        vec![("application/vnd.oci.image.config.v1+json", tar)],
        limits(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "scanning is not supported for given media type: layer media type 'application/vnd.oci.image.config.v1+json'"
    );
}

#[test]
fn huge_extension_headers_and_entry_counts_are_bounded() {
    let long_name = "a/".repeat(1 << 20);
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, &long_name, &[1u8][..])
        .unwrap();
    let err = try_scan_with(vec![(TAR, builder.into_inner().unwrap())], limits()).unwrap_err();
    assert!(
        err.to_string().contains("extension header is too large"),
        "{err}"
    );

    let mut layer = Layer::new();
    for i in 0..500 {
        layer = layer.file(&format!("f{i}"), b"");
    }
    let few = Limits {
        layer_entries: 100,
        ..limits()
    };
    let err = try_scan_with(vec![(TAR, layer.tar())], few).unwrap_err();
    assert!(
        matches!(
            err,
            ScanError::Limit {
                what: "entry count",
                limit: 100,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn hostile_rpm_sqlite_databases() {
    let dir = tempfile::tempdir().unwrap();
    // Packages as a view that never ends.
    let view = dir.path().join("view.sqlite");
    let conn = rusqlite::Connection::open(&view).unwrap();
    conn.execute_batch("CREATE VIEW Packages AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i AS hnum, zeroblob(10) AS blob FROM n;").unwrap();
    drop(conn);
    // A table of garbage blobs, and one too many steps to read.
    let table = dir.path().join("table.sqlite");
    let conn = rusqlite::Connection::open(&table).unwrap();
    conn.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 20000) INSERT INTO Packages (blob) SELECT randomblob(64) FROM n;").unwrap();
    drop(conn);
    let layer = |path: &std::path::Path| {
        Layer::new()
            .host_file("var/lib/rpm/rpmdb.sqlite", path)
            .gzip()
    };
    let generous = Limits {
        archive_bytes: 16 << 20,
        ..limits()
    };
    let inventory = try_scan_with(vec![(GZIP, layer(&view))], generous.clone()).unwrap();
    assert_eq!(
        inventory.problems[0].message,
        "malformed: rpm sqlite: Packages is not a table"
    );
    let inventory = try_scan_with(vec![(GZIP, layer(&table))], generous.clone()).unwrap();
    assert!(
        inventory.packages.is_empty() && inventory.problems.is_empty(),
        "garbage headers are skipped"
    );
    let few_steps = Limits {
        sqlite_steps: 10_000,
        ..generous
    };
    let inventory = try_scan_with(vec![(GZIP, layer(&table))], few_steps).unwrap();
    assert!(
        inventory.problems[0].message.contains("interrupt"),
        "{:?}",
        inventory.problems
    );
}

#[test]
fn berkeley_db_overflow_cycle_ends() {
    const PAGE: usize = 512;
    let mut file = vec![0u8; 3 * PAGE];
    // Metadata page: hash magic, version, page size, type.
    file[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    file[16..20].copy_from_slice(&9u32.to_le_bytes());
    file[20..24].copy_from_slice(&(PAGE as u32).to_le_bytes());
    file[25] = 8;
    // Page 1: a hash page with a key and an off-page data item.
    let p1 = PAGE;
    file[p1 + 8..p1 + 12].copy_from_slice(&1u32.to_le_bytes());
    file[p1 + 20..p1 + 22].copy_from_slice(&2u16.to_le_bytes());
    file[p1 + 25] = 13;
    let (key_at, data_at) = (PAGE - 8, PAGE - 20);
    file[p1 + 26..p1 + 28].copy_from_slice(&(key_at as u16).to_le_bytes());
    file[p1 + 28..p1 + 30].copy_from_slice(&(data_at as u16).to_le_bytes());
    file[p1 + key_at] = 1;
    file[p1 + data_at] = 3;
    file[p1 + data_at + 4..p1 + data_at + 8].copy_from_slice(&2u32.to_le_bytes());
    file[p1 + data_at + 8..p1 + data_at + 12].copy_from_slice(&(200u32 << 20).to_le_bytes());
    // Page 2: an overflow page whose next page is itself.
    let p2 = 2 * PAGE;
    file[p2 + 8..p2 + 12].copy_from_slice(&2u32.to_le_bytes());
    file[p2 + 16..p2 + 20].copy_from_slice(&2u32.to_le_bytes());
    file[p2 + 22..p2 + 24].copy_from_slice(&100u16.to_le_bytes());
    file[p2 + 25] = 7;
    let layer = Layer::new().file("var/lib/rpm/Packages", &file).gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    assert!(inventory.packages.is_empty());
    assert_eq!(
        inventory.problems[0].message,
        "malformed: Berkeley DB: 1 unreadable headers"
    );
}

#[test]
fn problems_are_capped() {
    let mut layer = Layer::new();
    for i in 0..30 {
        layer = layer.file(&format!("app/node_modules/p{i}/package.json"), b"{not json");
    }
    let few = Limits {
        problems: 10,
        ..limits()
    };
    let inventory = try_scan_with(vec![(GZIP, layer.gzip())], few).unwrap();
    assert_eq!(
        (inventory.problems.len(), inventory.problems_dropped),
        (10, 20)
    );
}

#[test]
fn package_count_is_bounded_while_reading() {
    let mut layer = Layer::new().file("etc/os-release", b"ID=debian\n");
    for i in 0..50 {
        let json = format!(r#"{{"name":"p{i}","version":"1.0.{i}"}}"#);
        layer = layer.file(
            &format!("app/node_modules/p{i}/package.json"),
            json.as_bytes(),
        );
    }
    let few = Limits {
        packages: 20,
        ..limits()
    };
    let inventory = try_scan_with(vec![(GZIP, layer.gzip())], few).unwrap();
    assert_eq!(inventory.packages.len(), 20);
    assert_eq!(inventory.problems.len(), 30);
    assert!(
        inventory.problems[0]
            .message
            .starts_with("more than 20 packages")
    );
    assert_eq!(inventory.os.unwrap().id, "debian");
}
