//! Dates, times and timestamps as connector v4's client-side validation reads and writes them
//! (`internal/validation/DataValidationUtil.java` at v4.1.0): Java's ISO parsers
//! (`ZonedDateTime`/`OffsetDateTime`/`LocalDateTime`/`LocalDate.parse`, `LocalTime` and
//! `OffsetTime.parse`, strict), an integer epoch with its scale guessed from its size
//! (`parseInstantGuessScale`), and Java's `toString` of `LocalDateTime`, `OffsetDateTime` (in
//! UTC) and of a time of day.

/// `|v|` below this is seconds, below 1000 times it milliseconds, below 10^6 times it
/// microseconds, else nanoseconds (`SECONDS_LIMIT_FOR_EPOCH`).
const SECONDS_LIMIT: i128 = 31_536_000_000;
const NANOS: i128 = 1_000_000_000;
const DAY_SECONDS: i128 = 86_400;

/// A wall clock: date and time of day, with the offset it was given at (seconds east of UTC)
/// when it had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub secs_of_day: u32,
    pub nanos: u32,
    pub offset: Option<i32>,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
#[cfg(test)]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (
        if m <= 2 {
            era * 400 + yoe + 1
        } else {
            era * 400 + yoe
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The instant of an integer epoch, its scale guessed from its size; text beyond a `long` is
/// nanoseconds (`parseInstantGuessScale`). `None`: not an integer.
pub(super) fn epoch(text: &str) -> Option<Clock> {
    let nanos: i128 = match text.parse::<i64>() {
        Ok(v) => {
            let v = i128::from(v);
            let scale = if v.abs() < SECONDS_LIMIT {
                NANOS
            } else if v.abs() < SECONDS_LIMIT * 1000 {
                1_000_000
            } else if v.abs() < SECONDS_LIMIT * 1_000_000 {
                1000
            } else {
                1
            };
            v * scale
        }
        // Java's `new BigInteger(input)`: a sign and digits only.
        Err(_) => {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse::<i128>().ok()?
        }
    };
    let secs = nanos.div_euclid(NANOS);
    let days = i64::try_from(secs.div_euclid(DAY_SECONDS)).ok()?;
    let (year, month, day) = civil_from_days(days);
    Some(Clock {
        year,
        month,
        day,
        secs_of_day: u32::try_from(secs.rem_euclid(DAY_SECONDS)).ok()?,
        nanos: u32::try_from(nanos.rem_euclid(NANOS)).ok()?,
        offset: Some(0),
    })
}

/// `n` digits at the start of `s`, and the rest.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// `ISO_LOCAL_TIME`: `HH:mm[:ss[.f…]]` (1 to 9 fraction digits), strict: (seconds of the day,
/// nanoseconds) and the rest.
fn local_time(s: &str) -> Option<((u32, u32), &str)> {
    let (h, s) = digits(s, 2)?;
    let (mi, mut s) = digits(s.strip_prefix(':')?, 2)?;
    let (mut sec, mut nanos) = (0, 0);
    if let Some(rest) = s.strip_prefix(':') {
        let (v, rest) = digits(rest, 2)?;
        sec = v;
        s = rest;
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&n) {
                return None;
            }
            nanos = rest[..n].parse::<u32>().ok()? * 10u32.pow(9 - u32::try_from(n).ok()?);
            s = &rest[n..];
        }
    }
    (h < 24 && mi < 60 && sec < 60).then_some(((h * 3600 + mi * 60 + sec, nanos), s))
}

/// `ISO_LOCAL_DATE`: `yyyy-MM-dd` (a longer year needs a sign), strict.
fn local_date(s: &str) -> Option<((i64, u32, u32), &str)> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (0, s),
    };
    let n = body.bytes().take_while(u8::is_ascii_digit).count();
    if n < 4 || (n > 4 && sign == 0) || n > 10 {
        return None;
    }
    let year = body[..n].parse::<i64>().ok()? * if sign < 0 { -1 } else { 1 };
    let (m, rest) = digits(body[n..].strip_prefix('-')?, 2)?;
    let (d, rest) = digits(rest.strip_prefix('-')?, 2)?;
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(year, m)).then_some(((year, m, d), rest))
}

