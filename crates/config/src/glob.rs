//! Repository globs with zot's semantics (Go `doublestar/v4`), the one
//! implementation shared by access control and retention.
//!
//! Syntax:
//! - `*` matches any run of characters except `/`; `?` one character but `/`;
//! - `**` as a whole path segment crosses segments: `**/` matches zero or more
//!   leading segments (`a/**/b` matches `a/b` and `a/x/y/b`), a final `/**`
//!   matches the rest of the name or nothing (`a/**` matches `a` and `a/b/c`),
//!   `**` alone matches everything; elsewhere (`a**`, `**b`) it is `*`;
//! - `[abc]`, `[a-z]`, `[!a]`/`[^a]`: one character of (not of) a class;
//! - `{x,y}`: alternatives, nestable;
//! - `\c`: the character `c` itself.
//!
//! Invariants:
//! - **Bounded work, no cut-off.** A pattern compiles to a small
//!   non-deterministic automaton (a few states per pattern character) that is
//!   simulated over the name in one pass: O(states × name length), whatever
//!   the pattern. There is no recursion depth or step limit that could make a
//!   long pattern silently not match.
//! - **Alternatives are expanded** into at most [`MAX_ALTERNATIVES`] plain
//!   patterns (as doublestar matches them, by splicing), so a pattern that
//!   would expand to more is refused as invalid rather than matched slowly.
//! - **Invalid patterns** (unclosed `[` or `{`, an empty class, a stray `}`,
//!   a trailing `\`, too many alternatives) are a [`GlobError`]; the config
//!   parser reports them as problems, and [`glob_match`] treats them as
//!   matching nothing, as zot does with doublestar's `ErrBadPattern`.

use std::fmt;

/// The most plain patterns one pattern's `{...}` alternatives may expand to.
pub const MAX_ALTERNATIVES: usize = 64;

/// Why a pattern is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// What is wrong, e.g. `unclosed '['`.
    pub reason: &'static str,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid glob: {}", self.reason)
    }
}

impl std::error::Error for GlobError {}

fn bad(reason: &'static str) -> GlobError {
    GlobError { reason }
}

/// What one automaton state consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// Exactly this character.
    Char(char),
    /// Any character but `/`.
    NotSlash,
    /// Any character.
    Any,
    /// One character of (or, negated, not of) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Atom {
    fn accepts(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::NotSlash => c != '/',
            Atom::Any => true,
            Atom::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// An automaton state: consume one character and go on, or branch without
/// consuming. `Match` is the accepting state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Step(Atom, usize),
    Split(usize, usize),
    Match,
}

/// One plain (alternative-free) pattern, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Automaton {
    states: Vec<State>,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    automata: Vec<Automaton>,
}

impl Glob {
    /// Compiles `pattern`, or says why it is invalid.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        validate(&chars)?;
        let automata = expand(&chars)?
            .iter()
            .map(|plain| compile(plain))
            .collect::<Result<_, _>>()?;
        Ok(Glob {
            pattern: pattern.to_owned(),
            automata,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        self.automata.iter().any(|a| a.matches(name))
    }
}

/// Whether `name` matches `pattern`; an invalid pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    Glob::new(pattern).is_ok_and(|g| g.matches(name))
}

/// Checks the whole pattern as doublestar's `ValidatePattern` does.
fn validate(p: &[char]) -> Result<(), GlobError> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                i += 1;
                if i >= p.len() {
                    return Err(bad("trailing '\\'"));
                }
            }
            '[' => i = class_end(p, i)?,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1).ok_or(bad("'}' without '{'"))?;
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err(bad("unclosed '{'"));
    }
    Ok(())
}

/// The index of the `]` closing the class opened at `open`.
fn class_end(p: &[char], open: usize) -> Result<usize, GlobError> {
    let mut i = open + 1;
    if matches!(p.get(i), Some('!' | '^')) {
        i += 1;
    }
    if matches!(p.get(i), None | Some(']')) {
        return Err(bad("empty or unclosed '['"));
    }
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            ']' => return Ok(i),
            _ => i += 1,
        }
    }
    Err(bad("unclosed '['"))
}

