//! Packages of compiled ecosystems against real artefacts: Go binaries
//! built here by Debian's Go and the Go binaries of this machine (checked
//! against `go version -m`, including one past the in-memory limit, read
//! streaming), a Rust binary built by `cargo auditable` and one linked by
//! rustc carrying a `.dep-v0` section written here, this workspace's own Cargo.lock (checked against
//! `cargo metadata`), and Debian's commons-io jar, alone and nested in
//! archives.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{GZIP, Layer, TAR, ZSTD, pairs, require, run, scan, try_scan_with};
use zot_scan::{Ecosystem, Limits};

/// Packages by `go version -m`: the toolchain as `stdlib`, `mod` and
/// `dep` lines, a `=>` with a version replacing the line before.
fn go_version_m(binary: &Path) -> BTreeSet<(String, String)> {
    let out = run(Command::new("go").arg("version").arg("-m").arg(binary));
    let mut list: Vec<(String, String)> = Vec::new();
    let mut lines = out.lines();
    let first = lines.next().expect("first line");
    let toolchain = first.rsplit(' ').next().expect("go version");
    list.push((
        "stdlib".into(),
        format!("v{}", toolchain.trim_start_matches("go")),
    ));
    for line in lines {
        let f: Vec<&str> = line.trim_start().split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", path, version, ..] => {
                list.push((path.to_string(), version.to_string()))
            }
            ["=>", path, version, ..] if !version.is_empty() && !path.starts_with(['.', '/']) => {
                *list.last_mut().expect("a line to replace") =
                    (path.to_string(), version.to_string());
            }
            _ => {}
        }
    }
    list.into_iter().collect()
}

