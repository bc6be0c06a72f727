//! Arrow's dates, times and timestamps as the text Snowflake's DATE, TIME and TIMESTAMP_*
//! columns read (docs/protocol-types-and-sql.md "Type conversion"): `YYYY-MM-DD`, `HH:MM:SS[.f…]` and
//! `YYYY-MM-DD HH:MM:SS[.f…][+hh:mm]`, with as many fractional digits as the column's unit
//! holds (none, 3, 6 or 9), so nothing is rounded.
//!
//! A timestamp without a zone is Arrow's wall clock (a "naive" time) and is written without an
//! offset: a TIMESTAMP_NTZ column keeps it, a TIMESTAMP_LTZ/TZ column reads it in the session's
//! zone, as it reads any text without an offset. A timestamp with a zone is an instant; it is
//! written as the wall clock in that zone with the zone's offset then, so TIMESTAMP_LTZ stores
//! the instant, TIMESTAMP_TZ the instant and that offset, and TIMESTAMP_NTZ the zone's wall
//! clock (Snowflake drops an offset given to an NTZ column). The offset is the tz database's
//! at that instant (`zone.rs`), in whole minutes as `+hh:mm` holds it.

use arrow_schema::TimeUnit;

pub(super) use super::zone::Zone;

/// Seconds and nanoseconds of a value counted in `unit` from the epoch (or from midnight).
pub(super) fn split(value: i64, unit: TimeUnit) -> (i64, u32) {
    let per_second: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let secs = value.div_euclid(per_second);
    let sub = value.rem_euclid(per_second);
    // `sub < per_second ≤ 10⁹`: the product stays below 10⁹.
    (secs, (sub * (1_000_000_000 / per_second)) as u32)
}

/// The fractional digits a unit holds.
fn digits(unit: TimeUnit) -> u32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// `value` in exactly `width` decimal digits (the caller keeps it below `10^width`).
fn push_digits(out: &mut Vec<u8>, value: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    for _ in 0..width {
        out.push(b'0' + (value / div % 10) as u8);
        div /= 10;
    }
}

/// `.fff` (as many digits as `unit` holds) of `nanos`, nothing for seconds.
fn write_fraction(out: &mut Vec<u8>, nanos: u32, unit: TimeUnit) {
    let n = digits(unit);
    if n > 0 {
        out.push(b'.');
        push_digits(out, nanos / 10u32.pow(9 - n), n);
    }
}

