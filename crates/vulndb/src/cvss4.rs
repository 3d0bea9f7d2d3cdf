//! CVSS v4.0 base scores (CVSS-B, and CVSS-BT/BE/BTE when a vector has
//! threat or environmental metrics), as the specification computes them
//! (section 8.2): the vector's macro vector (six equivalence classes
//! EQ1..EQ6) picks an expert-assigned score from the table below (data
//! of the specification), lowered by the vector's severity distance to
//! the highest vector of its macro vector, relative to the distance to
//! the next lower macro vector, averaged over the classes that have one;
//! rounded to one decimal. A vector with a missing or unknown base
//! metric, or a metric twice, has no score.

use std::collections::HashMap;

/// (EQ1, EQ2, EQ3, EQ4, EQ5, EQ6) → score.
#[rustfmt::skip]
const MACRO_VECTORS: &[(u8, u8, u8, u8, u8, u8, f64)] = &[
    (0, 0, 0, 0, 0, 0, 10.0), (0, 0, 0, 0, 0, 1, 9.9), (0, 0, 0, 0, 1, 0, 9.8),
    (0, 0, 0, 0, 1, 1, 9.5), (0, 0, 0, 0, 2, 0, 9.5), (0, 0, 0, 0, 2, 1, 9.2),
    (0, 0, 0, 1, 0, 0, 10.0), (0, 0, 0, 1, 0, 1, 9.6), (0, 0, 0, 1, 1, 0, 9.3),
    (0, 0, 0, 1, 1, 1, 8.7), (0, 0, 0, 1, 2, 0, 9.1), (0, 0, 0, 1, 2, 1, 8.1),
    (0, 0, 0, 2, 0, 0, 9.3), (0, 0, 0, 2, 0, 1, 9.0), (0, 0, 0, 2, 1, 0, 8.9),
    (0, 0, 0, 2, 1, 1, 8.0), (0, 0, 0, 2, 2, 0, 8.1), (0, 0, 0, 2, 2, 1, 6.8),
    (0, 0, 1, 0, 0, 0, 9.8), (0, 0, 1, 0, 0, 1, 9.5), (0, 0, 1, 0, 1, 0, 9.5),
    (0, 0, 1, 0, 1, 1, 9.2), (0, 0, 1, 0, 2, 0, 9.0), (0, 0, 1, 0, 2, 1, 8.4),
    (0, 0, 1, 1, 0, 0, 9.3), (0, 0, 1, 1, 0, 1, 9.2), (0, 0, 1, 1, 1, 0, 8.9),
    (0, 0, 1, 1, 1, 1, 8.1), (0, 0, 1, 1, 2, 0, 8.1), (0, 0, 1, 1, 2, 1, 6.5),
    (0, 0, 1, 2, 0, 0, 8.8), (0, 0, 1, 2, 0, 1, 8.0), (0, 0, 1, 2, 1, 0, 7.8),
    (0, 0, 1, 2, 1, 1, 7.0), (0, 0, 1, 2, 2, 0, 6.9), (0, 0, 1, 2, 2, 1, 4.8),
    (0, 0, 2, 0, 0, 1, 9.2), (0, 0, 2, 0, 1, 1, 8.2), (0, 0, 2, 0, 2, 1, 7.2),
    (0, 0, 2, 1, 0, 1, 7.9), (0, 0, 2, 1, 1, 1, 6.9), (0, 0, 2, 1, 2, 1, 5.0),
    (0, 0, 2, 2, 0, 1, 6.9), (0, 0, 2, 2, 1, 1, 5.5), (0, 0, 2, 2, 2, 1, 2.7),
    (0, 1, 0, 0, 0, 0, 9.9), (0, 1, 0, 0, 0, 1, 9.7), (0, 1, 0, 0, 1, 0, 9.5),
    (0, 1, 0, 0, 1, 1, 9.2), (0, 1, 0, 0, 2, 0, 9.2), (0, 1, 0, 0, 2, 1, 8.5),
    (0, 1, 0, 1, 0, 0, 9.5), (0, 1, 0, 1, 0, 1, 9.1), (0, 1, 0, 1, 1, 0, 9.0),
    (0, 1, 0, 1, 1, 1, 8.3), (0, 1, 0, 1, 2, 0, 8.4), (0, 1, 0, 1, 2, 1, 7.1),
    (0, 1, 0, 2, 0, 0, 9.2), (0, 1, 0, 2, 0, 1, 8.1), (0, 1, 0, 2, 1, 0, 8.2),
    (0, 1, 0, 2, 1, 1, 7.1), (0, 1, 0, 2, 2, 0, 7.2), (0, 1, 0, 2, 2, 1, 5.3),
    (0, 1, 1, 0, 0, 0, 9.5), (0, 1, 1, 0, 0, 1, 9.3), (0, 1, 1, 0, 1, 0, 9.2),
    (0, 1, 1, 0, 1, 1, 8.5), (0, 1, 1, 0, 2, 0, 8.5), (0, 1, 1, 0, 2, 1, 7.3),
    (0, 1, 1, 1, 0, 0, 9.2), (0, 1, 1, 1, 0, 1, 8.2), (0, 1, 1, 1, 1, 0, 8.0),
    (0, 1, 1, 1, 1, 1, 7.2), (0, 1, 1, 1, 2, 0, 7.0), (0, 1, 1, 1, 2, 1, 5.9),
    (0, 1, 1, 2, 0, 0, 8.4), (0, 1, 1, 2, 0, 1, 7.0), (0, 1, 1, 2, 1, 0, 7.1),
    (0, 1, 1, 2, 1, 1, 5.2), (0, 1, 1, 2, 2, 0, 5.0), (0, 1, 1, 2, 2, 1, 3.0),
    (0, 1, 2, 0, 0, 1, 8.6), (0, 1, 2, 0, 1, 1, 7.5), (0, 1, 2, 0, 2, 1, 5.2),
    (0, 1, 2, 1, 0, 1, 7.1), (0, 1, 2, 1, 1, 1, 5.2), (0, 1, 2, 1, 2, 1, 2.9),
    (0, 1, 2, 2, 0, 1, 6.3), (0, 1, 2, 2, 1, 1, 2.9), (0, 1, 2, 2, 2, 1, 1.7),
    (1, 0, 0, 0, 0, 0, 9.8), (1, 0, 0, 0, 0, 1, 9.5), (1, 0, 0, 0, 1, 0, 9.4),
    (1, 0, 0, 0, 1, 1, 8.7), (1, 0, 0, 0, 2, 0, 9.1), (1, 0, 0, 0, 2, 1, 8.1),
    (1, 0, 0, 1, 0, 0, 9.4), (1, 0, 0, 1, 0, 1, 8.9), (1, 0, 0, 1, 1, 0, 8.6),
    (1, 0, 0, 1, 1, 1, 7.4), (1, 0, 0, 1, 2, 0, 7.7), (1, 0, 0, 1, 2, 1, 6.4),
    (1, 0, 0, 2, 0, 0, 8.7), (1, 0, 0, 2, 0, 1, 7.5), (1, 0, 0, 2, 1, 0, 7.4),
    (1, 0, 0, 2, 1, 1, 6.3), (1, 0, 0, 2, 2, 0, 6.3), (1, 0, 0, 2, 2, 1, 4.9),
    (1, 0, 1, 0, 0, 0, 9.4), (1, 0, 1, 0, 0, 1, 8.9), (1, 0, 1, 0, 1, 0, 8.8),
    (1, 0, 1, 0, 1, 1, 7.7), (1, 0, 1, 0, 2, 0, 7.6), (1, 0, 1, 0, 2, 1, 6.7),
    (1, 0, 1, 1, 0, 0, 8.6), (1, 0, 1, 1, 0, 1, 7.6), (1, 0, 1, 1, 1, 0, 7.4),
    (1, 0, 1, 1, 1, 1, 5.8), (1, 0, 1, 1, 2, 0, 5.9), (1, 0, 1, 1, 2, 1, 5.0),
    (1, 0, 1, 2, 0, 0, 7.2), (1, 0, 1, 2, 0, 1, 5.7), (1, 0, 1, 2, 1, 0, 5.7),
    (1, 0, 1, 2, 1, 1, 5.2), (1, 0, 1, 2, 2, 0, 5.2), (1, 0, 1, 2, 2, 1, 2.5),
    (1, 0, 2, 0, 0, 1, 8.3), (1, 0, 2, 0, 1, 1, 7.0), (1, 0, 2, 0, 2, 1, 5.4),
    (1, 0, 2, 1, 0, 1, 6.5), (1, 0, 2, 1, 1, 1, 5.8), (1, 0, 2, 1, 2, 1, 2.6),
    (1, 0, 2, 2, 0, 1, 5.3), (1, 0, 2, 2, 1, 1, 2.1), (1, 0, 2, 2, 2, 1, 1.3),
    (1, 1, 0, 0, 0, 0, 9.5), (1, 1, 0, 0, 0, 1, 9.0), (1, 1, 0, 0, 1, 0, 8.8),
    (1, 1, 0, 0, 1, 1, 7.6), (1, 1, 0, 0, 2, 0, 7.6), (1, 1, 0, 0, 2, 1, 7.0),
    (1, 1, 0, 1, 0, 0, 9.0), (1, 1, 0, 1, 0, 1, 7.7), (1, 1, 0, 1, 1, 0, 7.5),
    (1, 1, 0, 1, 1, 1, 6.2), (1, 1, 0, 1, 2, 0, 6.1), (1, 1, 0, 1, 2, 1, 5.3),
    (1, 1, 0, 2, 0, 0, 7.7), (1, 1, 0, 2, 0, 1, 6.6), (1, 1, 0, 2, 1, 0, 6.8),
    (1, 1, 0, 2, 1, 1, 5.9), (1, 1, 0, 2, 2, 0, 5.2), (1, 1, 0, 2, 2, 1, 3.0),
    (1, 1, 1, 0, 0, 0, 8.9), (1, 1, 1, 0, 0, 1, 7.8), (1, 1, 1, 0, 1, 0, 7.6),
    (1, 1, 1, 0, 1, 1, 6.7), (1, 1, 1, 0, 2, 0, 6.2), (1, 1, 1, 0, 2, 1, 5.8),
    (1, 1, 1, 1, 0, 0, 7.4), (1, 1, 1, 1, 0, 1, 5.9), (1, 1, 1, 1, 1, 0, 5.7),
    (1, 1, 1, 1, 1, 1, 5.7), (1, 1, 1, 1, 2, 0, 4.7), (1, 1, 1, 1, 2, 1, 2.3),
    (1, 1, 1, 2, 0, 0, 6.1), (1, 1, 1, 2, 0, 1, 5.2), (1, 1, 1, 2, 1, 0, 5.7),
    (1, 1, 1, 2, 1, 1, 2.9), (1, 1, 1, 2, 2, 0, 2.4), (1, 1, 1, 2, 2, 1, 1.6),
    (1, 1, 2, 0, 0, 1, 7.1), (1, 1, 2, 0, 1, 1, 5.9), (1, 1, 2, 0, 2, 1, 3.0),
    (1, 1, 2, 1, 0, 1, 5.8), (1, 1, 2, 1, 1, 1, 2.6), (1, 1, 2, 1, 2, 1, 1.5),
    (1, 1, 2, 2, 0, 1, 2.3), (1, 1, 2, 2, 1, 1, 1.3), (1, 1, 2, 2, 2, 1, 0.6),
    (2, 0, 0, 0, 0, 0, 9.3), (2, 0, 0, 0, 0, 1, 8.7), (2, 0, 0, 0, 1, 0, 8.6),
    (2, 0, 0, 0, 1, 1, 7.2), (2, 0, 0, 0, 2, 0, 7.5), (2, 0, 0, 0, 2, 1, 5.8),
    (2, 0, 0, 1, 0, 0, 8.6), (2, 0, 0, 1, 0, 1, 7.4), (2, 0, 0, 1, 1, 0, 7.4),
    (2, 0, 0, 1, 1, 1, 6.1), (2, 0, 0, 1, 2, 0, 5.6), (2, 0, 0, 1, 2, 1, 3.4),
    (2, 0, 0, 2, 0, 0, 7.0), (2, 0, 0, 2, 0, 1, 5.4), (2, 0, 0, 2, 1, 0, 5.2),
    (2, 0, 0, 2, 1, 1, 4.0), (2, 0, 0, 2, 2, 0, 4.0), (2, 0, 0, 2, 2, 1, 2.2),
    (2, 0, 1, 0, 0, 0, 8.5), (2, 0, 1, 0, 0, 1, 7.5), (2, 0, 1, 0, 1, 0, 7.4),
    (2, 0, 1, 0, 1, 1, 5.5), (2, 0, 1, 0, 2, 0, 6.2), (2, 0, 1, 0, 2, 1, 5.1),
    (2, 0, 1, 1, 0, 0, 7.2), (2, 0, 1, 1, 0, 1, 5.7), (2, 0, 1, 1, 1, 0, 5.5),
    (2, 0, 1, 1, 1, 1, 4.1), (2, 0, 1, 1, 2, 0, 4.6), (2, 0, 1, 1, 2, 1, 1.9),
    (2, 0, 1, 2, 0, 0, 5.3), (2, 0, 1, 2, 0, 1, 3.6), (2, 0, 1, 2, 1, 0, 3.4),
    (2, 0, 1, 2, 1, 1, 1.9), (2, 0, 1, 2, 2, 0, 1.9), (2, 0, 1, 2, 2, 1, 0.8),
    (2, 0, 2, 0, 0, 1, 6.4), (2, 0, 2, 0, 1, 1, 5.1), (2, 0, 2, 0, 2, 1, 2.0),
    (2, 0, 2, 1, 0, 1, 4.7), (2, 0, 2, 1, 1, 1, 2.1), (2, 0, 2, 1, 2, 1, 1.1),
    (2, 0, 2, 2, 0, 1, 2.4), (2, 0, 2, 2, 1, 1, 0.9), (2, 0, 2, 2, 2, 1, 0.4),
    (2, 1, 0, 0, 0, 0, 8.8), (2, 1, 0, 0, 0, 1, 7.5), (2, 1, 0, 0, 1, 0, 7.3),
    (2, 1, 0, 0, 1, 1, 5.3), (2, 1, 0, 0, 2, 0, 6.0), (2, 1, 0, 0, 2, 1, 5.0),
    (2, 1, 0, 1, 0, 0, 7.3), (2, 1, 0, 1, 0, 1, 5.5), (2, 1, 0, 1, 1, 0, 5.9),
    (2, 1, 0, 1, 1, 1, 4.0), (2, 1, 0, 1, 2, 0, 4.1), (2, 1, 0, 1, 2, 1, 2.0),
    (2, 1, 0, 2, 0, 0, 5.4), (2, 1, 0, 2, 0, 1, 4.3), (2, 1, 0, 2, 1, 0, 4.5),
    (2, 1, 0, 2, 1, 1, 2.2), (2, 1, 0, 2, 2, 0, 2.0), (2, 1, 0, 2, 2, 1, 1.1),
    (2, 1, 1, 0, 0, 0, 7.5), (2, 1, 1, 0, 0, 1, 5.5), (2, 1, 1, 0, 1, 0, 5.8),
    (2, 1, 1, 0, 1, 1, 4.5), (2, 1, 1, 0, 2, 0, 4.0), (2, 1, 1, 0, 2, 1, 2.1),
    (2, 1, 1, 1, 0, 0, 6.1), (2, 1, 1, 1, 0, 1, 5.1), (2, 1, 1, 1, 1, 0, 4.8),
    (2, 1, 1, 1, 1, 1, 1.8), (2, 1, 1, 1, 2, 0, 2.0), (2, 1, 1, 1, 2, 1, 0.9),
    (2, 1, 1, 2, 0, 0, 4.6), (2, 1, 1, 2, 0, 1, 1.8), (2, 1, 1, 2, 1, 0, 1.7),
    (2, 1, 1, 2, 1, 1, 0.7), (2, 1, 1, 2, 2, 0, 0.8), (2, 1, 1, 2, 2, 1, 0.2),
    (2, 1, 2, 0, 0, 1, 5.3), (2, 1, 2, 0, 1, 1, 2.4), (2, 1, 2, 0, 2, 1, 1.4),
    (2, 1, 2, 1, 0, 1, 2.4), (2, 1, 2, 1, 1, 1, 1.2), (2, 1, 2, 1, 2, 1, 0.5),
    (2, 1, 2, 2, 0, 1, 1.0), (2, 1, 2, 2, 1, 1, 0.3), (2, 1, 2, 2, 2, 1, 0.1),
];

