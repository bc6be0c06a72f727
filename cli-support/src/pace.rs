//! A generator's pace (`--rate`: items a second, `0` for as fast as possible) as a flag takes
//! it, and when the next item is due at that pace.
//!
//! A pace is a decimal number of items a second, `0` or from [`MIN_PER_SECOND`] to
//! [`MAX_PER_SECOND`]: a tiny positive pace (`1e-300`) would put the next item past what a
//! [`Duration`] holds, which panics where the wait is computed; `NaN`, an infinity and a
//! negative number mean nothing as a pace. Each is refused by clap, naming the range.

use std::time::Duration;

/// The slowest pace a flag takes: one item every 1,000 seconds.
pub const MIN_PER_SECOND: f64 = 0.001;
/// The fastest pace a flag takes, past any generator's real speed.
pub const MAX_PER_SECOND: f64 = 1e9;

/// A pace: clap's `value_parser` for a `--rate` of items a second (`0`: as fast as possible).
///
/// # Errors
/// Text that is not a decimal number, or one outside `0` and [`MIN_PER_SECOND`] to
/// [`MAX_PER_SECOND`], with what to give instead.
pub fn per_second(text: &str) -> Result<f64, String> {
    let range = format!(
        "give 0 (as fast as possible) or a number of items a second from {MIN_PER_SECOND} to \
         {MAX_PER_SECOND:e}"
    );
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number: {range}"))?;
    if rate == 0.0 {
        return Ok(0.0);
    }
    if !rate.is_finite() || !(MIN_PER_SECOND..=MAX_PER_SECOND).contains(&rate) {
        return Err(format!("not a pace this flag takes: {range}"));
    }
    Ok(rate)
}

/// When item number `count` (counted from 1) is due after the start at `rate` items a second:
/// `None` at `rate` 0 (as fast as possible), or when it is due past what a [`Duration`] holds
/// (hundreds of billions of years), which no run waits for.
pub fn due(count: u64, rate: f64) -> Option<Duration> {
    if rate > 0.0 {
        Duration::try_from_secs_f64(count as f64 / rate).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pace_in_range_or_zero_is_taken() {
        assert_eq!(per_second("0"), Ok(0.0));
        assert_eq!(per_second("0.0"), Ok(0.0));
        assert_eq!(per_second("2000"), Ok(2000.0));
        assert_eq!(per_second("0.001"), Ok(0.001));
        assert_eq!(per_second("1e9"), Ok(1e9));
    }

    #[test]
    fn what_is_no_pace_is_refused_naming_the_range() {
        for text in [
            "1e-300", "0.0009", "-1", "-0.5", "NaN", "inf", "-inf", "1e300", "1e10", "lots", "",
        ] {
            let err = per_second(text).unwrap_err();
            assert!(err.contains("from 0.001 to 1e9"), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_due_time_of_every_pace_taken_fits_or_is_none() {
        assert_eq!(due(10, 0.0), None);
        assert_eq!(due(10, 2.0), Some(Duration::from_secs(5)));
        // The slowest pace and the most items any count holds: past a Duration, so none.
        assert_eq!(due(u64::MAX, MIN_PER_SECOND), None);
        assert!(due(100_000_000, MIN_PER_SECOND).is_some());
    }
}