/// The first `{...}` group outside classes and escapes: (open, close, commas).
fn first_group(p: &[char]) -> Result<Option<(usize, usize, Vec<usize>)>, GlobError> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 1,
            '[' => i = class_end(p, i)?,
            '{' => {
                let (mut depth, mut commas, mut j) = (0usize, Vec::new(), i + 1);
                while j < p.len() {
                    match p[j] {
                        '\\' => j += 1,
                        '[' => j = class_end(p, j)?,
                        '{' => depth += 1,
                        ',' if depth == 0 => commas.push(j),
                        '}' if depth == 0 => return Ok(Some((i, j, commas))),
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                return Err(bad("unclosed '{'"));
            }
            _ => {}
        }
        i += 1;
    }
    Ok(None)
}

/// Splices every alternative in, giving plain patterns.
fn expand(p: &[char]) -> Result<Vec<Vec<char>>, GlobError> {
    let mut done = Vec::new();
    let mut todo = vec![p.to_vec()];
    while let Some(pattern) = todo.pop() {
        let Some((open, close, commas)) = first_group(&pattern)? else {
            done.push(pattern);
            continue;
        };
        // Refused before splicing: each alternative is a copy of the pattern.
        if done.len() + todo.len() + commas.len() + 1 > MAX_ALTERNATIVES {
            return Err(bad("too many alternatives"));
        }
        let mut start = open + 1;
        for end in commas.into_iter().chain([close]) {
            let mut spliced = pattern[..open].to_vec();
            spliced.extend_from_slice(&pattern[start..end]);
            spliced.extend_from_slice(&pattern[close + 1..]);
            todo.push(spliced);
            start = end + 1;
        }
    }
    Ok(done)
}

/// Builds the automaton of a plain pattern (no `{`), back to front so each
/// state knows its successor.
fn compile(p: &[char]) -> Result<Automaton, GlobError> {
    // Tokens first, front to back, since what `**` means depends on what
    // precedes it.
    enum Token {
        Atom(Atom),
        /// `*`: any run within a segment.
        Star,
        /// `**/` at a segment start: zero or more whole segments.
        Segments,
        /// `**` ending the pattern at a segment start: the rest, whatever it is.
        Rest,
        /// `/**` ending the pattern: nothing, or `/` and the rest.
        OptionalRest,
    }
    let mut tokens = Vec::new();
    let mut segment_start = true;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                let double = p.get(i + 1) == Some(&'*');
                i += if double { 2 } else { 1 };
                if double && segment_start && i == p.len() {
                    if let Some(Token::Atom(Atom::Char('/'))) = tokens.last() {
                        tokens.pop();
                        tokens.push(Token::OptionalRest);
                    } else {
                        tokens.push(Token::Rest);
                    }
                } else if double && segment_start && p.get(i) == Some(&'/') {
                    i += 1;
                    tokens.push(Token::Segments);
                    // still at a segment start
                } else {
                    tokens.push(Token::Star);
                    segment_start = false;
                }
                continue;
            }
            '?' => {
                tokens.push(Token::Atom(Atom::NotSlash));
                segment_start = false;
            }
            '[' => {
                let end = class_end(p, i)?;
                tokens.push(Token::Atom(class(&p[i + 1..end])));
                segment_start = false;
                i = end;
            }
            '\\' => {
                i += 1;
                let c = *p.get(i).ok_or(bad("trailing '\\'"))?;
                tokens.push(Token::Atom(Atom::Char(c)));
                segment_start = c == '/';
            }
            c => {
                tokens.push(Token::Atom(Atom::Char(c)));
                segment_start = c == '/';
            }
        }
        i += 1;
    }

    fn push(states: &mut Vec<State>, s: State) -> usize {
        states.push(s);
        states.len() - 1
    }
    let mut states = vec![State::Match];
    let mut next = 0;
    for token in tokens.into_iter().rev() {
        let states = &mut states;
        next = match token {
            Token::Atom(atom) => push(states, State::Step(atom, next)),
            Token::Star | Token::Rest => {
                let atom = if matches!(token, Token::Star) {
                    Atom::NotSlash
                } else {
                    Atom::Any
                };
                // split → (next | step → split)
                let split = push(states, State::Match);
                let step = push(states, State::Step(atom, split));
                states[split] = State::Split(next, step);
                split
            }
            Token::Segments => {
                // nothing, or any characters ending with '/'
                let slash = push(states, State::Step(Atom::Char('/'), next));
                let inner = push(states, State::Match);
                let step = push(states, State::Step(Atom::Any, inner));
                states[inner] = State::Split(slash, step);
                push(states, State::Split(next, inner))
            }
            Token::OptionalRest => {
                // nothing, or '/' and any characters
                let split = push(states, State::Match);
                let step = push(states, State::Step(Atom::Any, split));
                states[split] = State::Split(next, step);
                let slash = push(states, State::Step(Atom::Char('/'), split));
                push(states, State::Split(next, slash))
            }
        };
    }
    // The start state is the last one built; move it to a known place.
    states.push(State::Split(next, next));
    Ok(Automaton { states })
}