fn lookup(eq: [u8; 6]) -> Option<f64> {
    MACRO_VECTORS
        .iter()
        .find(|m| [m.0, m.1, m.2, m.3, m.4, m.5] == eq)
        .map(|m| m.6)
}

const BASE: [&str; 11] = [
    "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
];

// Severity levels used for distances (lower is more severe).
fn level(metric: &str, value: &str) -> Option<f64> {
    Some(match (metric, value) {
        ("AV", "N") | ("PR", "N") | ("UI", "N") | ("AC", "L") | ("AT", "N") => 0.0,
        ("AV", "A") | ("PR", "L") | ("UI", "P") | ("AC", "H") | ("AT", "P") => 0.1,
        ("AV", "L") | ("PR", "H") | ("UI", "A") => 0.2,
        ("AV", "P") => 0.3,
        ("VC" | "VI" | "VA" | "CR" | "IR" | "AR", "H") => 0.0,
        ("VC" | "VI" | "VA" | "CR" | "IR" | "AR", "M" | "L")
            if value == "M" || metric.starts_with('V') =>
        {
            0.1
        }
        ("CR" | "IR" | "AR", "L") => 0.2,
        ("VC" | "VI" | "VA", "N") => 0.2,
        ("SI" | "SA", "S") => 0.0,
        ("SC" | "SI" | "SA", "H") => 0.1,
        ("SC" | "SI" | "SA", "L") => 0.2,
        ("SC" | "SI" | "SA", "N") => 0.3,
        _ => return None,
    })
}

