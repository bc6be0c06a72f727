//! The one duration syntax of the SDK's settings and of every binary in this repository:
//! `500ms`, `3s`, `1min`, `2m`, `1h`, `1h 30m` (humantime's units; `0` alone means zero).
//!
//! A number without a unit is refused rather than guessed (seconds? milliseconds?). A fraction
//! of one unit (`0.5s`, `1.5h`) is read as such.

use std::time::Duration;

/// Why a duration was refused; its text names the value and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseDurationError(String);

/// Reads `text` as a duration: `500ms`, `3s`, `1.5s`, `1min`, `2m`, `1h`, `1h 30m`, or `0`.
///
/// # Errors
/// A bare number other than `0` (no unit), an unknown unit or an overflow, with
/// a message that names the value and the forms accepted.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use snowpipe_streaming::duration::parse;
///
/// assert_eq!(parse("1min").unwrap(), Duration::from_secs(60));
/// assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
/// assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
/// assert!(parse("3").unwrap_err().to_string().contains("no unit"));
/// ```
pub fn parse(text: &str) -> Result<Duration, ParseDurationError> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.parse::<f64>().is_ok() {
        return Err(ParseDurationError(format!(
            "{text:?} has no unit: write e.g. 500ms, 3s, 1min or 1h"
        )));
    }
    // humantime takes whole numbers; `0.5s` and `1.5h` are common in scripts.
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.contains('.') {
        let fraction = |unit_length: Duration| {
            let n: f64 = number.parse().ok()?;
            Duration::try_from_secs_f64(unit_length.as_secs_f64() * n).ok()
        };
        return humantime::parse_duration(&format!("1{}", unit.trim()))
            .ok()
            .and_then(fraction)
            .ok_or_else(|| {
                ParseDurationError(format!(
                    "{text:?} is not a duration: write e.g. 500ms, 1.5s, 3s, 1min, 2m or 1h"
                ))
            });
    }
    humantime::parse_duration(t).map_err(|e| {
        ParseDurationError(format!(
            "{text:?} is not a duration ({e}): write e.g. 500ms, 3s, 1min, 2m or 1h"
        ))
    })
}

/// [`parse`], and at most `max`.
///
/// # Errors
/// As [`parse`], or a duration longer than `max`.
pub fn parse_at_most(text: &str, max: Duration) -> Result<Duration, ParseDurationError> {
    let d = parse(text)?;
    if d > max {
        return Err(ParseDurationError(format!(
            "{text:?} is longer than {}, the longest accepted",
            humantime::format_duration(max)
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{parse, parse_at_most};

    #[test]
    fn the_documented_forms_parse() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("3s", Duration::from_secs(3)),
            ("1min", Duration::from_secs(60)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1h 30m", Duration::from_secs(5400)),
            (" 30s ", Duration::from_secs(30)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("0.5s", Duration::from_millis(500)),
            ("1.5h", Duration::from_secs(5400)),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn refusals_name_the_value_and_the_fix() {
        for (text, needle) in [
            ("3", "no unit"),
            ("1.5", "no unit"),
            ("1.5 parsecs", "not a duration"),
            ("1.2.3s", "not a duration"),
            ("3 parsecs", "not a duration"),
            ("", "not a duration"),
            ("-1s", "not a duration"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains(&format!("{text:?}")),
                "{text}: {e}"
            );
        }
        let e = parse_at_most("31days", Duration::from_secs(30 * 86400)).unwrap_err();
        assert!(e.to_string().contains("longest accepted"), "{e}");
        assert_eq!(
            parse_at_most("30days", Duration::from_secs(30 * 86400)).unwrap(),
            Duration::from_secs(30 * 86400)
        );
    }
}
