//! The `extensions` section.
//!
//! Invariants:
//! - Each key is one of [`KNOWN_EXTENSIONS`] (matched case-insensitively and
//!   stored under its canonical lower-case name); any other key is an
//!   `unknown extension` problem.
//! - A section is a mapping (an empty YAML value counts as `{}`). Its `enable`
//!   flag, when present, is a boolean; when absent, the extension is enabled
//!   or not as zot decides: `search`, `sync`, `metrics`, `scrub`, `ui` and
//!   `trust` are enabled by their mere presence (zot's `applyDefaultValues`),
//!   `lint`, `mgmt`, `apikey` and `events` are not.
//! - The rest of a section is kept verbatim in [`ExtensionConfig::raw`] for the
//!   extension to read; this module does not validate it.
//! - An enabled extension that is not in the list of available extensions
//!   (by default [`AVAILABLE_EXTENSIONS`]) is a `not available in this build`
//!   problem; a disabled one is accepted whatever the build.

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// Every extension name zot knows, with whether its mere presence enables it.
pub const KNOWN_EXTENSIONS: &[(&str, bool)] = &[
    ("search", true),
    ("sync", true),
    ("metrics", true),
    ("scrub", true),
    ("ui", true),
    ("trust", true),
    ("lint", false),
    ("mgmt", false),
    ("apikey", false),
    ("events", false),
];

/// The extensions this build implements; an enabled extension must be listed
/// here. Add a name when its crate is wired in.
pub const AVAILABLE_EXTENSIONS: &[&str] = &[];

/// One section of `extensions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionConfig {
    /// Canonical (lower-case) extension name, e.g. `search`.
    pub name: String,
    /// Whether the extension is on (explicit `enable`, or zot's default).
    pub enabled: bool,
    /// The whole section as written (with `enable`, keys in the user's spelling).
    pub raw: Value,
}

/// Reads `extensions` (absent: none).
pub(crate) fn parse(
    value: Option<&Value>,
    available: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<ExtensionConfig> {
    let mut out = Vec::new();
    let Some(mut section) = Section::new(
        "extensions".to_owned(),
        value.unwrap_or(&Value::Null),
        problems,
    ) else {
        return out;
    };
    for &(name, on_by_presence) in KNOWN_EXTENSIONS {
        let Some(value) = section.get_even_null(name) else {
            continue;
        };
        let path = section.child(name);
        let Some(mut body) = Section::new(path.clone(), value, problems) else {
            continue;
        };
        let enabled = match (
            body.has("enable"),
            fields::boolean(&mut body, "enable", problems),
        ) {
            (_, Some(enable)) => enable,
            (false, None) => on_by_presence,
            // An invalid `enable` is reported once, as such.
            (true, None) => false,
        };
        if enabled && !available.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            problems.push(Problem::new(path, "not available in this build"));
        }
        let raw = if value.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            value.clone()
        };
        out.push(ExtensionConfig {
            name: name.to_owned(),
            enabled,
            raw,
        });
    }
    for (key, _) in section.take_rest() {
        problems.push(Problem::new(section.child(key), "unknown extension"));
    }
    section.finish(problems);
    out
}
