//! Layers applied in order: a later layer's whiteouts (`.wh.<name>`,
//! `.wh..wh..opq`), replaced files and a directory replaced by a symlink
//! remove what lower layers had there, but never what the same layer
//! adds; hard links carry their target's packages.

mod common;

use common::{GZIP, Layer, TAR, ZSTD, pairs, scan};
use zot_scan::{Ecosystem, Inventory};

fn metadata(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nlong description\n")
        .into_bytes()
}

fn package_json(name: &str, version: &str) -> Vec<u8> {
    format!(r#"{{"name":"{name}","version":"{version}"}}"#).into_bytes()
}

fn jar(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file(
            format!("META-INF/maven/{group}/{artifact}/pom.properties"),
            zip::write::SimpleFileOptions::default(),
        )
        .expect("test fixture");
    write!(
        writer,
        "groupId={group}\nartifactId={artifact}\nversion={version}\n"
    )
    .expect("test fixture");
    writer.finish().expect("test fixture").into_inner()
}

fn dpkg(packages: &[(&str, &str)]) -> Vec<u8> {
    packages
        .iter()
        .map(|(n, v)| {
            format!(
                "Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"
            )
        })
        .collect::<String>()
        .into_bytes()
}

fn names(inventory: &Inventory, ecosystem: Ecosystem) -> Vec<String> {
    pairs(inventory, ecosystem)
        .into_iter()
        .map(|(n, v)| format!("{n}@{v}"))
        .collect()
}

const SITE: &str = "usr/lib/python3/dist-packages";

fn bottom() -> Vec<u8> {
    Layer::new()
        .file("etc/os-release", b"ID=debian\nVERSION_ID=\"11\"\n")
        .file(
            "var/lib/dpkg/status",
            &dpkg(&[
                ("bash", "5.1-2"),
                ("curl", "7.74.0-1.3"),
                ("tzdata", "2021a-1"),
            ]),
        )
        .file(
            &format!("{SITE}/keep-1.0.dist-info/METADATA"),
            &metadata("keep", "1.0"),
        )
        .file(
            &format!("{SITE}/gone-2.0.dist-info/METADATA"),
            &metadata("gone", "2.0"),
        )
        .file(
            "app/node_modules/left-pad/package.json",
            &package_json("left-pad", "1.3.0"),
        )
        .file(
            "app/node_modules/lodash/package.json",
            &package_json("lodash", "4.17.20"),
        )
        .file("opt/lib/a.jar", &jar("org.example", "a", "1.0"))
        .gzip()
}

fn middle() -> Vec<u8> {
    Layer::new()
        .file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n")
        // apt-get remove curl, upgrade bash: the status file is replaced.
        .file(
            "var/lib/dpkg/status",
            &dpkg(&[("bash", "5.2.15-2"), ("tzdata", "2021a-1")]),
        )
        .whiteout(&format!("{SITE}/gone-2.0.dist-info"))
        // The same layer whites out `keep` and writes it anew: the new one stays.
        .whiteout(&format!("{SITE}/keep-1.0.dist-info"))
        .file(
            &format!("{SITE}/keep-1.0.dist-info/METADATA"),
            &metadata("keep", "1.1"),
        )
        // lodash written before the opaque marker of its own layer: kept.
        .file(
            "app/node_modules/lodash/package.json",
            &package_json("lodash", "4.17.21"),
        )
        .opaque("app/node_modules")
        // A directory replaced by a symlink hides what was below it.
        .symlink("opt/lib", "/usr/share/java")
        .zstd()
}

fn top() -> Vec<u8> {
    Layer::new()
        .file("srv/b.jar", &jar("org.example", "b", "2.0"))
        .hardlink("srv/c.jar", "srv/b.jar")
        // A content store's file hard-linked into node_modules, the store
        // first: its content went by unread, which is reported.
        .file("store/v3/3f9a", &package_json("stored", "1.0.0"))
        .hardlink("opt/node_modules/stored/package.json", "store/v3/3f9a")
        .whiteout("nothing/here")
        .whiteout("app")
        .tar()
}

#[test]
fn bottom_layer_alone() {
    let inventory = scan(vec![(GZIP, bottom())]);
    assert_eq!(
        names(&inventory, Ecosystem::Deb),
        ["bash@5.1-2", "curl@7.74.0-1.3", "tzdata@2021a-1"]
    );
    assert_eq!(names(&inventory, Ecosystem::Pypi), ["gone@2.0", "keep@1.0"]);
    assert_eq!(
        names(&inventory, Ecosystem::Npm),
        ["left-pad@1.3.0", "lodash@4.17.20"]
    );
    assert_eq!(names(&inventory, Ecosystem::Maven), ["org.example:a@1.0"]);
    assert_eq!(inventory.os.unwrap().version_id.as_deref(), Some("11"));
}

#[test]
fn whiteouts_and_replacements_of_the_middle_layer() {
    let inventory = scan(vec![(GZIP, bottom()), (ZSTD, middle())]);
    assert_eq!(
        names(&inventory, Ecosystem::Deb),
        ["bash@5.2.15-2", "tzdata@2021a-1"]
    );
    assert_eq!(names(&inventory, Ecosystem::Pypi), ["keep@1.1"]);
    assert_eq!(names(&inventory, Ecosystem::Npm), ["lodash@4.17.21"]);
    assert!(
        names(&inventory, Ecosystem::Maven).is_empty(),
        "opt/lib became a symlink"
    );
    assert_eq!(inventory.os.unwrap().version_id.as_deref(), Some("12"));
}

#[test]
fn root_whiteout_and_hard_links_of_the_top_layer() {
    let inventory = scan(vec![(GZIP, bottom()), (ZSTD, middle()), (TAR, top())]);
    assert!(
        names(&inventory, Ecosystem::Npm).is_empty(),
        "app was whited out"
    );
    let jars: Vec<(String, String)> = inventory
        .of(Ecosystem::Maven)
        .map(|p| (p.name.clone(), p.path.clone()))
        .collect();
    assert_eq!(
        jars,
        [
            ("org.example:b".to_string(), "srv/b.jar".to_string()),
            ("org.example:b".to_string(), "srv/c.jar".to_string())
        ]
    );
    assert_eq!(names(&inventory, Ecosystem::Pypi), ["keep@1.1"]);
    let problems: Vec<(&str, &str)> = inventory
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [(
            "opt/node_modules/stored/package.json",
            "hard link to store/v3/3f9a, which was not read"
        )]
    );
}

#[test]
fn opaque_root_hides_every_lower_layer() {
    let upper = Layer::new()
        .opaque("")
        .file("etc/os-release", b"ID=alpine\n")
        .gzip();
    let inventory = scan(vec![(GZIP, bottom()), (GZIP, upper)]);
    assert!(inventory.packages.is_empty(), "{:?}", inventory.packages);
    assert_eq!(inventory.os.unwrap().id, "alpine");
}
