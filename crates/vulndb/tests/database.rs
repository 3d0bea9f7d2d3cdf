//! The database's sources and updates: `all.zip` per ecosystem served by
//! a local static-file HTTP server (conditional requests, an update
//! between two loads, faults: a corrupt zip, a truncated download, a
//! malformed record, a missing file, an unreachable server), and a local
//! folder (`*.json` records and `all.zip`) updated between two loads.
//! Every failure leaves the previous index in use, also after reopening.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure is the test's failure"
)]

mod common;

use std::path::Path;

use common::*;
use zot_vulndb::{DbError, Outcome, Source, VulnDb, match_inventory};

const ECOS: [&str; 2] = ["Debian", "PyPI"];

fn ecos() -> Vec<String> {
    ECOS.iter().map(|s| s.to_string()).collect()
}

fn serve_samples(server: &Server, etag: &str) {
    for eco in ECOS {
        server.put(
            &format!("/{eco}/all.zip"),
            zip_of(&samples().join(eco)),
            &format!("{eco}-{etag}"),
        );
    }
}

fn only(rows: Vec<Row>, packages: &[&str]) -> Vec<Row> {
    rows.into_iter()
        .filter(|r| packages.contains(&r.0.as_str()))
        .collect()
}

const DEB_PY: [&str; 4] = ["libssl3", "openssl", "requests", "urllib3"];

fn findings(db: &VulnDb) -> Vec<Row> {
    rows(&match_inventory(&debian_inventory(), db.current().unwrap().as_ref()).unwrap())
}

const NEW_REQUESTS_RECORD: &str = r#"{"id":"GHSA-j8r2-6x86-q33q","aliases":["CVE-2023-32681"],"summary":"Unintended leak of Proxy-Authorization header in requests","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.1"}]}]}]}"#;

fn pypi_with_new_record() -> Vec<u8> {
    let dir = samples().join("PyPI");
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    entries.sort();
    entries.push((
        "GHSA-j8r2-6x86-q33q.json".into(),
        NEW_REQUESTS_RECORD.as_bytes().to_vec(),
    ));
    zip_entries(&entries)
}

fn current_name(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("CURRENT"))
        .unwrap()
        .trim()
        .to_string()
}

/// A server with the Debian and PyPI samples, its source, a root.
async fn serving() -> (Server, Source, tempfile::TempDir) {
    let server = Server::default();
    serve_samples(&server, "1");
    let base = server.start().await;
    (server, Source::Url(base), tempfile::tempdir().unwrap())
}

#[tokio::test]
async fn url_source_conditional_requests_and_update() {
    let (server, source, tmp) = serving().await;
    let dir = tmp.path().join("_zot/cve");
    let db = VulnDb::open(&dir).unwrap();
    assert!(db.current().is_none());

    let Outcome::Updated(info) = db.update(&source, &ecos()).await.unwrap() else {
        panic!("not updated")
    };
    assert_eq!(info.version, 1);
    assert_eq!(info.ecosystems, ecos());
    assert_eq!(info.records, 8);
    let mut statuses = server.statuses();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("/Debian/all.zip".to_string(), 200),
            ("/PyPI/all.zip".to_string(), 200)
        ]
    );
    let expected = only(debian_expected(), &DEB_PY);
    assert_eq!(findings(&db), expected);
    let v1 = db.current().unwrap();

    // Nothing changed upstream: two 304s, the index is kept.
    let Outcome::Unchanged(info) = db.update(&source, &ecos()).await.unwrap() else {
        panic!("rebuilt")
    };
    assert_eq!(info.version, 1);
    assert!(server.statuses().iter().all(|(_, s)| *s == 304));

    // PyPI changes: Debian is revalidated (304), PyPI downloaded (200).
    server.put("/PyPI/all.zip", pypi_with_new_record(), "PyPI-2");
    let Outcome::Updated(info) = db.update(&source, &ecos()).await.unwrap() else {
        panic!("not updated")
    };
    assert_eq!(info.version, 2);
    let mut statuses = server.statuses();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("/Debian/all.zip".to_string(), 304),
            ("/PyPI/all.zip".to_string(), 200)
        ]
    );
    let mut want = expected.clone();
    want.push(row(
        "requests",
        "CVE-2023-32681",
        "MEDIUM",
        "2.31.0",
        Some("2.31.1"),
    ));
    want.sort();
    assert_eq!(findings(&db), want);
    assert_eq!(current_name(&dir), "db-000002");
    assert!(!dir.join("db-000001").exists());
    // A reader that took the old index before the swap still reads it.
    assert_eq!(
        rows(&match_inventory(&debian_inventory(), v1.as_ref()).unwrap()),
        expected
    );

    // Reopened (a restart): the same index, and still up to date.
    drop(db);
    let db = VulnDb::open(&dir).unwrap();
    assert_eq!(db.info().unwrap().version, 2);
    assert_eq!(findings(&db), want);
    assert!(matches!(
        db.update(&source, &ecos()).await.unwrap(),
        Outcome::Unchanged(_)
    ));
}

