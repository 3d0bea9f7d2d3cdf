//! Back-off between retries, and `Retry-After`.

use std::time::{Duration, SystemTime};

use crate::options::RetryPolicy;

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait before retry number `n` (0 = the first retry): `delay` doubled
/// `n` times, at most `max_delay`.
pub fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    policy
        .delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay.max(policy.delay))
}

/// A `Retry-After` value: seconds, or an HTTP date; at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_to_the_cap() {
        let p = RetryPolicy {
            max_retries: 5,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let waits: Vec<u128> = (0..5).map(|n| backoff(&p, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350, 350]);
        let fixed = RetryPolicy {
            max_delay: Duration::from_millis(100),
            ..p
        };
        assert_eq!(backoff(&fixed, 40), Duration::from_millis(100));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("99999", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }
}
