//! Paging of `_catalog` and `tags/list`: the `Link: <...?last=x&n=y>;
//! rel="next"` header (RFC 5988, as distribution and zot send it).

/// The `last` value of a `Link` header's `rel="next"` target, if any.
pub fn next_last(link: &str) -> Option<String> {
    for part in link.split(',') {
        let part = part.trim();
        let Some(rest) = part.strip_prefix('<') else {
            continue;
        };
        let Some((target, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        if !is_next {
            continue;
        }
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k == "last" {
                return Some(v.into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next() {
        assert_eq!(
            next_last(r#"</v2/_catalog?last=b%2Fc&n=2>; rel="next""#).as_deref(),
            Some("b/c")
        );
        assert_eq!(
            next_last(r#"</v2/a/tags/list?n=1&last=v1>; rel="prev", </v2/a/tags/list?n=1&last=v2>; rel="next""#)
                .as_deref(),
            Some("v2")
        );
        assert_eq!(next_last(r#"</v2/_catalog?n=2>; rel="next""#), None);
        assert_eq!(next_last("garbage"), None);
    }
}
