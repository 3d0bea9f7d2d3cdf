//! What zot's GraphQL parser (gqlparser) accepts beyond the grammar, and
//! clients rely on: an empty argument list, `()`. zli's schema check sends
//! `{ __schema() { ... } }` before every search command; the grammar (and
//! async-graphql's parser) wants at least one argument inside parentheses.
//!
//! Invariant: only a `(` followed by nothing but ignored tokens (white
//! space, commas, comments) and `)` is removed, and never inside a string
//! or block string; any other text is passed on byte for byte. (Error
//! locations after a removed `()` are columns of the rewritten text.)

use std::borrow::Cow;

/// `query` with every empty argument or variable list removed.
pub(crate) fn drop_empty_parens(query: &str) -> Cow<'_, str> {
    let bytes = query.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => i = skip_comment(bytes, i),
            b'"' if bytes[i..].starts_with(b"\"\"\"") => i = skip_block_string(bytes, i + 3),
            b'"' => i = skip_string(bytes, i + 1),
            b'(' => {
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        Some(b' ' | b'\t' | b'\n' | b'\r' | b',') => j += 1,
                        Some(b'#') => j = skip_comment(bytes, j),
                        _ => break,
                    }
                }
                if bytes.get(j) == Some(&b')') {
                    let s = out.get_or_insert_with(|| String::with_capacity(query.len()));
                    s.push_str(&query[copied..i]);
                    copied = j + 1;
                    i = j + 1;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(query),
        Some(mut s) => {
            s.push_str(&query[copied..]);
            Cow::Owned(s)
        }
    }
}

/// Index just past the comment starting at `i` (at its line end).
fn skip_comment(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|b| matches!(b, b'\n' | b'\r'))
        .map_or(bytes.len(), |n| i + n)
}

/// Index just past the string whose body starts at `i`.
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' | b'\n' | b'\r' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Index just past the block string whose body starts at `i`.
fn skip_block_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::drop_empty_parens;

    #[test]
    fn drops_only_empty_lists_outside_strings() {
        assert_eq!(
            drop_empty_parens("{ __schema() { types { name } } }"),
            "{ __schema { types { name } } }"
        );
        assert_eq!(
            drop_empty_parens("query Q( , # c\n ) { a(b: 1) }"),
            "query Q { a(b: 1) }"
        );
        for unchanged in [
            r#"{ a(q: "()") }"#,
            r#"{ a(q: "\"()") }"#,
            "{ a(q: \"\"\"() \\\"\"\" ()\"\"\") }",
            "{ a # ()\n }",
            "{ a(b: 1) }",
            "{ a( }",
        ] {
            assert_eq!(drop_empty_parens(unchanged), unchanged);
        }
    }
}
