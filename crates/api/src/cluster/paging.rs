//! Pagination of merged GraphQL answers: a query with one inline
//! `requestedPage: {limit: L, offset: O ...}` is sent to every member as
//! `offset: 0, limit: O + L`, and the merged lists are cut to `[O, O + L)`.
//!
//! Invariant: since each member's list is its own first `O + L` items and
//! the merge concatenates members in a fixed order, the cut is exactly page
//! `O / L` of the concatenation of the members' whole lists: pages neither
//! overlap nor skip, whichever member answers. Within a member, items keep
//! that member's `sortBy` order; across members the order is `members`'.
//! A query with no `requestedPage`, several, or one whose `limit`/`offset`
//! are not integer literals (variables) is sent unchanged and not cut.

use serde_json::Value;

/// One page: skip `offset` items, keep `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

const KEY: &str = "requestedPage";

/// The query asking every member for everything up to the page's end, and
/// the page, when the query has exactly one inline page with literals.
pub fn widen(query: &str) -> Option<(String, Page)> {
    let start = query.find(KEY)?;
    if query[start + KEY.len()..].contains(KEY) {
        return None;
    }
    let after = &query[start + KEY.len()..];
    let colon = after.find(':')?;
    if !after[..colon].trim().is_empty() {
        return None;
    }
    let rest = &after[colon + 1..];
    let open = rest.find('{')?;
    if !rest[..open].trim().is_empty() {
        return None;
    }
    let close = rest[open..].find('}')? + open;
    let inside = &rest[open + 1..close];
    let tokens: Vec<&str> = inside
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':')
        .filter(|t| !t.is_empty())
        .collect();
    if !tokens.len().is_multiple_of(2) {
        return None;
    }
    let (mut limit, mut offset, mut others) = (None, 0u64, Vec::new());
    for pair in tokens.chunks(2) {
        match pair[0] {
            "limit" => limit = Some(pair[1].parse::<u64>().ok()?),
            "offset" => offset = pair[1].parse::<u64>().ok()?,
            key => others.push(format!("{key}: {}", pair[1])),
        }
    }
    let limit = limit.filter(|l| *l > 0)?;
    let mut fields = vec![
        format!("limit: {}", offset.saturating_add(limit)),
        "offset: 0".to_owned(),
    ];
    fields.extend(others);
    let head_len = start + KEY.len() + colon + 1 + open;
    let widened = format!(
        "{}{{{}}}{}",
        &query[..head_len],
        fields.join(", "),
        &rest[close + 1..]
    );
    Some((widened, Page { offset, limit }))
}

/// Cuts every list of the one result in `answer.data` to `page`, and sets
/// its `Page.ItemCount` to what is left.
pub fn cut(answer: &mut Value, page: Page) {
    let Some(data) = answer.get_mut("data").and_then(Value::as_object_mut) else {
        return;
    };
    if data.len() != 1 {
        return;
    }
    let Some(result) = data.values_mut().next().and_then(Value::as_object_mut) else {
        return;
    };
    let from = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let keep = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let mut items = 0;
    for value in result.values_mut() {
        if let Value::Array(list) = value {
            let kept: Vec<Value> = list.drain(..).skip(from).take(keep).collect();
            items += kept.len();
            *list = kept;
        }
    }
    if let Some(page) = result.get_mut("Page").and_then(Value::as_object_mut)
        && page.contains_key("ItemCount")
    {
        page.insert("ItemCount".into(), Value::from(items));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_inline_page_is_widened() {
        let q = r#"{ GlobalSearch(query: "a", requestedPage: {limit: 3 offset: 6 sortBy: RELEVANCE}) { Repos { Name } } }"#;
        let (wide, page) = widen(q).expect("paged");
        assert_eq!(
            page,
            Page {
                offset: 6,
                limit: 3
            }
        );
        assert_eq!(
            wide,
            r#"{ GlobalSearch(query: "a", requestedPage: {limit: 9, offset: 0, sortBy: RELEVANCE}) { Repos { Name } } }"#
        );
        let (wide, page) =
            widen("{ X(requestedPage : { limit:2 }) { Page { ItemCount } } }").expect("paged");
        assert_eq!(page.offset, 0);
        assert_eq!(
            wide,
            "{ X(requestedPage : {limit: 2, offset: 0}) { Page { ItemCount } } }"
        );
    }

    #[test]
    fn other_queries_are_left_alone() {
        for q in [
            r#"{ GlobalSearch(query: "a") { Repos { Name } } }"#,
            "{ X(requestedPage: {limit: $l, offset: 0}) { a } }",
            "{ X(requestedPage: {offset: 2}) { a } }",
            "{ X(requestedPage: {limit: 0}) { a } }",
            "{ X(requestedPage: $page) { a } }",
            "{ X(requestedPage: {limit: 1}) { a } Y(requestedPage: {limit: 1}) { b } }",
        ] {
            assert_eq!(widen(q), None, "{q}");
        }
    }

    #[test]
    fn merged_lists_are_cut_to_the_page() {
        let mut answer = json!({"data": {"GlobalSearch": {
            "Page": {"TotalCount": 7, "ItemCount": 9},
            "Repos": [1, 2, 3, 4, 5, 6, 7], "Images": [], "Layers": []}}});
        cut(
            &mut answer,
            Page {
                offset: 2,
                limit: 3,
            },
        );
        assert_eq!(
            answer,
            json!({"data": {"GlobalSearch": {
                "Page": {"TotalCount": 7, "ItemCount": 3},
                "Repos": [3, 4, 5], "Images": [], "Layers": []}}})
        );
    }
}