/// `+HH:MM[:SS]`, `-…` or `Z` (any case): seconds east of UTC, and the rest.
fn offset(s: &str) -> Option<(i32, &str)> {
    if let Some(rest) = s.strip_prefix(['Z', 'z']) {
        return Some((0, rest));
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, rest) = digits(&s[1..], 2)?;
    let (m, mut rest) = digits(rest.strip_prefix(':')?, 2)?;
    let mut sec = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let (v, r) = digits(r, 2)?;
        sec = v;
        rest = r;
    }
    if h > 18 || m > 59 || sec > 59 || h * 3600 + m * 60 + sec > 18 * 3600 {
        return None;
    }
    Some((sign * i32::try_from(h * 3600 + m * 60 + sec).ok()?, rest))
}

/// A timestamp or date as `DataValidationUtil.inputToOffsetDateTime` reads text (trimmed):
/// `ZonedDateTime`/`OffsetDateTime` (with an offset, a `[zone]` after it), `LocalDateTime`,
/// `LocalDate` (the start of the day), else an integer epoch ([`epoch`]). `None`: none of
/// them. A clock without an offset is read in the zone the caller gives it.
pub(super) fn date_time(text: &str) -> Option<Clock> {
    let text = text.trim();
    if let Some(((year, month, day), rest)) = local_date(text) {
        if rest.is_empty() {
            return Some(Clock {
                year,
                month,
                day,
                secs_of_day: 0,
                nanos: 0,
                offset: None,
            });
        }
        let rest = rest.strip_prefix(['T', 't'])?;
        let ((secs_of_day, nanos), rest) = local_time(rest)?;
        let clock = Clock {
            year,
            month,
            day,
            secs_of_day,
            nanos,
            offset: None,
        };
        if rest.is_empty() {
            return Some(clock);
        }
        let (off, rest) = offset(rest)?;
        let zone_ok =
            rest.is_empty() || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2);
        return zone_ok.then_some(Clock {
            offset: Some(off),
            ..clock
        });
    }
    epoch(text)
}

/// A time of day as `DataValidationUtil.validateAndParseTime` reads text (trimmed):
/// `LocalTime`, `OffsetTime` (the offset dropped), else an integer epoch's time of day in UTC.
/// (seconds of the day, nanoseconds); `None`: none of them.
pub(super) fn time_of_day(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    if let Some((t, rest)) = local_time(text) {
        if rest.is_empty() || offset(rest).is_some_and(|(_, r)| r.is_empty()) {
            return Some(t);
        }
        return None;
    }
    epoch(text).map(|c| (c.secs_of_day, c.nanos))
}

/// Java's `LocalTime.toString` fraction: none, 3, 6 or 9 digits.
fn java_fraction(out: &mut String, nanos: u32) {
    if nanos == 0 {
    } else if nanos % 1_000_000 == 0 {
        out.push_str(&format!(".{:03}", nanos / 1_000_000));
    } else if nanos % 1000 == 0 {
        out.push_str(&format!(".{:06}", nanos / 1000));
    } else {
        out.push_str(&format!(".{nanos:09}"));
    }
}

/// Java's `LocalDateTime.toString`: `yyyy-MM-ddTHH:mm`, then `:ss` unless seconds and
/// nanoseconds are zero, then the fraction.
pub(super) fn java_local_date_time(c: &Clock) -> String {
    let (h, m, s) = (
        c.secs_of_day / 3600,
        c.secs_of_day / 60 % 60,
        c.secs_of_day % 60,
    );
    let mut out = format!("{:04}-{:02}-{:02}T{h:02}:{m:02}", c.year, c.month, c.day);
    if s > 0 || c.nanos > 0 {
        out.push_str(&format!(":{s:02}"));
        java_fraction(&mut out, c.nanos);
    }
    out
}