/// A module with a dependency pinned at v1.4.2 and replaced by a local
/// copy, and another replaced by a different module version, built
/// offline.
fn build_go_app(dir: &Path, extra_ldflags: &str) -> PathBuf {
    require("go");
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("test fixture")).expect("test fixture");
        std::fs::write(path, text).expect("test fixture");
    };
    write(
        "app/go.mod",
        "module example.com/zotscan/app\n\ngo 1.19\n\nrequire (\n\texample.com/zotscan/dep v1.4.2\n\texample.com/zotscan/other v0.3.0\n)\n\nreplace example.com/zotscan/dep v1.4.2 => ./dep\n\nreplace example.com/zotscan/other v0.3.0 => ./other\n",
    );
    write(
        "app/main.go",
        "package main\n\nimport (\n\t\"example.com/zotscan/dep\"\n\t\"example.com/zotscan/other\"\n)\n\nfunc main() { dep.Hello(); other.Hello() }\n",
    );
    write(
        "app/dep/go.mod",
        "module example.com/zotscan/dep\n\ngo 1.19\n",
    );
    write(
        "app/dep/dep.go",
        "package dep\n\nfunc Hello() { println(\"dep\") }\n",
    );
    write(
        "app/other/go.mod",
        "module example.com/zotscan/other\n\ngo 1.19\n",
    );
    write(
        "app/other/other.go",
        "package other\n\nfunc Hello() { println(\"other\") }\n",
    );
    let binary = dir.join("app/app");
    run(Command::new("go")
        .args([
            "build",
            "-trimpath",
            &format!("-ldflags={extra_ldflags}"),
            "-o",
        ])
        .arg(&binary)
        .arg(".")
        .current_dir(dir.join("app"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath")));
    binary
}

#[test]
fn go_binary_built_here_matches_go_version_m() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_go_app(dir.path(), "-s -w");
    let expected = go_version_m(&binary);
    assert!(
        expected.contains(&("example.com/zotscan/dep".to_string(), "v1.4.2".to_string())),
        "{expected:?}"
    );
    assert!(expected.iter().any(|(n, _)| n == "example.com/zotscan/app"));
    let layer = || Layer::new().host_file("usr/local/bin/app", &binary).gzip();
    let inventory = scan(vec![(GZIP, layer())]);
    let found: BTreeSet<_> = pairs(&inventory, Ecosystem::Golang).into_iter().collect();
    assert_eq!(found, expected);
    assert!(
        inventory
            .of(Ecosystem::Golang)
            .all(|p| p.path == "usr/local/bin/app")
    );
    // The same binary past the in-memory limit: found while streaming.
    let small = Limits {
        binary_bytes: 64 * 1024,
        ..Limits::default()
    };
    let streamed = try_scan_with(vec![(GZIP, layer())], small).unwrap();
    assert_eq!(
        pairs(&streamed, Ecosystem::Golang)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );
    // Not executable: not read as a binary.
    let plain = Layer::new()
        .file("usr/share/app.bin", &std::fs::read(&binary).unwrap())
        .tar();
    assert!(scan(vec![(TAR, plain)]).packages.is_empty());
}

#[test]
fn go_binaries_of_this_machine_match_go_version_m() {
    require("go");
    let candidates = [
        "/usr/bin/skopeo",
        "/usr/bin/podman",
        "/usr/bin/umoci",
        "/usr/bin/buildah",
        "/usr/local/bin/docker",
        "/usr/bin/docker",
        "/usr/bin/go",
    ];
    let mut checked = 0;
    for path in candidates.iter().map(Path::new).filter(|p| p.is_file()) {
        let real = std::fs::canonicalize(path).unwrap();
        if !Command::new("go")
            .arg("version")
            .arg("-m")
            .arg(&real)
            .output()
            .unwrap()
            .status
            .success()
        {
            continue;
        }
        let expected = go_version_m(&real);
        let inventory = scan(vec![(
            ZSTD,
            Layer::new().host_file("usr/bin/tool", &real).zstd(),
        )]);
        let found: BTreeSet<_> = pairs(&inventory, Ecosystem::Golang).into_iter().collect();
        assert_eq!(found, expected, "{}", real.display());
        checked += 1;
    }
    assert!(
        checked >= 1,
        "scripts/test installs skopeo, podman and umoci, which are Go binaries"
    );
}

#[test]
fn rust_binary_with_auditable_section_linked_by_rustc() {
    let json = br#"{"packages":[{"name":"zot-demo","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},{"name":"serde","version":"1.0.210","source":"crates.io"},{"name":"regex","version":"1.11.0","source":"crates.io"},{"name":"cc","version":"1.1.0","source":"crates.io","kind":"build"}]}"#;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(7));
    z.write_all(json).unwrap();
    let section = z.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<String> = section.iter().map(u8::to_string).collect();
    let source = format!(
        "#[used]\n#[no_mangle]\n#[link_section = \".dep-v0\"]\npub static AUDITABLE_VERSION_INFO: [u8; {}] = [{}];\nfn main() {{ println!(\"hi\"); }}\n",
        section.len(),
        bytes.join(",")
    );
    std::fs::write(dir.path().join("main.rs"), source).unwrap();
    let binary = dir.path().join("demo");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    run(Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-C",
            "opt-level=1",
            "-C",
            "link-arg=-Wl,--undefined=AUDITABLE_VERSION_INFO",
            "-o",
        ])
        .arg(&binary)
        .arg(dir.path().join("main.rs")));
    let layer = Layer::new().host_file("usr/bin/demo", &binary).gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    let found = pairs(&inventory, Ecosystem::Cargo);
    let want: Vec<(String, String)> = [
        ("regex", "1.11.0"),
        ("serde", "1.0.210"),
        ("zot-demo", "0.1.0"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(found, want, "build dependencies are not in the binary");
}

#[test]
fn this_workspace_cargo_lock_matches_cargo_metadata() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = run(Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(&root));
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    let expected: BTreeSet<(String, String)> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let layer = Layer::new()
        .host_file("src/app/Cargo.lock", root.join("Cargo.lock"))
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    let found: BTreeSet<_> = pairs(&inventory, Ecosystem::Cargo).into_iter().collect();
    assert_eq!(found, expected);
    assert!(found.contains(&(
        "zot-scan".to_string(),
        env!("CARGO_PKG_VERSION").to_string()
    )));
}

const COMMONS_IO: &str = "/usr/share/java/commons-io.jar";

/// commons-io's version, from the versioned name Debian links to the jar.
fn commons_io_version() -> String {
    let real = std::fs::canonicalize(COMMONS_IO)
        .unwrap_or_else(|_| panic!("{COMMONS_IO}: scripts/test installs libcommons-io-java"));
    let name = real
        .file_name()
        .expect("test fixture")
        .to_string_lossy()
        .into_owned();
    let versioned = std::fs::read_dir("/usr/share/java")
        .expect("test fixture")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("commons-io-") && n.ends_with(".jar"))
        .find(|n| {
            std::fs::canonicalize(Path::new("/usr/share/java").join(n))
                .is_ok_and(|p| p.file_name().expect("test fixture").to_string_lossy() == name)
        })
        .expect("a versioned name for commons-io");
    versioned
        .trim_start_matches("commons-io-")
        .trim_end_matches(".jar")
        .to_string()
}

