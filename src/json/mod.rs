//! Rows to compact JSON: the same bytes `serde_json::to_writer` writes, with less CPU.
//!
//! Serializing rows is the SDK's second-largest CPU cost after zstd (a profile of the
//! throughput harness put serde_json at 28 % of the client's CPU, 19 % in its string
//! escaping alone; docs/PERFORMANCE.md). This serializer writes straight into a `Vec<u8>`,
//! copies each string eight bytes at a time while testing the words for escapes, writes a
//! struct field's `,"KEY":` in one piece ([`escape`]) and knows only the compact format:
//! about half serde_json's CPU on the harness's rows (0.46 against 0.96 CPU-s per GB of
//! NDJSON). It is not a second JSON dialect: every byte it writes is the byte
//! serde_json would write (tested on random values and on every escape) — except NaN and the
//! infinities, written `"NaN"`, `"inf"` and `"-inf"` (Snowflake's FLOAT takes them; serde_json's
//! `null` would land as SQL NULL; a row left to serde_json, below, still gets its `null`) —
//! and whatever it
//! does not do itself —
//! raw values (`serde_json::value::RawValue`), arbitrary-precision numbers, map keys other
//! than strings, chars, integers and unit variants, and any error a value's `Serialize`
//! raises — it hands back as [`Fallback`], and the caller serializes that row with serde_json
//! instead, so the result and the error messages are serde_json's. (Such a row's `Serialize`
//! then runs twice; an impl that can run only once — a `RefCell`'d iterator, say — should not
//! be combined with a raw value or a non-string map key in the same row.)

mod escape;
#[cfg(test)]
mod tests;

use serde::ser::{self, Impossible, Serialize};

use escape::write_between;
pub(crate) use escape::write_str;

/// "Serialize this row with serde_json instead": raised for the rare shapes this serializer
/// leaves to serde_json, and for every error (so the user sees serde_json's message).
#[derive(Debug)]
pub(crate) struct Fallback;

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Fallback {}

impl ser::Error for Fallback {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Self
    }
}

/// serde_json's private struct names for raw values and arbitrary-precision numbers.
const SERDE_JSON_TOKENS: [&str; 2] = [
    "$serde_json::private::RawValue",
    "$serde_json::private::Number",
];

type Result<T = ()> = std::result::Result<T, Fallback>;

/// Appends `value` to `out` as compact JSON, exactly as `serde_json::to_writer` would.
///
/// # Errors
/// [`Fallback`] when the value needs serde_json itself (see the module docs). `out` may then
/// hold part of the value: truncate it to its length before the call.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result {
    let mut w = Writer {
        out,
        refused: false,
    };
    value.serialize(&mut w)?;
    // A `Serialize` impl may ignore an error we raised and carry on; the row is serde_json's
    // to write then, whatever it returned.
    if w.refused {
        return Err(Fallback);
    }
    Ok(())
}

/// Appends `value` to `out` as compact JSON: by [`write()`], or by serde_json when `write`
/// leaves it to serde_json (so the bytes and the errors are always serde_json's).
///
/// # Errors
/// serde_json's error for a value it cannot serialize (`out` is then as it was).
pub(crate) fn write_or_fallback<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> serde_json::Result<()> {
    let start = out.len();
    if write(out, value).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    let result = serde_json::to_writer(&mut *out, value);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends `v` as rows write it: a JSON number (serde_json's shortest form), or for NaN and
/// the infinities the strings Snowflake's FLOAT takes.
#[cfg_attr(not(feature = "arrow"), allow(dead_code))]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    match non_finite(v) {
        Some(text) => out.extend_from_slice(text),
        None => {
            let _ = serde_json::to_writer(&mut *out, &v);
        }
    }
}

