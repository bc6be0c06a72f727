//! Retry policy: [`RetryConfig`] and the jittered exponential backoff.

use std::time::Duration;

use rand::{Rng as _, RngCore, SeedableRng as _};

/// How the backoff delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// "Full jitter": a uniform delay in `[0, min(max_backoff, initial × multiplier^n)]`.
    #[default]
    Full,
    /// "Decorrelated jitter": a uniform delay in `[initial, previous × multiplier]`, capped at
    /// `max_backoff`.
    Decorrelated,
    /// No randomness: `min(max_backoff, initial × multiplier^n)`.
    None,
}

/// Retry policy of every request: exponential backoff with jitter, bounded by both a number
/// of attempts and a total time budget.
///
/// Not retried: a TLS failure (an untrusted or mismatched certificate is a configuration
/// problem), and a host name that does not resolve is tried only twice.
///
/// Retried: HTTP 408, 429, 500, 502, 503 and 504, connection failures, a 404 whose body is not
/// JSON (a proxy's page), 409 `ERR_OPEN_CHANNEL_IN_PROGRESS` / `ERR_CHANNEL_HAS_UNCOMMITTED_DATA`
/// on open channel, and timeouts of requests that are safe to repeat (everything but append
/// rows). A `Retry-After` header (seconds or HTTP date) is honoured, capped by the remaining
/// budget. A 401 triggers a token refresh and an immediate retry. A 401 or 403 from hostname
/// discovery or the token exchange is retried with backoff, three attempts in all. Every attempt of one call
/// carries the same `requestId` and an incremented `retryCount`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use snowpipe_streaming::RetryConfig;
/// let retry = RetryConfig::default()
///     .max_attempts(5)
///     .total_budget(Duration::from_secs(20));
/// # let _ = retry;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    pub(crate) initial_backoff: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max_backoff: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) total_budget: Duration,
    pub(crate) jitter: Jitter,
    pub(crate) seed: Option<u64>,
}

impl Default for RetryConfig {
    /// Initial backoff 200 ms, multiplier 2, max backoff 10 s, 10 attempts, 60 s budget, full
    /// jitter.
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(200),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(10),
            max_attempts: 10,
            total_budget: Duration::from_secs(60),
            jitter: Jitter::Full,
            seed: None,
        }
    }
}

impl RetryConfig {
    /// No retries: every call makes exactly one attempt (so a 401 is final, too).
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The first backoff delay (before jitter). Default 200 ms.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// Growth factor of the delay per attempt. Default 2. Values below 1 are treated as 1.
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 2.0 };
        self
    }

    /// The largest delay between two attempts (before `Retry-After`). Default 10 s.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Attempts per call, the first included (so 1 disables retries). Default 10; 0 is
    /// treated as 1.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Total time a call may spend retrying, from its first attempt. Default 60 s.
    pub fn total_budget(mut self, d: Duration) -> Self {
        self.total_budget = d;
        self
    }

    /// How delays are randomised. Default [`Jitter::Full`].
    pub fn jitter(mut self, j: Jitter) -> Self {
        self.jitter = j;
        self
    }

    /// Seeds the jitter's random number generator (reproducible delays, for tests).
    #[cfg(test)]
    pub(crate) fn rng_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl RetryConfig {
    /// The delay before retry `step` without jitter: `initial_backoff × multiplier^step`,
    /// capped at `max_backoff` (for loops that count their own attempts, such as a channel's
    /// recoveries).
    pub(crate) fn exponential_delay(&self, step: u32) -> Duration {
        let secs = self.initial_backoff.as_secs_f64()
            * self
                .multiplier
                .powi(i32::try_from(step.min(64)).unwrap_or(64));
        Duration::from_secs_f64(secs.min(self.max_backoff.as_secs_f64()).max(0.0))
    }
}

/// The delay sequence of one call.
pub(crate) struct Backoff {
    config: RetryConfig,
    attempt: u32,
    previous: Duration,
    rng: Box<dyn RngCore + Send + Sync>,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("attempt", &self.attempt)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

impl Backoff {
    pub(crate) fn new(config: &RetryConfig) -> Self {
        let rng: Box<dyn RngCore + Send + Sync> = match config.seed {
            Some(seed) => Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
            None => Box::new(rand::rngs::StdRng::from_entropy()),
        };
        Self::with_rng(config, rng)
    }

