//! Typed reads of single keys from a [`Section`].
//!
//! Invariant: every reader returns `None` both when the key is absent and when
//! its value is invalid; in the second case it has pushed exactly one
//! [`Problem`] naming the key's canonical path. Callers apply defaults to
//! `None` and never report the same key twice.

use std::time::Duration;

use serde_json::Value;

use crate::duration::duration_from_value;
use crate::problem::Problem;
use crate::value::{Section, kind};

fn wrong(section: &Section<'_>, name: &str, expected: &str, found: &Value) -> Problem {
    Problem::new(
        section.child(name),
        format!("expected {expected}, found {}", kind(found)),
    )
}

/// A string value.
pub(crate) fn string(
    section: &mut Section<'_>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match section.get(name)? {
        Value::String(s) => Some(s.clone()),
        other => {
            problems.push(wrong(section, name, "a string", other));
            None
        }
    }
}

/// A boolean value.
pub(crate) fn boolean(
    section: &mut Section<'_>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<bool> {
    match section.get(name)? {
        Value::Bool(b) => Some(*b),
        other => {
            problems.push(wrong(section, name, "true or false", other));
            None
        }
    }
}

/// A duration (see [`crate::duration`]).
pub(crate) fn duration(
    section: &mut Section<'_>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<Duration> {
    let value = section.get(name)?;
    match duration_from_value(value) {
        Ok(d) => Some(d),
        Err(message) => {
            problems.push(Problem::new(section.child(name), message));
            None
        }
    }
}

/// A non-negative integer.
pub(crate) fn unsigned(
    section: &mut Section<'_>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    match section.get(name)? {
        Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
        other => {
            problems.push(wrong(section, name, "a non-negative integer", other));
            None
        }
    }
}

/// A list of strings. Problems name the item, e.g. `http.compat[1]`; invalid
/// items are left out.
pub(crate) fn string_list(
    section: &mut Section<'_>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<(String, String)>> {
    let items = match section.get(name)? {
        Value::Array(items) => items,
        other => {
            problems.push(wrong(section, name, "a list of strings", other));
            return None;
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", section.child(name));
        match item {
            Value::String(s) => out.push((path, s.clone())),
            other => problems.push(Problem::new(
                path,
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }
    Some(out)
}
