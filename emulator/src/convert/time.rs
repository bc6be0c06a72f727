//! DATE, TIME and TIMESTAMP_* values: parsing, epochs, zones, fractional-second precision.

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde_json::Value;

use crate::catalog::Column;

use super::formats;
use super::number::Decimal;
use super::value::*;

// ---------------------------------------------------------------------------------------
// DATE, TIME, TIMESTAMP

pub(super) const NTZ_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9f";
pub(super) const UTC_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9fZ";

/// A timestamp string → wall-clock time and the offset, if one was given, by the service's
/// formats ([`formats::TIMESTAMP_FORMATS`]).
pub(super) fn parse_timestamp(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    formats::read_timestamp(text).map(|r| (r.date_time(), r.offset))
}

/// An epoch number (see the module docs for the unit rule) → the instant, in UTC.
pub(super) fn epoch(decimal: &Decimal) -> Option<DateTime<Utc>> {
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
    DateTime::from_timestamp(seconds, subsec)
}

/// A DATE/TIMESTAMP input: a string read by the service's formats, or an epoch number.
pub(super) enum Moment {
    /// A string: its wall clock, and its offset when it has one.
    Written(NaiveDateTime, Option<FixedOffset>),
    /// An epoch number (a JSON number, or a string of an integer): an instant.
    Epoch(DateTime<Utc>),
}

impl Moment {
    /// The wall clock this value shows in the session zone `tz`: a string's own wall clock
    /// (its offset dropped), an epoch's wall clock in `tz`.
    pub(super) fn wall_clock(&self, tz: Tz) -> NaiveDateTime {
        match self {
            Self::Written(wall, _) => *wall,
            Self::Epoch(instant) => (*instant + offset_at(tz, instant)).naive_utc(),
        }
    }

    /// The instant and the offset it is shown with: a string's own offset, else the offset
    /// of `tz` at that wall clock; an epoch's instant with the offset of `tz` then.
    pub(super) fn zoned(&self, tz: Tz) -> (DateTime<Utc>, FixedOffset) {
        let (wall, offset) = match self {
            Self::Written(wall, Some(offset)) => (*wall, *offset),
            Self::Written(wall, None) => (*wall, local_offset(tz, *wall)),
            Self::Epoch(instant) => return (*instant, offset_at(tz, instant)),
        };
        ((wall - offset).and_utc(), offset)
    }
}

/// The session zone `tz` in the tz database `jiff` bundles, whose zones keep their POSIX rule
/// past their table's last transition (chrono-tz's tables end in 2100 and give the standard
/// offset after: Paris summers would be +01:00); `None` for a name it does not have.
fn zone_of(tz: Tz) -> Option<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(tz.name()).ok()
}

/// The offset of `tz` at `instant` (chrono-tz's for a zone or an instant jiff does not have).
pub(super) fn offset_at(tz: Tz, instant: &DateTime<Utc>) -> FixedOffset {
    zone_of(tz)
        .zip(jiff::Timestamp::from_second(instant.timestamp()).ok())
        .and_then(|(zone, at)| FixedOffset::east_opt(zone.to_offset(at).seconds()))
        .unwrap_or_else(|| instant.with_timezone(&tz).offset().fix())
}

/// The offset of `tz` at the wall clock `wall`. In a daylight-saving overlap the earlier
/// offset; in a gap (a wall clock that does not exist) the offset before it, so the time
/// moves forward by the gap's length, as `java.time`'s `atZone` does.
fn local_offset(tz: Tz, wall: NaiveDateTime) -> FixedOffset {
    use jiff::tz::AmbiguousOffset;
    let civil = || {
        jiff::civil::DateTime::new(
            i16::try_from(wall.year()).ok()?,
            wall.month() as i8,
            wall.day() as i8,
            wall.hour() as i8,
            wall.minute() as i8,
            wall.second().min(59) as i8,
            0,
        )
        .ok()
    };
    let found = zone_of(tz).zip(civil()).map(|(zone, civil)| {
        match zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { before, .. } | AmbiguousOffset::Fold { before, .. } => before,
        }
    });
    if let Some(offset) = found.and_then(|o| FixedOffset::east_opt(o.seconds())) {
        return offset;
    }
    match tz.offset_from_local_datetime(&wall) {
        LocalResult::Single(offset) | LocalResult::Ambiguous(offset, _) => offset.fix(),
        LocalResult::None => tz
            .offset_from_utc_datetime(&(wall - chrono::Duration::days(1)))
            .fix(),
    }
}