/// Days from 1970-01-01 to the civil date `(year, month, day)` (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`), for any `i64` day count that keeps the year in an `i64`.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` of a day count, within the years Snowflake stores (1 to 9999).
fn write_day(out: &mut Vec<u8>, days: i64) -> Result<(), String> {
    // Years 1 to 9999: days -719162 (0001-01-01) to 2932896 (9999-12-31).
    if !(-719_162..=2_932_896).contains(&days) {
        let year = civil(days.clamp(-1 << 40, 1 << 40)).0;
        return Err(format!(
            "year {year} is outside the years 1 to 9999 Snowflake stores"
        ));
    }
    let (year, month, day) = civil(days);
    push_digits(out, year as u32, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    Ok(())
}

/// `HH:MM:SS` of a second of the day.
fn write_clock(out: &mut Vec<u8>, second_of_day: u32) {
    push_digits(out, second_of_day / 3_600, 2);
    out.push(b':');
    push_digits(out, second_of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, second_of_day % 60, 2);
}

/// `"YYYY-MM-DD"` of a date counted in days from the epoch (Date32, or Date64's days).
///
/// # Errors
/// A date outside the years 1 to 9999.
pub(super) fn date(out: &mut Vec<u8>, days: i64) -> Result<(), String> {
    out.push(b'"');
    write_day(out, days)?;
    out.push(b'"');
    Ok(())
}

/// `"HH:MM:SS[.f…]"` of a time of day counted in `unit` from midnight.
///
/// # Errors
/// A value outside one day.
pub(super) fn time(out: &mut Vec<u8>, value: i64, unit: TimeUnit) -> Result<(), String> {
    let (secs, nanos) = split(value, unit);
    if !(0..86_400).contains(&secs) {
        return Err(format!("{value} ({unit:?}) is not a time of day"));
    }
    out.push(b'"');
    write_clock(out, secs as u32);
    write_fraction(out, nanos, unit);
    out.push(b'"');
    Ok(())
}

/// `"YYYY-MM-DD HH:MM:SS[.f…][+hh:mm]"` of a timestamp counted in `unit` from the epoch.
///
/// # Errors
/// A value outside what a timestamp holds, or a year outside 1 to 9999.
pub(super) fn timestamp(
    out: &mut Vec<u8>,
    value: i64,
    unit: TimeUnit,
    zone: &Zone,
) -> Result<(), String> {
    let (secs, nanos) = split(value, unit);
    // Whole minutes, the `+hh:mm` written (a zone's local mean time before its first rule can
    // be `+00:09:21`): the wall clock is shown at the offset written, so the text is the
    // instant exactly.
    let offset = zone.offset_at(secs)?.map(|o| o - o % 60);
    let wall = secs
        .checked_add(i64::from(offset.unwrap_or(0)))
        .ok_or_else(|| format!("{value} ({unit:?}) is not a timestamp"))?;
    out.push(b'"');
    write_day(out, wall.div_euclid(86_400))?;
    out.push(b' ');
    write_clock(out, wall.rem_euclid(86_400) as u32);
    write_fraction(out, nanos, unit);
    if let Some(offset) = offset {
        out.push(if offset < 0 { b'-' } else { b'+' });
        let offset = offset.unsigned_abs();
        push_digits(out, offset / 3_600, 2);
        out.push(b':');
        push_digits(out, offset % 3_600 / 60, 2);
    }
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>) -> Result<(), String>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dates_are_iso_days_from_the_epoch() {
        assert_eq!(text(|o| date(o, 0)), r#""1970-01-01""#);
        assert_eq!(text(|o| date(o, 19_737)), r#""2024-01-15""#);
        assert_eq!(text(|o| date(o, -1)), r#""1969-12-31""#);
        assert_eq!(text(|o| date(o, -719_162)), r#""0001-01-01""#);
        assert_eq!(text(|o| date(o, 2_932_896)), r#""9999-12-31""#);
        let mut out = Vec::new();
        assert!(date(&mut out, -719_163).unwrap_err().contains("year 0"));
        assert!(date(&mut out, 2_932_897)
            .unwrap_err()
            .contains("year 10000"));
        assert!(date(&mut out, i64::MAX).is_err());
        assert!(date(&mut out, i64::MIN).is_err());
    }

    #[test]
    fn civil_dates_match_chrono_across_the_years_snowflake_stores() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-719_162..=2_932_896)
            .step_by(13)
            .chain([-719_162, 0, 59, 2_932_896])
        {
            let want = (epoch + chrono::Duration::days(days)).format("\"%Y-%m-%d\"");
            assert_eq!(text(|o| date(o, days)), want.to_string(), "{days}");
        }
    }

    #[test]
    fn times_keep_every_digit_of_their_unit() {
        assert_eq!(text(|o| time(o, 49_530, TimeUnit::Second)), r#""13:45:30""#);
        assert_eq!(
            text(|o| time(o, 49_530_123, TimeUnit::Millisecond)),
            r#""13:45:30.123""#
        );
        assert_eq!(
            text(|o| time(o, 49_530_000_001, TimeUnit::Microsecond)),
            r#""13:45:30.000001""#
        );
        assert_eq!(
            text(|o| time(o, 49_530_123_456_789, TimeUnit::Nanosecond)),
            r#""13:45:30.123456789""#
        );
        let mut out = Vec::new();
        assert!(time(&mut out, 86_400, TimeUnit::Second).is_err());
        assert!(time(&mut out, -1, TimeUnit::Second).is_err());
    }

    #[test]
    fn timestamps_are_wall_clocks_or_instants_with_their_offset() {
        let naive = Zone::of(None).unwrap();
        assert_eq!(
            text(|o| timestamp(o, 1_705_312_800_123, TimeUnit::Millisecond, &naive)),
            r#""2024-01-15 10:00:00.123""#
        );
        // Before the epoch, a fraction counts forward from the second before.
        assert_eq!(
            text(|o| timestamp(o, -1, TimeUnit::Nanosecond, &naive)),
            r#""1969-12-31 23:59:59.999999999""#
        );
        let utc = Zone::of(Some("UTC")).unwrap();
        assert_eq!(
            text(|o| timestamp(o, 1_705_312_800, TimeUnit::Second, &utc)),
            r#""2024-01-15 10:00:00+00:00""#
        );
        let fixed = Zone::of(Some("-05:30")).unwrap();
        assert_eq!(
            text(|o| timestamp(o, 1_705_312_800_000_000, TimeUnit::Microsecond, &fixed)),
            r#""2024-01-15 04:30:00.000000-05:30""#
        );
        // A named zone takes its offset at that instant (summer and winter in Paris).
        let paris = Zone::of(Some("Europe/Paris")).unwrap();
        assert_eq!(
            text(|o| timestamp(o, 1_705_312_800, TimeUnit::Second, &paris)),
            r#""2024-01-15 11:00:00+01:00""#
        );
        assert_eq!(
            text(|o| timestamp(o, 1_720_000_000, TimeUnit::Second, &paris)),
            r#""2024-07-03 11:46:40+02:00""#
        );
        assert!(Zone::of(Some("Mars/Olympus")).is_err());
        let mut out = Vec::new();
        assert!(timestamp(&mut out, i64::MAX, TimeUnit::Second, &naive).is_err());
        // Year 10000 (253402300800 s) is outside what Snowflake stores.
        assert!(
            timestamp(&mut out, 253_402_300_800, TimeUnit::Second, &naive)
                .unwrap_err()
                .contains("10000")
        );
    }
}
