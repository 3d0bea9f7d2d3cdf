//! Parsing of the `Authorization` header. Anything that is not a well-formed
//! `Basic` or `Bearer` value is [`Credentials::Invalid`]; nothing here logs.

use base64::Engine;

/// What the client sent in `Authorization`.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No header.
    None,
    /// `Basic base64(user:password)`.
    Basic { user: String, password: String },
    /// `Bearer <token>`.
    Bearer(String),
    /// A header that could not be understood.
    Invalid,
}

/// Never shows a password or token.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user:?}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Invalid => f.write_str("Invalid"),
        }
    }
}

/// Longest accepted header value (a JWT with many grants fits easily).
const MAX_LEN: usize = 16 * 1024;

impl Credentials {
    /// Parses an `Authorization` header value (`None`: no header).
    pub fn parse(header: Option<&[u8]>) -> Credentials {
        let Some(raw) = header else {
            return Credentials::None;
        };
        if raw.len() > MAX_LEN {
            return Credentials::Invalid;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            return Credentials::Invalid;
        };
        let text = text.trim();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        let rest = rest.trim();
        if rest.is_empty() {
            return Credentials::Invalid;
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return Credentials::Invalid;
            };
            let Ok(pair) = String::from_utf8(decoded) else {
                return Credentials::Invalid;
            };
            match pair.split_once(':') {
                Some((user, password)) => Credentials::Basic {
                    user: user.to_owned(),
                    password: password.to_owned(),
                },
                None => Credentials::Invalid,
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let ok = rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.=+/~".contains(&b));
            if ok {
                Credentials::Bearer(rest.to_owned())
            } else {
                Credentials::Invalid
            }
        } else {
            Credentials::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Credentials {
        Credentials::parse(Some(s.as_bytes()))
    }

    #[test]
    fn basic_and_bearer() {
        // "alice:pa:ss"
        assert_eq!(
            parse("Basic YWxpY2U6cGE6c3M="),
            Credentials::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(parse("bearer a.b.c"), Credentials::Bearer("a.b.c".into()));
        assert_eq!(Credentials::parse(None), Credentials::None);
    }

    #[test]
    fn malformed_headers() {
        for bad in [
            "Basic",
            "Basic !!!",
            "Basic YWxpY2U=", // no colon
            "Digest abc",
            "Bearer a b",
            "",
            "Basic /w==", // not UTF-8
        ] {
            assert_eq!(parse(bad), Credentials::Invalid, "{bad:?}");
        }
        assert_eq!(
            Credentials::parse(Some(&[0xff, 0xfe])),
            Credentials::Invalid
        );
        let huge = format!("Bearer {}", "a".repeat(MAX_LEN));
        assert_eq!(parse(&huge), Credentials::Invalid);
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", parse("Basic YWxpY2U6c2VjcmV0"));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
