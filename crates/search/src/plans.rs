//! Parsed query shapes, so that a query asked again with other string
//! literals (a UI's `ExpandedRepoInfo(repo: "…")` for each repository it
//! shows) is neither parsed nor fully validated again: parsing and the
//! validation rules were about 60% of the instructions of an
//! `ExpandedRepoInfo` (callgrind, 3.3 M per query).
//!
//! A query's *shape* is its text with each string literal of 3 or more
//! characters replaced by a placeholder of the same length (`%<n>%%…`,
//! `n` numbering the distinct literal values in order), so positions in
//! error messages are those of the text asked. The first query of a shape
//! runs as before (parsed, every validation rule); when it passes
//! validation its shape's parse is kept. A later query of the same shape
//! takes a copy of that parse with its own literals put back, and runs on
//! the schema in `ValidationMode::Fast`, which still computes and limits
//! complexity and depth but skips the rules already passed by the shape.
//!
//! Invariants:
//! - Only literals in plain `"…"` strings of printable ASCII without
//!   escapes are replaced; a query holding a block string, an escape or
//!   other characters in a string, or sent with variables or an operation
//!   name, always takes the full path.
//! - The rules the fast path skips cannot tell two queries of one shape
//!   apart: no rule of the strict mode looks at a string literal's content
//!   except to compare two literals (fields merged under one response
//!   name), and equal literals share a placeholder, unequal ones do not;
//!   the schema has no input scalar that checks a string's content.
//! - At most [`MAX_SHAPES`] shapes are kept (the table is emptied when
//!   full); a shape is kept only after its query passed every rule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql_value::{ConstValue, Value};

/// Shapes kept at most (a UI sends a few dozen).
pub const MAX_SHAPES: usize = 64;

/// The shapes seen so far.
#[derive(Default)]
pub struct Plans {
    shapes: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
    reused: std::sync::atomic::AtomicU64,
}

/// What [`Plans::prepare`] did with a request.
pub enum Prepared {
    /// The request carries a parse of a known shape: run it in fast mode.
    Reused,
    /// A shape not seen yet: run in full, then [`Plans::learn`] it.
    New(String),
    /// Not a query this cache handles.
    Full,
}

/// A query's shape and its literals.
struct Shape {
    text: String,
    /// Distinct literal values, by placeholder number.
    values: Vec<String>,
    /// Placeholders in `text` (each occurrence).
    placeholders: usize,
}

/// Shortest literal replaced (a placeholder needs `%`, a digit, and a pad).
const MIN_LITERAL: usize = 3;

impl Shape {
    fn of(query: &str) -> Option<Shape> {
        let bytes = query.as_bytes();
        let mut text = String::with_capacity(query.len());
        let mut values: Vec<String> = Vec::new();
        let mut placeholders = 0;
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                        i += 1;
                    }
                }
                b'"' => {
                    if bytes[i + 1..].starts_with(b"\"\"") {
                        return None;
                    }
                    let start = i + 1;
                    let len = bytes[start..].iter().position(|&b| b == b'"')?;
                    let content = &query[start..start + len];
                    if !content
                        .bytes()
                        .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
                    {
                        return None;
                    }
                    if len >= MIN_LITERAL {
                        let n = match values.iter().position(|v| v == content) {
                            Some(n) => n,
                            None => {
                                values.push(content.to_owned());
                                values.len() - 1
                            }
                        };
                        let mut placeholder = format!("%{n}");
                        if placeholder.len() >= len {
                            return None;
                        }
                        while placeholder.len() < len {
                            placeholder.push('%');
                        }
                        text.push_str(&query[copied..start]);
                        text.push_str(&placeholder);
                        placeholders += 1;
                        copied = start + len;
                    }
                    i = start + len + 1;
                }
                _ => i += 1,
            }
        }
        text.push_str(&query[copied..]);
        Some(Shape {
            text,
            values,
            placeholders,
        })
    }
}

