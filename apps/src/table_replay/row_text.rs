//! Rows written straight as JSON text: a source value as its column is sent ([`Mapped`], which
//! [`schema::map`](crate::table_replay::schema::map) decides), a row's fields ([`RowText`]) and
//! a page of rows with a token each ([`Page`]), appended as NDJSON.
//!
//! No `serde_json::Value` or map is built for a row: building, sorting and dropping them was
//! most of a snapshot's CPU beside the MariaDB client reading the same rows. A value is made
//! a `serde_json::Value` ([`Mapped::into_json`]) only where one is compared (`verify`), or a
//! row parsed back where one is measured past a megabyte (`row_size.rs`).

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value as Json;
use snowpipe_streaming::{OffsetToken, Positions, Rows};

/// One source value as the JSON its column is sent as.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped<'a> {
    /// SQL NULL: the field is left out of a row.
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    /// A JSON number, or its text when it is not finite (a JSON number cannot say NaN).
    F64(f64),
    /// Text of the source, checked UTF-8.
    Str(&'a str),
    /// Text made for the column (a time).
    Text(String),
    /// A date, `YYYY-MM-DD`.
    Date {
        y: u16,
        m: u8,
        d: u8,
    },
    /// A date and time, `YYYY-MM-DD HH:MM:SS.ffffff`; with `utc`, `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
    DateTime {
        date: (u16, u8, u8),
        time: (u8, u8, u8, u32),
        utc: bool,
    },
    /// Bytes as lowercase hex.
    Hex(&'a [u8]),
    /// A JSON column's value, parsed.
    Json(Json),
}

impl Mapped<'_> {
    /// The value as a `serde_json::Value` (`Null` for SQL NULL).
    pub fn into_json(self) -> Json {
        match self {
            Mapped::Null => Json::Null,
            Mapped::Bool(b) => Json::Bool(b),
            Mapped::I64(i) => Json::from(i),
            Mapped::U64(u) => Json::from(u),
            Mapped::F64(f) => serde_json::Number::from_f64(f)
                .map_or_else(|| Json::String(f.to_string()), Json::Number),
            Mapped::Str(s) => Json::String(s.to_owned()),
            Mapped::Text(s) => Json::String(s),
            date @ (Mapped::Date { .. } | Mapped::DateTime { .. }) => {
                let mut out = Vec::new();
                date.write(&mut out);
                // Digits and separators between two quotes: ASCII.
                Json::String(String::from_utf8_lossy(&out[1..out.len() - 1]).into_owned())
            }
            Mapped::Hex(b) => Json::String(hex(b)),
            Mapped::Json(j) => j,
        }
    }

    /// Writes the value's JSON text to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Mapped::Null => out.extend_from_slice(b"null"),
            Mapped::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Mapped::I64(i) => write_json(out, i),
            Mapped::U64(u) => write_json(out, u),
            Mapped::F64(f) if f.is_finite() => write_json(out, f),
            Mapped::F64(f) => write_json(out, &f.to_string()),
            Mapped::Str(s) => write_json(out, s),
            Mapped::Text(s) => write_json(out, s),
            Mapped::Date { y, m, d } => {
                out.push(b'"');
                write_date(out, (*y, *m, *d));
                out.push(b'"');
            }
            Mapped::DateTime { date, time, utc } => {
                let (h, mi, s, us) = *time;
                out.push(b'"');
                write_date(out, *date);
                out.push(if *utc { b'T' } else { b' ' });
                digits(out, u32::from(h), 2);
                out.push(b':');
                digits(out, u32::from(mi), 2);
                out.push(b':');
                digits(out, u32::from(s), 2);
                out.push(b'.');
                digits(out, us, 6);
                if *utc {
                    out.extend_from_slice(b"+00:00");
                }
                out.push(b'"');
            }
            Mapped::Hex(b) => {
                out.reserve(b.len() * 2 + 2);
                out.push(b'"');
                for byte in *b {
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xf)]);
                }
                out.push(b'"');
            }
            Mapped::Json(j) => write_json(out, j),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `YYYY-MM-DD`.
fn write_date(out: &mut Vec<u8>, (y, m, d): (u16, u8, u8)) {
    digits(out, u32::from(y), 4);
    out.push(b'-');
    digits(out, u32::from(m), 2);
    out.push(b'-');
    digits(out, u32::from(d), 2);
}

/// `n` in decimal, zero-padded to at least `width` digits (as `{n:0width$}` writes it).
fn digits(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let (mut n, mut at) = (n, buf.len());
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = at.min(buf.len() - width.min(buf.len()));
    out.extend_from_slice(&buf[start..]);
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len() * 2 + 2);
    Mapped::Hex(b).write(&mut out);
    // Hex digits between two quotes: ASCII.
    String::from_utf8_lossy(&out[1..out.len() - 1]).into_owned()
}

/// `value`'s JSON text (serde_json's: the same escapes and numbers as a row serialized whole).
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // A `Vec` takes every write, and these values (numbers, strings, a parsed JSON value)
    // always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// One row being written into a page: `{` on [`begin`](Self::begin), a field at a time, then
/// [`end`](Self::end) (`}` and a newline) or [`abandon`](Self::abandon) (the page as before).
pub struct RowText<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    fields: usize,
}