/// A zip holding `entries` (name, bytes), stored or deflated.
fn zip(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        writer.start_file(*name, options).expect("test fixture");
        writer.write_all(bytes).expect("test fixture");
    }
    writer.finish().expect("test fixture").into_inner()
}

#[test]
fn java_archives_real_jar_and_nesting() {
    let version = commons_io_version();
    let real = std::fs::read(COMMONS_IO).unwrap();
    let own = b"groupId=dev.zot\nartifactId=webapp\nversion=1.0.0\n";
    let lib = zip(
        &[
            (
                "META-INF/maven/dev.zot/lib/pom.properties",
                b"groupId=dev.zot\nartifactId=lib\nversion=2.3.4\n",
            ),
            ("lib/inner.jar", &real),
        ],
        true,
    );
    let war = zip(
        &[
            ("META-INF/maven/dev.zot/webapp/pom.properties", own),
            ("WEB-INF/lib/commons-io.jar", &real),
            ("WEB-INF/lib/lib.jar", &lib),
        ],
        false,
    );
    let layer = Layer::new()
        .host_file("usr/share/java/commons-io.jar", COMMONS_IO)
        .file("srv/app.war", &war)
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    let mut found: Vec<(String, String, String)> = inventory
        .of(Ecosystem::Maven)
        .map(|p| (p.name.clone(), p.version.clone(), p.path.clone()))
        .collect();
    found.sort();
    let io = "commons-io:commons-io".to_string();
    let mut want = vec![
        (
            io.clone(),
            version.clone(),
            "srv/app.war!/WEB-INF/lib/commons-io.jar".to_string(),
        ),
        (
            io.clone(),
            version.clone(),
            "srv/app.war!/WEB-INF/lib/lib.jar!/lib/inner.jar".to_string(),
        ),
        (
            io,
            version.clone(),
            "usr/share/java/commons-io.jar".to_string(),
        ),
        (
            "dev.zot:lib".into(),
            "2.3.4".into(),
            "srv/app.war!/WEB-INF/lib/lib.jar".into(),
        ),
        (
            "dev.zot:webapp".into(),
            "1.0.0".into(),
            "srv/app.war".into(),
        ),
    ];
    want.sort();
    assert_eq!(found, want);
    let p = inventory
        .find(Ecosystem::Maven, "commons-io:commons-io")
        .unwrap();
    assert_eq!(
        zot_scan::purl(p, None),
        format!("pkg:maven/commons-io/commons-io@{version}")
    );
}

/// A workspace built by the real `cargo auditable`: a binary with a path
/// dependency (in the binary) and a build dependency (not in it).
#[test]
fn rust_binary_built_by_cargo_auditable() {
    require("cargo-auditable");
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "demo/Cargo.toml",
        "[package]\nname = \"zot-demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ndemolib = { path = \"../demolib\", version = \"0.3.1\" }\n\n[build-dependencies]\ndemobuild = { path = \"../demobuild\" }\n\n[workspace]\n",
    );
    write(
        "demo/src/main.rs",
        "fn main() { println!(\"{}\", demolib::answer()); }\n",
    );
    write("demo/build.rs", "fn main() { demobuild::hello(); }\n");
    write(
        "demolib/Cargo.toml",
        "[package]\nname = \"demolib\"\nversion = \"0.3.1\"\nedition = \"2021\"\n",
    );
    write("demolib/src/lib.rs", "pub fn answer() -> u32 { 42 }\n");
    write(
        "demobuild/Cargo.toml",
        "[package]\nname = \"demobuild\"\nversion = \"0.9.0\"\nedition = \"2021\"\n",
    );
    write("demobuild/src/lib.rs", "pub fn hello() {}\n");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["auditable", "build", "--offline", "--quiet"])
        .current_dir(dir.path().join("demo"))
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTFLAGS")
        .env("CARGO_PROFILE_DEV_DEBUG", "0"));
    let binary = dir.path().join("target/debug/zot-demo");
    let layer = Layer::new()
        .host_file("usr/local/bin/zot-demo", &binary)
        .zstd();
    let inventory = scan(vec![(ZSTD, layer)]);
    let found = pairs(&inventory, Ecosystem::Cargo);
    let want: Vec<(String, String)> = [("demolib", "0.3.1"), ("zot-demo", "0.1.0")]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(found, want, "the build dependency is not in the binary");
}