    pub(crate) fn with_rng(config: &RetryConfig, rng: Box<dyn RngCore + Send + Sync>) -> Self {
        Self {
            config: config.clone(),
            attempt: 0,
            previous: config.initial_backoff,
            rng,
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let cfg = &self.config;
        let max = cfg.max_backoff.as_secs_f64();
        let initial = cfg.initial_backoff.as_secs_f64();
        let exp = (initial * cfg.multiplier.powi(self.attempt.min(64) as i32)).min(max);
        self.attempt = self.attempt.saturating_add(1);
        let secs = match cfg.jitter {
            Jitter::None => exp,
            Jitter::Full => {
                if exp > 0.0 {
                    self.rng.gen_range(0.0..=exp)
                } else {
                    0.0
                }
            }
            Jitter::Decorrelated => {
                let hi = (self.previous.as_secs_f64() * cfg.multiplier).max(initial);
                let v = if hi > initial {
                    self.rng.gen_range(initial..=hi)
                } else {
                    initial
                };
                v.min(max)
            }
        };
        let d = Duration::from_secs_f64(secs.max(0.0));
        self.previous = d;
        d
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    use crate::wire_time::{clamp_secs, MAX_RETRY_AFTER};
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    if let Ok(secs) = value.parse::<f64>() {
        // Negative, NaN or infinite is no valid Retry-After: ignored, as a date would be.
        if secs.is_finite() && secs >= 0.0 {
            return Some(clamp_secs(secs, MAX_RETRY_AFTER));
        }
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(cfg: &RetryConfig) -> Backoff {
        Backoff::with_rng(cfg, Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(7)))
    }

    #[test]
    fn no_jitter_is_exponential_and_capped() {
        let cfg = RetryConfig::default().jitter(Jitter::None);
        let mut b = seeded(&cfg);
        let ms: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
    }

    #[test]
    fn full_jitter_stays_within_bounds() {
        let cfg = RetryConfig::default();
        let mut b = seeded(&cfg);
        for n in 0..30 {
            let cap = (0.2 * 2f64.powi(n)).min(10.0);
            let d = b.next_delay().as_secs_f64();
            assert!((0.0..=cap + 1e-9).contains(&d), "attempt {n}: {d} > {cap}");
        }
    }

    #[test]
    fn decorrelated_jitter_stays_within_bounds() {
        let cfg = RetryConfig::default().jitter(Jitter::Decorrelated);
        let mut b = seeded(&cfg);
        for _ in 0..50 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_secs(10),
                "{d:?}"
            );
        }
    }

    #[test]
    fn seeded_backoff_is_reproducible() {
        let cfg = RetryConfig::default().rng_seed(42);
        let a: Vec<_> = {
            let mut b = Backoff::new(&cfg);
            (0..5).map(|_| b.next_delay()).collect()
        };
        let b: Vec<_> = {
            let mut b = Backoff::new(&cfg);
            (0..5).map(|_| b.next_delay()).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn retry_after_from_a_hostile_server_never_panics_and_is_bounded() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let max = crate::wire_time::MAX_RETRY_AFTER;
        for huge in [
            "1e30",
            "18446744073709551615",
            "99999999999999999999999",
            "1e308",
        ] {
            assert_eq!(parse_retry_after(huge, now), Some(max), "{huge}");
        }
        for bad in [
            "-5", "-1e30", "NaN", "inf", "-inf", "", "soon", "0x10", "1e400",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        let far = httpdate::fmt_http_date(now + Duration::from_secs(10 * 365 * 86_400));
        assert_eq!(parse_retry_after(&far, now), Some(max));
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn delays_stay_within_bounds(
            initial_ms in 0u64..2_000,
            max_ms in 0u64..20_000,
            multiplier in 1.0f64..5.0,
            seed in any::<u64>(),
            decorrelated in any::<bool>(),
        ) {
            let cfg = RetryConfig::default()
                .initial_backoff(Duration::from_millis(initial_ms))
                .max_backoff(Duration::from_millis(max_ms))
                .multiplier(multiplier)
                .jitter(if decorrelated { Jitter::Decorrelated } else { Jitter::Full })
                .rng_seed(seed);
            let mut b = Backoff::new(&cfg);
            for _ in 0..20 {
                let d = b.next_delay();
                prop_assert!(d <= Duration::from_millis(max_ms) + Duration::from_micros(1), "{d:?}");
                if decorrelated {
                    let floor = Duration::from_millis(initial_ms.min(max_ms));
                    prop_assert!(d + Duration::from_micros(1) >= floor, "{d:?} < {floor:?}");
                }
            }
        }
    }
}