/// The JSON string Snowflake's FLOAT takes for a float that is not a number, or `None`.
fn non_finite(v: f64) -> Option<&'static [u8]> {
    if v.is_nan() {
        Some(br#""NaN""#)
    } else if v == f64::INFINITY {
        Some(br#""inf""#)
    } else if v == f64::NEG_INFINITY {
        Some(br#""-inf""#)
    } else {
        None
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// This serializer refused something (left it to serde_json): sticky, so an impl that
    /// swallows the error still gets the row written by serde_json.
    refused: bool,
}

impl Writer<'_> {
    fn refuse(&mut self) -> Fallback {
        self.refused = true;
        Fallback
    }

    fn int(&mut self, v: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// The ten integer methods of a `Serializer`, each `|self, value| body`.
/// The methods both serializers (rows and map keys) define alike: a unit variant is its name
/// as a string, a newtype struct is what it wraps.
macro_rules! transparent {
    () => {
        fn serialize_unit_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
        ) -> Result {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            value: &T,
        ) -> Result {
            value.serialize(self)
        }
    };
}

macro_rules! integers {
    (|$s:ident, $v:ident| $body:expr) => {
        integers!(@each [$s $v $body]
            serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64,
            serialize_i128 i128, serialize_u8 u8, serialize_u16 u16, serialize_u32 u32,
            serialize_u64 u64, serialize_u128 u128);
    };
    (@each [$s:ident $v:ident $body:expr] $($name:ident $t:ty),*) => {$(
        fn $name(self, value: $t) -> Result {
            let $s = self;
            let $v = value;
            $body
        }
    )*};
}

/// Where a compound value is: serde_json writes `[]`/`{}` at once for a stated length of 0
/// (and, should elements follow anyway, a comma before the first); this mirrors it.
#[derive(PartialEq, Eq, Clone, Copy)]
enum State {
    Empty,
    First,
    Rest,
}

struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    state: State,
}

impl<'w, 'a> Compound<'w, 'a> {
    fn open(w: &'w mut Writer<'a>, len: Option<usize>, open: u8, close: u8) -> Self {
        w.out.push(open);
        if len == Some(0) {
            w.out.push(close);
            return Self {
                w,
                state: State::Empty,
            };
        }
        Self {
            w,
            state: State::First,
        }
    }

    /// What goes before the next element or field: nothing before the first, `,` before
    /// the others (also after a stated length of 0, as serde_json writes it).
    #[inline]
    fn separator(&mut self) -> &'static [u8] {
        let first = self.state == State::First;
        self.state = State::Rest;
        if first {
            b""
        } else {
            b","
        }
    }

    #[inline]
    fn comma(&mut self) {
        if !self.separator().is_empty() {
            self.w.out.push(b',');
        }
    }

    fn close(self, close: u8) {
        if self.state != State::Empty {
            self.w.out.push(close);
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.comma();
        value.serialize(&mut *self.w)
    }

    /// `,"key":value` (no comma before the first field), the key written in one piece.
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result {
        let comma = self.separator();
        write_between(self.w.out, comma, key, b":");
        value.serialize(&mut *self.w)
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!(|w, v| {
        w.int(v);
        Ok(())
    });
    // Finite floats are serde_json's own (its float formatter has changed between versions;
    // the bytes must stay its bytes). NaN and the infinities are the one deliberate
    // difference: serde_json writes `null`, which would land as SQL NULL without a word;
    // Snowflake's FLOAT takes the strings below (docs/protocol.md, "Values").
    fn serialize_f32(self, v: f32) -> Result {
        match non_finite(f64::from(v)) {
            Some(text) => self.out.extend_from_slice(text),
            None => serde_json::to_writer(&mut *self.out, &v).map_err(|_| self.refuse())?,
        }
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result {
        match non_finite(v) {
            Some(text) => self.out.extend_from_slice(text),
            None => serde_json::to_writer(&mut *self.out, &v).map_err(|_| self.refuse())?,
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        self.out.push(b'[');
        for (i, b) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.int(*b);
        }
        self.out.push(b']');
        Ok(())
    }
    fn serialize_none(self) -> Result {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }
    transparent!();
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq> {
        Ok(Compound::open(self, len, b'[', b']'))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap> {
        Ok(Compound::open(self, len, b'{', b'}'))
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct> {
        if SERDE_JSON_TOKENS.contains(&name) {
            return Err(self.refuse());
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.serialize_map(Some(len))
    }
}

/// The three array-shaped compounds: each element after a comma, `]` at the end.
macro_rules! array_compound {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Fallback;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
                self.element(value)
            }
            fn end(self) -> Result {
                self.close(b']');
                Ok(())
            }
        }
    )*};
}

array_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        self.close_variant(b']')
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.comma();
        key.serialize(KeyWriter { w: &mut *self.w })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field(key, value)
    }
    fn end(self) -> Result {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field(key, value)
    }
    fn end(self) -> Result {
        self.close_variant(b'}')
    }
}

impl Compound<'_, '_> {
    /// Ends the inner array or object of a tuple or struct variant, then its wrapping object.
    fn close_variant(self, close: u8) -> Result {
        let w = self.w;
        if self.state != State::Empty {
            w.out.push(close);
        }
        w.out.push(b'}');
        Ok(())
    }
}

/// Map keys: serde_json writes strings, chars, integers (quoted) and unit variants; the rest
/// (it accepts a few more, or refuses them with its own message) is left to it.
struct KeyWriter<'w, 'a> {
    w: &'w mut Writer<'a>,
}

impl KeyWriter<'_, '_> {
    fn quoted_int(self, v: impl itoa::Integer) -> Result {
        self.w.out.push(b'"');
        self.w.int(v);
        self.w.out.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for KeyWriter<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Impossible<(), Fallback>;
    type SerializeTuple = Impossible<(), Fallback>;
    type SerializeTupleStruct = Impossible<(), Fallback>;
    type SerializeTupleVariant = Impossible<(), Fallback>;
    type SerializeMap = Impossible<(), Fallback>;
    type SerializeStruct = Impossible<(), Fallback>;
    type SerializeStructVariant = Impossible<(), Fallback>;

    fn serialize_str(self, v: &str) -> Result {
        write_str(self.w.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result {
        write_str(self.w.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    integers!(|k, v| k.quoted_int(v));
    transparent!();

    fn serialize_bool(self, _v: bool) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_f32(self, _v: f32) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_f64(self, _v: f64) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_none(self) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_unit(self) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result {
        Err(self.w.refuse())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(self.w.refuse())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(self.w.refuse())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(self.w.refuse())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(self.w.refuse())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(self.w.refuse())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(self.w.refuse())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(self.w.refuse())
    }
}