/// The literal a placeholder stands for; `None` for any other string.
fn literal<'a>(s: &str, values: &'a [String]) -> Option<&'a str> {
    let rest = s.strip_prefix('%')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || s.len() < MIN_LITERAL || !rest[digits..].bytes().all(|b| b == b'%') {
        return None;
    }
    values
        .get(rest[..digits].parse::<usize>().ok()?)
        .map(String::as_str)
}

/// Puts the literals back into a copy of a shape's parse; counts the
/// strings replaced.
struct Fill<'a> {
    values: &'a [String],
    filled: usize,
}

impl Fill<'_> {
    fn string(&mut self, s: &mut String) {
        if let Some(v) = literal(s, self.values) {
            v.clone_into(s);
            self.filled += 1;
        }
    }

    fn value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => self.string(s),
            Value::List(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(fields) => fields.values_mut().for_each(|f| self.value(f)),
            _ => {}
        }
    }

    fn const_value(&mut self, v: &mut ConstValue) {
        match v {
            ConstValue::String(s) => self.string(s),
            ConstValue::List(items) => items.iter_mut().for_each(|i| self.const_value(i)),
            ConstValue::Object(fields) => fields.values_mut().for_each(|f| self.const_value(f)),
            _ => {}
        }
    }

    fn directives(&mut self, ds: &mut [Positioned<Directive>]) {
        for d in ds {
            for (_, v) in &mut d.node.arguments {
                self.value(&mut v.node);
            }
        }
    }

    fn selection_set(&mut self, set: &mut SelectionSet) {
        for item in &mut set.items {
            match &mut item.node {
                Selection::Field(f) => {
                    for (_, v) in &mut f.node.arguments {
                        self.value(&mut v.node);
                    }
                    self.directives(&mut f.node.directives);
                    self.selection_set(&mut f.node.selection_set.node);
                }
                Selection::FragmentSpread(s) => self.directives(&mut s.node.directives),
                Selection::InlineFragment(f) => {
                    self.directives(&mut f.node.directives);
                    self.selection_set(&mut f.node.selection_set.node);
                }
            }
        }
    }

    fn document(&mut self, doc: &mut ExecutableDocument) {
        let operations: Vec<_> = match &mut doc.operations {
            DocumentOperations::Single(op) => vec![op],
            DocumentOperations::Multiple(ops) => ops.values_mut().collect(),
        };
        for op in operations {
            for var in &mut op.node.variable_definitions {
                self.directives(&mut var.node.directives);
                if let Some(default) = &mut var.node.default_value {
                    self.const_value(&mut default.node);
                }
            }
            self.directives(&mut op.node.directives);
            self.selection_set(&mut op.node.selection_set.node);
        }
        for fragment in doc.fragments.values_mut() {
            self.directives(&mut fragment.node.directives);
            self.selection_set(&mut fragment.node.selection_set.node);
        }
    }
}

