//! Retry timing for upstream calls: exponential backoff with full jitter, and the
//! server's `Retry-After` (seconds or HTTP date) when it sends one.

use rand::Rng;
use std::time::Duration;

/// Statuses worth retrying: throttled or a gateway/server in trouble.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The wait before retry number `attempt` (0-based): `base * 2^attempt`, jittered between
/// half and the whole of it.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(10));
    let half = full / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

/// Parses a `Retry-After` header: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_jitter() {
        for attempt in 0..4 {
            let d = backoff(Duration::from_millis(100), attempt);
            let full = Duration::from_millis(100 * (1 << attempt));
            assert!(d >= full / 2 && d <= full, "{d:?} for attempt {attempt}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
