//! Each ecosystem's version order against its upstream project's own test
//! vectors (written here as data: dpkg's t-version.c, rpm's
//! rpmvercmp.at, apk-tools' test/version.data, packaging's
//! test_version.py, semver.org and node-semver's fixtures, Go's
//! x/mod/semver tests, Maven's ComparableVersionTest, RubyGems'
//! test_gem_version.rb), and property tests against the reference
//! implementations on this machine: `dpkg --compare-versions`, rpm's
//! lua `rpm.vercmp`, and python `packaging` (a virtualenv `scripts/test`
//! creates under `<target>/tmp/packaging-venv`).

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use zot_vulndb::version::{Scheme, apk, dpkg, gem, maven, pep440, rpm, semver};

fn sign(n: i32) -> Ordering {
    n.cmp(&0)
}

fn check(name: &str, f: fn(&str, &str) -> Ordering, cases: &[(&str, &str, i32)]) {
    let mut failures = Vec::new();
    for &(a, b, want) in cases {
        let want = sign(want);
        if f(a, b) != want {
            failures.push(format!(
                "{name}({a:?}, {b:?}) = {:?}, want {want:?}",
                f(a, b)
            ));
        }
        if f(b, a) != want.reverse() {
            failures.push(format!(
                "{name}({b:?}, {a:?}) = {:?}, want {:?}",
                f(b, a),
                want.reverse()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each version is less than every later one.
fn check_ordered(name: &str, f: fn(&str, &str) -> Ordering, versions: &[&str]) {
    let mut failures = Vec::new();
    for (i, a) in versions.iter().enumerate() {
        for b in &versions[i + 1..] {
            if f(a, b) != Ordering::Less || f(b, a) != Ordering::Greater {
                failures.push(format!("{name}: expected {a:?} < {b:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dpkg_vectors() {
    // t-version.c (as full version strings), then the classic cases of
    // Debian policy 5.6.12.
    check(
        "dpkg",
        dpkg::compare,
        &[
            ("0", "0", 0),
            ("1:0", "2:0", -1),
            ("1-1", "2-1", -1),
            ("1-1", "1-2", -1),
            ("0-0", "0-0", 0),
            ("0-00", "00-0", 0),
            ("1:2-3", "1:2-3", 0),
            ("0:0-0", "1:0-0", -1),
            ("a-0", "b-0", -1),
            ("0-a", "0-b", -1),
            ("0", "0:0", 0),
            ("0:0-", "0", 0),
            ("0:0.0-0.0", "0.0-0.0", 0),
            ("5:1", "5:1", 0),
            ("0:0-0-0", "0-0-0", 0),
            ("0:0:0-0", "0:0-0", 1),
            ("0:09azAZ.-+~:-0", "0:09azAZ.-+~:-0", 0),
            ("  \t0:0-1", "0:0-1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~~", "1.0~", -1),
            ("1.0~~a", "1.0~", -1),
            ("1.0~", "1.0", -1),
            ("1.0", "1.0+b1", -1),
            ("1.0", "1.0a", -1),
            ("1.0a", "1.0+", -1),
            ("1.0.1", "1.0a", 1),
            ("2.36-9", "2.36-9+deb12u4", -1),
            ("3.0.11-1~deb12u2", "3.0.11-1", -1),
            ("1:1.0", "2.0", 1),
            ("1.10", "1.9", 1),
            ("1.001", "1.1", 0),
            ("7.6p2-4", "7.6-0", 1),
            ("1.0.3-3", "1.0-1", 1),
            ("1.3", "1.2.2-2", 1),
            ("1.3", "1.2.2", 1),
        ],
    );
}

#[test]
fn rpm_vectors() {
    let cases: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("10xyz", "10.1xyz", -1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("xyz.4", "2", -1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "6.5p1", -1),
        ("6.0.rc1", "6.0", 1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.0001", "10.0039", -1),
        ("4.999.9", "5.0", -1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("+", "_", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git1", "1.01", -1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
    ];
    check("rpmvercmp", rpm::rpmvercmp, cases);
    check(
        "rpm",
        rpm::compare,
        &[
            ("1:1.0-1", "2.0-1", 1),
            ("0:1.0-1", "1.0-1", 0),
            ("1.0-1.el9", "1.0-2.el9", -1),
            ("3.0.7-24.el9", "3.0.7-27.el9", -1),
            ("1:3.0.7-24.el9", "3.0.7-27.el9", 1),
            ("1.0", "1.0-5", 0),
        ],
    );
}

#[test]
fn apk_vectors() {
    let data = include_str!("data/apk-version.data");
    let mut cases = Vec::new();
    for line in data
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let want = match fields[1] {
            "<" => -1,
            "=" => 0,
            ">" => 1,
            other => panic!("bad operator {other}"),
        };
        cases.push((fields[0], fields[2], want));
    }
    assert!(cases.len() > 100);
    check("apk", apk::compare, &cases);
    assert!(apk::is_valid("1.2.3_rc1-r0"));
    assert!(!apk::is_valid("1.0bc"));
    assert!(!apk::is_valid(""));
}

#[test]
fn pep440_vectors() {
    // packaging's tests/test_version.py VERSIONS, in order.
    let base = [
        "1.0.dev456",
        "1.0a1",
        "1.0a2.dev456",
        "1.0a12.dev456",
        "1.0a12",
        "1.0b1.dev456",
        "1.0b2",
        "1.0b2.post345.dev456",
        "1.0b2.post345",
        "1.0b2-346",
        "1.0c1.dev456",
        "1.0c1",
        "1.0rc2",
        "1.0c3",
        "1.0",
        "1.0.post456.dev34",
        "1.0.post456",
        "1.1.dev1",
        "1.2+123abc",
        "1.2+123abc456",
        "1.2+abc",
        "1.2+abc123",
        "1.2+abc123def",
        "1.2+1234.abc",
        "1.2+123456",
        "1.2.r32+123456",
        "1.2.rev33+123456",
    ];
    let mut all: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    all.extend(base.iter().map(|s| format!("1!{s}")));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    check_ordered("pep440", pep440::compare, &refs);
    // Normalisation (PEP 440's spellings).
    check(
        "pep440",
        pep440::compare,
        &[
            ("1.0", "1.0.0", 0),
            ("1.0alpha1", "1.0a1", 0),
            ("1.0-a1", "1.0a1", 0),
            ("1.0.a.1", "1.0a1", 0),
            ("1.0a", "1.0a0", 0),
            ("1.0pre1", "1.0rc1", 0),
            ("1.0preview1", "1.0rc1", 0),
            ("1.0-1", "1.0.post1", 0),
            ("1.0.post", "1.0.post0", 0),
            ("1.0-r4", "1.0.post4", 0),
            ("1.0-dev", "1.0.dev0", 0),
            ("v1.0", "1.0", 0),
            ("1.0RC1", "1.0rc1", 0),
            ("1.0+ubuntu-1", "1.0+ubuntu.1", 0),
            ("2.0", "10.0", -1),
        ],
    );
    for bad in ["1.0+", "1.0.", "foo", "1.0-foo", "1.0+a b"] {
        assert!(pep440::parse(bad).is_none(), "{bad} parsed");
    }
}

#[test]
fn semver_vectors() {
    // semver.org §11 precedence example.
    check_ordered(
        "semver",
        semver::compare,
        &[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ],
    );
    // node-semver's test/fixtures/comparisons.js: the first is greater.
    let greater = [
        ("0.0.0", "0.0.0-foo"),
        ("0.0.1", "0.0.0"),
        ("1.0.0", "0.9.9"),
        ("0.10.0", "0.9.0"),
        ("0.99.0", "0.10.0"),
        ("2.0.0", "1.2.3"),
        ("v0.0.0", "0.0.0-foo"),
        ("v0.0.1", "0.0.0"),
        ("v1.0.0", "0.9.9"),
        ("v0.10.0", "0.9.0"),
        ("v0.99.0", "0.10.0"),
        ("v2.0.0", "1.2.3"),
        ("1.2.3", "1.2.3-asdf"),
        ("1.2.3", "1.2.3-4"),
        ("1.2.3", "1.2.3-4-foo"),
        ("1.2.3-5-foo", "1.2.3-5"),
        ("1.2.3-5", "1.2.3-4"),
        ("1.2.3-5-foo", "1.2.3-5-Foo"),
        ("3.0.0", "2.7.2+asdf"),
        ("1.2.3-a.10", "1.2.3-a.5"),
        ("1.2.3-a.b", "1.2.3-a.5"),
        ("1.2.3-a.b", "1.2.3-a"),
        ("1.2.3-a.b.c.10.d.5", "1.2.3-a.b.c.5.d.100"),
        ("1.2.3-r2", "1.2.3-r100"),
        ("1.2.3-r100", "1.2.3-R2"),
    ];
    let cases: Vec<(&str, &str, i32)> = greater.iter().map(|&(a, b)| (a, b, 1)).collect();
    check("semver", semver::compare, &cases);
    // node-semver's equality fixtures (build metadata ignored).
    check(
        "semver",
        semver::compare,
        &[
            ("1.2.3", "v1.2.3", 0),
            ("1.2.3", "=1.2.3", 0),
            ("1.2.3-beta+build", "1.2.3-beta+otherbuild", 0),
            ("1.2.3+build", "1.2.3+otherbuild", 0),
        ],
    );
}

#[test]
fn go_vectors() {
    // golang.org/x/mod/semver's ordered test list (equal neighbours
    // merged), with Go's `+incompatible` and pseudo-versions.
    check_ordered(
        "go",
        semver::compare,
        &[
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0",
            "v0.1.0",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-alpha.beta",
            "v1.0.0-beta",
            "v1.0.0-beta.2",
            "v1.0.0-beta.11",
            "v1.0.0-rc.1",
            "v1.0.0",
            "v1.2.0",
            "v1.2.3-456",
            "v1.2.3-456.789",
            "v1.2.3-456-789",
            "v1.2.3-456a",
            "v1.2.3-pre",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.1",
            "v1.2.3-zzz",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4",
            "v2.0.0+incompatible",
            "v2.1.0",
        ],
    );
    check(
        "go",
        semver::compare,
        &[
            ("v1", "v1.0.0", 0),
            ("v1.0", "v1.0.0", 0),
            ("v1.2", "v1.2.0", 0),
            ("v1.2.3-pre+meta", "v1.2.3-pre", 0),
            ("v1.2.3+meta-pre.sha.256a", "v1.2.3", 0),
            ("v2.0.0+incompatible", "2.0.0", 0),
        ],
    );
}

#[test]
fn maven_vectors() {
    check_ordered(
        "maven",
        maven::compare,
        &[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ],
    );
    check_ordered(
        "maven",
        maven::compare,
        &[
            "2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b",
            "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11",
            "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ],
    );
    let equal = [
        ("1", "1"),
        ("1", "1.0"),
        ("1", "1.0.0"),
        ("1.0", "1.0.0"),
        ("1", "1-0"),
        ("1", "1.0-0"),
        ("1.0", "1.0-0"),
        ("1a", "1.a"),
        ("1a", "1-a"),
        ("1a", "1.0-a"),
        ("1a", "1.0.0-a"),
        ("1.0a", "1.0.a"),
        ("1.0.0a", "1.0.0.a"),
        ("1x", "1.x"),
        ("1x", "1-x"),
        ("1x", "1.0-x"),
        ("1x", "1.0.0-x"),
        ("1.0x", "1.0.x"),
        ("1.0.0x", "1.0.0.x"),
        ("1ga", "1"),
        ("1final", "1"),
        ("1cr", "1rc"),
        ("1a1", "1alpha1"),
        ("1b2", "1beta2"),
        ("1m3", "1milestone3"),
        ("1X", "1x"),
        ("1A", "1a"),
        ("1Ga", "1"),
        ("1FINAL", "1"),
        ("1Cr", "1Rc"),
        ("1m3", "1MILESTONE3"),
        (
            "1-abcdefghijklmnopqrstuvwxyz",
            "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        ),
    ];
    let cases: Vec<(&str, &str, i32)> = equal.iter().map(|&(a, b)| (a, b, 0)).collect();
    check("maven", maven::compare, &cases);
    let less = [
        ("1", "2"),
        ("1.5", "2"),
        ("1", "2.5"),
        ("1.0", "1.1"),
        ("1.1", "1.2"),
        ("1.0.0", "1.1"),
        ("1.0.1", "1.1"),
        ("1.1", "1.2.0"),
        ("1.0-alpha-1", "1.0"),
        ("1.0-alpha-1", "1.0-alpha-2"),
        ("1.0-alpha-1", "1.0-beta-1"),
        ("1.0-beta-1", "1.0-SNAPSHOT"),
        ("1.0-SNAPSHOT", "1.0"),
        ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
        ("1.0", "1.0-1"),
        ("1.0-1", "1.0-2"),
        ("1.0.0", "1.0-1"),
        ("2.0-1", "2.0.1"),
        ("2.0.1-klm", "2.0.1-lmn"),
        ("2.0.1", "2.0.1-xyz"),
        ("2.0.1", "2.0.1-123"),
        ("2.0.1-xyz", "2.0.1-123"),
    ];
    let cases: Vec<(&str, &str, i32)> = less.iter().map(|&(a, b)| (a, b, -1)).collect();
    check("maven", maven::compare, &cases);
}

#[test]
fn gem_vectors() {
    check(
        "gem",
        gem::compare,
        &[
            ("1.0", "1.0.0", 0),
            ("1.0", "1.0.a", 1),
            ("1.8.2", "0.0.0", 1),
            ("1.8.2", "1.8.2.a", 1),
            ("1.8.2.b", "1.8.2.a", 1),
            ("1.8.2.a", "1.8.2", -1),
            ("1.8.2.a10", "1.8.2.a9", 1),
            ("", "0", 0),
            ("0.beta.1", "0.0.beta.1", 0),
            ("0.0.beta", "0.0.beta.1", -1),
            ("0.0.beta", "0.beta.1", -1),
            ("5.a", "5.0.0.rc2", -1),
            ("5.x", "5.0.0.rc2", 1),
            ("1.9.3", "1.9.3", 0),
            ("1.9.3", "1.9.2.99", 1),
            ("1.9.3", "1.9.3.1", -1),
            ("1.0.0-rc1", "1.0.0.pre.rc1", 0),
            ("7.0.8.1", "7.0.8", 1),
            ("1.0.0.rc1", "1.0.0", -1),
        ],
    );
}

#[test]
fn schemes_of_ecosystems() {
    assert_eq!(Scheme::of_ecosystem("Debian:12"), Some(Scheme::Dpkg));
    assert_eq!(Scheme::of_ecosystem("Ubuntu:22.04:LTS"), Some(Scheme::Dpkg));
    assert_eq!(Scheme::of_ecosystem("Alpine:v3.20"), Some(Scheme::Apk));
    assert_eq!(Scheme::of_ecosystem("Rocky Linux:9"), Some(Scheme::Rpm));
    assert_eq!(Scheme::of_ecosystem("PyPI"), Some(Scheme::Pep440));
    assert_eq!(Scheme::of_ecosystem("Go"), Some(Scheme::Semver));
    assert_eq!(Scheme::of_ecosystem("crates.io"), Some(Scheme::Semver));
    assert_eq!(Scheme::of_ecosystem("Maven"), Some(Scheme::Maven));
    assert_eq!(Scheme::of_ecosystem("RubyGems"), Some(Scheme::Gem));
    assert_eq!(Scheme::of_ecosystem("GIT"), None);
}

// ---- property tests against the reference implementations ----

fn dpkg_version() -> impl Strategy<Value = String> {
    "([0-2]:)?[0-9][0-9a-c.+~]{0,5}(-[0-9a-c.+~]{1,4})?"
}

fn rpm_version() -> impl Strategy<Value = String> {
    "([0-2]:)?[0-9a-c][0-9a-c.~^_+]{0,5}-[0-9a-c][0-9a-c.~^]{0,3}"
}

fn pep440_version() -> impl Strategy<Value = String> {
    (
        prop::option::of(0u8..3),
        prop::collection::vec(0u8..12, 1..4),
        prop::option::of((
            prop::sample::select(vec!["a", "b", "rc", "c", "alpha", "-beta", ".pre"]),
            prop::option::of(0u8..3),
        )),
        prop::option::of((
            prop::sample::select(vec![".post", "-", "post", ".r", "rev"]),
            0u8..3,
        )),
        prop::option::of((
            prop::sample::select(vec![".dev", "dev", "-dev"]),
            prop::option::of(0u8..3),
        )),
        prop::option::of(prop::sample::select(vec![
            "+abc",
            "+1",
            "+abc.2",
            "+1.abc",
            "+ubuntu-1",
        ])),
    )
        .prop_map(|(epoch, release, pre, post, dev, local)| {
            let mut s = String::new();
            if let Some(e) = epoch {
                s.push_str(&format!("{e}!"));
            }
            s.push_str(
                &release
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            );
            if let Some((k, n)) = pre {
                s.push_str(k);
                if let Some(n) = n {
                    s.push_str(&n.to_string());
                }
            }
            if let Some((k, n)) = post {
                s.push_str(k);
                s.push_str(&n.to_string());
            }
            if let Some((k, n)) = dev {
                s.push_str(k);
                if let Some(n) = n {
                    s.push_str(&n.to_string());
                }
            }
            if let Some(l) = local {
                s.push_str(l);
            }
            s
        })
}

fn pairs<S: Strategy<Value = String>>(s: S) -> impl Strategy<Value = Vec<(String, String)>> {
    let s = std::sync::Arc::new(s);
    prop::collection::vec((s.clone(), s), 60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dpkg_agrees_with_dpkg(pairs in pairs(dpkg_version())) {
        for (a, b) in &pairs {
            let ours = dpkg::compare(a, b);
            let theirs = [("lt", Ordering::Less), ("eq", Ordering::Equal), ("gt", Ordering::Greater)]
                .into_iter()
                .find(|(op, _)| {
                    Command::new("dpkg").args(["--compare-versions", a, op, b]).status().expect("dpkg runs").success()
                })
                .map(|(_, o)| o)
                .expect("one relation holds");
            prop_assert_eq!(ours, theirs, "{} vs {}", a, b);
        }
    }

    #[test]
    fn rpm_agrees_with_rpm(pairs in pairs(rpm_version())) {
        let mut lua = String::from("%{lua:");
        for (a, b) in &pairs {
            lua.push_str(&format!("print(tostring(rpm.vercmp('{a}', '{b}')) .. ' ')\n"));
        }
        lua.push('}');
        let out = Command::new("rpm").args(["--eval", &lua]).output().expect("rpm runs");
        prop_assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let theirs: Vec<i32> = text.split_whitespace().map(|n| n.parse().expect("a number")).collect();
        prop_assert_eq!(theirs.len(), pairs.len());
        for ((a, b), t) in pairs.iter().zip(theirs) {
            prop_assert_eq!(rpm::compare(a, b), t.cmp(&0), "{} vs {}", a, b);
        }
    }

    #[test]
    fn pep440_agrees_with_packaging(pairs in pairs(pep440_version())) {
        let python = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("packaging-venv/bin/python");
        prop_assert!(python.is_file(), "no interpreter at {}: `scripts/test` creates it", python.display());
        let script = "import sys\nfrom packaging.version import Version\nfor line in sys.stdin:\n    a, b = line.rstrip('\\n').split(' ')\n    x, y = Version(a), Version(b)\n    print((x > y) - (x < y))\n";
        let mut child = Command::new(&python).args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("python runs");
        let mut input = String::new();
        for (a, b) in &pairs {
            input.push_str(&format!("{a} {b}\n"));
        }
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("python exits");
        prop_assert!(out.status.success());
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let theirs: Vec<i32> = text.split_whitespace().map(|n| n.parse().expect("a number")).collect();
        prop_assert_eq!(theirs.len(), pairs.len());
        for ((a, b), t) in pairs.iter().zip(theirs) {
            prop_assert!(pep440::parse(a).is_some(), "{} did not parse", a);
            prop_assert_eq!(pep440::compare(a, b), t.cmp(&0), "{} vs {}", a, b);
        }
    }
}

const SCHEMES: [Scheme; 7] = [
    Scheme::Dpkg,
    Scheme::Apk,
    Scheme::Rpm,
    Scheme::Pep440,
    Scheme::Semver,
    Scheme::Maven,
    Scheme::Gem,
];

proptest! {
    // Records are untrusted: any strings compare without a panic, and
    // every order is antisymmetric and reflexive.
    #[test]
    fn every_order_is_total_on_any_input(a in "[0-9a-z.~^_+:!-]{0,12}|\\PC{0,8}", b in "[0-9a-z.~^_+:!-]{0,12}|\\PC{0,8}") {
        for s in SCHEMES {
            prop_assert_eq!(s.compare(&a, &b), s.compare(&b, &a).reverse(), "{:?}: {:?} vs {:?}", s, a, b);
            prop_assert_eq!(s.compare(&a, &a), Ordering::Equal, "{:?}: {:?}", s, a);
        }
    }
}
