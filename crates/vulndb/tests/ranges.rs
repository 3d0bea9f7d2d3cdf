//! OSV range evaluation (`matcher::affects`) on hand-made entries: event
//! order, `last_affected`, `limit`, several ranges, explicit versions,
//! `SEMVER` ranges in any ecosystem, and ecosystems without an order.

use zot_vulndb::advisory::{AffectedPackage, Event, Range};
use zot_vulndb::matcher::affects;

fn entry(ecosystem: &str, ranges: Vec<(bool, Vec<Event>)>, versions: &[&str]) -> AffectedPackage {
    AffectedPackage {
        ecosystem: ecosystem.into(),
        name: "p".into(),
        ranges: ranges
            .into_iter()
            .map(|(semver, events)| Range { semver, events })
            .collect(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
    }
}

fn i(v: &str) -> Event {
    Event::Introduced(v.into())
}
fn f(v: &str) -> Event {
    Event::Fixed(v.into())
}
fn la(v: &str) -> Event {
    Event::LastAffected(v.into())
}
fn lim(v: &str) -> Event {
    Event::Limit(v.into())
}

fn check(a: &AffectedPackage, cases: &[(&str, bool, Option<&str>)]) {
    for &(v, hit, fixed) in cases {
        assert_eq!(
            affects(a, v),
            (hit, fixed.map(str::to_string)),
            "{v} in {a:?}"
        );
    }
}

#[test]
fn events_in_any_order_and_several_windows() {
    // Events listed out of order are sorted by the ecosystem's order.
    let a = entry(
        "Maven",
        vec![(
            false,
            vec![
                f("2.15.0"),
                i("2.13.0"),
                f("2.3.1"),
                i("2.0-beta9"),
                i("2.4"),
                f("2.12.2"),
            ],
        )],
        &[],
    );
    check(
        &a,
        &[
            ("1.2.17", false, None),
            ("2.0-beta8", false, None),
            ("2.0-beta9", true, Some("2.3.1")),
            ("2.0", true, Some("2.3.1")),
            ("2.3.1", false, None),
            ("2.4", true, Some("2.12.2")),
            ("2.12.1", true, Some("2.12.2")),
            ("2.12.2", false, None),
            ("2.14.1", true, Some("2.15.0")),
            ("2.15.0", false, None),
            ("2.17.1", false, None),
        ],
    );
}

#[test]
fn last_affected_limit_and_versions() {
    let a = entry(
        "crates.io",
        vec![(true, vec![i("0.6.3"), la("1.6.0")])],
        &[],
    );
    check(
        &a,
        &[
            ("0.6.2", false, None),
            ("0.6.3", true, None),
            ("1.6.0", true, None),
            ("1.6.1", false, None),
        ],
    );

    let a = entry("PyPI", vec![(false, vec![i("0"), lim("2.0")])], &[]);
    check(
        &a,
        &[
            ("1.9", true, None),
            ("2.0", false, None),
            ("3.0", false, None),
        ],
    );

    // Explicit versions only, in an ecosystem without a known order.
    let a = entry(
        "GIT-ONLY",
        vec![(false, vec![i("0"), f("5")])],
        &["1.0.0", "1.0.1"],
    );
    check(
        &a,
        &[
            ("1.0.0", true, None),
            ("1.0.1", true, None),
            ("1.0.2", false, None),
            ("0.1", false, None),
        ],
    );

    // SEMVER ranges use semver whatever the ecosystem.
    let a = entry("Unknown", vec![(true, vec![i("1.0.0"), f("1.2.0")])], &[]);
    check(
        &a,
        &[("v1.1.9", true, Some("1.2.0")), ("1.2.0", false, None)],
    );
}

#[test]
fn distribution_orders() {
    let deb = entry(
        "Debian:12",
        vec![(false, vec![i("0"), f("3.0.11-1~deb12u2")])],
        &[],
    );
    check(
        &deb,
        &[
            ("3.0.11-1~deb12u1", true, Some("3.0.11-1~deb12u2")),
            ("3.0.11-1~deb12u2", false, None),
            ("3.0.11-1", false, None),
            ("3.0.9-1", true, Some("3.0.11-1~deb12u2")),
        ],
    );
    let apk = entry(
        "Alpine:v3.20",
        vec![(false, vec![i("0"), f("1.2.5-r1")])],
        &[],
    );
    check(
        &apk,
        &[
            ("1.2.5-r0", true, Some("1.2.5-r1")),
            ("1.2.5-r1", false, None),
            ("1.2.5_rc1-r3", true, Some("1.2.5-r1")),
        ],
    );
    let rpm = entry(
        "Rocky Linux:9",
        vec![(false, vec![i("0"), f("1:3.0.7-27.el9")])],
        &[],
    );
    check(
        &rpm,
        &[
            ("1:3.0.7-24.el9", true, Some("1:3.0.7-27.el9")),
            ("1:3.0.7-27.el9", false, None),
            ("3.0.8-1.el9", true, Some("1:3.0.7-27.el9")),
        ],
    );
}
