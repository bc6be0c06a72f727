//! The date, time and timestamp string formats the Snowpipe Streaming service accepts, as one
//! table each, and the matcher that reads a string by them.
//!
//! The lists are the service's own (`TimestampFormatd.hpp`, as copied by Snowflake's Kafka
//! connector in `XpDateTimeFormats.java`; docs/protocol-types-and-sql.md "Type conversion (emulator)"): a
//! string is accepted when one format matches it whole (surrounding whitespace ignored), and
//! refused otherwise. Every format is fixed-width where the service's is: two-digit hours,
//! minutes, seconds, months and days (one or two for the `MM/DD/YYYY` forms), four-digit years,
//! 1 to 9 fractional digits after a `.`, an upper-case `T` and `Z`, `AM`/`PM` in upper case,
//! month and weekday names as `DEC`/`Dec` and `THU`/`Thu`. Offsets come in the styles the
//! service lists per format: `±hh:mm`, `±hhmm` or `±hh` (each also `Z`), and the weekday of
//! an RFC 2822 date must be the date's.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// One element of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// `YYYY`: four digits.
    Year,
    /// `MM`: two digits.
    Month,
    /// `MM` of the US forms: one or two digits.
    ShortMonth,
    /// `MON`: `JAN` … `DEC` (or `Jan` … `Dec`).
    MonthName,
    /// `DD`: two digits.
    Day,
    /// `DD` of the US forms: one or two digits.
    ShortDay,
    /// `DY`: `MON` … `SUN` (or `Mon` … `Sun`), checked against the date.
    Weekday,
    /// `HH24`: `00` to `23`.
    Hour24,
    /// `HH12`: `01` to `12`, with a [`Field::Meridiem`].
    Hour12,
    /// `MI`: two digits.
    Minute,
    /// `SS`: two digits.
    Second,
    /// `.FF`: a dot and 1 to 9 digits.
    Fraction,
    /// `AM` or `PM`.
    Meridiem,
    /// `TZH:TZM`: `±hh:mm` or `Z`.
    OffsetColon,
    /// `TZHTZM`: `±hhmm` or `Z`.
    OffsetNoColon,
    /// `TZH`: `±hh` or `Z`.
    OffsetHour,
    /// This text, exactly.
    Literal(&'static str),
}

use Field::*;

/// A format: the service's name for it and its elements.
pub(super) type Format = (&'static str, &'static [Field]);

const T: Field = Literal("T");
const SP: Field = Literal(" ");
const COLON: Field = Literal(":");
const DASH: Field = Literal("-");
const ISO_DATE: [Field; 5] = [Year, DASH, Month, DASH, Day];

macro_rules! iso {
    ($($field:expr),*) => {
        &[Year, DASH, Month, DASH, Day, $($field),*]
    };
}

