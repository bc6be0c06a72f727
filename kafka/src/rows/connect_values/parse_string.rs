//! Connect's `Values.parseString` (`apache/kafka` `connect/api/…/data/Values.java`): header
//! text as the `SimpleHeaderConverter` reads it.
//!
//! Arrays and maps nest at most [`MAX_DEPTH`] levels (issue 81). Java's parser recurses
//! without a limit until the thread's stack overflows; Kafka's `SimpleHeaderConverter.
//! toConnectHeader` catches that (`catch (Throwable t)`: "Failed to deserialize value for
//! header …, so using byte array") and keeps the header's bytes whole. Here a deeper value is
//! the whole header text, as a text that is no other value is: the same bytes, nothing lost,
//! and the record lands, never a stack overflow of the thread that converts it.

use crate::formats::connect_type::ConnectType;

/// A Connect value as `Values.parseString` makes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cv {
    /// No value.
    Null,
    /// `BOOLEAN`.
    Bool(bool),
    /// `INT8` … `INT64`, and which of them.
    Int(i64, ConnectType),
    /// `FLOAT32`.
    F32(f32),
    /// `FLOAT64`.
    F64(f64),
    /// A `Decimal`, as Java's `BigDecimal.toString` writes it, and its precision.
    Decimal(String, usize),
    /// `STRING`.
    Str(String),
    /// `Date`, `Time` or `Timestamp`: ms since the epoch (UTC).
    Temporal(ConnectType, i64),
    /// `ARRAY`.
    Array(Vec<Cv>),
    /// `MAP`, entries in order, and whether its keys have the common type `STRING`.
    Map(Vec<(Cv, Cv)>, bool),
}

impl Cv {
    fn ty(&self) -> Option<ConnectType> {
        Some(match self {
            Cv::Null => return None,
            Cv::Bool(_) => ConnectType::Boolean,
            Cv::Int(_, t) | Cv::Temporal(t, _) => *t,
            Cv::F32(_) => ConnectType::Float32,
            Cv::F64(_) => ConnectType::Float64,
            Cv::Decimal(..) => ConnectType::Decimal,
            Cv::Str(_) => ConnectType::String,
            Cv::Array(_) => ConnectType::Array,
            Cv::Map(..) => ConnectType::Map,
        })
    }

    /// This number as `ty` (`Values.convertTo` for the numeric types it merges to).
    fn widen(self, ty: ConnectType) -> Cv {
        match (self, ty) {
            (Cv::Int(n, _), ConnectType::Float32) => Cv::F32(n as f32),
            (Cv::Int(n, _), ConnectType::Float64) => Cv::F64(n as f64),
            (
                Cv::Int(n, _),
                t @ (ConnectType::Int8
                | ConnectType::Int16
                | ConnectType::Int32
                | ConnectType::Int64),
            ) => Cv::Int(n, t),
            (Cv::F32(f), ConnectType::Float64) => Cv::F64(f64::from(f)),
            (v, _) => v,
        }
    }
}

/// `Values.SchemaMerger`: the common type of the values seen, if any.
#[derive(Default)]
struct Merger {
    common: Option<ConnectType>,
    incompatible: bool,
}

impl Merger {
    fn merge(&mut self, v: &Cv) {
        let Some(t) = v.ty() else { return };
        if self.incompatible {
            return;
        }
        self.common = match self.common {
            None => Some(t),
            Some(p) if p == t => Some(p),
            // `mergeSchemas`: numbers widen along INT8 < … < INT64 < FLOAT32 < FLOAT64.
            Some(p) if p.is_number() && t.is_number() => Some(p.max(t)),
            Some(_) => None,
        };
        self.incompatible = self.common.is_none();
    }

    fn common(&self) -> Option<ConnectType> {
        self.common.filter(|_| !self.incompatible)
    }
}

/// How deep arrays and maps may nest in a header value: Jackson's default
/// `maxNestingDepth`, the limit the value path uses (`rows::validate::json::MAX_DEPTH`).
pub(super) const MAX_DEPTH: usize = 1_000;

/// `Values.Parser`: the tokenizer (delimiters `: , { } [ ] "`, `\` escapes one).
struct Parser {
    s: Vec<char>,
    i: usize,
    /// Arrays and maps open around the current position.
    depth: usize,
    next_token: Option<String>,
    previous: Option<String>,
}

fn is_blank(t: &str) -> bool {
    java_trim(t).is_empty()
}

