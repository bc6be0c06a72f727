//! Durations a server sends (`Retry-After`, a token's `exp`, OAuth's `expires_in`), clamped:
//! no number from the wire panics the client or overflows an `Instant`. A server that asks
//! for a day's pause or a century-long token gets the longest the client honours instead.

use std::time::Duration;

/// The longest `Retry-After` honoured (the retry loop's total budget caps it further).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);
/// The longest lifetime assumed for a token (Snowflake's scoped tokens live about an hour);
/// a longer one is refreshed at least this often.
pub(crate) const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3_600);

/// `secs` as a duration within `0..=max`: negative and NaN are zero, too large (infinite
/// included) is `max`.
pub(crate) fn clamp_secs(secs: f64, max: Duration) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    if secs >= max.as_secs_f64() {
        return max;
    }
    Duration::from_secs_f64(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_becomes_a_duration_within_bounds() {
        let max = Duration::from_secs(10);
        for (secs, want) in [
            (f64::NAN, Duration::ZERO),
            (f64::NEG_INFINITY, Duration::ZERO),
            (-1e30, Duration::ZERO),
            (-0.5, Duration::ZERO),
            (0.0, Duration::ZERO),
            (2.5, Duration::from_millis(2_500)),
            (10.0, max),
            (1e30, max),
            (f64::MAX, max),
            (f64::INFINITY, max),
        ] {
            assert_eq!(clamp_secs(secs, max), want, "{secs}");
        }
    }
}