// The highest-severity vectors of each class, per class level.
fn max_composed(eq: usize, value: u8, eq6: u8) -> &'static [&'static str] {
    match (eq, value, eq6) {
        (1, 0, _) => &["AV:N/PR:N/UI:N"],
        (1, 1, _) => &["AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"],
        (1, 2, _) => &["AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"],
        (2, 0, _) => &["AC:L/AT:N"],
        (2, 1, _) => &["AC:H/AT:N", "AC:L/AT:P"],
        (3, 0, 0) => &["VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"],
        (3, 0, 1) => &[
            "VC:H/VI:H/VA:L/CR:M/IR:M/AR:H",
            "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M",
        ],
        (3, 1, 0) => &[
            "VC:L/VI:H/VA:H/CR:H/IR:H/AR:H",
            "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H",
        ],
        (3, 1, 1) => &[
            "VC:L/VI:H/VA:L/CR:H/IR:M/AR:H",
            "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M",
            "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
            "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H",
            "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M",
        ],
        (3, 2, 1) => &["VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"],
        (4, 0, _) => &["SC:H/SI:S/SA:S"],
        (4, 1, _) => &["SC:H/SI:H/SA:H"],
        (4, 2, _) => &["SC:L/SI:L/SA:L"],
        _ => &[],
    }
}

