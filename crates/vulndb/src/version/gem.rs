//! RubyGems versions, ordered as `Gem::Version#<=>`: a `-` reads as
//! `.pre.`; the version splits into numeric and alphabetic segments
//! (`1.0.a10` is `1, 0, "a", 10`); trailing zero segments are dropped
//! (and zeros just before the first letter), missing segments count as
//! 0; a string segment sorts before a number (so `1.0.a < 1.0`), strings
//! compare as bytes.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Number(u64),
    Text(String),
}

fn segments(version: &str) -> Vec<Segment> {
    let v = version.trim().replace('-', ".pre.");
    let mut out = Vec::new();
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Segment::Number(v[start..i].parse().unwrap_or(u64::MAX)));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Segment::Text(v[start..i].to_string()));
        } else {
            i += 1;
        }
    }
    // canonical_segments: drop trailing zeros of the release part and of
    // the pre-release part.
    let first_text = out
        .iter()
        .position(|s| matches!(s, Segment::Text(_)))
        .unwrap_or(out.len());
    let (mut release, mut pre) = (out[..first_text].to_vec(), out[first_text..].to_vec());
    while release.last() == Some(&Segment::Number(0)) {
        release.pop();
    }
    while pre.last() == Some(&Segment::Number(0)) {
        pre.pop();
    }
    release.extend(pre);
    release
}

/// Compares two RubyGems versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (segments(a), segments(b));
    let zero = Segment::Number(0);
    for k in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(k).unwrap_or(&zero), b.get(k).unwrap_or(&zero));
        let o = match (x, y) {
            (Segment::Number(x), Segment::Number(y)) => x.cmp(y),
            (Segment::Text(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Text(_)) => Ordering::Greater,
            (Segment::Text(x), Segment::Text(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}