/// A JSON value → a [`Moment`]: strings by the service's formats, then integer strings and
/// JSON numbers as epochs.
pub(super) fn moment_of(value: &Value) -> Option<Moment> {
    match value {
        Value::String(s) => parse_timestamp(s)
            .map(|(wall, offset)| Moment::Written(wall, offset))
            .or_else(|| {
                let decimal = Decimal::parse(s).filter(Decimal::is_integer)?;
                Some(Moment::Epoch(epoch(&decimal)?))
            }),
        Value::Number(_) => Some(Moment::Epoch(epoch(&Decimal::from_json(value)?)?)),
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
    tz: Tz,
) -> Result<SqlValue, RowError> {
    let moment = moment_of(value).ok_or_else(|| {
        RowError::column(
            column,
            RowErrorKind::TimestampNotRecognized,
            format!(
                "Timestamp '{}' is not recognized; {TIMESTAMP_FIX}",
                display_value(value)
            ),
        )
    })?;
    // Snowflake's timestamps hold years 1 to 9999; the year checked is the value's own (its
    // wall clock in its offset, UTC for epoch numbers), as the ingest SDKs check it.
    let year = match &moment {
        Moment::Written(wall, _) => wall.year(),
        Moment::Epoch(instant) => instant.year(),
    };
    if !(1..=9999).contains(&year) {
        return Err(RowError::column(
            column,
            RowErrorKind::TimestampNotRecognized,
            format!(
                "Timestamp '{}' is out of the representable range of years 1 to 9999",
                display_value(value)
            ),
        ));
    }
    Ok(SqlValue::Text(match zone {
        Zone::Wall => truncate_fraction(moment.wall_clock(tz), scale)
            .format(NTZ_FORMAT)
            .to_string(),
        Zone::Utc => {
            let (instant, _) = moment.zoned(tz);
            truncate_fraction(instant.naive_utc(), scale)
                .format(UTC_FORMAT)
                .to_string()
        }
        Zone::Offset => {
            let (instant, offset) = moment.zoned(tz);
            let wall = truncate_fraction((instant + offset).naive_utc(), scale);
            format!("{}{offset}", wall.format(NTZ_FORMAT))
        }
    }))
}

/// What a refused DATE/TIMESTAMP string should look like instead.
const TIMESTAMP_FIX: &str = "send ISO 8601 (`2024-01-15T13:45:30`, `2024-01-15 13:45:30.123 \
     +05:30`, an offset as `+hh:mm` after `T`, `Z` in upper case), another of the service's \
     formats, or an epoch integer";

pub(super) fn date(column: &Column, value: &Value, tz: Tz) -> Result<SqlValue, RowError> {
    let moment = moment_of(value).ok_or_else(|| {
        RowError::column(
            column,
            RowErrorKind::DateNotRecognized,
            format!(
                "Date '{}' is not recognized; {TIMESTAMP_FIX}",
                display_value(value)
            ),
        )
    })?;
    Ok(SqlValue::Text(
        moment.wall_clock(tz).date().format("%Y-%m-%d").to_string(),
    ))
}

pub(super) fn time(
    column: &Column,
    value: &Value,
    scale: u8,
    tz: Tz,
) -> Result<SqlValue, RowError> {
    let parsed = match value {
        Value::String(s) => {
            formats::read_time(s).or_else(|| integer_stored_time(&Decimal::parse(s)?, tz))
        }
        Value::Number(_) => Decimal::from_json(value).and_then(|d| integer_stored_time(&d, tz)),
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
                format!(
                    "Time '{}' is not recognized; send `HH24:MI[:SS[.FF]]`, \
                     `HH24:MI:SS.FF+hh:mm`, `HH12:MI[:SS[.FF]] AM`/`PM` (upper case) or an \
                     epoch integer, not a timestamp",
                    display_value(value)
                ),
            )
        })
}

/// An integer-stored time: the time of day of that epoch value (its unit chosen as for
/// timestamps) in the session zone `tz`. A number with a fraction is not one.
fn integer_stored_time(decimal: &Decimal, tz: Tz) -> Option<NaiveTime> {
    decimal
        .is_integer()
        .then(|| epoch(decimal))
        .flatten()
        .map(|instant| (instant + offset_at(tz, &instant)).time())
}
