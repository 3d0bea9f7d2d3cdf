//! OS packages against real databases of this machine: packages built
//! with dpkg-deb, installed and removed by dpkg across two layers, the host's dpkg
//! status (checked against `dpkg-query`), distroless-style `status.d`
//! files cut from it, an rpm database written by Debian's `rpm` from
//! packages built with `rpmbuild` (checked against `rpm -qa`), the same
//! headers in a Berkeley DB hash file written by `db5.3_load` (read back
//! by rpm's own `bdb_ro` backend as a cross-check) and in rpm's ndb
//! layout written here (Debian's rpm cannot write ndb), and an Alpine
//! database written by hand (no apk tooling is reachable from here).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{GZIP, Layer, TAR, ZSTD, pairs, require, run, scan};
use zot_scan::Ecosystem;

/// (package, version, source, source version) of installed packages, by dpkg-query.
fn dpkg_query(admindir: &str) -> BTreeSet<(String, String, String, String)> {
    let out = run(Command::new("dpkg-query").args([
        &format!("--admindir={admindir}"),
        "-W",
        "-f=${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
    ]));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 5 && f[0] == "installed")
                .then(|| (f[1].into(), f[2].into(), f[3].into(), f[4].into()))
        })
        .collect()
}

fn deb_tuples(inventory: &zot_scan::Inventory) -> BTreeSet<(String, String, String, String)> {
    inventory
        .of(Ecosystem::Deb)
        .map(|p| {
            let s = p.source.clone().expect("dpkg packages have a source");
            (p.name.clone(), p.version.clone(), s.name, s.version)
        })
        .collect()
}

fn os_release_field(key: &str) -> String {
    run(Command::new("sh")
        .arg("-c")
        .arg(format!(". /usr/lib/os-release; printf %s \"${key}\"")))
}

#[test]
fn host_dpkg_status_matches_dpkg_query() {
    require("dpkg-query");
    let expected = dpkg_query("/var/lib/dpkg");
    assert!(expected.len() > 50, "the host has a real dpkg database");
    let layer = Layer::new()
        .dir("usr/lib")
        .host_file("usr/lib/os-release", "/usr/lib/os-release")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .host_file("var/lib/dpkg/status", "/var/lib/dpkg/status")
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    assert_eq!(deb_tuples(&inventory), expected);
    let os = inventory.os.expect("os-release read");
    assert_eq!(os.id, os_release_field("ID"));
    assert_eq!(
        os.version_id.unwrap_or_default(),
        os_release_field("VERSION_ID")
    );
    assert!(
        inventory
            .packages
            .iter()
            .all(|p| p.path == "var/lib/dpkg/status")
    );
}

/// Stanzas of the host's status file, by package name.
fn host_stanzas() -> Vec<(String, String)> {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("host dpkg status");
    status
        .split("\n\n")
        .filter_map(|s| {
            let name = s
                .lines()
                .find_map(|l| l.strip_prefix("Package: "))?
                .to_string();
            Some((name, format!("{}\n", s.trim_end())))
        })
        .collect()
}

#[test]
fn distroless_status_d_with_md5sums() {
    let expected_all = dpkg_query("/var/lib/dpkg");
    let stanzas: Vec<_> = host_stanzas()
        .into_iter()
        .filter(|(_, s)| s.contains("install ok installed"))
        .take(25)
        .collect();
    let mut layer = Layer::new().dir("var/lib/dpkg/status.d");
    for (name, stanza) in &stanzas {
        // distroless drops Status:, and ships md5sums beside each file.
        let without_status: String = stanza
            .lines()
            .filter(|l| !l.starts_with("Status:"))
            .map(|l| format!("{l}\n"))
            .collect();
        layer = layer
            .file(
                &format!("var/lib/dpkg/status.d/{name}"),
                without_status.as_bytes(),
            )
            .file(
                &format!("var/lib/dpkg/status.d/{name}.md5sums"),
                b"d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x\n",
            );
    }
    let inventory = scan(vec![(ZSTD, layer.zstd())]);
    let names: BTreeSet<&str> = stanzas.iter().map(|(n, _)| n.as_str()).collect();
    let expected: BTreeSet<_> = expected_all
        .into_iter()
        .filter(|t| names.contains(t.0.as_str()))
        .collect();
    assert_eq!(expected.len(), stanzas.len());
    assert_eq!(deb_tuples(&inventory), expected);
    let first = inventory
        .find(Ecosystem::Deb, &stanzas[0].0)
        .expect("listed");
    assert_eq!(
        first.path,
        format!("var/lib/dpkg/status.d/{}", stanzas[0].0)
    );
}

