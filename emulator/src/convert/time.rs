//! DATE, TIME and TIMESTAMP_* values: parsing, epochs, zones, fractional-second precision.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value;

use crate::catalog::Column;

use super::number::Decimal;
use super::value::*;

// ---------------------------------------------------------------------------------------
// DATE, TIME, TIMESTAMP

pub(super) const NTZ_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9f";
pub(super) const UTC_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9fZ";

/// A timestamp string → wall-clock time and the offset, if one was given.
pub(super) fn parse_timestamp(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some((date.and_time(NaiveTime::MIN), None));
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?.trim_start_matches(' ');
    let offset_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let time = parse_time(rest[..offset_at].trim_end())?;
    let offset = match &rest[offset_at..] {
        "" => None,
        offset => Some(parse_offset(offset)?),
    };
    Some((date.and_time(time), offset))
}

/// `HH:MM[:SS[.f{1,9}]]`.
pub(super) fn parse_time(text: &str) -> Option<NaiveTime> {
    if text.len() < 5 || text.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// `Z`, `±HH:MM`, `±HHMM` or `±HH`.
pub(super) fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits = digits.replacen(':', "", 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// An epoch number (see the module docs for the unit rule) → UTC wall-clock time.
pub(super) fn epoch(decimal: &Decimal) -> Option<NaiveDateTime> {
    let nanos_digits = decimal.rescale(9, 38)?;
    let mut nanos: i128 = if nanos_digits.is_empty() {
        0
    } else {
        std::str::from_utf8(&nanos_digits).ok()?.parse().ok()?
    };
    if decimal.negative {
        nanos = -nanos;
    }
    const SECOND: i128 = 1_000_000_000;
    let total_nanos = if decimal.is_integer() {
        // The unit is chosen by magnitude, so a negative value is scaled like a positive one
        // (`-1700000000123` is milliseconds before the epoch, as `1700000000123` is after).
        let value = nanos / SECOND;
        match value.unsigned_abs() {
            v if v < 31_536_000_000 => nanos,
            v if v < 31_536_000_000_000 => value * 1_000_000,
            v if v < 31_536_000_000_000_000 => value * 1_000,
            _ => value,
        }
    } else {
        nanos
    };
    let seconds = i64::try_from(total_nanos.div_euclid(SECOND)).ok()?;
    let subsec = u32::try_from(total_nanos.rem_euclid(SECOND)).ok()?;
    DateTime::from_timestamp(seconds, subsec).map(|dt| dt.naive_utc())
}

/// A JSON value → (wall-clock time, offset if known); strings or epoch numbers.
pub(super) fn datetime_of(value: &Value) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    match value {
        Value::String(s) => parse_timestamp(s).or_else(|| {
            let decimal = Decimal::parse(s).filter(Decimal::is_integer)?;
            Some((epoch(&decimal)?, None))
        }),
        Value::Number(_) => Some((epoch(&Decimal::from_json(value)?)?, None)),
        _ => None,
    }
}

/// How a timestamp column keeps the offset of its input.
pub(super) enum Zone {
    /// `TIMESTAMP_NTZ`: the wall clock, offset dropped.
    Wall,
    /// `TIMESTAMP_LTZ`: the instant, in UTC.
    Utc,
    /// `TIMESTAMP_TZ`: the wall clock and its offset (UTC when none was given).
    Offset,
}

/// Drops the fractional-second digits past `scale` (Snowflake's TIME(p)/TIMESTAMP(p); the
/// Snowpipe Streaming SDKs truncate, they do not round).
pub(super) fn truncate_fraction<T: Timelike>(t: T, scale: u8) -> T {
    let unit = 10u32.pow(9 - u32::from(scale.min(9)));
    let nanos = t.nanosecond();
    // A leap second's nanoseconds (>= 1e9) keep their leap part.
    t.with_nanosecond(nanos - nanos % unit).unwrap_or(t)
}

pub(super) fn timestamp(
    column: &Column,
    value: &Value,
    zone: Zone,
    scale: u8,
) -> Result<SqlValue, RowError> {
    let (wall_clock, offset) = datetime_of(value).ok_or_else(|| {
        RowError::column(
            column,
            RowErrorKind::TimestampNotRecognized,
            format!("Timestamp '{}' is not recognized", display_value(value)),
        )
    })?;
    // Snowflake's timestamps hold years 1 to 9999; the year checked is the value's own (its
    // wall clock in its offset, UTC for epoch numbers), as the ingest SDKs check it.
    if !(1..=9999).contains(&wall_clock.year()) {
        return Err(RowError::column(
            column,
            RowErrorKind::TimestampNotRecognized,
            format!(
                "Timestamp '{}' is out of the representable range of years 1 to 9999",
                display_value(value)
            ),
        ));
    }
    let wall_clock = truncate_fraction(wall_clock, scale);
    Ok(SqlValue::Text(match zone {
        Zone::Wall => wall_clock.format(NTZ_FORMAT).to_string(),
        Zone::Utc => {
            let utc = match offset {
                Some(offset) => wall_clock - offset,
                None => wall_clock,
            };
            utc.format(UTC_FORMAT).to_string()
        }
        Zone::Offset => {
            let offset = offset.unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
            format!("{}{offset}", wall_clock.format(NTZ_FORMAT))
        }
    }))
}

pub(super) fn date(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
    let (wall_clock, _) = datetime_of(value).ok_or_else(|| {
        RowError::column(
            column,
            RowErrorKind::DateNotRecognized,
            format!("Date '{}' is not recognized", display_value(value)),
        )
    })?;
    Ok(SqlValue::Text(
        wall_clock.date().format("%Y-%m-%d").to_string(),
    ))
}

pub(super) fn time(column: &Column, value: &Value, scale: u8) -> Result<SqlValue, RowError> {
    let parsed = match value {
        Value::String(s) => parse_time_value(s)
            .or_else(|| integer_stored_time(&Decimal::parse(s)?))
            .or_else(|| parse_timestamp(s).map(|(dt, _)| dt.time())),
        Value::Number(_) => Decimal::from_json(value).and_then(|d| integer_stored_time(&d)),
        _ => None,
    };
    parsed
        .map(|t| {
            SqlValue::Text(
                truncate_fraction(t, scale)
                    .format("%H:%M:%S%.9f")
                    .to_string(),
            )
        })
        .ok_or_else(|| {
            RowError::column(
                column,
                RowErrorKind::TimeNotRecognized,
                format!("Time '{}' is not recognized", display_value(value)),
            )
        })
}

/// An integer-stored time: the time of day, in UTC, of that epoch value (its unit chosen as
/// for timestamps). A number with a fraction is not one.
fn integer_stored_time(decimal: &Decimal) -> Option<NaiveTime> {
    decimal
        .is_integer()
        .then(|| epoch(decimal))
        .flatten()
        .map(|dt| dt.time())
}

/// The TIME formats of Snowpipe Streaming (surrounding whitespace ignored): `HH24:MI`,
/// `HH24:MI:SS`, `HH24:MI:SS.FF`, `HH24:MI:SS.FFTZH:TZM` (`Z` or `±hh:mm`; the offset is
/// dropped, the wall clock kept; an offset needs the fraction), and the 12-hour
/// `HH12:MI AM`, `HH12:MI:SS AM`, `HH12:MI:SS.FF AM` (`AM`/`PM` in any case). `FF` is 1 to 9
/// digits.
pub(super) fn parse_time_value(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    if let Some((clock, meridiem)) = text.rsplit_once(' ') {
        let pm = if meridiem.eq_ignore_ascii_case("AM") {
            false
        } else if meridiem.eq_ignore_ascii_case("PM") {
            true
        } else {
            return None;
        };
        let (clock, rest) = Clock::parse(clock)?;
        if !rest.is_empty() || !(1..=12).contains(&clock.hour) {
            return None;
        }
        let hour = clock.hour % 12 + if pm { 12 } else { 0 };
        return NaiveTime::from_hms_nano_opt(hour, clock.minute, clock.second, clock.nanos);
    }
    let (clock, rest) = Clock::parse(text)?;
    if !rest.is_empty() {
        // Only `HH24:MI:SS.FF` takes an offset: `Z` or `±hh:mm`.
        let valid_offset = rest.eq_ignore_ascii_case("z")
            || (rest.len() == 6 && rest.as_bytes()[3] == b':' && parse_offset(rest).is_some());
        if !clock.fraction || !valid_offset {
            return None;
        }
    }
    NaiveTime::from_hms_nano_opt(clock.hour, clock.minute, clock.second, clock.nanos)
}

/// `hh:mm[:ss[.f{1,9}]]` at the start of a string, two digits each.
struct Clock {
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    fraction: bool,
}

impl Clock {
    /// The clock and the text after it.
    fn parse(text: &str) -> Option<(Self, &str)> {
        fn two_digits(text: &str) -> Option<u32> {
            let digits = text.get(..2)?;
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse().ok())
                .flatten()
        }
        let hour = two_digits(text)?;
        let rest = text.get(2..)?.strip_prefix(':')?;
        let minute = two_digits(rest)?;
        let mut clock = Self {
            hour,
            minute,
            second: 0,
            nanos: 0,
            fraction: false,
        };
        let mut rest = &rest[2..];
        if let Some(after) = rest.strip_prefix(':') {
            clock.second = two_digits(after)?;
            rest = &after[2..];
            if let Some(after) = rest.strip_prefix('.') {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if !(1..=9).contains(&digits) {
                    return None;
                }
                let fraction: u32 = after[..digits].parse().ok()?;
                clock.nanos = fraction * 10u32.pow(9 - digits as u32);
                clock.fraction = true;
                rest = &after[digits..];
            }
        }
        (clock.hour < 24 && clock.minute < 60 && clock.second < 60).then_some((clock, rest))
    }
}