/// The DATE and TIMESTAMP_* formats, in the service's order (`TimestampFormatd.hpp` lines 75
/// to 318). Integer strings (epochs) are read before these.
#[rustfmt::skip]
pub(super) const TIMESTAMP_FORMATS: &[Format] = &[
    ("UUUU-MM-DD HH24:MI:SS.FFTZH:TZM", iso![SP, Hour24, COLON, Minute, COLON, Second, Fraction, OffsetColon]),
    ("UUUU-MM-DD", &ISO_DATE),
    ("YYYY-MM-DD\"T\"HH24:MI:SS.FFTZH:TZM", iso![T, Hour24, COLON, Minute, COLON, Second, Fraction, OffsetColon]),
    ("YYYY-MM-DD\"T\"HH24:MI:SS.FF", iso![T, Hour24, COLON, Minute, COLON, Second, Fraction]),
    ("YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM", iso![T, Hour24, COLON, Minute, COLON, Second, OffsetColon]),
    ("YYYY-MM-DD\"T\"HH24:MI:SS", iso![T, Hour24, COLON, Minute, COLON, Second]),
    ("YYYY-MM-DD\"T\"HH24:MITZH:TZM", iso![T, Hour24, COLON, Minute, OffsetColon]),
    ("YYYY-MM-DD\"T\"HH24:MI", iso![T, Hour24, COLON, Minute]),
    ("YYYY-MM-DD\"T\"HH24", iso![T, Hour24]),
    ("YYYY-MM-DD HH24:MI:SS.FFTZH", iso![SP, Hour24, COLON, Minute, COLON, Second, Fraction, OffsetHour]),
    ("YYYY-MM-DD HH24:MI:SS.FF TZH:TZM", iso![SP, Hour24, COLON, Minute, COLON, Second, Fraction, SP, OffsetColon]),
    ("YYYY-MM-DD HH24:MI:SS.FF TZHTZM", iso![SP, Hour24, COLON, Minute, COLON, Second, Fraction, SP, OffsetNoColon]),
    ("YYYY-MM-DD HH24:MI:SS.FF", iso![SP, Hour24, COLON, Minute, COLON, Second, Fraction]),
    ("YYYY-MM-DD HH24:MI:SS TZH:TZM", iso![SP, Hour24, COLON, Minute, COLON, Second, SP, OffsetColon]),
    ("YYYY-MM-DD HH24:MI:SS TZHTZM", iso![SP, Hour24, COLON, Minute, COLON, Second, SP, OffsetNoColon]),
    ("YYYY-MM-DD HH24:MI:SSTZH:TZM", iso![SP, Hour24, COLON, Minute, COLON, Second, OffsetColon]),
    ("YYYY-MM-DD HH24:MI:SSTZH", iso![SP, Hour24, COLON, Minute, COLON, Second, OffsetHour]),
    ("YYYY-MM-DD HH24:MI:SS", iso![SP, Hour24, COLON, Minute, COLON, Second]),
    ("YYYY-MM-DD HH24:MITZH:TZM", iso![SP, Hour24, COLON, Minute, OffsetColon]),
    ("YYYY-MM-DD HH24:MI", iso![SP, Hour24, COLON, Minute]),
    ("YYYY-MM-DD HH24", iso![SP, Hour24]),
    ("DD-MON-YYYY", &[Day, DASH, MonthName, DASH, Year]),
    ("DY, DD MON YYYY HH24:MI:SS TZHTZM", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour24, COLON, Minute, COLON, Second, SP, OffsetNoColon]),
    ("DY, DD MON YYYY HH24:MI:SS.FF TZHTZM", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour24, COLON, Minute, COLON, Second, Fraction, SP, OffsetNoColon]),
    ("DY, DD MON YYYY HH12:MI:SS AM TZHTZM", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour12, COLON, Minute, COLON, Second, SP, Meridiem, SP, OffsetNoColon]),
    ("DY, DD MON YYYY HH12:MI:SS.FF AM TZHTZM", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour12, COLON, Minute, COLON, Second, Fraction, SP, Meridiem, SP, OffsetNoColon]),
    ("DY, DD MON YYYY HH24:MI:SS", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour24, COLON, Minute, COLON, Second]),
    ("DY, DD MON YYYY HH24:MI:SS.FF", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour24, COLON, Minute, COLON, Second, Fraction]),
    ("DY, DD MON YYYY HH12:MI:SS AM", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour12, COLON, Minute, COLON, Second, SP, Meridiem]),
    ("DY, DD MON YYYY HH12:MI:SS.FF AM", &[Weekday, Literal(", "), Day, SP, MonthName, SP, Year, SP, Hour12, COLON, Minute, COLON, Second, Fraction, SP, Meridiem]),
    ("DY MON DD HH24:MI:SS TZHTZM YYYY", &[Weekday, SP, MonthName, SP, Day, SP, Hour24, COLON, Minute, COLON, Second, SP, OffsetNoColon, SP, Year]),
    ("MM/DD/YYYY", &[ShortMonth, Literal("/"), ShortDay, Literal("/"), Year]),
    ("MM/DD/YYYY HH24:MI:SS", &[ShortMonth, Literal("/"), ShortDay, Literal("/"), Year, SP, Hour24, COLON, Minute, COLON, Second]),
];

