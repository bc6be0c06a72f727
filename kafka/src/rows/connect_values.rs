//! Kafka Connect's key and header converters, as the Connect worker runs them before Snowflake's
//! Kafka connector v4 sees a record, and as the connector's `KafkaRecordConverter` then writes
//! their output into `RECORD_METADATA` (`kafka/docs/connector-compatibility.md` §10, §11).
//!
//! * **Keys** (`--key-converter`, the connector's `key.converter`): `string` decodes UTF-8 with
//!   each malformed sequence as U+FFFD (`new String(bytes, UTF_8)`); `json` writes the key's JSON
//!   value (a JSON `null` or an empty key is no key; text that is not JSON is the worker's
//!   converter error: a dead letter); `bytes` writes base64 (the SDK's form of a `byte[]`);
//!   the Schema Registry formats write the decoded value (decoded by `value_format`). `raw`, this
//!   sink's own default without `--connector-config`, writes text, or `key_base64` for bytes that
//!   are not UTF-8, so nothing is lost.
//! * **Header values** (`--header-converter`, the connector's `header.converter`): `simple` is
//!   Connect's `SimpleHeaderConverter`: the text parsed by `Values.parseString`
//!   ([`parse_string`], a port of `apache/kafka` `connect/api/…/data/Values.java`): numbers take
//!   the smallest integer type they fit, else `float32`, `float64` or a decimal; `true`, `false`
//!   and `null`; `[…]` and `{…}` with their elements' common type; date, time and timestamp
//!   text of ISO length; anything else the whole text. `string` keeps the text, `json` parses
//!   JSON, `bytes` writes base64. `raw` (the default without a connector file) writes the text,
//!   or `{"base64": …}` for bytes that are not UTF-8.
//!
//! With `snowflake.feature.structured.headers=false` (the connector's default) each converted
//! value is flattened by Java's `String.valueOf` (maps as `{a=1}`, lists as `[1, 2, 3]`, floats
//! by `Float.toString`); with `true` it keeps its JSON type. A `ByteArrayConverter` header
//! flattened is `String.valueOf(byte[])` in the connector, a JVM identity (`[B@1b6d3586`) and no
//! data: here it is base64 either way (deliberately different, the document's §11.15).

use clap::ValueEnum;

use crate::formats::json_text::{base64, write_str as write_json_str};

/// `--key-converter`: how a message's key becomes `RECORD_METADATA.key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum KeyConverter {
    /// Text, or `key_base64` for bytes that are not UTF-8 (nothing lost; this sink's default).
    #[default]
    Raw,
    /// Connect's `StringConverter`: UTF-8, malformed sequences as U+FFFD.
    String,
    /// Connect's `JsonConverter` (`schemas.enable=false`): the key's JSON value.
    Json,
    /// Connect's `ByteArrayConverter`: base64.
    Bytes,
    /// Confluent's `AvroConverter`: the decoded value (needs a Schema Registry `--value-format`).
    Avro,
    /// Confluent's `ProtobufConverter`: the decoded message.
    Protobuf,
    /// Confluent's `JsonSchemaConverter`: the payload.
    JsonSchema,
}

impl KeyConverter {
    /// The Schema Registry format that decodes the key, if it is one.
    pub fn registry_format(self) -> Option<crate::formats::ValueFormat> {
        use crate::formats::ValueFormat as F;
        match self {
            KeyConverter::Avro => Some(F::Avro),
            KeyConverter::Protobuf => Some(F::Protobuf),
            KeyConverter::JsonSchema => Some(F::JsonSchema),
            _ => None,
        }
    }
}

/// `--header-converter`: how a header's value becomes a `RECORD_METADATA.headers` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum HeaderConverter {
    /// Text (JSON with `--structured-headers`), or `{"base64": …}` for bytes that are not UTF-8
    /// (nothing lost; this sink's default).
    #[default]
    Raw,
    /// Connect's `SimpleHeaderConverter` (the worker's default): `Values.parseString`.
    Simple,
    /// Connect's `StringConverter`: the text.
    String,
    /// Connect's `JsonConverter` (`schemas.enable=false`): the JSON value.
    Json,
    /// Connect's `ByteArrayConverter`: base64.
    Bytes,
}

/// JSON text, trimmed, its line breaks (white space there) as spaces; `None` when `bytes` are
/// not one JSON value.
fn one_line(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = bytes.trim_ascii().to_vec();
    crate::formats::json_text::one_line_json(&mut v).then_some(v)
}