/// Builds rpm packages with rpmbuild and records them in a fresh database.
fn rpm_database(dir: &Path) -> std::path::PathBuf {
    require("rpmbuild");
    let specs = [
        ("zot-test-lib", "1.2.3", "4.el9", Some(2)),
        ("zot-test-tool", "0.9", "1.fc40", None),
        ("zot-test-data", "2024.1", "3", Some(0)),
    ];
    for (name, version, release, epoch) in specs {
        let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
        let spec = format!(
            "Name: {name}\nVersion: {version}\nRelease: {release}\n{epoch}Summary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n%files\n"
        );
        let path = dir.join(format!("{name}.spec"));
        std::fs::write(&path, spec).expect("spec");
        run(Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("top").display()))
            .arg(&path));
    }
    let db = dir.join("db");
    run(Command::new("rpm").arg("--dbpath").arg(&db).arg("--initdb"));
    let rpms: Vec<_> = common::walk(&dir.join("top/RPMS"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    assert_eq!(rpms.len(), 3);
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(&db)
        .args([
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--force-debian",
        ])
        .args(&rpms));
    db
}

fn rpm_qa(db: &Path, backend: &str) -> BTreeSet<(String, String, String)> {
    let out = run(Command::new("rpm").arg("--dbpath").arg(db).args([
        "--define",
        &format!("_db_backend {backend}"),
        "-qa",
        "--qf",
        "%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{SOURCERPM}\\n",
    ]));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let version = f[1].strip_prefix("(none):").unwrap_or(f[1]).to_string();
            (f[0].to_string(), version, f[2].to_string())
        })
        .collect()
}

fn rpm_tuples(inventory: &zot_scan::Inventory) -> BTreeSet<(String, String, String)> {
    inventory
        .of(Ecosystem::Rpm)
        .map(|p| {
            let s = p.source.clone().expect("source rpm");
            // rpm names the source rpm without the epoch.
            let v = s
                .version
                .split_once(':')
                .map_or(s.version.as_str(), |(_, v)| v);
            (
                p.name.clone(),
                p.version.clone(),
                format!("{}-{v}.src.rpm", s.name),
            )
        })
        .collect()
}

#[test]
fn rpm_sqlite_database_from_rpmbuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = rpm_database(dir.path());
    let expected = rpm_qa(&db, "sqlite");
    assert_eq!(expected.len(), 3);
    assert!(
        expected
            .iter()
            .any(|(n, v, _)| n == "zot-test-lib" && v == "2:1.2.3-4.el9")
    );
    let layer = Layer::new()
        .file("etc/os-release", b"ID=\"rocky\"\nVERSION_ID=\"9.4\"\n")
        .host_file("var/lib/rpm/rpmdb.sqlite", db.join("rpmdb.sqlite"))
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    assert_eq!(rpm_tuples(&inventory), expected);
    let lib = inventory.find(Ecosystem::Rpm, "zot-test-lib").unwrap();
    assert_eq!(lib.arch.as_deref(), Some("noarch"));
    assert_eq!(
        zot_scan::purl(lib, inventory.os.as_ref()),
        "pkg:rpm/rocky/zot-test-lib@1.2.3-4.el9?arch=noarch&distro=rocky-9.4&epoch=2"
    );
}

/// Writes the header blobs into a Berkeley DB hash file with db5.3_load,
/// keyed by rpm's instance numbers (native-endian, as rpm writes them).
fn berkeley_packages(sqlite: &Path, out: &Path, page_size: u32) {
    require("db5.3_load");
    let conn = rusqlite::Connection::open(sqlite).expect("test fixture");
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .expect("test fixture");
    let rows: Vec<(u32, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("test fixture")
        .map(Result::unwrap)
        .collect();
    let hex = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect::<String>()
    };
    let mut text = String::new();
    for (hnum, blob) in &rows {
        text.push_str(&hex(&hnum.to_le_bytes()));
        text.push('\n');
        text.push_str(&hex(blob));
        text.push('\n');
    }
    let input = out.with_extension("txt");
    std::fs::write(&input, text).expect("test fixture");
    run(Command::new("db5.3_load")
        .args([
            "-T",
            "-t",
            "hash",
            "-c",
            &format!("db_pagesize={page_size}"),
            "-f",
        ])
        .arg(&input)
        .arg(out));
}

