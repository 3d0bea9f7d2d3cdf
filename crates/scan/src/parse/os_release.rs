//! `os-release(5)`: `KEY=value` lines, values optionally quoted (single or
//! double quotes, backslash escapes in double quotes). `ID` is required.

use crate::inventory::OsRelease;

fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    value.to_string()
}

pub(crate) fn parse(bytes: &[u8]) -> Option<OsRelease> {
    let text = super::text::decode(bytes);
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value);
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "ID" => os.id = value,
            "VERSION_ID" => os.version_id = Some(value),
            "VERSION_CODENAME" => os.version_codename = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
            _ => {}
        }
    }
    (!os.id.is_empty()).then_some(os)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes() {
        let os = parse(b"# c\nID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME=\"Alpine \\\"Linux\\\" v3.20\"\nID_LIKE='rhel fedora'\n").unwrap();
        assert_eq!(os.id, "alpine");
        assert_eq!(os.version_id.as_deref(), Some("3.20.1"));
        assert_eq!(os.pretty_name.as_deref(), Some("Alpine \"Linux\" v3.20"));
        assert_eq!(os.id_like, ["rhel", "fedora"]);
        assert!(parse(b"NAME=x\n").is_none());
    }
}