impl<'a> RowText<'a> {
    /// Starts a row at the end of `out`.
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        let start = out.len();
        out.push(b'{');
        Self {
            out,
            start,
            fields: 0,
        }
    }

    /// The field `name`: `value`; SQL NULL leaves it out (a JSON null in a VARIANT column
    /// would land as a VARIANT null, not NULL), and so does a JSON column's `null`, as the
    /// value it maps to is JSON null.
    pub fn field(&mut self, name: &str, value: &Mapped<'_>) {
        if !matches!(value, Mapped::Null | Mapped::Json(Json::Null)) {
            self.name(name);
            value.write(self.out);
        }
    }

    /// The field `name`: `value` serialized (the row's own columns, `_OP` and the like).
    pub fn field_json<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        self.name(name);
        write_json(self.out, value);
    }

    fn name(&mut self, name: &str) {
        if self.fields > 0 {
            self.out.push(b',');
        }
        self.fields += 1;
        write_json(self.out, name);
        self.out.push(b':');
    }

    /// Ends the row.
    pub fn end(self) {
        self.out.extend_from_slice(b"}\n");
    }

    /// Takes the row back out of the page.
    pub fn abandon(self) {
        self.out.truncate(self.start);
    }

    /// The row's text so far (from its `{`).
    pub fn text(&self) -> &[u8] {
        &self.out[self.start..]
    }
}

/// Rows as NDJSON text with a token each, for one append.
#[derive(Debug, Default)]
pub struct Page {
    text: Vec<u8>,
    tokens: Vec<OffsetToken>,
}

impl Page {
    /// A page for about `rows` rows of about `row_bytes` bytes.
    pub fn with_capacity(rows: usize, row_bytes: usize) -> Self {
        Self {
            text: Vec::with_capacity(rows.saturating_mul(row_bytes)),
            tokens: Vec::with_capacity(rows),
        }
    }

    /// Writes a row with `write` (which fills its fields and says whether it is kept) at
    /// `token`. A row `write` refuses leaves the page as it was.
    ///
    /// # Errors
    /// `write`'s.
    pub fn push<E>(
        &mut self,
        token: OffsetToken,
        write: impl FnOnce(&mut RowText<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut row = RowText::begin(&mut self.text);
        match write(&mut row) {
            Ok(()) => {
                row.end();
                self.tokens.push(token);
                Ok(())
            }
            Err(e) => {
                row.abandon();
                Err(e)
            }
        }
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The last row's token.
    pub fn last_token(&self) -> Option<&OffsetToken> {
        self.tokens.last()
    }

    /// The rows and their positions for [`Channel::append`](snowpipe_streaming::Channel::append):
    /// the text without spare capacity (the memory budget counts what the `Bytes` holds).
    pub fn into_append(mut self) -> (Rows, Positions) {
        self.text.shrink_to_fit();
        (
            Rows::ndjson(Bytes::from(self.text)),
            Positions::per_row(self.tokens),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_write_the_text_their_json_value_serializes_to() {
        let values = [
            Mapped::Null,
            Mapped::Bool(true),
            Mapped::I64(-7),
            Mapped::U64(u64::MAX),
            Mapped::F64(0.1),
            Mapped::F64(f64::NAN),
            Mapped::F64(f64::NEG_INFINITY),
            Mapped::Str("a \"quoted\"\n\u{1}é"),
            Mapped::Text("12:00:01".into()),
            Mapped::Date {
                y: 2026,
                m: 1,
                d: 2,
            },
            Mapped::DateTime {
                date: (12345, 12, 31),
                time: (23, 59, 7, 1234567),
                utc: true,
            },
            Mapped::Hex(&[0, 0xab, 0xff]),
            Mapped::Json(serde_json::json!({"b": [1, null, "x"], "a": 1.5})),
        ];
        for v in values {
            let mut out = Vec::new();
            v.write(&mut out);
            let written: Json = serde_json::from_slice(&out).unwrap();
            assert_eq!(written, v.clone().into_json(), "{v:?}");
        }
        assert_eq!(hex(&[0x0f, 0xa0]), "0fa0");
    }

    #[test]
    fn dates_and_times_are_written_as_format_writes_them() {
        let cases = [
            (0u16, 1u8, 1u8, 0u8, 0u8, 0u8, 0u32),
            (2026, 11, 29, 9, 5, 59, 999_999),
            (9999, 12, 31, 23, 59, 59, 7),
        ];
        for (y, m, d, h, mi, s, us) in cases {
            for utc in [false, true] {
                let v = Mapped::DateTime {
                    date: (y, m, d),
                    time: (h, mi, s, us),
                    utc,
                };
                let want = if utc {
                    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}+00:00")
                } else {
                    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
                };
                assert_eq!(v.into_json(), Json::String(want));
            }
            let want = format!("{y:04}-{m:02}-{d:02}");
            assert_eq!(Mapped::Date { y, m, d }.into_json(), Json::String(want));
        }
    }

    #[test]
    fn a_page_keeps_its_rows_and_drops_a_refused_one_whole() {
        let mut page = Page::default();
        let token = |n: u64| OffsetToken::from(n);
        page.push(token(1), |row| {
            row.field("A", &Mapped::I64(1));
            row.field("B", &Mapped::Null);
            row.field("C", &Mapped::Json(Json::Null));
            row.field_json("_OP", "c");
            Ok::<_, ()>(())
        })
        .unwrap();
        let refused = page.push(token(2), |row| {
            row.field("A", &Mapped::Str("half"));
            Err("refused")
        });
        assert_eq!(refused, Err("refused"));
        page.push(token(3), |_| Ok::<_, ()>(())).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page.last_token(), Some(&token(3)));
        assert_eq!(page.text, b"{\"A\":1,\"_OP\":\"c\"}\n{}\n");
    }
}