#[test]
fn rpm_berkeley_database_written_by_berkeley_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = rpm_database(dir.path());
    let expected = rpm_qa(&db, "sqlite");
    for page_size in [512, 4096] {
        let bdb_dir = dir.path().join(format!("bdb-{page_size}"));
        std::fs::create_dir(&bdb_dir).unwrap();
        berkeley_packages(
            &db.join("rpmdb.sqlite"),
            &bdb_dir.join("Packages"),
            page_size,
        );
        // rpm's own read-only Berkeley DB backend reads the file we made.
        assert_eq!(
            rpm_qa(&bdb_dir, "bdb_ro"),
            expected,
            "rpm reads the db5.3_load file"
        );
        let layer = Layer::new()
            .host_file("var/lib/rpm/Packages", bdb_dir.join("Packages"))
            .tar();
        let inventory = scan(vec![(TAR, layer)]);
        assert_eq!(rpm_tuples(&inventory), expected, "page size {page_size}");
        assert!(inventory.problems.is_empty(), "{:?}", inventory.problems);
    }
}

#[test]
fn alpine_installed_database() {
    let installed = "C:Q1sbMAAQtkxd8gRt+3cLyiwwkpiqI=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:408449\nI:663552\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1712751452\nc:d04aa7d4b4a5bb05f8e26e0a4ed3fd9c5d7dbc3e\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1vCg1nF1bxH9E3qPyxkrqQFjvxF8=\n\nC:Q1Yd8ElF8QIBrFPrlKmtVPdcEqzJY=\nP:libcrypto3\nV:3.3.1-r3\nA:x86_64\nS:1758843\nI:4333568\nT:Crypto library from openssl\nU:https://www.openssl.org/\nL:Apache-2.0\no:openssl\nm:Ariadne Conner <ariadne@dereferenced.org>\nt:1719421658\nc:0d1bc6dffc5df9d7c6ff5fd8c6be7d5e1bd0e6b9\nD:so:libc.musl-x86_64.so.1\n\n";
    let layer = Layer::new()
        .file("etc/os-release", b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME=\"Alpine Linux v3.20\"\n")
        .file("lib/apk/db/installed", installed.as_bytes())
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    assert_eq!(
        pairs(&inventory, Ecosystem::Apk),
        [
            ("libcrypto3".to_string(), "3.3.1-r3".to_string()),
            ("musl".to_string(), "1.2.5-r0".to_string())
        ]
    );
    let crypto = inventory.find(Ecosystem::Apk, "libcrypto3").unwrap();
    assert_eq!(crypto.source.as_ref().unwrap().name, "openssl");
    assert_eq!(
        zot_scan::purl(crypto, inventory.os.as_ref()),
        "pkg:apk/alpine/libcrypto3@3.3.1-r3?arch=x86_64&distro=alpine-3.20.1"
    );
}

/// A package built with dpkg-deb: one conffile, so removal leaves it in
/// dpkg's `config-files` state.
fn build_deb(dir: &Path, name: &str, version: &str, source: &str) -> std::path::PathBuf {
    let tree = dir.join(name);
    std::fs::create_dir_all(tree.join("DEBIAN")).expect("mkdir");
    std::fs::create_dir_all(tree.join("etc")).expect("mkdir");
    let control = format!(
        "Package: {name}\nVersion: {version}\n{source}Architecture: all\nMaintainer: t <t@example.com>\nDescription: t\n"
    );
    std::fs::write(tree.join("DEBIAN/control"), control).expect("control");
    std::fs::write(tree.join(format!("etc/{name}.conf")), "x=1\n").expect("conffile");
    std::fs::write(tree.join("DEBIAN/conffiles"), format!("/etc/{name}.conf\n"))
        .expect("conffiles");
    let deb = dir.join(format!("{name}.deb"));
    run(Command::new("dpkg-deb")
        .args(["-Zgzip", "--build"])
        .arg(&tree)
        .arg(&deb));
    deb
}

fn dpkg_in(root: &Path) -> Command {
    let mut command = Command::new("dpkg");
    command.arg(format!("--root={}", root.display())).args([
        "--log=/dev/null",
        "--force-script-chrootless",
        "--force-not-root",
    ]);
    command
}