/// What the `JsonConverter` (schemaless) reads in `bytes`: `Ok(None)` for no value (`null`, or
/// nothing but white space), else the JSON as one line.
///
/// # Errors
/// `not_json`, when `bytes` are not one JSON value (the worker's converter error).
fn json_converter(bytes: &[u8], not_json: &str) -> Result<Option<Vec<u8>>, String> {
    let t = bytes.trim_ascii();
    if t.is_empty() || t == b"null" {
        return Ok(None);
    }
    one_line(t).map(Some).ok_or_else(|| not_json.to_owned())
}

/// `b` as a JSON string of its base64 (the SDK's form of a `byte[]`).
fn write_base64(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(base64(b).as_bytes());
    out.push(b'"');
}

/// Writes `,"key":…` for `key` as `converter` makes it (`decoded`: the registry formats'
/// JSON), or nothing when the converter makes no key (JSON `null`, an empty JSON key).
///
/// # Errors
/// The worker's converter error, as the dead-letter reason: a `json` key that is not JSON, a
/// registry key that was not decoded.
pub fn write_key(
    out: &mut Vec<u8>,
    key: &[u8],
    converter: KeyConverter,
    decoded: Option<&str>,
) -> Result<(), String> {
    match converter {
        KeyConverter::Raw => match std::str::from_utf8(key) {
            Ok(s) => {
                out.extend_from_slice(b",\"key\":");
                write_json_str(out, s);
            }
            Err(_) => {
                out.extend_from_slice(b",\"key_base64\":\"");
                out.extend_from_slice(base64(key).as_bytes());
                out.push(b'"');
            }
        },
        KeyConverter::String => {
            out.extend_from_slice(b",\"key\":");
            write_json_str(out, &String::from_utf8_lossy(key));
        }
        KeyConverter::Bytes => {
            out.extend_from_slice(b",\"key\":");
            write_base64(out, key);
        }
        KeyConverter::Json => {
            let not_json = "the key is not JSON (key.converter is the JsonConverter): produce \
                            JSON keys, or name the key's converter (e.g. key.converter=org.\
                            apache.kafka.connect.storage.StringConverter)";
            if let Some(json) = json_converter(key, not_json)? {
                out.extend_from_slice(b",\"key\":");
                out.extend_from_slice(&json);
            }
        }
        KeyConverter::Avro | KeyConverter::Protobuf | KeyConverter::JsonSchema => match decoded {
            Some("null") => {}
            Some(json) => {
                out.extend_from_slice(b",\"key\":");
                out.extend_from_slice(json.as_bytes());
            }
            None => return Err("the key was not decoded with its schema".into()),
        },
    }
    Ok(())
}