/// The TIME formats, in the service's order (`TimestampFormatd.hpp` lines 273 to 306). The
/// only one with an offset needs the fraction; the offset is dropped.
#[rustfmt::skip]
pub(super) const TIME_FORMATS: &[Format] = &[
    ("HH24:MI:SS.FFTZH:TZM", &[Hour24, COLON, Minute, COLON, Second, Fraction, OffsetColon]),
    ("HH24:MI:SS.FF", &[Hour24, COLON, Minute, COLON, Second, Fraction]),
    ("HH12:MI:SS.FF AM", &[Hour12, COLON, Minute, COLON, Second, Fraction, SP, Meridiem]),
    ("HH24:MI:SS", &[Hour24, COLON, Minute, COLON, Second]),
    ("HH12:MI:SS AM", &[Hour12, COLON, Minute, COLON, Second, SP, Meridiem]),
    ("HH24:MI", &[Hour24, COLON, Minute]),
    ("HH12:MI AM", &[Hour12, COLON, Minute, SP, Meridiem]),
];

/// What a format read: the date (`None` in a TIME format), the time of day (midnight when the
/// format has none) and the offset, if the format has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reading {
    pub(super) date: Option<NaiveDate>,
    pub(super) time: NaiveTime,
    pub(super) offset: Option<FixedOffset>,
}

impl Reading {
    /// The date and time (a TIME reading is on 1970-01-01).
    pub(super) fn date_time(&self) -> NaiveDateTime {
        self.date.unwrap_or_default().and_time(self.time)
    }
}

/// A DATE/TIMESTAMP string read by the first of [`TIMESTAMP_FORMATS`] that matches it.
pub(super) fn read_timestamp(text: &str) -> Option<Reading> {
    read_by(TIMESTAMP_FORMATS, text)
}

/// A TIME string read by the first of [`TIME_FORMATS`] that matches it.
pub(super) fn read_time(text: &str) -> Option<NaiveTime> {
    read_by(TIME_FORMATS, text).map(|r| r.time)
}

/// `text` (trimmed) by the first format of `formats` that matches it whole.
pub(super) fn read_by(formats: &[Format], text: &str) -> Option<Reading> {
    let text = text.trim();
    formats
        .iter()
        .find_map(|(_, fields)| read_format(fields, text))
}

#[derive(Default)]
struct Parts {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    weekday: Option<Weekday>,
    hour: u32,
    hour12: bool,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: Option<FixedOffset>,
}

/// `text` read by one format, or `None` when it does not match it whole.
fn read_format(fields: &[Field], text: &str) -> Option<Reading> {
    let mut rest = text;
    let mut parts = Parts::default();
    for field in fields {
        rest = read_field(*field, rest, &mut parts)?;
    }
    if !rest.is_empty() {
        return None;
    }
    let hour = match parts.pm {
        Some(pm) if parts.hour12 => {
            if !(1..=12).contains(&parts.hour) {
                return None;
            }
            parts.hour % 12 + if pm { 12 } else { 0 }
        }
        _ => parts.hour,
    };
    if hour > 23 || parts.minute > 59 || parts.second > 59 {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, parts.minute, parts.second, parts.nanos)?;
    let date = match (parts.year, parts.month, parts.day) {
        (Some(y), Some(m), Some(d)) => Some(NaiveDate::from_ymd_opt(y, m, d)?),
        _ => None,
    };
    if let (Some(weekday), Some(date)) = (parts.weekday, date) {
        if date.weekday() != weekday {
            return None;
        }
    }
    Some(Reading {
        date,
        time,
        offset: parts.offset,
    })
}

