//! Alpine (apk-tools) versions: `number{.number}...{letter}{_suffix{number}}...{-r#}`.
//! Tokens compare in order: numbers numerically, except that a component
//! after a dot with leading zeros compares as a fraction (`1.02 < 1.2`);
//! letters by value; suffixes `_alpha < _beta < _pre < _rc` (before the
//! release) and `_cvs < _svn < _git < _hg < _p` (after it); then the
//! `-r` revision. When the leading tokens are equal, the longer version is
//! newer unless what follows is a pre-release suffix. An invalid version
//! compares by its tokens up to the first invalid one, as apk-tools 2 does.

use std::cmp::Ordering;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Token {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

struct Cursor<'a> {
    s: &'a [u8],
}

impl Cursor<'_> {
    fn next_token(&mut self, t: &mut Token) {
        let mut n = Token::Invalid;
        match self.s.first() {
            None | Some(0) => n = Token::End,
            Some(c) if matches!(t, Token::Digit | Token::DigitOrZero) && c.is_ascii_lowercase() => {
                n = Token::Letter;
            }
            Some(c) if *t == Token::Letter && c.is_ascii_digit() => n = Token::Digit,
            Some(c) if *t == Token::Suffix && c.is_ascii_digit() => n = Token::SuffixNo,
            Some(c) => {
                match c {
                    b'.' => n = Token::DigitOrZero,
                    b'_' => n = Token::Suffix,
                    b'-' if self.s.get(1) == Some(&b'r') => {
                        n = Token::RevisionNo;
                        self.s = &self.s[1..];
                    }
                    _ => {}
                }
                self.s = &self.s[1..];
            }
        }
        if n < *t
            && !((n == Token::DigitOrZero && *t == Token::Digit)
                || (n == Token::Suffix && *t == Token::SuffixNo)
                || (n == Token::Digit && *t == Token::Letter))
        {
            n = Token::Invalid;
        }
        *t = n;
    }

    fn get_token(&mut self, t: &mut Token) -> i64 {
        if self.s.is_empty() {
            *t = Token::End;
            return 0;
        }
        let mut v: i64 = 0;
        let mut i = 0;
        let mut nt = Token::Invalid;
        let digits = |s: &[u8], i: &mut usize, v: &mut i64| {
            while *i < s.len() && s[*i].is_ascii_digit() {
                *v = v.saturating_mul(10).saturating_add(i64::from(s[*i] - b'0'));
                *i += 1;
            }
        };
        match t {
            Token::DigitOrZero if self.s[0] == b'0' => {
                while i < self.s.len() && self.s[i] == b'0' {
                    i += 1;
                }
                nt = Token::Digit;
                v = -(i as i64);
            }
            Token::DigitOrZero | Token::Digit | Token::SuffixNo | Token::RevisionNo => {
                digits(self.s, &mut i, &mut v);
            }
            Token::Letter => {
                v = i64::from(self.s[0]);
                i = 1;
            }
            Token::Suffix => {
                if let Some(k) = PRE.iter().position(|p| self.s.starts_with(p.as_bytes())) {
                    i = PRE[k].len();
                    v = k as i64 - PRE.len() as i64;
                } else if let Some(k) = POST.iter().position(|p| self.s.starts_with(p.as_bytes())) {
                    i = POST[k].len();
                    v = k as i64;
                } else {
                    *t = Token::Invalid;
                    return -1;
                }
            }
            _ => {
                *t = Token::Invalid;
                return -1;
            }
        }
        self.s = &self.s[i..];
        if self.s.is_empty() {
            *t = Token::End;
        } else if nt != Token::Invalid {
            *t = nt;
        } else {
            self.next_token(t);
        }
        v
    }
}

/// Whether apk-tools accepts `version` as a version.
pub fn is_valid(version: &str) -> bool {
    if version.is_empty() {
        return false;
    }
    let mut c = Cursor {
        s: version.as_bytes(),
    };
    let mut t = Token::Digit;
    while t != Token::End && t != Token::Invalid {
        c.get_token(&mut t);
    }
    t == Token::End
}

/// Compares two Alpine versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut ca, mut cb) = (Cursor { s: a.as_bytes() }, Cursor { s: b.as_bytes() });
    let (mut at, mut bt) = (Token::Digit, Token::Digit);
    let (mut av, mut bv) = (0, 0);
    while at == bt && at != Token::End && at != Token::Invalid && av == bv {
        av = ca.get_token(&mut at);
        bv = cb.get_token(&mut bt);
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if at == bt {
        return Ordering::Equal;
    }
    let mut tt = at;
    if at == Token::Suffix && ca.get_token(&mut tt) < 0 {
        return Ordering::Less;
    }
    let mut tt = bt;
    if bt == Token::Suffix && cb.get_token(&mut tt) < 0 {
        return Ordering::Greater;
    }
    // The one that goes on (a lower next-token kind) is newer.
    bt.cmp(&at)
}