// The depth (in steps of 0.1) of each class level.
fn max_severity(eq: usize, value: u8, eq6: u8) -> f64 {
    let steps = match (eq, value, eq6) {
        (1, 0, _) | (2, 0, _) => 1,
        (1, 1, _) => 4,
        (1, 2, _) => 5,
        (2, 1, _) => 2,
        (36, 0, 0) => 7,
        (36, 0, 1) => 6,
        (36, 1, _) => 8,
        (36, 2, _) => 10,
        (4, 0, _) => 6,
        (4, 1, _) => 5,
        (4, 2, _) => 4,
        _ => 1,
    };
    f64::from(steps) * 0.1
}

struct Vector<'a>(HashMap<&'a str, &'a str>);

impl Vector<'_> {
    // The effective value: a modified metric (`MAV`...) over the base
    // one; unset threat and requirements metrics at their worst.
    fn get(&self, name: &str) -> &str {
        if let Some(m) = self.0.get(format!("M{name}").as_str())
            && *m != "X"
        {
            return m;
        }
        match (name, self.0.get(name).copied()) {
            ("E", None | Some("X")) => "A",
            ("CR" | "IR" | "AR", None | Some("X")) => "H",
            (_, Some(v)) => v,
            (_, None) => "X",
        }
    }
}