/// Java's `String.trim`: characters up to U+0020 off both ends.
fn java_trim(t: &str) -> &str {
    t.trim_matches(|c: char| c <= ' ')
}

impl Parser {
    fn mark(&self) -> usize {
        self.i - self.next_token.as_ref().map_or(0, |t| t.chars().count())
    }

    fn rewind(&mut self, p: usize) {
        self.i = p;
        self.next_token = None;
        self.previous = None;
    }

    fn has_next(&self) -> bool {
        self.next_token.is_some() || self.i < self.s.len()
    }

    fn consume_next_token(&mut self) -> String {
        let mut escaped = false;
        let start = self.i;
        while self.i < self.s.len() {
            match self.s[self.i] {
                '\\' => escaped = !escaped,
                ':' | ',' | '{' | '}' | '[' | ']' | '"' => {
                    if !escaped {
                        if start < self.i {
                            return self.s[start..self.i].iter().collect();
                        }
                        self.i += 1;
                        return self.s[start..start + 1].iter().collect();
                    }
                    escaped = false;
                }
                _ => escaped = false,
            }
            self.i += 1;
        }
        self.s[start..self.i].iter().collect()
    }

    fn next(&mut self) -> String {
        let t = match self.next_token.take() {
            Some(t) => t,
            None => self.consume_next_token(),
        };
        self.previous = Some(t.clone());
        t
    }

    fn next_n(&mut self, n: usize) -> Option<String> {
        let start = self.mark();
        for _ in 0..n {
            if !self.has_next() {
                self.rewind(start);
                return None;
            }
            self.next();
        }
        Some(self.s[start..self.i].iter().collect())
    }

    fn is_next(&mut self, expected: &str) -> bool {
        if self.next_token.is_none() {
            if !self.has_next() {
                return false;
            }
            let t = self.consume_next_token();
            self.next_token = Some(t);
        }
        while self.next_token.as_deref().is_some_and(is_blank) && self.i < self.s.len() {
            let t = self.consume_next_token();
            self.next_token = Some(t);
        }
        self.next_token
            .as_deref()
            .is_some_and(|t| java_trim(t) == expected)
    }

    fn can_consume(&mut self, expected: &str) -> bool {
        if self.is_next(expected) {
            self.next_token = None;
            return true;
        }
        false
    }
}

/// `Values.parseString`: `None` for no value.
pub(crate) fn parse_string(text: &str) -> Option<Cv> {
    if text.is_empty() {
        return Some(Cv::Str(String::new()));
    }
    let mut p = Parser {
        s: text.chars().collect(),
        i: 0,
        depth: 0,
        next_token: None,
        previous: None,
    };
    // A top-level parse never fails: what is no other value is the whole text.
    match parse(&mut p, false, text) {
        Ok(Cv::Null) => None,
        Ok(v) => Some(v),
        Err(()) => Some(Cv::Str(text.to_owned())),
    }
}

fn single_literal(p: &mut Parser, embedded: bool, literal: &str) -> bool {
    let start = p.mark();
    if p.can_consume(literal) && (embedded || !p.has_next()) {
        return true;
    }
    p.rewind(start);
    false
}

/// `ValueParser.parse`; `Err` is Java's `DataException`.
fn parse(p: &mut Parser, embedded: bool, original: &str) -> Result<Cv, ()> {
    if !p.has_next() {
        return Ok(Cv::Null);
    }
    if embedded && p.can_consume("\"") {
        return Ok(parse_quoted(p));
    }
    if single_literal(p, embedded, "null") {
        return Ok(Cv::Null);
    }
    if single_literal(p, embedded, "true") {
        return Ok(Cv::Bool(true));
    }
    if single_literal(p, embedded, "false") {
        return Ok(Cv::Bool(false));
    }
    let start = p.mark();
    if p.can_consume("[") {
        match nested(p, original, parse_array) {
            Ok(v) => return Ok(v),
            Err(()) => p.rewind(start),
        }
    } else if p.can_consume("{") {
        match nested(p, original, parse_map) {
            Ok(v) => return Ok(v),
            Err(()) => p.rewind(start),
        }
    }
    let token = p.next();
    if is_blank(&token) {
        return Ok(Cv::Str(token));
    }
    let token = java_trim(&token).to_owned();
    let first = token.chars().next().unwrap_or(' ');
    if first.is_ascii_digit() {
        if let Some(t) = multiple_tokens_as_temporal(p, &token) {
            return Ok(t);
        }
    }
    if first.is_ascii_digit() || first == '+' || first == '-' {
        if let Some(n) = parse_number(&token) {
            return Ok(n);
        }
    }
    if embedded {
        return Err(());
    }
    Ok(Cv::Str(original.to_owned()))
}

