//! The `Time` scalar: Unix nanoseconds shown as RFC 3339 with nanoseconds
//! (Go's `RFC3339Nano`: UTC, `Z`, trailing fraction zeros dropped). zot's
//! zero time is `None` in the model and `null` on the wire.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

const NS_PER_SEC: i128 = 1_000_000_000;

/// A point in time, Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub i128);

#[Scalar(name = "Time")]
impl ScalarType for Time {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_rfc3339(s)
                .map(Time)
                .ok_or_else(|| InputValueError::custom("invalid RFC 3339 time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(format_rfc3339_nano(self.0))
    }
}

/// `None` (zero time) stays `None`.
pub fn time(ns: Option<i128>) -> Option<Time> {
    ns.map(Time)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i128, m: u32, d: u32) -> i128 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i128::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i128::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.RFC3339Nano` layout, in UTC.
pub fn format_rfc3339_nano(ns: i128) -> String {
    let secs = ns.div_euclid(NS_PER_SEC);
    let frac = ns.rem_euclid(NS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses RFC 3339 (`2024-01-02T03:04:05.123Z`, `+01:00` offsets,
/// lower-case `t`/`z`, or a space as separator) to Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.len() < 20 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let mut date_parts = date.split('-');
    let y = num(date_parts.next()?)?;
    let mo = num(date_parts.next()?)?;
    let d = num(date_parts.next()?)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let sep = rest.as_bytes().first()?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (clock, tail) = rest[1..].split_at(8);
    let mut clock_parts = clock.split(':');
    let h = num(clock_parts.next()?)?;
    let mi = num(clock_parts.next()?)?;
    let sec = num(clock_parts.next()?)?;
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut frac_ns: i128 = 0;
    let mut tail = tail;
    if let Some(after_dot) = tail.strip_prefix('.') {
        let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &after_dot[..n];
        let kept = &digits[..n.min(9)];
        let mut v: i128 = kept.parse().ok()?;
        for _ in kept.len()..9 {
            v *= 10;
        }
        frac_ns = v;
        tail = &after_dot[n..];
    }
    let offset_secs: i128 = match tail {
        "Z" | "z" => 0,
        _ if tail.len() == 6
            && tail.is_ascii()
            && (tail.starts_with('+') || tail.starts_with('-')) =>
        {
            let oh = i128::from(num(&tail[1..3])?);
            let om = i128::from(num(&tail[4..6])?);
            let v = oh * 3600 + om * 60;
            if tail.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(i128::from(y), mo, d);
    let secs =
        days * 86_400 + i128::from(h) * 3600 + i128::from(mi) * 60 + i128::from(sec) - offset_secs;
    Some(secs * NS_PER_SEC + frac_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_nano(1_700_000_000_123_400_000),
            "2023-11-14T22:13:20.1234Z"
        );
        assert_eq!(format_rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            format_rfc3339_nano(951_782_400 * NS_PER_SEC),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "2023-11-14T22:13:20.1234Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "1999-12-31T23:59:59.999999999Z",
        ] {
            let ns = parse_rfc3339(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(format_rfc3339_nano(ns), s);
        }
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            parse_rfc3339("2023-11-14T22:13:20Z")
        );
        assert_eq!(parse_rfc3339("2023-11-14"), None);
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20"), None);
    }
}
