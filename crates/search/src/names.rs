//! The names of a snapshot's repositories in one buffer, so GlobalSearch
//! finds every name containing a fragment in one pass of a substring
//! searcher over about 300 KB (for 10,000 names), rather than one call per
//! name, whose set-up cost was most of the work.
//!
//! Invariant: names are joined by `\n`, which no repository name holds; a
//! fragment holding one matches nothing, so a match never spans two names.

/// The names of one list of cards, in the list's order.
pub struct NameIndex {
    text: Vec<u8>,
    /// Where each name starts in `text`, then `text.len() + 1`.
    starts: Vec<usize>,
}

impl NameIndex {
    pub fn new<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> NameIndex {
        let mut text = Vec::new();
        let mut starts = Vec::with_capacity(names.len() + 1);
        for name in names {
            starts.push(text.len());
            text.extend_from_slice(name.as_bytes());
            text.push(b'\n');
        }
        starts.push(text.len() + 1);
        NameIndex { text, starts }
    }

    /// Positions (in the cards' list) of the names containing `fragment`,
    /// ascending.
    pub fn containing(&self, fragment: &str) -> Vec<usize> {
        let names = self.starts.len() - 1;
        if fragment.is_empty() {
            return (0..names).collect();
        }
        if fragment.contains('\n') {
            return Vec::new();
        }
        let finder = memchr::memmem::Finder::new(fragment.as_bytes());
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(found) = self.text.get(from..).and_then(|rest| finder.find(rest)) {
            let at = from + found;
            // The name holding `at`: the last one starting at or before it.
            let i = self.starts.partition_point(|&s| s <= at) - 1;
            out.push(i);
            // Search on from the next name.
            from = self.starts[i + 1];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::NameIndex;

    #[test]
    fn finds_each_name_holding_the_fragment_once() {
        let names = ["alpine", "apps/web", "lib/alpine-alpine", "nginx", "x/alp"];
        let index = NameIndex::new(names.iter().copied());
        assert_eq!(index.containing("alpine"), [0, 2]);
        assert_eq!(index.containing("alp"), [0, 2, 4]);
        assert_eq!(index.containing("p"), [0, 1, 2, 4]);
        assert_eq!(index.containing("nginx"), [3]);
        assert_eq!(index.containing(""), [0, 1, 2, 3, 4]);
        assert!(index.containing("zzz").is_empty());
        // Never across two names.
        assert!(index.containing("web\nlib").is_empty());
        assert!(index.containing("eweb").is_empty());
        assert!(
            NameIndex::new(std::iter::empty())
                .containing("a")
                .is_empty()
        );
        assert!(NameIndex::new(std::iter::empty()).containing("").is_empty());
    }
}