/// `inner` one level deeper; `Err` past [`MAX_DEPTH`] before recursing, so the whole text
/// falls back to a string (see the module's doc).
fn nested(
    p: &mut Parser,
    original: &str,
    inner: fn(&mut Parser, &str) -> Result<Cv, ()>,
) -> Result<Cv, ()> {
    if p.depth >= MAX_DEPTH {
        return Err(());
    }
    p.depth += 1;
    let v = inner(p, original);
    p.depth -= 1;
    v
}

fn parse_quoted(p: &mut Parser) -> Cv {
    let mut content = String::new();
    while p.has_next() {
        if p.can_consume("\"") {
            break;
        }
        content.push_str(&p.next());
    }
    temporal(&content).unwrap_or(Cv::Str(content))
}

fn parse_array(p: &mut Parser, original: &str) -> Result<Cv, ()> {
    let mut items = Vec::new();
    let mut merger = Merger::default();
    while p.has_next() {
        if p.can_consume("]") {
            if let Some(t) = merger.common() {
                items = items.into_iter().map(|v: Cv| v.widen(t)).collect();
            }
            return Ok(Cv::Array(items));
        }
        if p.can_consume(",") {
            return Err(());
        }
        let v = parse(p, true, original)?;
        merger.merge(&v);
        items.push(v);
        let at = p.mark();
        if p.can_consume("]") {
            p.rewind(at);
        } else if !p.can_consume(",") {
            return Err(());
        }
    }
    Err(())
}

fn parse_map(p: &mut Parser, original: &str) -> Result<Cv, ()> {
    let mut entries: Vec<(Cv, Cv)> = Vec::new();
    let (mut keys, mut values) = (Merger::default(), Merger::default());
    while p.has_next() {
        if p.can_consume("}") {
            let key_type = keys.common();
            let value_type = values.common().filter(|_| key_type.is_some());
            let entries = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = match key_type {
                        Some(t) => k.widen(t),
                        None => k,
                    };
                    let v = match value_type {
                        Some(t) => v.widen(t),
                        None => v,
                    };
                    (k, v)
                })
                .collect();
            return Ok(Cv::Map(entries, key_type == Some(ConnectType::String)));
        }
        if p.can_consume(",") {
            return Err(());
        }
        let key = parse(p, true, original)?;
        if key == Cv::Null || !p.can_consume(":") {
            return Err(());
        }
        let value = parse(p, true, original)?;
        p.can_consume(",");
        keys.merge(&key);
        values.merge(&value);
        // A `LinkedHashMap`: a key given again keeps its place and takes the new value.
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value,
            None => entries.push((key, value)),
        }
    }
    Err(())
}

fn multiple_tokens_as_temporal(p: &mut Parser, token: &str) -> Option<Cv> {
    let at = p.mark();
    if let Some(rest) = p.next_n(4) {
        if let Some(t) = temporal(&format!("{token}{rest}")) {
            return Some(t);
        }
    }
    p.rewind(at);
    temporal(token)
}

/// `parseAsTemporal`: text of the length of `HH:mm:ss.SSS'Z'`, `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`
/// or `yyyy-MM-dd`, read as `SimpleDateFormat` reads it (leniently: fields roll over; a
/// pattern matched before the text ends is a match), in UTC.
fn temporal(token: &str) -> Option<Cv> {
    let token = token.replace("\\:", ":");
    let chars: Vec<char> = token.chars().collect();
    use Field::Lit;
    const TIME: &[Field] = &[
        HOUR,
        Lit(':'),
        MINUTE,
        Lit(':'),
        SECOND,
        Lit('.'),
        MILLI,
        Lit('Z'),
    ];
    const DATE: &[Field] = &[YEAR, Lit('-'), MONTH, Lit('-'), DAY];
    let (pattern, ty): (&[&[Field]], ConnectType) = match chars.len() {
        13 => (&[TIME], ConnectType::Time),
        24 => (&[DATE, &[Lit('T')], TIME], ConnectType::Timestamp),
        10 => (&[DATE], ConnectType::Date),
        _ => return None,
    };
    let mut f = [1970i64, 1, 1, 0, 0, 0, 0];
    let mut i = 0;
    for field in pattern.iter().copied().flatten() {
        match field {
            Lit(c) => {
                if chars.get(i) != Some(c) {
                    return None;
                }
                i += 1;
            }
            Field::Num(slot) => {
                let start = i;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let n: i64 = chars[start..i]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .ok()
                    .filter(|n| *n < 1_000_000_000)?;
                f[*slot] = n;
            }
        }
    }
    // Lenient: months, days and times roll over into the next field up.
    let months = f[0] * 12 + (f[1] - 1);
    let days = days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1) + f[2] - 1;
    let ms = days * 86_400_000 + f[3] * 3_600_000 + f[4] * 60_000 + f[5] * 1000 + f[6];
    Some(Cv::Temporal(ty, ms))
}