/// The base score of a CVSS v4.0 vector (`CVSS:4.0/AV:N/...`).
pub fn v4_score(vector: &str) -> Option<f64> {
    let mut parts = vector.trim().split('/');
    if parts.next()? != "CVSS:4.0" {
        return None;
    }
    let mut map = HashMap::new();
    for part in parts {
        let (k, v) = part.split_once(':')?;
        if map.insert(k, v).is_some() {
            return None;
        }
    }
    let v = Vector(map);
    for name in BASE {
        level(name, v.0.get(name)?)?;
    }
    for name in [
        "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR",
    ] {
        level(name, v.get(name))?;
    }
    if ["VC", "VI", "VA", "SC", "SI", "SA"]
        .iter()
        .all(|m| v.get(m) == "N")
    {
        return Some(0.0);
    }
    let (av, pr, ui) = (v.get("AV"), v.get("PR"), v.get("UI"));
    let eq1 = if av == "N" && pr == "N" && ui == "N" {
        0
    } else if (av == "N" || pr == "N" || ui == "N") && av != "P" {
        1
    } else {
        2
    };
    let eq2 = u8::from(!(v.get("AC") == "L" && v.get("AT") == "N"));
    let (vc, vi, va) = (v.get("VC"), v.get("VI"), v.get("VA"));
    let eq3 = if vc == "H" && vi == "H" {
        0
    } else if vc == "H" || vi == "H" || va == "H" {
        1
    } else {
        2
    };
    let eq4 = if v.get("SI") == "S" || v.get("SA") == "S" {
        0
    } else if v.get("SC") == "H" || v.get("SI") == "H" || v.get("SA") == "H" {
        1
    } else {
        2
    };
    let eq5 = match v.get("E") {
        "A" => 0,
        "P" => 1,
        "U" => 2,
        _ => return None,
    };
    let eq6 = u8::from(
        !((v.get("CR") == "H" && vc == "H")
            || (v.get("IR") == "H" && vi == "H")
            || (v.get("AR") == "H" && va == "H")),
    );
    let value = lookup([eq1, eq2, eq3, eq4, eq5, eq6])?;

    let lower_eq1 = lookup([eq1 + 1, eq2, eq3, eq4, eq5, eq6]);
    let lower_eq2 = lookup([eq1, eq2 + 1, eq3, eq4, eq5, eq6]);
    let lower_eq36 = match (eq3, eq6) {
        (0, 0) => {
            let left = lookup([eq1, eq2, eq3, eq4, eq5, eq6 + 1]);
            let right = lookup([eq1, eq2, eq3 + 1, eq4, eq5, eq6]);
            match (left, right) {
                (Some(l), Some(r)) => Some(l.max(r)),
                (l, r) => l.or(r),
            }
        }
        (0 | 1, 1) => lookup([eq1, eq2, eq3 + 1, eq4, eq5, eq6]),
        (1, 0) => lookup([eq1, eq2, eq3, eq4, eq5, eq6 + 1]),
        _ => lookup([eq1, eq2, eq3 + 1, eq4, eq5, eq6 + 1]),
    };
    let lower_eq4 = lookup([eq1, eq2, eq3, eq4 + 1, eq5, eq6]);
    let lower_eq5 = lookup([eq1, eq2, eq3, eq4, eq5 + 1, eq6]);

    // The first highest vector of the macro vector that this vector does
    // not exceed, and the distances to it per class.
    let distance = |max: &HashMap<&str, &str>, names: &[&str]| -> Option<f64> {
        let mut d = 0.0;
        for n in names {
            d += level(n, v.get(n))? - level(n, max.get(n)?)?;
        }
        Some(d)
    };
    let mut distances = None;
    'search: for a in max_composed(1, eq1, 0) {
        for b in max_composed(2, eq2, 0) {
            for c in max_composed(3, eq3, eq6) {
                for d in max_composed(4, eq4, 0) {
                    let max: HashMap<&str, &str> = [*a, *b, *c, *d]
                        .iter()
                        .flat_map(|s| s.split('/'))
                        .filter_map(|kv| kv.split_once(':'))
                        .collect();
                    let ds = [
                        distance(&max, &["AV", "PR", "UI"])?,
                        distance(&max, &["AC", "AT"])?,
                        distance(&max, &["VC", "VI", "VA", "CR", "IR", "AR"])?,
                        distance(&max, &["SC", "SI", "SA"])?,
                    ];
                    if ds.iter().all(|x| *x >= -1e-9) {
                        distances = Some(ds);
                        break 'search;
                    }
                }
            }
        }
    }
    let [d1, d2, d36, d4] = distances?;
    let mut normalized = Vec::new();
    let classes = [
        (lower_eq1, d1, max_severity(1, eq1, eq6)),
        (lower_eq2, d2, max_severity(2, eq2, eq6)),
        (lower_eq36, d36, max_severity(36, eq3, eq6)),
        (lower_eq4, d4, max_severity(4, eq4, eq6)),
    ];
    for (lower, d, depth) in classes {
        if let Some(lower) = lower {
            normalized.push((value - lower) * (d / depth));
        }
    }
    if lower_eq5.is_some() {
        // Every vector of an EQ5 level is its highest: no distance.
        normalized.push(0.0);
    }
    let mean = if normalized.is_empty() {
        0.0
    } else {
        normalized.iter().sum::<f64>() / normalized.len() as f64
    };
    let score = (value - mean).clamp(0.0, 10.0);
    Some((score * 10.0 + 0.5e-9).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete() {
        assert_eq!(MACRO_VECTORS.len(), 270);
    }

    #[test]
    fn first_calculator_examples() {
        // Scores as FIRST's CVSS v4.0 calculator shows them.
        let cases = [
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                10.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
        ];
        for (vector, want) in cases {
            assert_eq!(v4_score(vector), Some(want), "{vector}");
        }
        assert_eq!(v4_score("CVSS:4.0/AV:N/AC:L"), None);
        assert_eq!(
            v4_score("CVSS:4.0/AV:N/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            None
        );
        assert_eq!(
            v4_score("CVSS:4.0/AV:Q/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            None
        );
        assert_eq!(
            v4_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            None
        );
    }
}