/// Reads one field at the start of `text` into `parts`; the text after it.
fn read_field<'a>(field: Field, text: &'a str, parts: &mut Parts) -> Option<&'a str> {
    match field {
        Year => {
            let (v, rest) = digits(text, 4, 4)?;
            parts.year = Some(i32::try_from(v).ok()?);
            Some(rest)
        }
        Month | ShortMonth => {
            let min = if field == ShortMonth { 1 } else { 2 };
            let (v, rest) = digits(text, min, 2)?;
            parts.month = Some(v);
            Some(rest)
        }
        Day | ShortDay => {
            let min = if field == ShortDay { 1 } else { 2 };
            let (v, rest) = digits(text, min, 2)?;
            parts.day = Some(v);
            Some(rest)
        }
        MonthName => {
            const NAMES: [&str; 12] = [
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ];
            let (i, rest) = name(text, &NAMES)?;
            parts.month = Some(i as u32 + 1);
            Some(rest)
        }
        Weekday => {
            const NAMES: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
            let (i, rest) = name(text, &NAMES)?;
            parts.weekday = Some(chrono::Weekday::try_from(i as u8).ok()?);
            Some(rest)
        }
        Hour24 | Hour12 => {
            let (v, rest) = digits(text, 2, 2)?;
            parts.hour = v;
            parts.hour12 = field == Hour12;
            Some(rest)
        }
        Minute => {
            let (v, rest) = digits(text, 2, 2)?;
            parts.minute = v;
            Some(rest)
        }
        Second => {
            let (v, rest) = digits(text, 2, 2)?;
            parts.second = v;
            Some(rest)
        }
        Fraction => {
            let after = text.strip_prefix('.')?;
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&n) {
                return None;
            }
            let fraction: u32 = after[..n].parse().ok()?;
            parts.nanos = fraction * 10u32.pow(9 - n as u32);
            Some(&after[n..])
        }
        Meridiem => {
            let (pm, rest) = if let Some(rest) = text.strip_prefix("AM") {
                (false, rest)
            } else {
                (true, text.strip_prefix("PM")?)
            };
            parts.pm = Some(pm);
            Some(rest)
        }
        OffsetColon | OffsetNoColon | OffsetHour => {
            let (offset, rest) = offset(field, text)?;
            parts.offset = Some(offset);
            Some(rest)
        }
        Literal(literal) => text.strip_prefix(literal),
    }
}

/// `min` to `max` ASCII digits at the start of `text` (as many as there are, up to `max`).
fn digits(text: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = text
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if n < min {
        return None;
    }
    Some((text[..n].parse().ok()?, &text[n..]))
}

/// One of `names` (upper case) at the start of `text`, in upper case or capitalized
/// (`DEC`, `Dec`): its index and the text after it.
fn name<'a>(text: &'a str, names: &[&str]) -> Option<(usize, &'a str)> {
    let word = text.get(..3).filter(|w| w.is_ascii())?;
    let index = names.iter().position(|n| {
        *n == word || (word[..1] == n[..1] && word[1..] == n[1..].to_ascii_lowercase())
    })?;
    Some((index, &text[3..]))
}

