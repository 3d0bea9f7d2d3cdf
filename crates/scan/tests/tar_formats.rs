//! Layers written by GNU tar itself in each of its formats (gnu, posix/PAX,
//! ustar, v7), with long names, a sparse file whose map needs extension
//! blocks, a hard link and a symlink: every format yields the same inventory.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TAR, require, run, scan};
use zot_scan::Ecosystem;

/// A root with a long npm path, a sparse file before the databases, and links.
fn make_root(root: &Path) {
    let deep = "app/".to_string()
        + &"node_modules/very-long-directory-name-to-pass-one-hundred-bytes/".repeat(2)
        + "node_modules/@scope/pkg";
    std::fs::create_dir_all(root.join(&deep)).expect("dirs");
    std::fs::write(
        root.join(&deep).join("package.json"),
        r#"{"name":"@scope/pkg","version":"3.1.4"}"#,
    )
    .expect("write");
    std::fs::create_dir_all(root.join("etc")).expect("dirs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("dirs");
    std::fs::create_dir_all(root.join("usr/lib")).expect("dirs");
    // Sparse: 12 data regions separated by holes (more than a header's 4).
    let sparse = std::fs::File::create(root.join("var/sparse.img")).expect("sparse");
    for i in 0..12u64 {
        use std::os::unix::fs::FileExt;
        sparse
            .write_all_at(b"data", i * 1_048_576)
            .expect("write region");
    }
    std::fs::write(
        root.join("usr/lib/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release"))
        .expect("symlink");
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n",
    )
    .expect("write");
    std::fs::write(root.join("var/lib/data"), "plain").expect("write");
    std::fs::hard_link(root.join("var/lib/data"), root.join("var/lib/data-link"))
        .expect("hard link");
}

#[test]
fn every_gnu_tar_format_reads_the_same() {
    require("tar");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    make_root(&root);
    for format in ["gnu", "posix", "oldgnu"] {
        let out = dir.path().join(format!("{format}.tar"));
        run(Command::new("tar")
            .args(["--sparse", &format!("--format={format}"), "-C"])
            .arg(&root)
            .arg("-cf")
            .arg(&out)
            .args(["app", "var/sparse.img", "usr", "etc", "var/lib"]));
        let inventory = scan(vec![(TAR, std::fs::read(&out).expect("read layer"))]);
        assert!(
            inventory.problems.is_empty(),
            "{format}: {:?}",
            inventory.problems
        );
        assert_eq!(
            inventory.os.as_ref().map(|o| o.id.as_str()),
            Some("debian"),
            "{format}"
        );
        let deb = inventory
            .find(Ecosystem::Deb, "zlib1g")
            .unwrap_or_else(|| panic!("{format}: dpkg after the sparse file"));
        assert_eq!(deb.version, "1:1.2.13.dfsg-1");
        let npm = inventory
            .find(Ecosystem::Npm, "@scope/pkg")
            .unwrap_or_else(|| panic!("{format}: long path"));
        assert!(
            npm.path.len() > 100 && npm.path.ends_with("node_modules/@scope/pkg/package.json"),
            "{format}: {}",
            npm.path
        );
    }
}
