//! Maven versions, ordered as Maven's `ComparableVersion`: the version
//! (case-insensitive) is a list of items split on `.` and on transitions
//! between digits and letters; a `-` before a digit opens a sub-list.
//! Integers compare numerically and beat strings and sub-lists; known
//! qualifiers order `alpha < beta < milestone < rc < snapshot < "" < sp`
//! (`a`/`b`/`m` before a digit spell alpha/beta/milestone, `cr` is `rc`,
//! `ga` and `final` are the release) and unknown ones come after, by
//! name; trailing null items (`0`, the release qualifier, empty lists)
//! are dropped, so `1 = 1.0 = 1-ga`.

use std::cmp::Ordering;

#[derive(Debug, Clone)]
enum Item {
    Int(String),
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

fn comparable(q: &str) -> String {
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

fn string_item(value: &str, followed_by_digit: bool) -> Item {
    let value = match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" => "",
        "cr" => "rc",
        v => v,
    };
    Item::Str(value.to_string())
}

fn int_item(digits: &str) -> Item {
    Item::Int(digits.trim_start_matches('0').to_string())
}

fn parse_item(is_digit: bool, s: &str) -> Item {
    if is_digit {
        int_item(s)
    } else {
        string_item(s, false)
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(v) => v.is_empty(),
            Item::Str(v) => comparable(v) == comparable(""),
            Item::List(l) => l.is_empty(),
        }
    }

    fn cmp_opt(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Item::Int(v), None) => {
                if v.is_empty() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (Item::Int(a), Some(Item::Int(b))) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (Item::Int(_), Some(_)) => Ordering::Greater,
            (Item::Str(v), None) => comparable(v).cmp(&comparable("")),
            (Item::Str(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
            (Item::Str(a), Some(Item::Str(b))) => comparable(a).cmp(&comparable(b)),
            (Item::List(l), None) => l.first().map_or(Ordering::Equal, |f| f.cmp_opt(None)),
            (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
            (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
            (Item::List(a), Some(Item::List(b))) => {
                for k in 0..a.len().max(b.len()) {
                    let o = match (a.get(k), b.get(k)) {
                        (Some(l), r) => l.cmp_opt(r),
                        (None, Some(r)) => r.cmp_opt(None).reverse(),
                        (None, None) => Ordering::Equal,
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
        }
    }
}

fn normalize(list: &mut Vec<Item>) {
    while list.last().is_some_and(Item::is_null) {
        list.pop();
    }
}

// The parse builds nested lists; a stack of indices into the nesting.
fn parse(version: &str) -> Item {
    let version = version.trim().to_ascii_lowercase();
    let bytes = version.as_bytes();
    // Lists from the root down to the current one.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let top = |stack: &mut Vec<Vec<Item>>| -> usize { stack.len() - 1 };
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'.' || c == b'-' {
            let item = if i == start {
                Item::Int(String::new())
            } else {
                parse_item(is_digit, &version[start..i])
            };
            let t = top(&mut stack);
            stack[t].push(item);
            start = i + 1;
            if c == b'-' && is_digit {
                normalize(&mut stack[t]);
                if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    stack.push(Vec::new());
                }
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                let t = top(&mut stack);
                stack[t].push(string_item(&version[start..i], true));
                start = i;
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                let t = top(&mut stack);
                stack[t].push(parse_item(true, &version[start..i]));
                start = i;
            }
            is_digit = false;
        }
    }
    if bytes.len() > start {
        let t = top(&mut stack);
        stack[t].push(parse_item(is_digit, &version[start..]));
    }
    while stack.len() > 1 {
        let mut inner = stack.pop().unwrap_or_default();
        normalize(&mut inner);
        let t = top(&mut stack);
        stack[t].push(Item::List(inner));
    }
    let mut root = stack.pop().unwrap_or_default();
    normalize(&mut root);
    Item::List(root)
}

/// Compares two Maven versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    parse(a).cmp_opt(Some(&parse(b)))
}
