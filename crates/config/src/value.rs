//! Reading a document into one generic tree, and walking it with zot's
//! case-insensitive key lookup.
//!
//! Invariants:
//! - JSON and YAML both become a [`serde_json::Value`]; everything after this
//!   module sees only that, so the two formats cannot drift apart. YAML merge
//!   keys (`<<`) are applied, tags are dropped, and scalar mapping keys
//!   (numbers, booleans) become strings as viper does.
//! - Keys match case-insensitively (Go zot lower-cases every key through
//!   viper). Two keys of one mapping that differ only in case are a problem.
//! - `null` (an empty YAML value) counts as absent.
//! - A [`Section`] remembers which keys were read; [`Section::finish`] reports
//!   every key nobody read as `unknown key`, so a typo is never silently ignored.

use serde_json::{Map, Value};

use crate::problem::{Problem, join};

/// Converts a YAML document to the JSON value model.
pub(crate) fn yaml_to_json(mut yaml: serde_yaml::Value) -> Result<Value, String> {
    yaml.apply_merge()
        .map_err(|e| format!("invalid YAML merge key: {e}"))?;
    convert(yaml)
}

fn convert(yaml: serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("unsupported YAML number {n}"))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        Y::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    other => return Err(format!("unsupported YAML mapping key {other:?}")),
                };
                map.insert(key, convert(value)?);
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => convert(tagged.value)?,
    })
}

/// A short name for a value's type, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// One mapping of the document being read, with its path and the keys read so far.
pub(crate) struct Section<'a> {
    path: String,
    entries: Vec<Entry<'a>>,
}

struct Entry<'a> {
    key: &'a str,
    lower: String,
    value: &'a Value,
    read: bool,
}

impl<'a> Section<'a> {
    /// The mapping at `path`. `null` is an empty mapping; anything else that is
    /// not a mapping is a problem (and `None`).
    pub(crate) fn new(path: String, value: &'a Value, problems: &mut Vec<Problem>) -> Option<Self> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let map = match value {
            Value::Object(map) => map,
            Value::Null => EMPTY.get_or_init(Map::new),
            other => {
                problems.push(Problem::new(
                    path,
                    format!("expected a mapping, found {}", kind(other)),
                ));
                return None;
            }
        };
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(map.len());
        for (key, value) in map {
            let lower = key.to_lowercase();
            if let Some(first) = entries.iter().find(|e| e.lower == lower) {
                problems.push(Problem::new(
                    join(&path, key),
                    format!(
                        "duplicate key (keys are case-insensitive; {:?} is also set)",
                        first.key
                    ),
                ));
            }
            entries.push(Entry {
                key,
                lower,
                value,
                read: false,
            });
        }
        Some(Self { path, entries })
    }

    /// The path of `key` in this section.
    pub(crate) fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `name` (matched case-insensitively), marking it read.
    /// `null` counts as absent.
    pub(crate) fn get(&mut self, name: &str) -> Option<&'a Value> {
        self.get_even_null(name).filter(|v| !v.is_null())
    }

    /// Like [`Section::get`], but a `null` value is returned, not absent.
    pub(crate) fn get_even_null(&mut self, name: &str) -> Option<&'a Value> {
        let lower = name.to_lowercase();
        let mut found = None;
        for entry in self.entries.iter_mut().filter(|e| e.lower == lower) {
            entry.read = true;
            found = found.or(Some(entry.value));
        }
        found
    }

    /// Whether `name` is present with a non-null value (does not mark it read).
    pub(crate) fn has(&self, name: &str) -> bool {
        let lower = name.to_lowercase();
        self.entries
            .iter()
            .any(|e| e.lower == lower && !e.value.is_null())
    }

    /// Reports each of `names` that is present as not supported by this build.
    pub(crate) fn unsupported(&mut self, names: &[&str], problems: &mut Vec<Problem>) {
        for name in names {
            if self.get(name).is_some() {
                problems.push(Problem::new(
                    self.child(name),
                    "not supported by this build",
                ));
            }
        }
    }

    /// The entries not read yet, marking them read.
    pub(crate) fn take_rest(&mut self) -> Vec<(&'a str, &'a Value)> {
        self.entries
            .iter_mut()
            .filter(|e| !e.read)
            .map(|e| {
                e.read = true;
                (e.key, e.value)
            })
            .collect()
    }

    /// Reports every key that was never read as unknown.
    pub(crate) fn finish(self, problems: &mut Vec<Problem>) {
        for entry in self.entries.iter().filter(|e| !e.read) {
            problems.push(Problem::new(join(&self.path, entry.key), "unknown key"));
        }
    }
}