#[test]
fn dpkg_installs_and_removals_across_layers() {
    require("dpkg-deb");
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = build_deb(
        dir.path(),
        "zot-lib",
        "2:1.0-3",
        "Source: zot-src (1.0-3)\n",
    );
    let tool = build_deb(dir.path(), "zot-tool", "0.5-1", "");
    let root = dir.path().join("root");
    let admin = root.join("var/lib/dpkg");
    for sub in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(sub)).expect("mkdir");
    }
    std::fs::write(admin.join("status"), "").expect("status");
    std::fs::write(admin.join("available"), "").expect("available");
    run(dpkg_in(&root).arg("-i").arg(&lib).arg(&tool));
    let installed = dpkg_query(&admin.to_string_lossy());
    let first = Layer::new()
        .host_file("var/lib/dpkg/status", admin.join("status"))
        .host_file("etc/zot-lib.conf", root.join("etc/zot-lib.conf"))
        .gzip();
    // `apt-get remove zot-lib` in the next layer: dpkg keeps it as config-files.
    run(dpkg_in(&root).args(["-r", "zot-lib"]));
    let after_removal = dpkg_query(&admin.to_string_lossy());
    let second = Layer::new()
        .host_file("var/lib/dpkg/status", admin.join("status"))
        .gzip();

    let one = scan(vec![(GZIP, first.clone())]);
    assert_eq!(deb_tuples(&one), installed);
    let zot = |n: &str, v: &str, s: &str, sv: &str| {
        (n.to_string(), v.to_string(), s.to_string(), sv.to_string())
    };
    assert_eq!(
        installed,
        [
            zot("zot-lib", "2:1.0-3", "zot-src", "1.0-3"),
            zot("zot-tool", "0.5-1", "zot-tool", "0.5-1")
        ]
        .into_iter()
        .collect()
    );
    let both = scan(vec![(GZIP, first), (GZIP, second)]);
    assert_eq!(deb_tuples(&both), after_removal);
    assert_eq!(
        after_removal,
        [zot("zot-tool", "0.5-1", "zot-tool", "0.5-1")]
            .into_iter()
            .collect()
    );
}

/// rpm's ndb layout, written here (Debian's rpm has no ndb backend) around
/// the real header blobs rpm wrote to SQLite: header, one slot page, blobs
/// of 16-byte blocks with their head and tail.
fn ndb_packages(sqlite: &Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(sqlite).expect("open rpmdb");
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .expect("prepare");
    let rows: Vec<(u32, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let mut file = vec![0u8; 4096];
    file[..4].copy_from_slice(b"RpmP");
    file[12..16].copy_from_slice(&1u32.to_le_bytes());
    file[16..20].copy_from_slice(&(rows.len() as u32 + 1).to_le_bytes());
    for slot in (32..4096).step_by(16) {
        file[slot..slot + 4].copy_from_slice(b"Slot");
    }
    for (i, (index, blob)) in rows.iter().enumerate() {
        let offset = file.len() as u32 / 16;
        let mut record = Vec::new();
        record.extend_from_slice(b"BlbS");
        record.extend_from_slice(&index.to_le_bytes());
        record.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        record.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        record.extend_from_slice(blob);
        record.resize((record.len() + 12).next_multiple_of(16), 0);
        let tail = record.len() - 12;
        record[tail + 4..tail + 8].copy_from_slice(&(blob.len() as u32).to_le_bytes());
        record[tail + 8..tail + 12].copy_from_slice(b"BlbE");
        let slot = 32 + 16 * i;
        file[slot + 4..slot + 8].copy_from_slice(&index.to_le_bytes());
        file[slot + 8..slot + 12].copy_from_slice(&offset.to_le_bytes());
        file[slot + 12..slot + 16].copy_from_slice(&(record.len() as u32 / 16).to_le_bytes());
        file.extend(record);
    }
    file
}

#[test]
fn rpm_ndb_database_of_suse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = rpm_database(dir.path());
    let expected = rpm_qa(&db, "sqlite");
    let ndb = ndb_packages(&db.join("rpmdb.sqlite"));
    let layer = Layer::new()
        .file("etc/os-release", b"ID=\"sles\"\nVERSION_ID=\"15.6\"\n")
        .file("usr/lib/sysimage/rpm/Packages.db", &ndb)
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    assert_eq!(rpm_tuples(&inventory), expected);
    // A slot pointing past the end of the file: the database is refused.
    let mut broken = ndb.clone();
    broken[32 + 8..32 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let layer = Layer::new().file("var/lib/rpm/Packages.db", &broken).gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    assert!(inventory.packages.is_empty());
    assert_eq!(
        inventory.problems[0].message,
        "malformed: rpm ndb: slot out of range"
    );
}
