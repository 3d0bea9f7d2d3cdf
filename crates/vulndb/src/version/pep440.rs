//! Python versions (PEP 440), ordered as `packaging.version.Version`:
//! epoch, release (trailing zeros ignored), then pre-releases
//! (`a < b < rc`, `c`/`pre`/`preview` spelling `rc`), post-releases
//! (`.postN`, `-N`, `rev`/`r`), development releases (`.devN`, before
//! anything else of the same release), and the local label (`+...`,
//! numeric segments after alphanumeric ones). Parsing is case-insensitive
//! and accepts the normalisations PEP 440 lists (separators `.`, `-`,
//! `_`, a leading `v`, implicit numbers).

use std::cmp::Ordering;

/// A parsed PEP 440 version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<Local>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Local {
    // Alphanumeric segments sort before numeric ones.
    Text(String),
    Number(u64),
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if start == self.i {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn sep(&mut self) -> bool {
        if matches!(self.s.get(self.i), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// An optional separator and number after a label (`a1`, `.post-2`);
    /// 0 when there is none (PEP 440's implicit number).
    fn implicit_number(&mut self) -> u64 {
        let save = self.i;
        self.sep();
        match self.number() {
            Some(n) => n,
            None => {
                self.i = save;
                0
            }
        }
    }

    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = &self.s[self.i..];
        // Longest first, so `preview` is not read as `pre`.
        let mut best: Option<(usize, usize)> = None;
        for (k, w) in words.iter().enumerate() {
            if rest.starts_with(w.as_bytes()) && best.is_none_or(|(_, l)| w.len() > l) {
                best = Some((k, w.len()));
            }
        }
        let (k, len) = best?;
        self.i += len;
        Some(k)
    }
}

/// Parses a PEP 440 version; `None` when it is not one.
pub fn parse(version: &str) -> Option<Version> {
    let lower = version.trim().to_ascii_lowercase();
    let mut s = Scanner {
        s: lower.as_bytes(),
        i: 0,
    };
    if s.s.first() == Some(&b'v') {
        s.i += 1;
    }
    let mut v = Version {
        epoch: 0,
        release: Vec::new(),
        pre: None,
        post: None,
        dev: None,
        local: Vec::new(),
    };
    let first = s.number()?;
    if s.s.get(s.i) == Some(&b'!') {
        s.i += 1;
        v.epoch = first;
        v.release.push(s.number()?);
    } else {
        v.release.push(first);
    }
    while s.s.get(s.i) == Some(&b'.') && s.s.get(s.i + 1).is_some_and(u8::is_ascii_digit) {
        s.i += 1;
        v.release.push(s.number()?);
    }
    // Pre-release.
    let save = s.i;
    s.sep();
    const PRE: [&str; 7] = ["alpha", "a", "beta", "b", "c", "rc", "pre"];
    const PRE2: [&str; 1] = ["preview"];
    let kind = if let Some(k) = s.word(&PRE2).map(|_| 2) {
        Some(k)
    } else {
        s.word(&PRE).map(|k| match k {
            0 | 1 => 0,
            2 | 3 => 1,
            _ => 2,
        })
    };
    match kind {
        Some(kind) => v.pre = Some((kind, s.implicit_number())),
        None => s.i = save,
    }
    // Post-release.
    let save = s.i;
    if s.s.get(s.i) == Some(&b'-') && s.s.get(s.i + 1).is_some_and(u8::is_ascii_digit) {
        s.i += 1;
        v.post = s.number();
    } else {
        s.sep();
        if s.word(&["post", "rev", "r"]).is_some() {
            v.post = Some(s.implicit_number());
        } else {
            s.i = save;
        }
    }
    // Development release.
    let save = s.i;
    s.sep();
    if s.word(&["dev"]).is_some() {
        v.dev = Some(s.implicit_number());
    } else {
        s.i = save;
    }
    // Local label.
    if s.s.get(s.i) == Some(&b'+') {
        let rest = std::str::from_utf8(&s.s[s.i + 1..]).ok()?;
        if rest.is_empty() {
            return None;
        }
        for part in rest.split(['.', '-', '_']) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            v.local.push(match part.parse() {
                Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => Local::Number(n),
                _ => Local::Text(part.to_string()),
            });
        }
        s.i = s.s.len();
    }
    (s.i == s.s.len()).then_some(v)
}

impl Version {
    fn release_trimmed(&self) -> &[u64] {
        let mut end = self.release.len();
        while end > 0 && self.release[end - 1] == 0 {
            end -= 1;
        }
        &self.release[..end]
    }
}

// packaging's `_cmpkey`: (epoch, release, pre, post, dev, local) where a
// dev-only release sorts before its pre-releases, no pre sorts after all
// pre-releases, no post before any post, no dev after any dev.
fn key_pre(v: &Version) -> (i8, u8, u64) {
    match (v.pre, v.post, v.dev) {
        (None, None, Some(_)) => (-1, 0, 0),
        (Some((k, n)), _, _) => (0, k, n),
        (None, _, _) => (1, 0, 0),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release_trimmed().cmp(other.release_trimmed()))
            .then_with(|| key_pre(self).cmp(&key_pre(other)))
            .then_with(|| {
                self.post
                    .map(|p| p as i128)
                    .unwrap_or(-1)
                    .cmp(&other.post.map(|p| p as i128).unwrap_or(-1))
            })
            .then_with(|| {
                self.dev
                    .map(|d| d as i128)
                    .unwrap_or(i128::MAX)
                    .cmp(&other.dev.map(|d| d as i128).unwrap_or(i128::MAX))
            })
            // No local label sorts before any.
            .then_with(|| super::empty_then(&self.local, &other.local, Ordering::Less))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two PyPI versions; a string that is not PEP 440 sorts before
/// every version, and two such strings compare as bytes.
pub fn compare(a: &str, b: &str) -> Ordering {
    super::parsed_or_bytes(a, b, parse)
}