async fn assert_kept(db: &VulnDb, dir: &Path, err: DbError, expect: &str) {
    let text = err.to_string();
    assert!(
        text.contains(expect),
        "{text:?} does not mention {expect:?}"
    );
    assert_eq!(db.info().unwrap().version, 1, "after {text}");
    assert_eq!(findings(db), only(debian_expected(), &DEB_PY));
    assert_eq!(current_name(dir), "db-000001");
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("building-")),
        "{names:?}"
    );
    let cached: Vec<String> = std::fs::read_dir(dir.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!cached.iter().any(|n| n.ends_with(".part")), "{cached:?}");
}

#[tokio::test]
async fn failed_updates_keep_the_previous_database() {
    let (server, source, tmp) = serving().await;
    let dir = tmp.path().join("_zot/cve");
    let db = VulnDb::open(&dir).unwrap();
    db.update(&source, &ecos()).await.unwrap();

    // A corrupt zip.
    let mut corrupt = pypi_with_new_record();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b ^= 0x5a;
    }
    server.put("/PyPI/all.zip", corrupt, "corrupt");
    let err = db.update(&source, &ecos()).await.unwrap_err();
    assert!(matches!(err, DbError::Zip { .. }), "{err}");
    assert_kept(&db, &dir, err, "PyPI/all.zip").await;

    // Not a zip at all.
    server.put(
        "/PyPI/all.zip",
        b"<html>proxy error</html>".to_vec(),
        "html",
    );
    let err = db.update(&source, &ecos()).await.unwrap_err();
    assert_kept(&db, &dir, err, "not a valid zip").await;

    // A truncated download (the connection closes early).
    server.files.lock().unwrap().insert(
        "/PyPI/all.zip".into(),
        Reply::Truncated(pypi_with_new_record()),
    );
    let err = db.update(&source, &ecos()).await.unwrap_err();
    assert!(matches!(err, DbError::Fetch { .. }), "{err}");
    assert_kept(&db, &dir, err, "/PyPI/all.zip").await;

    // A malformed record, named in the error.
    let bad = zip_entries(&[
        (
            "GOOD-1.json".into(),
            NEW_REQUESTS_RECORD.as_bytes().to_vec(),
        ),
        (
            "BAD-1.json".into(),
            b"{\"id\": \"BAD-1\", \"affected\": [".to_vec(),
        ),
    ]);
    server.put("/PyPI/all.zip", bad, "bad-record");
    let err = db.update(&source, &ecos()).await.unwrap_err();
    assert!(matches!(err, DbError::Record { .. }), "{err}");
    assert_kept(&db, &dir, err, "BAD-1.json").await;

    // A record without an id.
    let bad = zip_entries(&[("NOID.json".into(), b"{\"summary\": \"x\"}".to_vec())]);
    server.put("/PyPI/all.zip", bad, "no-id");
    let err = db.update(&source, &ecos()).await.unwrap_err();
    assert_kept(&db, &dir, err, "missing field `id`").await;

    // An ecosystem the server does not have.
    let err = db
        .update(&source, &["Debian".to_string(), "NoSuch".to_string()])
        .await
        .unwrap_err();
    assert_kept(&db, &dir, err, "404").await;

    // An unreachable server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = db
        .update(&Source::Url(dead.clone()), &ecos())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Fetch { .. }), "{err}");
    assert_kept(&db, &dir, err, &dead).await;

    // Reopened after all that: still the first index.
    drop(db);
    let db = VulnDb::open(&dir).unwrap();
    assert_eq!(db.info().unwrap().version, 1);

    // And a good update goes through afterwards.
    server.put("/PyPI/all.zip", pypi_with_new_record(), "PyPI-good");
    let Outcome::Updated(info) = db.update(&source, &ecos()).await.unwrap() else {
        panic!()
    };
    assert_eq!(info.version, 2);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn folder_source_updated_between_two_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("osv");
    copy_dir(&samples(), &folder);
    // PyPI as a zip instead of records: both layouts in one folder.
    let pypi = folder.join("PyPI");
    let zip = zip_of(&pypi);
    std::fs::remove_dir_all(&pypi).unwrap();
    std::fs::create_dir_all(&pypi).unwrap();
    std::fs::write(pypi.join("all.zip"), zip).unwrap();

    let dir = tmp.path().join("_zot/cve");
    let db = VulnDb::open(&dir).unwrap();
    let source = Source::Path(folder.clone());
    let Outcome::Updated(info) = db.update(&source, &[]).await.unwrap() else {
        panic!()
    };
    assert_eq!(info.records, 16);
    assert_eq!(findings(&db), debian_expected());
    assert!(matches!(
        db.update(&source, &[]).await.unwrap(),
        Outcome::Unchanged(_)
    ));

    // Between two loads: lodash's advisory withdrawn (edited in place),
    // a minimist advisory that covers 1.2.8 added.
    let lodash = folder.join("npm/GHSA-35jh-r3h4-6jhm.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lodash).unwrap()).unwrap();
    record["withdrawn"] = "2025-01-01T00:00:00Z".into();
    std::fs::write(&lodash, serde_json::to_vec(&record).unwrap()).unwrap();
    std::fs::write(
        folder.join("npm/GHSA-test-mini-mist.json"),
        r#"{"id":"GHSA-test-mini-mist","aliases":["CVE-2099-0001"],"affected":[{"package":{"ecosystem":"npm","name":"minimist"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.2.7"},{"last_affected":"1.2.8"}]}]}],"database_specific":{"severity":"moderate"}}"#,
    )
    .unwrap();
    let Outcome::Updated(info) = db.update(&source, &[]).await.unwrap() else {
        panic!()
    };
    assert_eq!(info.version, 2);
    assert_eq!(info.withdrawn, 2);
    let mut want: Vec<Row> = debian_expected()
        .into_iter()
        .filter(|r| r.0 != "lodash")
        .collect();
    want.push(row("minimist", "CVE-2099-0001", "MEDIUM", "1.2.8", None));
    want.sort();
    assert_eq!(findings(&db), want);

    // A malformed file in the folder: refused, version 2 stays.
    std::fs::write(folder.join("npm/BROKEN.json"), b"{").unwrap();
    let err = db.update(&source, &[]).await.unwrap_err();
    assert!(err.to_string().contains("BROKEN.json"), "{err}");
    assert_eq!(db.info().unwrap().version, 2);
    assert_eq!(findings(&db), want);
}

