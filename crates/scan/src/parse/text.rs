//! RFC 822-style stanzas shared by dpkg's status and Python's METADATA:
//! `Key: value` lines, continuation lines starting with a blank, stanzas
//! separated by an empty line. Only single-line values are needed, so
//! continuation lines are skipped. Invalid UTF-8 is replaced, not refused.

use std::borrow::Cow;

/// The text of a file, lossily decoded.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Stanzas (paragraphs) of `text`.
pub(crate) fn stanzas(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    let mut lines = text.lines().peekable();
    std::iter::from_fn(move || {
        loop {
            let mut fields = Vec::new();
            let mut any = false;
            for line in lines.by_ref() {
                if line.trim().is_empty() {
                    if any {
                        break;
                    }
                    continue;
                }
                any = true;
                if line.starts_with([' ', '\t']) {
                    continue;
                }
                if let Some((key, value)) = line.split_once(':') {
                    fields.push((key.trim(), value.trim()));
                }
            }
            if !any {
                return None;
            }
            if !fields.is_empty() {
                return Some(fields);
            }
        }
    })
}

/// The first value of `key` in a stanza.
pub(crate) fn field<'a>(stanza: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_stanzas() {
        let text = "\n\nA: 1\nB: two\n words\n\n\nA: 3\r\n";
        let all: Vec<_> = stanzas(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(field(&all[0], "b"), Some("two"));
        assert_eq!(field(&all[1], "A"), Some("3"));
    }
}