impl Plans {
    /// Gives `req` the parse of its shape when the shape is known.
    pub fn prepare(&self, req: &mut async_graphql::Request) -> Prepared {
        if !req.variables.is_empty() || req.operation_name.is_some() {
            return Prepared::Full;
        }
        let Some(shape) = Shape::of(&req.query) else {
            return Prepared::Full;
        };
        let known = self
            .shapes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&shape.text)
            .cloned();
        let Some(parsed) = known else {
            return Prepared::New(shape.text);
        };
        let mut doc = ExecutableDocument::clone(&parsed);
        let mut fill = Fill {
            values: &shape.values,
            filled: 0,
        };
        fill.document(&mut doc);
        // Every placeholder of the text must have found its string.
        if fill.filled != shape.placeholders {
            return Prepared::Full;
        }
        req.set_parsed_query(doc);
        self.reused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Prepared::Reused
    }

    /// Queries given a kept parse so far, and shapes kept.
    pub fn stats(&self) -> (u64, usize) {
        let kept = self
            .shapes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        (self.reused.load(std::sync::atomic::Ordering::Relaxed), kept)
    }

    /// Keeps the parse of `shape`, whose query just passed validation.
    pub fn learn(&self, shape: String) {
        let Ok(parsed) = async_graphql::parser::parse_query(&shape) else {
            return;
        };
        let mut shapes = self.shapes.lock().unwrap_or_else(PoisonError::into_inner);
        if shapes.len() >= MAX_SHAPES {
            shapes.clear();
        }
        shapes.insert(shape, Arc::new(parsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_keep_lengths_and_equalities() {
        let q = r#"{ a: X(repo: "alpine", b: "x") c: X(repo: "alpine") d: X(repo: "redis") }"#;
        let Some(s) = Shape::of(q) else {
            panic!("no shape")
        };
        assert_eq!(
            s.text,
            r#"{ a: X(repo: "%0%%%%", b: "x") c: X(repo: "%0%%%%") d: X(repo: "%1%%%") }"#
        );
        assert_eq!(s.text.len(), q.len());
        assert_eq!(s.values, ["alpine", "redis"]);
        assert_eq!(s.placeholders, 3);
        assert_eq!(literal("%1%%%", &s.values), Some("redis"));
        assert_eq!(literal("%1", &s.values), None);
        assert_eq!(literal("%9%%", &s.values), None);
        assert_eq!(literal("plain", &s.values), None);
    }

    #[test]
    fn unusual_strings_take_the_full_path() {
        for q in [
            r#"{ X(repo: "a\"b") }"#,
            r#"{ X(repo: """block""") }"#,
            "{ X(repo: \"caf\u{e9}\") }",
            r#"{ X(repo: "unterminated) }"#,
        ] {
            assert!(Shape::of(q).is_none(), "{q}");
        }
        // A quote in a comment is not a string.
        let Some(s) = Shape::of("# it's \"here\"\n{ X(repo: \"abc\") }") else {
            panic!("no shape")
        };
        assert_eq!(s.values, ["abc"]);
    }

    #[test]
    fn a_reused_parse_carries_the_new_literals() {
        let plans = Plans::default();
        let first = r#"{ ExpandedRepoInfo(repo: "team/alpine") { Summary { Name } } }"#;
        let mut req = async_graphql::Request::new(first);
        let Prepared::New(shape) = plans.prepare(&mut req) else {
            panic!("first query of a shape")
        };
        plans.learn(shape);
        let second = r#"{ ExpandedRepoInfo(repo: "team/redis1") { Summary { Name } } }"#;
        let mut req = async_graphql::Request::new(second);
        assert!(matches!(plans.prepare(&mut req), Prepared::Reused));
        let parsed = match req.parsed_query() {
            Ok(p) => p.clone(),
            Err(e) => panic!("{e:?}"),
        };
        let expected = match async_graphql::parser::parse_query(second) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(format!("{parsed:?}"), format!("{expected:?}"));
        // Another length is another shape.
        let mut req = async_graphql::Request::new(
            r#"{ ExpandedRepoInfo(repo: "x/y/z") { Summary { Name } } }"#,
        );
        assert!(matches!(plans.prepare(&mut req), Prepared::New(_)));
    }
}

#[cfg(test)]
mod zb_shape {
    use super::*;

    #[test]
    fn zb_expanded_query_is_reused() {
        let q = |r: &str| {
            format!(
                "{{ ExpandedRepoInfo(repo: \"{r}\") {{ Summary {{ Name LastUpdated Size Platforms {{ Os Arch }} Vendors IsStarred IsBookmarked DownloadCount StarCount NewestImage {{ RepoName Tag Digest LastUpdated Description IsSigned SignatureInfo {{ Tool IsTrusted Author }} Licenses Vendor Labels Title Size }} }} Images {{ RepoName Tag Digest IsDeletable }} }} }}"
            )
        };
        let plans = Plans::default();
        let mut req = async_graphql::Request::new(q("seed/team07/nginx-00357"));
        let Prepared::New(shape) = plans.prepare(&mut req) else {
            panic!("new")
        };
        plans.learn(shape);
        let mut req = async_graphql::Request::new(q("seed/team08/nginx-00358"));
        let p = plans.prepare(&mut req);
        assert!(
            matches!(p, Prepared::Reused),
            "{}",
            match p {
                Prepared::New(s) => s,
                _ => "full".into(),
            }
        );
    }
}
