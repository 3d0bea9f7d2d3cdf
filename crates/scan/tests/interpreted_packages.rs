//! Language packages of interpreted ecosystems against real files of this
//! machine: Python distributions (`site-packages`, Debian's
//! `dist-packages`, checked against `importlib.metadata`), npm's bundled
//! node_modules (checked against `npm ls`), Ruby gemspecs of Debian's ruby
//! (checked against `gem list`); Composer's installed.json is written by
//! hand (no PHP registry is reachable from here).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{GZIP, Layer, ZSTD, pairs, require, run, scan};
use zot_scan::Ecosystem;

fn layer_path(host: &Path) -> String {
    host.to_string_lossy().trim_start_matches('/').to_string()
}

fn python_dirs() -> Vec<PathBuf> {
    require("python3");
    let out = run(Command::new("python3").args([
        "-c",
        "import site; print('\\n'.join(site.getsitepackages()))",
    ]));
    let mut dirs: Vec<PathBuf> = out.lines().map(PathBuf::from).collect();
    dirs.push(PathBuf::from("/usr/lib/python3/dist-packages"));
    dirs.sort();
    dirs.dedup();
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// (Name, Version) of every distribution in `dir`, by importlib.metadata.
fn importlib(dir: &Path) -> BTreeSet<(String, String)> {
    let script = "import importlib.metadata as m, sys\nfor d in m.distributions(path=[sys.argv[1]]):\n    n = d.metadata['Name']\n    if n and d.version: print(n + '\\t' + d.version)\n";
    run(Command::new("python3").args(["-c", script]).arg(dir))
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(n, v)| (n.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn python_distributions_match_importlib() {
    let mut layer = Layer::new();
    let mut expected = BTreeSet::new();
    let mut egg_infos = 0;
    for dir in python_dirs() {
        expected.extend(importlib(&dir));
        layer = layer.host_tree(&layer_path(&dir), &dir, &|p: &Path| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let parent = p
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("");
            (name == "METADATA" && parent.ends_with(".dist-info"))
                || (name == "PKG-INFO" && parent.ends_with(".egg-info"))
                || name.ends_with(".egg-info")
        });
        egg_infos += common::walk(&dir)
            .iter()
            .filter(|p| p.to_string_lossy().contains(".egg-info"))
            .count();
    }
    assert!(
        expected.len() >= 3,
        "pip, setuptools and friends are installed: {expected:?}"
    );
    let inventory = scan(vec![(GZIP, layer.gzip())]);
    let found: BTreeSet<_> = pairs(&inventory, Ecosystem::Pypi).into_iter().collect();
    assert_eq!(found, expected);
    eprintln!(
        "{} Python distributions ({egg_infos} egg-info files)",
        found.len()
    );
}

#[test]
fn npm_node_modules_match_npm_ls() {
    require("npm");
    let root = run(Command::new("npm").args(["root", "-g"]));
    let npm = PathBuf::from(root.trim()).join("npm");
    assert!(
        npm.join("package.json").is_file(),
        "npm's own package at {}",
        npm.display()
    );
    let listed = common::stdout_of(
        Command::new("npm")
            .args(["ls", "--all", "--parseable", "--long"])
            .current_dir(&npm),
    );
    let expected: BTreeSet<(String, String)> = listed
        .lines()
        .filter_map(|l| {
            let spec = l.split(':').nth(1)?;
            let at = spec.rfind('@').filter(|at| *at > 0)?;
            Some((spec[..at].to_string(), spec[at + 1..].to_string()))
        })
        .collect();
    assert!(expected.len() > 50, "npm bundles its dependencies");
    let layer = Layer::new().host_tree(&layer_path(&npm), &npm, &|p: &Path| {
        p.file_name().is_some_and(|n| n == "package.json")
    });
    let inventory = scan(vec![(ZSTD, layer.zstd())]);
    let found: BTreeSet<_> = pairs(&inventory, Ecosystem::Npm).into_iter().collect();
    assert_eq!(found, expected);
    let scoped = inventory
        .of(Ecosystem::Npm)
        .find(|p| p.name.starts_with('@'))
        .expect("npm bundles scoped packages");
    assert!(zot_scan::purl(scoped, None).starts_with("pkg:npm/%40"));
}

#[test]
fn ruby_gemspecs_match_gem_list() {
    require("gem");
    let listed = run(Command::new("gem").args(["list", "--local"]));
    let mut expected = BTreeSet::new();
    for line in listed.lines() {
        let Some((name, versions)) = line.split_once(" (") else {
            continue;
        };
        for version in versions.trim_end_matches(')').split(", ") {
            let version = version.trim_start_matches("default: ");
            expected.insert((name.to_string(), version.to_string()));
        }
    }
    assert!(expected.len() > 20, "Debian's ruby ships default gems");
    let paths = run(Command::new("gem").args(["env", "gempath"]));
    let mut layer = Layer::new();
    for dir in paths.trim().split(':').map(PathBuf::from) {
        let specs = dir.join("specifications");
        if specs.is_dir() {
            layer = layer.host_tree(&layer_path(&specs), &specs, &|p: &Path| {
                p.extension().is_some_and(|e| e == "gemspec")
            });
        }
    }
    let inventory = scan(vec![(GZIP, layer.gzip())]);
    let found: BTreeSet<_> = pairs(&inventory, Ecosystem::Gem).into_iter().collect();
    assert_eq!(found, expected);
}

#[test]
fn composer_installed_json_both_versions() {
    let v2 = br#"{"packages":[{"name":"monolog/monolog","version":"3.5.0","version_normalized":"3.5.0.0","type":"library"},{"name":"psr/log","version":"3.0.0"}],"dev":true,"dev-package-names":[]}"#;
    let v1 = br#"[{"name":"symfony/console","version":"v5.4.21"}]"#;
    let layer = Layer::new()
        .file("var/www/app/vendor/composer/installed.json", v2)
        .file("srv/legacy/vendor/composer/installed.json", v1)
        .file("var/www/app/composer.json", br#"{"require":{"x/y":"1"}}"#)
        .gzip();
    let inventory = scan(vec![(GZIP, layer)]);
    let found = pairs(&inventory, Ecosystem::Composer);
    let want: Vec<(String, String)> = [
        ("monolog/monolog", "3.5.0"),
        ("psr/log", "3.0.0"),
        ("symfony/console", "v5.4.21"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(found, want);
    let monolog = inventory
        .find(Ecosystem::Composer, "monolog/monolog")
        .unwrap();
    assert_eq!(monolog.path, "var/www/app/vendor/composer/installed.json");
    assert_eq!(
        zot_scan::purl(monolog, None),
        "pkg:composer/monolog/monolog@3.5.0"
    );
}
