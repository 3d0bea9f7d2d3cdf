//! Durations written as Go writes them (`time.ParseDuration`), and as zot's
//! config loader accepts them.
//!
//! Invariants:
//! - A string is a sequence of decimal numbers, each with an optional fraction
//!   and a unit suffix: `300ms`, `1.5h`, `2h45m10s`. Units are `ns`, `us`,
//!   `µs` (micro sign), `μs` (Greek mu), `ms`, `s`, `m`, `h`. The bare string
//!   `0` is zero. An optional leading sign is accepted, but a negative non-zero
//!   duration is rejected (the registry has no use for one).
//! - As in Go, the total must fit in a signed 64-bit count of nanoseconds
//!   (about 292 years); fractions are rounded toward zero to the nanosecond.
//! - In a config file an integer is a count of **nanoseconds**, because Go
//!   decodes a number straight into `time.Duration` (an `int64` of nanoseconds):
//!   `"gcDelay": 3600` means 3.6 µs, not an hour. Floats are rejected.

use std::time::Duration;

/// The largest duration Go can represent: `i64::MAX` nanoseconds.
const MAX_NANOS: u64 = i64::MAX as u64;

/// Nanoseconds in one of Go's duration units.
fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        // "µs" (U+00B5 micro sign) and "μs" (U+03BC Greek small letter mu).
        b"us" | b"\xC2\xB5s" | b"\xCE\xBCs" => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60 * 1_000_000_000,
        b"h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration string such as `1h30m`, `10s`, `500ms`, `1.5h`.
///
/// Errors are short human messages (without the key path), e.g.
/// `invalid duration "1x": unknown unit "x"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration {s:?}: {why}");
    let mut rest = s.as_bytes();
    let mut negative = false;
    if let Some((&sign, tail)) = rest.split_first()
        && (sign == b'-' || sign == b'+')
    {
        negative = sign == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid("empty"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        // Integer part.
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &digit in &rest[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u64::from(digit - b'0')))
                .filter(|&w| w <= MAX_NANOS)
                .ok_or_else(|| invalid("too large"))?;
        }
        rest = &rest[int_len..];
        // Fraction part: digits past what a u64 holds are dropped, as in Go.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some((&b'.', tail)) = rest.split_first() {
            rest = tail;
            frac_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let mut overflowed = false;
            for &digit in &rest[..frac_len] {
                if overflowed {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(digit - b'0')))
                {
                    Some(f) if f <= MAX_NANOS => {
                        fraction = f;
                        scale *= 10.0;
                    }
                    _ => overflowed = true,
                }
            }
            rest = &rest[frac_len..];
        } else if int_len == 0 {
            return Err(invalid("expected a number"));
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid("expected a number"));
        }
        // Unit: everything up to the next number.
        let unit_len = rest
            .iter()
            .take_while(|&&b| b != b'.' && !b.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(invalid("missing unit"));
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos = unit_nanos(unit).ok_or_else(|| {
            invalid(&format!(
                "unknown unit {:?} (expected ns, us, ms, s, m or h)",
                String::from_utf8_lossy(unit)
            ))
        })?;
        let mut value = whole
            .checked_mul(nanos)
            .filter(|&v| v <= MAX_NANOS)
            .ok_or_else(|| invalid("too large"))?;
        if fraction > 0 {
            // Same arithmetic as Go: float64(f) * (float64(unit) / scale).
            #[expect(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "mirrors Go's float arithmetic; the result is non-negative and checked below"
            )]
            let extra = (fraction as f64 * (nanos as f64 / scale)) as u64;
            value = value
                .checked_add(extra)
                .filter(|&v| v <= MAX_NANOS)
                .ok_or_else(|| invalid("too large"))?;
        }
        total = total
            .checked_add(value)
            .filter(|&t| t <= MAX_NANOS)
            .ok_or_else(|| invalid("too large"))?;
    }
    if negative && total != 0 {
        return Err(invalid("negative durations are not allowed"));
    }
    Ok(Duration::from_nanos(total))
}

/// Reads a duration from a config value: a Go duration string, or an
/// integer count of nanoseconds (see the module docs).
pub(crate) fn duration_from_value(value: &serde_json::Value) -> Result<Duration, String> {
    const EXPECTED: &str =
        "expected a duration such as \"1h30m\" or \"10s\" (or an integer number of nanoseconds)";
    match value {
        serde_json::Value::String(s) => parse_duration(s.trim()),
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(nanos) if nanos <= MAX_NANOS => Ok(Duration::from_nanos(nanos)),
            Some(_) => Err("duration too large".to_owned()),
            None if n.as_i64().is_some() => Err("negative durations are not allowed".to_owned()),
            None => Err(EXPECTED.to_owned()),
        },
        _ => Err(EXPECTED.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn go_forms() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("+0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("2h45m10s"), Duration::from_secs(2 * 3600 + 45 * 60 + 10));
        assert_eq!(ok("300us"), Duration::from_micros(300));
        assert_eq!(ok("300µs"), Duration::from_micros(300));
        assert_eq!(ok("300μs"), Duration::from_micros(300));
        assert_eq!(ok("42ns"), Duration::from_nanos(42));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("1.000000001s"), Duration::from_nanos(1_000_000_001));
        assert_eq!(ok("24h"), Duration::from_secs(86_400));
        assert_eq!(ok("1h1h"), Duration::from_secs(7200));
        assert_eq!(ok("9223372036854775807ns"), Duration::from_nanos(MAX_NANOS));
        // Digits beyond u64 precision in a fraction are dropped, not an error.
        assert_eq!(
            ok("0.100000000000000000000000000001s"),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "+",
            "-",
            "1",
            "10",
            "h",
            ".s",
            "1x",
            "1hh",
            "1.5",
            "1 h",
            " 1h",
            "-1s",
            "1d",
            "9223372036854775808ns",
            "2562048h",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        let msg = parse_duration("1x").err().unwrap_or_default();
        assert!(msg.contains("unknown unit \"x\""), "{msg}");
    }

    #[test]
    fn integers_are_nanoseconds() {
        let v = serde_json::json!(1_500_000_000u64);
        assert_eq!(duration_from_value(&v), Ok(Duration::from_millis(1500)));
        assert!(duration_from_value(&serde_json::json!(-1)).is_err());
        assert!(duration_from_value(&serde_json::json!(1.5)).is_err());
        assert!(duration_from_value(&serde_json::json!(true)).is_err());
        assert_eq!(
            duration_from_value(&serde_json::json!("2h")),
            Ok(Duration::from_secs(7200))
        );
    }
}