#[tokio::test]
async fn hostile_zips_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("osv");
    std::fs::create_dir_all(folder.join("PyPI")).unwrap();
    let db = VulnDb::open(tmp.path().join("_zot/cve")).unwrap();
    let source = Source::Path(folder.clone());
    let cases: [(&str, Vec<u8>, &str); 2] = [
        // A record inflating past the cap (a zip bomb of spaces).
        (
            "BIG.json",
            vec![b' '; (zot_vulndb::MAX_RECORD + 1) as usize],
            "larger than",
        ),
        // Not UTF-8.
        (
            "BIN.json",
            vec![0xff, 0xfe, 0x00, 0x7b],
            "malformed OSV record",
        ),
    ];
    for (name, body, expect) in cases {
        let zip = zip_entries(&[(name.to_string(), body)]);
        std::fs::write(folder.join("PyPI/all.zip"), zip).unwrap();
        let err = db.update(&source, &[]).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expect) && text.contains(name), "{text}");
        assert!(db.current().is_none());
    }
    // Deep nesting in a field the model ignores is skipped without
    // recursion: the record is read, nothing overflows.
    let deep = [
        &br#"{"id": "D", "x": "#[..],
        &b"[".repeat(100_000),
        &b"]".repeat(100_000),
        b"}",
    ]
    .concat();
    std::fs::write(
        folder.join("PyPI/all.zip"),
        zip_entries(&[("DEEP.json".into(), deep)]),
    )
    .unwrap();
    let Outcome::Updated(info) = db.update(&source, &[]).await.unwrap() else {
        panic!()
    };
    assert_eq!(info.records, 1);
}

#[tokio::test]
async fn last_modified_alone_validates() {
    let server = Server::default();
    let zip = zip_of(&samples().join("PyPI"));
    server.put_dated(
        "/PyPI/all.zip",
        zip.clone(),
        "Wed, 02 Dec 2026 10:00:00 GMT",
    );
    let source = Source::Url(server.start().await);
    let tmp = tempfile::tempdir().unwrap();
    let db = VulnDb::open(tmp.path().join("_zot/cve")).unwrap();
    let pypi = vec!["PyPI".to_string()];
    assert!(matches!(
        db.update(&source, &pypi).await.unwrap(),
        Outcome::Updated(_)
    ));
    assert!(matches!(
        db.update(&source, &pypi).await.unwrap(),
        Outcome::Unchanged(_)
    ));
    assert_eq!(
        server.statuses(),
        [
            ("/PyPI/all.zip".to_string(), 200),
            ("/PyPI/all.zip".to_string(), 304)
        ]
    );
    server.put_dated(
        "/PyPI/all.zip",
        pypi_with_new_record(),
        "Thu, 03 Dec 2026 10:00:00 GMT",
    );
    let Outcome::Updated(info) = db.update(&source, &pypi).await.unwrap() else {
        panic!()
    };
    assert_eq!((info.version, info.records), (2, 5));
}
