//! zot's pagination (zot-interfaces §1.1): every match is collected,
//! sorted, then sliced `[offset, offset+limit)`; `limit` 0 with offset 0
//! means everything, with a positive offset an empty page.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::catalog::{RepoCard, TagCard};
use crate::types::{PageInfo, PageInput, SortCriteria};

pub const LIMIT_NEGATIVE: &str = "pagination limit has negative value";
pub const OFFSET_NEGATIVE: &str = "pagination offset has negative value";

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub limit: usize,
    pub offset: usize,
    pub sort: SortCriteria,
}

/// Validates `input` for a repository or image list whose default order
/// is `default`.
pub fn paging(input: Option<&PageInput>, default: SortCriteria) -> Result<Paging, String> {
    let input = input.cloned().unwrap_or_default();
    let limit = input.limit.unwrap_or(0);
    let offset = input.offset.unwrap_or(0);
    if limit < 0 {
        return Err(LIMIT_NEGATIVE.to_owned());
    }
    if offset < 0 {
        return Err(OFFSET_NEGATIVE.to_owned());
    }
    let sort = input.sort_by.unwrap_or(default);
    if matches!(sort, SortCriteria::Stars | SortCriteria::Severity) {
        return Err(format!(
            "sorting repos by '{}' is not supported the pagination sort criteria is not supported",
            sort.as_str()
        ));
    }
    Ok(Paging {
        limit: usize::try_from(limit).unwrap_or(0),
        offset: usize::try_from(offset).unwrap_or(0),
        sort,
    })
}

/// The page of `items` (already sorted) and its `PageInfo`.
pub fn slice<T>(items: Vec<T>, p: &Paging) -> (PageInfo, Vec<T>) {
    let total = items.len();
    let page: Vec<T> = if p.limit == 0 && p.offset == 0 {
        items
    } else if p.limit == 0 {
        Vec::new()
    } else {
        items.into_iter().skip(p.offset).take(p.limit).collect()
    };
    let info = PageInfo {
        total_count: i32::try_from(total).unwrap_or(i32::MAX),
        item_count: i32::try_from(page.len()).unwrap_or(i32::MAX),
    };
    (info, page)
}

/// A tagged image in a list: a tag of a repository card, optionally
/// narrowed to some of an index's manifests (by digest key).
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub card: Arc<RepoCard>,
    pub tag: usize,
    pub only: Option<Vec<u64>>,
}

impl ImageRow {
    pub fn tag_card(&self) -> Option<&TagCard> {
        self.card.tags.get(self.tag)
    }

    fn key(&self) -> (&str, &str, Option<i64>, u64) {
        let t = self.tag_card();
        (
            &self.card.name,
            t.map_or("", |t| &t.tag),
            t.and_then(|t| t.last_updated),
            t.map_or(0, |t| t.downloads),
        )
    }
}

fn alpha(a: (&str, &str), b: (&str, &str)) -> Ordering {
    a.cmp(&b)
}

/// Image orders: alphabetic by repository then tag (RELEVANCE is
/// ALPHABETIC_ASC); UPDATE_TIME and DOWNLOADS descending, ties
/// alphabetic.
pub fn sort_images(rows: &mut [ImageRow], sort: SortCriteria) {
    rows.sort_by(|a, b| {
        let (an, at, alu, adl) = a.key();
        let (bn, bt, blu, bdl) = b.key();
        let ab = alpha((an, at), (bn, bt));
        match sort {
            SortCriteria::AlphabeticDsc => ab.reverse(),
            SortCriteria::UpdateTime => blu.cmp(&alu).then(ab),
            SortCriteria::Downloads => bdl.cmp(&adl).then(ab),
            _ => ab,
        }
    });
}

/// A repository in a list, with its search rank (0 outside search).
#[derive(Debug, Clone)]
pub struct RepoRow {
    pub card: Arc<RepoCard>,
    pub rank: i32,
}

/// Repository orders: ALPHABETIC by name, RELEVANCE by rank ascending,
/// UPDATE_TIME and DOWNLOADS descending; ties by name.
pub fn sort_repos(rows: &mut [RepoRow], sort: SortCriteria) {
    rows.sort_by(|a, b| {
        let ab = a.card.name.cmp(&b.card.name);
        match sort {
            SortCriteria::AlphabeticDsc => ab.reverse(),
            SortCriteria::Relevance => a.rank.cmp(&b.rank).then(ab),
            SortCriteria::UpdateTime => b.card.last_updated.cmp(&a.card.last_updated).then(ab),
            SortCriteria::Downloads => b.card.downloads.cmp(&a.card.downloads).then(ab),
            _ => ab,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: Option<i32>, offset: Option<i32>) -> Paging {
        let input = PageInput {
            limit,
            offset,
            sort_by: None,
        };
        match paging(Some(&input), SortCriteria::Relevance) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn slices_like_zot() {
        let items: Vec<u32> = (0..5).collect();
        assert_eq!(slice(items.clone(), &page(None, None)).1, items);
        assert_eq!(
            slice(items.clone(), &page(Some(0), Some(2))).1,
            Vec::<u32>::new()
        );
        assert_eq!(slice(items.clone(), &page(Some(2), Some(1))).1, vec![1, 2]);
        assert_eq!(slice(items.clone(), &page(Some(2), Some(4))).1, vec![4]);
        let (info, rest) = slice(items, &page(Some(2), Some(9)));
        assert!(rest.is_empty());
        assert_eq!(
            info,
            PageInfo {
                total_count: 5,
                item_count: 0
            }
        );
    }

    #[test]
    fn refuses_negative_and_unsupported() {
        let neg = PageInput {
            limit: Some(-1),
            ..PageInput::default()
        };
        assert_eq!(
            paging(Some(&neg), SortCriteria::Relevance),
            Err(LIMIT_NEGATIVE.into())
        );
        let stars = PageInput {
            sort_by: Some(SortCriteria::Stars),
            ..PageInput::default()
        };
        assert_eq!(
            paging(Some(&stars), SortCriteria::Relevance),
            Err("sorting repos by 'STARS' is not supported the pagination sort criteria is not supported".into())
        );
    }
}