/// A `SimpleDateFormat` pattern's part: a number (its slot: year, month, day, hour, minute,
/// second, millisecond) or a literal.
#[derive(Clone, Copy)]
enum Field {
    Num(usize),
    Lit(char),
}

const YEAR: Field = Field::Num(0);
const MONTH: Field = Field::Num(1);
const DAY: Field = Field::Num(2);
const HOUR: Field = Field::Num(3);
const MINUTE: Field = Field::Num(4);
const SECOND: Field = Field::Num(5);
const MILLI: Field = Field::Num(6);

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A number as Java's `BigDecimal(String)` reads it: sign, its digits, and its scale.
fn big_decimal(token: &str) -> Option<(bool, String, i64)> {
    let b = token.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut digits = String::new();
    let mut frac = 0i64;
    let mut point = false;
    while i < b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                digits.push(c as char);
                if point {
                    frac += 1;
                }
            }
            b'.' if !point => point = true,
            _ => break,
        }
        i += 1;
    }
    if digits.is_empty() {
        return None;
    }
    let mut exp = 0i64;
    if i < b.len() {
        if !matches!(b[i], b'e' | b'E') || i + 1 == b.len() {
            return None;
        }
        exp = token[i + 1..].parse().ok()?;
    }
    Some((negative, digits, frac.checked_sub(exp)?))
}

/// `parseAsNumber`: the smallest integer type an integral number fits, else `float32`, else
/// `float64` (both only for a scale other than 0), else a `Decimal`.
pub(super) fn parse_number(token: &str) -> Option<Cv> {
    let (negative, digits, scale) = big_decimal(token)?;
    let sign = if negative { "-" } else { "" };
    let integral = scale <= 0
        || usize::try_from(scale).is_ok_and(|s| digits.bytes().rev().take(s).all(|c| c == b'0'));
    // An integer of more than 20 digits is no `long`: it goes on to the float and decimal
    // types (`parseAsExactDecimal` gives up on it the same way).
    let fits_long = -scale + (digits.trim_start_matches('0').len() as i64) <= 20;
    if integral && fits_long {
        let whole = if scale <= 0 {
            format!("{digits}{}", "0".repeat(scale.unsigned_abs() as usize))
        } else {
            let keep = digits.len().saturating_sub(scale as usize);
            digits[..keep].to_owned()
        };
        if let Ok(n) =
            format!("{sign}{}", if whole.is_empty() { "0" } else { &whole }).parse::<i64>()
        {
            let ty = if i8::try_from(n).is_ok() {
                ConnectType::Int8
            } else if i16::try_from(n).is_ok() {
                ConnectType::Int16
            } else if i32::try_from(n).is_ok() {
                ConnectType::Int32
            } else {
                ConnectType::Int64
            };
            return Some(Cv::Int(n, ty));
        }
    }
    let text = format!("{sign}{digits}e{}", -scale);
    if scale != 0 {
        if let Ok(f) = text.parse::<f32>() {
            if f.is_finite() {
                return Some(Cv::F32(f));
            }
        }
        if let Ok(f) = text.parse::<f64>() {
            if f.is_finite() {
                return Some(Cv::F64(f));
            }
        }
    }
    let unscaled = digits.trim_start_matches('0');
    let unscaled = if unscaled.is_empty() { "0" } else { unscaled };
    let sign = if negative && unscaled != "0" { "-" } else { "" };
    let text = crate::formats::avro::java_big_decimal(&format!("{sign}{unscaled}"), scale);
    Some(Cv::Decimal(text, unscaled.len()))
}