/// Writes a header's value as `converter` makes it, flattened to a string unless `structured`.
///
/// # Errors
/// The worker's converter error: a `json` header that is not JSON.
pub fn write_header(
    out: &mut Vec<u8>,
    value: Option<&[u8]>,
    converter: HeaderConverter,
    structured: bool,
) -> Result<(), String> {
    let Some(v) = value else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    match converter {
        HeaderConverter::Raw => {
            if structured {
                write_typed(out, v);
            } else {
                write_bytes(out, v);
            }
        }
        HeaderConverter::String => write_json_str(out, &String::from_utf8_lossy(v)),
        HeaderConverter::Bytes => write_base64(out, v),
        HeaderConverter::Json => {
            let not_json = "a header value is not JSON (header.converter is the JsonConverter): \
                            produce JSON header values, or drop header.converter for Connect's \
                            SimpleHeaderConverter";
            let Some(json) = json_converter(v, not_json)? else {
                out.extend_from_slice(b"null");
                return Ok(());
            };
            if structured {
                out.extend_from_slice(&json);
            } else {
                // The JsonConverter's Connect value, flattened by Java's toString.
                let parsed: serde_json::Value =
                    serde_json::from_slice(&json).map_err(|e| e.to_string())?;
                write_json_str(out, &java_string_of_json(&parsed));
            }
        }
        HeaderConverter::Simple => {
            let text = String::from_utf8_lossy(v);
            match parse_string(&text) {
                None => out.extend_from_slice(b"null"),
                Some(parsed) => {
                    let c = converted(parsed);
                    if structured {
                        c.write_json(out);
                    } else {
                        match c {
                            Out::Null => out.extend_from_slice(b"null"),
                            c => write_json_str(out, &c.java_string()),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A JSON string, or a `{"base64": …}` object for bytes that are not UTF-8.
fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => write_json_str(out, s),
        Err(_) => {
            out.extend_from_slice(b"{\"base64\":\"");
            out.extend_from_slice(base64(b).as_bytes());
            out.extend_from_slice(b"\"}");
        }
    }
}

/// A header value as the JSON it holds, or as [`write_bytes`] writes it when it holds none.
fn write_typed(out: &mut Vec<u8>, v: &[u8]) {
    match one_line(v) {
        Some(json) => out.extend_from_slice(&json),
        None => write_bytes(out, v),
    }
}

// ---------------------------------------------------------------------------------------------
// Values.parseString

/// A Connect value as `Values.parseString` makes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cv {
    /// No value.
    Null,
    /// `BOOLEAN`.
    Bool(bool),
    /// `INT8` … `INT64`, and which of them.
    Int(i64, Ty),
    /// `FLOAT32`.
    F32(f32),
    /// `FLOAT64`.
    F64(f64),
    /// A `Decimal`, as Java's `BigDecimal.toString` writes it, and its precision.
    Decimal(String, usize),
    /// `STRING`.
    Str(String),
    /// `Date`, `Time` or `Timestamp`: ms since the epoch (UTC).
    Temporal(Ty, i64),
    /// `ARRAY`.
    Array(Vec<Cv>),
    /// `MAP`, entries in order, and whether its keys have the common type `STRING`.
    Map(Vec<(Cv, Cv)>, bool),
}

/// A Connect schema type, as far as `Values` merges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ty {
    /// `INT8`.
    I8,
    /// `INT16`.
    I16,
    /// `INT32`.
    I32,
    /// `INT64`.
    I64,
    /// `FLOAT32`.
    F32,
    /// `FLOAT64`.
    F64,
    /// `BOOLEAN`.
    Bool,
    /// `STRING`.
    Str,
    /// `Decimal`.
    Decimal,
    /// `Date`.
    Date,
    /// `Time`.
    Time,
    /// `Timestamp`.
    Timestamp,
    /// `ARRAY`.
    Array,
    /// `MAP`.
    Map,
}

impl Cv {
    fn ty(&self) -> Option<Ty> {
        Some(match self {
            Cv::Null => return None,
            Cv::Bool(_) => Ty::Bool,
            Cv::Int(_, t) | Cv::Temporal(t, _) => *t,
            Cv::F32(_) => Ty::F32,
            Cv::F64(_) => Ty::F64,
            Cv::Decimal(..) => Ty::Decimal,
            Cv::Str(_) => Ty::Str,
            Cv::Array(_) => Ty::Array,
            Cv::Map(..) => Ty::Map,
        })
    }

    /// This number as `ty` (`Values.convertTo` for the numeric types it merges to).
    fn widen(self, ty: Ty) -> Cv {
        match (self, ty) {
            (Cv::Int(n, _), Ty::F32) => Cv::F32(n as f32),
            (Cv::Int(n, _), Ty::F64) => Cv::F64(n as f64),
            (Cv::Int(n, _), t @ (Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64)) => Cv::Int(n, t),
            (Cv::F32(f), Ty::F64) => Cv::F64(f64::from(f)),
            (v, _) => v,
        }
    }
}

fn numeric(t: Ty) -> bool {
    matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 | Ty::F32 | Ty::F64)
}

/// `Values.SchemaMerger`: the common type of the values seen, if any.
#[derive(Default)]
struct Merger {
    common: Option<Ty>,
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
            Some(p) if numeric(p) && numeric(t) => Some(p.max(t)),
            Some(_) => None,
        };
        self.incompatible = self.common.is_none();
    }

    fn common(&self) -> Option<Ty> {
        self.common.filter(|_| !self.incompatible)
    }
}