/// Java's `OffsetDateTime.toString` of a UTC clock: [`java_local_date_time`] and `Z`.
pub(super) fn java_utc(c: &Clock) -> String {
    java_local_date_time(c) + "Z"
}

/// A time of day as `HH:mm:ss` and its fraction (Java's `ISO_LOCAL_TIME`).
pub(super) fn iso_local_time((secs, nanos): (u32, u32)) -> String {
    let mut out = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if nanos > 0 {
        let f = format!("{nanos:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out
}

/// The days since 1970-01-01 of `c`'s date (for tests of the calendar).
#[cfg(test)]
fn day_number(c: &Clock) -> i64 {
    days_from_civil(c.year, c.month, c.day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_guess_their_scale_as_v4() {
        // `DataValidationUtilTest` / `RowValidatorTest` at v4.1.0: 1700000000 s, ms, µs, ns.
        for text in [
            "1700000000",
            "1700000000000",
            "1700000000000000",
            "1700000000000000000",
        ] {
            let c = epoch(text).unwrap();
            assert_eq!(java_local_date_time(&c), "2023-11-14T22:13:20", "{text}");
            assert_eq!(java_utc(&c), "2023-11-14T22:13:20Z");
        }
        let c = epoch("1700000000123").unwrap();
        assert_eq!(java_local_date_time(&c), "2023-11-14T22:13:20.123");
        let c = epoch("0").unwrap();
        assert_eq!(java_local_date_time(&c), "1970-01-01T00:00");
        let c = epoch("-1").unwrap();
        assert_eq!(java_local_date_time(&c), "1969-12-31T23:59:59");
        // Beyond a long: nanoseconds.
        let c = epoch("99999999999999999999").unwrap();
        assert_eq!(c.year, 5138);
        assert!(epoch("12a").is_none() && epoch("").is_none() && epoch("1.5").is_none());
        assert_eq!(day_number(&epoch("86400").unwrap()), 1);
    }

    #[test]
    fn java_iso_parsers_are_strict() {
        let c = date_time("2024-03-06T10:00:00.5+05:30").unwrap();
        assert_eq!(
            (c.year, c.month, c.day, c.offset),
            (2024, 3, 6, Some(19_800))
        );
        assert_eq!(c.nanos, 500_000_000);
        assert!(date_time("2024-03-06T10:00Z[UTC]").is_some());
        assert_eq!(date_time(" 2024-02-29 ").unwrap().offset, None);
        for bad in [
            "2024-02-30",
            "2023-02-29T00:00",
            "2024-03-06 10:00:00",
            "2024-3-6",
            "24:00",
            "2024-03-06T24:00",
            "2024-03-06T10:00+5",
            "yesterday",
        ] {
            assert!(date_time(bad).is_none(), "{bad}");
        }
        assert_eq!(time_of_day("10:15:30+05:00"), Some((36_930, 0)));
        assert_eq!(time_of_day("10:15Z"), Some((36_900, 0)));
        assert_eq!(time_of_day("86399"), Some((86_399, 0)));
        assert_eq!(time_of_day("10:15:30.25 "), Some((36_930, 250_000_000)));
        assert!(time_of_day("10:15:61").is_none() && time_of_day("10am").is_none());
    }

    #[test]
    fn java_to_strings() {
        let c = date_time("2024-03-06T10:00:00.000100").unwrap();
        assert_eq!(java_local_date_time(&c), "2024-03-06T10:00:00.000100");
        let c = date_time("2024-03-06T10:00:00.000000001").unwrap();
        assert_eq!(java_local_date_time(&c), "2024-03-06T10:00:00.000000001");
        assert_eq!(iso_local_time((36_930, 0)), "10:15:30");
        assert_eq!(iso_local_time((0, 120_000_000)), "00:00:00.12");
    }
}