/// The class between `[` and `]` (both excluded).
fn class(body: &[char]) -> Atom {
    let (negated, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut ranges = Vec::new();
    let mut i = 0;
    let take = |i: &mut usize| {
        if body[*i] == '\\' && *i + 1 < body.len() {
            *i += 1;
        }
        let c = body[*i];
        *i += 1;
        c
    };
    while i < body.len() {
        let lo = take(&mut i);
        if i + 1 < body.len() && body[i] == '-' {
            i += 1;
            let hi = take(&mut i);
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    Atom::Class { negated, ranges }
}

impl Automaton {
    fn start(&self) -> usize {
        self.states.len() - 1
    }

    /// Adds `s` and every state reachable from it without consuming.
    fn close(&self, s: usize, set: &mut [bool], list: &mut Vec<usize>, stack: &mut Vec<usize>) {
        stack.push(s);
        while let Some(s) = stack.pop() {
            if std::mem::replace(&mut set[s], true) {
                continue;
            }
            list.push(s);
            if let State::Split(a, b) = self.states[s] {
                stack.push(b);
                stack.push(a);
            }
        }
    }

    fn matches(&self, name: &str) -> bool {
        let n = self.states.len();
        let (mut set, mut next_set) = (vec![false; n], vec![false; n]);
        let (mut list, mut next_list, mut stack) = (Vec::new(), Vec::new(), Vec::new());
        self.close(self.start(), &mut set, &mut list, &mut stack);
        for c in name.chars() {
            for &s in &list {
                if let State::Step(atom, to) = &self.states[s]
                    && atom.accepts(c)
                {
                    self.close(*to, &mut next_set, &mut next_list, &mut stack);
                }
            }
            if next_list.is_empty() {
                return false;
            }
            for &s in &list {
                set[s] = false;
            }
            std::mem::swap(&mut set, &mut next_set);
            std::mem::swap(&mut list, &mut next_list);
            next_list.clear();
        }
        list.iter().any(|&s| self.states[s] == State::Match)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doublestar_semantics() {
        let yes = [
            ("**", "a/b/c"),
            ("**", ""),
            ("tmp/**", "tmp/a/b"),
            ("tmp/**", "tmp"),
            ("*", "alpine"),
            ("a/*/c", "a/b/c"),
            ("a/**/c", "a/c"),
            ("a/**/c", "a/x/y/c"),
            ("**/c", "c"),
            ("**/c", "a/b/c"),
            ("ab?", "abc"),
            ("a**", "abc"),
            ("[a-c]x", "bx"),
            ("[!a]x", "bx"),
            ("{a,b/c}/d", "b/c/d"),
            ("x{a,{b,c}}", "xc"),
            ("a\\*", "a*"),
        ];
        for (p, n) in yes {
            assert!(glob_match(p, n), "{p} should match {n}");
        }
        let no = [
            ("tmp/**", "tmpx/a"),
            ("*", "a/b"),
            ("ab?", "ab/"),
            ("a**", "a/b"),
            ("a/**/c", "ac"),
            ("a/**/c", "a/xc"),
            ("**/c", "xc"),
            ("[!a]x", "ax"),
            ("{a,b}", "ab"),
            ("a\\*", "ab"),
            ("repos2/repo", "repos2/repo2"),
        ];
        for (p, n) in no {
            assert!(!glob_match(p, n), "{p} should not match {n}");
        }
    }

    #[test]
    fn invalid_patterns() {
        for p in ["a[", "a[]", "a[!]", "{a,b", "a}", "a\\", "[a-"] {
            assert!(Glob::new(p).is_err(), "{p} should be invalid");
            assert!(!glob_match(p, "a"));
        }
        let many = "{a,b}".repeat(7);
        assert!(Glob::new(&many).is_err());
        assert!(Glob::new(&"{a,b}".repeat(6)).is_ok());
    }
}