/// `Values.Parser`: the tokenizer (delimiters `: , { } [ ] "`, `\` escapes one).
struct Parser {
    s: Vec<char>,
    i: usize,
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
pub fn parse_string(text: &str) -> Option<Cv> {
    if text.is_empty() {
        return Some(Cv::Str(String::new()));
    }
    let mut p = Parser {
        s: text.chars().collect(),
        i: 0,
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
        match parse_array(p, original) {
            Ok(v) => return Ok(v),
            Err(()) => p.rewind(start),
        }
    } else if p.can_consume("{") {
        match parse_map(p, original) {
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
            return Ok(Cv::Map(entries, key_type == Some(Ty::Str)));
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
    const STAMP: &[Field] = &[
        YEAR,
        Lit('-'),
        MONTH,
        Lit('-'),
        DAY,
        Lit('T'),
        HOUR,
        Lit(':'),
        MINUTE,
        Lit(':'),
        SECOND,
        Lit('.'),
        MILLI,
        Lit('Z'),
    ];
    let (pattern, ty) = match chars.len() {
        13 => (TIME, Ty::Time),
        24 => (STAMP, Ty::Timestamp),
        10 => (DATE, Ty::Date),
        _ => return None,
    };
    let mut f = [1970i64, 1, 1, 0, 0, 0, 0];
    let mut i = 0;
    for field in pattern {
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
fn parse_number(token: &str) -> Option<Cv> {
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
                Ty::I8
            } else if i16::try_from(n).is_ok() {
                Ty::I16
            } else if i32::try_from(n).is_ok() {
                Ty::I32
            } else {
                Ty::I64
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

// ---------------------------------------------------------------------------------------------
// KafkaRecordConverter.convertValue, and Java's toString

/// A converted value: what the connector hands the SDK.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, as Java writes it (valid JSON).
    Num(String),
    /// A string.
    Str(String),
    /// A list.
    Arr(Vec<Out>),
    /// A map with string keys, in order.
    Obj(Vec<(String, Out)>),
}

/// `KafkaRecordConverter.convertValue` of a parsed header value.
pub fn converted(v: Cv) -> Out {
    match v {
        Cv::Null => Out::Null,
        Cv::Bool(b) => Out::Bool(b),
        Cv::Int(n, _) => Out::Num(n.to_string()),
        Cv::F32(f) => Out::Num(java_float(f64::from(f), &format!("{f:e}"))),
        Cv::F64(f) => Out::Num(java_float(f, &format!("{f:e}"))),
        Cv::Decimal(text, precision) if precision > 38 => Out::Str(text),
        Cv::Decimal(text, _) => Out::Num(text),
        Cv::Str(s) => Out::Str(s),
        Cv::Temporal(Ty::Time, ms) => {
            let of_day = ms.rem_euclid(86_400_000);
            Out::Str(format!(
                "{:02}:{:02}:{:02}.{:03}Z",
                of_day / 3_600_000,
                of_day / 60_000 % 60,
                of_day / 1000 % 60,
                of_day % 1000
            ))
        }
        Cv::Temporal(_, ms) => {
            let mut s = String::new();
            crate::formats::avro::write_iso_millis(&mut s, ms);
            Out::Str(s.trim_matches('"').to_owned())
        }
        Cv::Array(items) => Out::Arr(items.into_iter().map(converted).collect()),
        Cv::Map(entries, true) => Out::Obj(
            entries
                .into_iter()
                .map(|(k, v)| (converted(k).java_string(), converted(v)))
                .collect(),
        ),
        Cv::Map(entries, false) => Out::Arr(
            entries
                .into_iter()
                .map(|(k, v)| Out::Arr(vec![converted(k), converted(v)]))
                .collect(),
        ),
    }
}

/// Java's `Float.toString`/`Double.toString` of `f`, whose shortest digits Rust's `{:e}` gave
/// (`sci`, e.g. `3.1415927e0`): plain from 10^-3 to 10^7, else `d.dddE±n`.
fn java_float(f: f64, sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    let a = f.abs();
    if a == 0.0 {
        return format!("{sign}0.0");
    }
    if (1e-3..1e7).contains(&a) {
        let point = exp + 1; // digits before the point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if (point as usize) >= digits.len() {
            format!(
                "{sign}{digits}{}.0",
                "0".repeat(point as usize - digits.len())
            )
        } else {
            let (x, y) = digits.split_at(point as usize);
            format!("{sign}{x}.{y}")
        }
    } else {
        let (x, y) = digits.split_at(1);
        let y = if y.is_empty() { "0" } else { y };
        format!("{sign}{x}.{y}E{exp}")
    }
}

impl Out {
    /// Java's `String.valueOf` of the value (`AbstractMap.toString`, `AbstractCollection.toString`).
    pub fn java_string(&self) -> String {
        match self {
            Out::Null => "null".into(),
            Out::Bool(b) => b.to_string(),
            Out::Num(n) => n.clone(),
            Out::Str(s) => s.clone(),
            Out::Arr(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(Out::java_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Out::Obj(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.java_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The value as the SDK serializes it (Jackson).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Out::Null => out.extend_from_slice(b"null"),
            Out::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Out::Num(n) => out.extend_from_slice(n.as_bytes()),
            Out::Str(s) => write_json_str(out, s),
            Out::Arr(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_json(out);
                }
                out.push(b']');
            }
            Out::Obj(entries) => {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, k);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// Java's `String.valueOf` of the Connect value the `JsonConverter` (schemaless) makes of
/// `v`: objects are `HashMap`s (their hash order), integers `Long`, other numbers `Double`.
fn java_string_of_json(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() {
                    java_float(f, &format!("{f:e}"))
                } else {
                    n.to_string()
                }
            }
        },
        J::String(s) => s.clone(),
        J::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(java_string_of_json)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        J::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            let order = java_hash_map_order(&keys);
            format!(
                "{{{}}}",
                order
                    .into_iter()
                    .map(|i| format!("{}={}", keys[i], java_string_of_json(&m[keys[i].as_str()])))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// The order a `java.util.HashMap` of these (distinct) keys, inserted in order, iterates them
/// ([`crate::formats::json_schema::java_hash_map_order`] of their `String.hashCode`s).
fn java_hash_map_order(keys: &[&String]) -> Vec<usize> {
    let hashes: Vec<i32> = keys
        .iter()
        .map(|k| crate::formats::json_schema::java_string_hash(k))
        .collect();
    crate::formats::json_schema::java_hash_map_order(&hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's `RECORD_METADATA` value, flattened and structured.
    fn simple(text: &str) -> (String, String) {
        let mut flat = Vec::new();
        write_header(
            &mut flat,
            Some(text.as_bytes()),
            HeaderConverter::Simple,
            false,
        )
        .unwrap();
        let mut typed = Vec::new();
        write_header(
            &mut typed,
            Some(text.as_bytes()),
            HeaderConverter::Simple,
            true,
        )
        .unwrap();
        (
            String::from_utf8(flat).unwrap(),
            String::from_utf8(typed).unwrap(),
        )
    }

    #[test]
    fn simple_header_converter_values_as_connector_v4_writes_them() {
        // (header text, v4 flattened, v4 structured): the connector's e2e and unit tests and
        // the document's §11.
        for (text, flat, typed) in [
            ("value1", r#""value1""#, r#""value1""#),
            ("hello world", r#""hello world""#, r#""hello world""#),
            ("42", r#""42""#, "42"),
            ("true", r#""true""#, "true"),
            ("{}", r#""[]""#, "[]"),
            (r#"{"a":1}"#, r#""{a=1}""#, r#"{"a":1}"#),
            ("[1,2,3]", r#""[1, 2, 3]""#, "[1,2,3]"),
            ("1.50", r#""1.5""#, "1.5"),
            ("3.14159265358979", r#""3.1415927""#, "3.1415927"),
            (
                "2024-01-15",
                r#""2024-01-15T00:00:00.000Z""#,
                r#""2024-01-15T00:00:00.000Z""#,
            ),
            ("null", "null", "null"),
            (r#""hello""#, r#""\"hello\"""#, r#""\"hello\"""#),
            ("10:20:30.123Z", r#""10:20:30.123Z""#, r#""10:20:30.123Z""#),
            (
                "2024-01-15T10:20:30.123Z",
                r#""2024-01-15T10:20:30.123Z""#,
                r#""2024-01-15T10:20:30.123Z""#,
            ),
            ("1.0", r#""1""#, "1"),
            ("300", r#""300""#, "300"),
            ("[1, 2.5]", r#""[1.0, 2.5]""#, "[1.0,2.5]"),
            (r#"{1:"a"}"#, r#""[[1, a]]""#, r#"[[1,"a"]]"#),
            ("true}", r#""true}""#, r#""true}""#),
            (
                "12345678901234567890",
                r#""12345678901234567890""#,
                "12345678901234567890",
            ),
            ("1e20", r#""1.0E20""#, "1.0E20"),
            ("-0.0001", r#""-1.0E-4""#, "-1.0E-4"),
            ("", r#""""#, r#""""#),
            ("{a=1}", r#""{a=1}""#, r#""{a=1}""#),
        ] {
            assert_eq!(
                simple(text),
                (flat.to_owned(), typed.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_as_java_decodes_them() {
        let mut out = Vec::new();
        write_header(&mut out, Some(&[0xff]), HeaderConverter::Simple, false).unwrap();
        assert_eq!(out, "\"\u{fffd}\"".as_bytes());
        let mut out = Vec::new();
        write_key(&mut out, &[0xff, 0xfe], KeyConverter::String, None).unwrap();
        assert_eq!(out, ",\"key\":\"\u{fffd}\u{fffd}\"".as_bytes());
    }

    #[test]
    fn keys_by_converter() {
        let key = |k: &[u8], c| {
            let mut out = Vec::new();
            write_key(&mut out, k, c, None).map(|()| String::from_utf8(out).unwrap())
        };
        assert_eq!(
            key(b"{\"number\": \"0\"}", KeyConverter::Json).unwrap(),
            r#","key":{"number": "0"}"#
        );
        assert_eq!(key(b"123", KeyConverter::Json).unwrap(), r#","key":123"#);
        assert_eq!(key(b"null", KeyConverter::Json).unwrap(), "");
        assert!(key(b"{oops", KeyConverter::Json)
            .unwrap_err()
            .contains("not JSON"));
        assert_eq!(
            key(b"hello", KeyConverter::Bytes).unwrap(),
            r#","key":"aGVsbG8=""#
        );
        assert_eq!(
            key(&[0xff], KeyConverter::Raw).unwrap(),
            r#","key_base64":"/w==""#
        );
    }

    #[test]
    fn other_header_converters() {
        let h = |v: &[u8], c, s| {
            let mut out = Vec::new();
            write_header(&mut out, Some(v), c, s).map(|()| String::from_utf8(out).unwrap())
        };
        assert_eq!(
            h(b"hello", HeaderConverter::Bytes, true).unwrap(),
            r#""aGVsbG8=""#
        );
        assert_eq!(
            h(b"{\"a\":1}", HeaderConverter::String, true).unwrap(),
            r#""{\"a\":1}""#
        );
        assert_eq!(
            h(b"\"hello\"", HeaderConverter::Json, true).unwrap(),
            r#""hello""#
        );
        assert_eq!(
            h(b"\"hello\"", HeaderConverter::Json, false).unwrap(),
            r#""hello""#
        );
        assert_eq!(
            h(b"[1,2.50]", HeaderConverter::Json, false).unwrap(),
            r#""[1, 2.5]""#
        );
        assert!(h(b"{x", HeaderConverter::Json, true).is_err());
    }

    #[test]
    fn java_hash_map_order_is_javas() {
        // new HashMap<>() with "b", "a", "c" put in that order iterates a, b, c; "Aa" and "BB"
        // share a hash code and keep their insertion order.
        let k = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let keys = k(&["b", "a", "c"]);
        let refs: Vec<&String> = keys.iter().collect();
        assert_eq!(java_hash_map_order(&refs), vec![1, 0, 2]);
        let keys = k(&["BB", "Aa"]);
        let refs: Vec<&String> = keys.iter().collect();
        assert_eq!(java_hash_map_order(&refs), vec![0, 1]);
    }

    #[test]
    fn java_number_text() {
        assert_eq!(java_float(100.0, "1e2"), "100.0");
        assert_eq!(java_float(1e7, "1e7"), "1.0E7");
        assert_eq!(java_float(0.001, "1e-3"), "0.001");
        // Integral, but far past a long: a float when the scale is not 0, else a decimal.
        assert_eq!(parse_number("1e100"), Some(Cv::F64(1e100)));
        assert_eq!(
            parse_number("0000000000000000000000007"),
            Some(Cv::Int(7, Ty::I8))
        );
        assert_eq!(parse_number("1e20"), Some(Cv::F32(1e20)));
        assert_eq!(parse_number("1e400"), Some(Cv::Decimal("1E+400".into(), 1)));
        assert_eq!(
            parse_number("-123456789012345678901234567890"),
            Some(Cv::Decimal("-123456789012345678901234567890".into(), 30))
        );
        assert_eq!(parse_number("-0001.50e-10"), Some(Cv::F32(-1.5e-10)));
    }
}
