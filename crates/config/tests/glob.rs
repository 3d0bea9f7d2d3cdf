//! The shared repository glob (`zot_config::glob`) at the maximum lengths:
//! a repository name may be 255 bytes, so may a pattern; every pattern must
//! match its own text and `*`/`**` must work in every position. Checked
//! against an independent translation to a regular expression.

use regex::Regex;
use zot_config::glob::{Glob, glob_match};

/// A 255-byte repository name of several segments.
fn long_name() -> String {
    let mut name = String::new();
    let mut i = 0u8;
    while name.len() < 255 {
        if !name.is_empty() && name.len().is_multiple_of(23) {
            name.push('/');
        } else {
            name.push((b'a' + i % 26) as char);
            i = i.wrapping_add(7);
        }
    }
    if name.ends_with('/') {
        name.pop();
        name.push('z');
    }
    assert_eq!(name.len(), 255);
    name
}

#[test]
fn long_patterns_match_their_own_text() {
    let name = long_name();
    assert!(glob_match(&name, &name));
    let mut other = name.clone();
    other.pop();
    assert!(!glob_match(&name, &other));
    // the reported reproduction: a 70-byte literal pattern
    let repo = "internal/finance/payments/ledger/reconciliation/nightly-batch-worker";
    assert!(glob_match(repo, repo));
}

#[test]
fn star_in_every_position() {
    let name = long_name();
    let bytes = name.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'/' {
            continue;
        }
        // one character replaced by `*`, `?`, or the rest of its segment by `*`
        let star = format!("{}*{}", &name[..i], &name[i + 1..]);
        assert!(glob_match(&star, &name), "{star}");
        let any = format!("{}?{}", &name[..i], &name[i + 1..]);
        assert!(glob_match(&any, &name), "{any}");
        let end = name[i..].find('/').map_or(name.len(), |e| i + e);
        let rest = format!("{}*{}", &name[..i], &name[end..]);
        assert!(glob_match(&rest, &name), "{rest}");
        // `*` never crosses `/`
        if end < name.len() {
            let across = format!("{}*", &name[..i]);
            assert!(!glob_match(&across, &name), "{across}");
        }
        // `**` in the middle of a segment is `*`
        let mid = format!("{}**{}", &name[..i], &name[end..]);
        assert!(glob_match(&mid, &name), "{mid}");
    }
}

#[test]
fn double_star_in_every_position() {
    let name = long_name();
    let cuts: Vec<usize> = name.match_indices('/').map(|(i, _)| i).collect();
    for &a in &cuts {
        // prefix/** matches, and so does **/suffix
        assert!(glob_match(&format!("{}/**", &name[..a]), &name));
        assert!(glob_match(&format!("**/{}", &name[a + 1..]), &name));
        for &b in cuts.iter().filter(|&&b| b >= a) {
            // prefix/**/suffix spanning any whole segments, zero included
            let p = format!("{}/**/{}", &name[..a], &name[b + 1..]);
            assert!(glob_match(&p, &name), "{p}");
        }
        // `a/**/b` against `a/b`: zero segments
        let p = format!("{}/**{}", &name[..a], &name[a..]);
        assert!(glob_match(&p, &name), "{p}");
    }
    assert!(glob_match("**", &name));
}

/// Independent reference: a glob without braces or classes as a regex.
fn reference(pattern: &str) -> Regex {
    let p: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    let mut segment_start = true;
    while i < p.len() {
        if p[i] == '*' && p.get(i + 1) == Some(&'*') {
            i += 2;
            if segment_start && i == p.len() {
                if re.ends_with('/') {
                    re.pop();
                    re.push_str("(?:/.*)?");
                } else {
                    re.push_str(".*");
                }
            } else if segment_start && p.get(i) == Some(&'/') {
                i += 1;
                re.push_str("(?:.*/)?");
            } else {
                re.push_str("[^/]*");
                segment_start = false;
            }
            continue;
        }
        match p[i] {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        segment_start = p[i] == '/';
        i += 1;
    }
    re.push('$');
    Regex::new(&re).expect("reference regex")
}

#[test]
fn agrees_with_a_reference_on_generated_patterns() {
    // a small deterministic generator (no dependency on a random crate)
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let alphabet = ["a", "b", "/", "*", "**", "?", "**/", "/**"];
    for _ in 0..1000 {
        let len = 1 + next(40) as usize;
        let pattern: String = (0..len)
            .map(|_| alphabet[next(alphabet.len() as u64) as usize])
            .collect();
        let glob = Glob::new(&pattern).expect("valid");
        let re = reference(&pattern);
        for _ in 0..20 {
            let n = next(250) as usize;
            let name: String = (0..n).map(|_| ["a", "b", "/"][next(3) as usize]).collect();
            assert_eq!(
                glob.matches(&name),
                re.is_match(&name),
                "pattern {pattern:?} name {name:?}"
            );
        }
    }
}

#[test]
fn worst_case_patterns_finish() {
    // patterns that make backtracking matchers exponential
    let name = "a".repeat(255);
    let pattern = format!("{}b", "*a".repeat(120));
    assert!(!glob_match(&pattern, &name));
    let pattern = format!("{}b", "**/a".repeat(60));
    let name = "a/".repeat(127) + "a";
    assert!(!glob_match(&pattern, &name));
}

/// Alternatives are counted before any is spliced in: a long pattern with
/// a huge group is refused at once instead of copied thousands of times.
#[test]
fn huge_groups_are_refused_before_expansion() {
    let pattern = format!("{}{{{}}}", "x".repeat(200_000), ",".repeat(200_000));
    let started = std::time::Instant::now();
    assert!(zot_config::glob::Glob::new(&pattern).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