/// An offset in `style` at the start of `text`: `Z`, or a sign and two-digit hours, then
/// minutes as the style says; at most 18 hours, as the service (and `java.time`) take.
fn offset(style: Field, text: &str) -> Option<(FixedOffset, &str)> {
    if let Some(rest) = text.strip_prefix('Z') {
        return Some((FixedOffset::east_opt(0)?, rest));
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, mut rest) = digits(&text[1..], 2, 2)?;
    let mut minutes = 0;
    match style {
        OffsetColon => {
            (minutes, rest) = digits(rest.strip_prefix(':')?, 2, 2)?;
        }
        OffsetNoColon => {
            (minutes, rest) = digits(rest, 2, 2)?;
        }
        _ => {}
    }
    let seconds = hours * 3600 + minutes * 60;
    if minutes > 59 || seconds > 18 * 3600 {
        return None;
    }
    Some((FixedOffset::east_opt(sign * seconds as i32)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format of both lists reads an example of its own; a drift of the lists (a
    /// format added or removed) fails here until the example table follows.
    #[test]
    fn every_listed_format_reads_its_example() {
        let examples: &[(&str, &str)] = &[
            (
                "UUUU-MM-DD HH24:MI:SS.FFTZH:TZM",
                "2024-01-15 13:45:30.5+05:30",
            ),
            ("UUUU-MM-DD", "2024-01-15"),
            (
                "YYYY-MM-DD\"T\"HH24:MI:SS.FFTZH:TZM",
                "2024-01-15T13:45:30.5Z",
            ),
            ("YYYY-MM-DD\"T\"HH24:MI:SS.FF", "2024-01-15T13:45:30.5"),
            (
                "YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM",
                "2024-01-15T13:45:30-08:00",
            ),
            ("YYYY-MM-DD\"T\"HH24:MI:SS", "2024-01-15T13:45:30"),
            ("YYYY-MM-DD\"T\"HH24:MITZH:TZM", "2024-01-15T13:45+01:00"),
            ("YYYY-MM-DD\"T\"HH24:MI", "2024-01-15T13:45"),
            ("YYYY-MM-DD\"T\"HH24", "2024-01-15T13"),
            ("YYYY-MM-DD HH24:MI:SS.FFTZH", "2024-01-15 13:45:30.5+05"),
            (
                "YYYY-MM-DD HH24:MI:SS.FF TZH:TZM",
                "2024-01-15 13:45:30.5 -03:30",
            ),
            (
                "YYYY-MM-DD HH24:MI:SS.FF TZHTZM",
                "2024-01-15 13:45:30.5 +0200",
            ),
            ("YYYY-MM-DD HH24:MI:SS.FF", "2024-01-15 13:45:30.5"),
            (
                "YYYY-MM-DD HH24:MI:SS TZH:TZM",
                "2024-01-15 13:45:30 +05:30",
            ),
            ("YYYY-MM-DD HH24:MI:SS TZHTZM", "2024-01-15 13:45:30 -0700"),
            ("YYYY-MM-DD HH24:MI:SSTZH:TZM", "2024-01-15 13:45:30+05:30"),
            ("YYYY-MM-DD HH24:MI:SSTZH", "2024-01-15 13:45:30-04"),
            ("YYYY-MM-DD HH24:MI:SS", "2024-01-15 13:45:30"),
            ("YYYY-MM-DD HH24:MITZH:TZM", "2024-01-15 13:45Z"),
            ("YYYY-MM-DD HH24:MI", "2024-01-15 13:45"),
            ("YYYY-MM-DD HH24", "2024-01-15 13"),
            ("DD-MON-YYYY", "17-DEC-1980"),
            (
                "DY, DD MON YYYY HH24:MI:SS TZHTZM",
                "Wed, 17 Dec 1980 13:45:30 +0100",
            ),
            (
                "DY, DD MON YYYY HH24:MI:SS.FF TZHTZM",
                "Wed, 17 Dec 1980 13:45:30.5 -0500",
            ),
            (
                "DY, DD MON YYYY HH12:MI:SS AM TZHTZM",
                "Wed, 17 Dec 1980 01:45:30 PM +0000",
            ),
            (
                "DY, DD MON YYYY HH12:MI:SS.FF AM TZHTZM",
                "Wed, 17 Dec 1980 01:45:30.5 PM Z",
            ),
            ("DY, DD MON YYYY HH24:MI:SS", "Wed, 17 Dec 1980 13:45:30"),
            (
                "DY, DD MON YYYY HH24:MI:SS.FF",
                "Wed, 17 Dec 1980 13:45:30.5",
            ),
            (
                "DY, DD MON YYYY HH12:MI:SS AM",
                "Wed, 17 Dec 1980 01:45:30 PM",
            ),
            (
                "DY, DD MON YYYY HH12:MI:SS.FF AM",
                "Wed, 17 Dec 1980 01:45:30.5 PM",
            ),
            (
                "DY MON DD HH24:MI:SS TZHTZM YYYY",
                "Wed Dec 17 13:45:30 +0100 1980",
            ),
            ("MM/DD/YYYY", "12/17/1980"),
            ("MM/DD/YYYY HH24:MI:SS", "12/17/1980 13:45:30"),
            ("HH24:MI:SS.FFTZH:TZM", "13:45:30.5+05:30"),
            ("HH24:MI:SS.FF", "13:45:30.5"),
            ("HH12:MI:SS.FF AM", "01:45:30.5 PM"),
            ("HH24:MI:SS", "13:45:30"),
            ("HH12:MI:SS AM", "01:45:30 PM"),
            ("HH24:MI", "13:45"),
            ("HH12:MI AM", "01:45 PM"),
        ];
        let lists = TIMESTAMP_FORMATS.iter().chain(TIME_FORMATS);
        assert_eq!(lists.clone().count(), examples.len());
        for (name, fields) in lists {
            let (_, example) = examples
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no example for {name}"));
            let reading = read_format(fields, example).unwrap_or_else(|| panic!("{name}"));
            if name.contains("MI") {
                assert_eq!(reading.time.format("%M").to_string(), "45", "{name}");
            }
        }
    }
}
