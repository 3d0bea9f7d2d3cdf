//! `WWW-Authenticate` challenges (RFC 7235): `Basic realm="..."` and
//! `Bearer realm="...",service="...",scope="..."`.
//!
//! The header is untrusted input: parsing never panics, stops at the first
//! malformed part, and keeps the parameters read so far. Several challenges
//! in one header are read in order; [`parse`] returns them all.

use std::collections::BTreeMap;

/// One challenge: its scheme (lower-cased) and parameters (keys lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Every challenge of a `WWW-Authenticate` value.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        // A token: a scheme, or a parameter name when `=` follows.
        let end = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
        if end == 0 {
            // Skip a stray separator; anything else ends parsing.
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
                continue;
            }
            break;
        }
        let token = &rest[..end];
        let after = rest[end..].trim_start();
        if let Some(value_part) = after.strip_prefix('=')
            && let Some(current) = out.last_mut()
        {
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(q) = value_part.strip_prefix('"') {
                match quoted(q) {
                    Some(v) => v,
                    None => break,
                }
            } else {
                let e = value_part
                    .find(|c| !is_token_char(c) && c != '/' && c != '=' && c != ':')
                    .unwrap_or(value_part.len());
                (value_part[..e].to_owned(), &value_part[e..])
            };
            current.params.insert(token.to_ascii_lowercase(), value);
            rest = remaining.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            rest = after;
        }
    }
    out
}

/// A quoted string's value (after its opening quote) and what follows its
/// closing quote; `None` when it is not closed.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_params() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn basic_and_several() {
        let c = parse(r#"Basic realm="Authorization Required", Bearer realm="x",service=y"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Authorization Required"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("y"));
    }

    /// Every string of up to 6 characters over the header's syntax: no
    /// panic, and every parameter found belongs to a challenge.
    #[test]
    fn never_panics_on_short_inputs() {
        let alphabet: Vec<char> = vec!['B', 'r', '=', '"', '\\', ',', ' ', 'a'];
        let mut stack = vec![String::new()];
        let mut seen = 0usize;
        while let Some(s) = stack.pop() {
            let parsed = parse(&s);
            assert!(parsed.iter().all(|c| !c.scheme.is_empty()), "{s:?}");
            seen += 1;
            if s.chars().count() < 6 {
                for c in &alphabet {
                    let mut t = s.clone();
                    t.push(*c);
                    stack.push(t);
                }
            }
        }
        assert_eq!(seen, (0..=6).map(|k| alphabet.len().pow(k)).sum::<usize>());
    }

    #[test]
    fn escapes_and_garbage() {
        let c = parse(r#"Bearer realm="a\"b""#);
        assert_eq!(c[0].param("realm"), Some("a\"b"));
        // Unclosed quote: the scheme stays, the parameter is dropped.
        let c = parse(r#"Bearer realm="abc"#);
        assert_eq!(c.len(), 1);
        assert!(c[0].params.is_empty());
        for junk in [
            "",
            "=",
            ",,,",
            "\"",
            "Bearer ,=,\"",
            "\u{e9}\u{e9}",
            "Basic realm",
        ] {
            let _ = parse(junk);
        }
    }
}
