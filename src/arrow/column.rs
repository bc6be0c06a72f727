//! One writer per Arrow column, built once per batch from the column's type and called once
//! per row: each value goes from the column's buffers straight to JSON text, with no value
//! in between. Nested types (lists, structs, maps, dictionaries) hold the writers of their
//! children.

use std::sync::Arc;

use arrow_array::cast::AsArray as _;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Date64Type, Decimal128Type, Decimal256Type, Decimal32Type,
    Decimal64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, OffsetSizeTrait, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};

use super::temporal::{self, Zone};
use crate::binary::BinaryFormat;
use crate::json::write_str;

/// Why a column or a value cannot be written; the caller adds the column's name (and row).
pub(super) type Problem = String;

/// Writes one row's value of a column as JSON.
pub(super) trait WriteValue {
    /// Appends the value of row `row` (never null: [`Nullable`] handles nulls).
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem>;
}

/// A column's writer: `null` where the array is null, else the value.
pub(super) struct Nullable<'a> {
    array: &'a dyn Array,
    value: Box<dyn WriteValue + 'a>,
}

impl Nullable<'_> {
    /// Appends row `row` of the column.
    ///
    /// # Errors
    /// A value Snowflake cannot store (a date past year 9999, bytes that are not UTF-8 for a
    /// `UTF-8` pipe), described.
    pub(super) fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        if self.array.is_null(row) {
            out.extend_from_slice(b"null");
            Ok(())
        } else {
            self.value.write(row, out)
        }
    }
}

/// What a writer needs besides the column: the pipe's BINARY format (`Err`: why it is not
/// known, refused only when a column holds bytes).
#[derive(Clone)]
pub(super) struct Context {
    pub(super) binary: Result<BinaryFormat, Arc<str>>,
}

/// The writer of `array`, whose type is `array.data_type()`.
///
/// # Errors
/// A type Snowflake has no column for (durations, intervals, unions, run-end encoded and list
/// views), named with the fix; a zone arrow-rs does not know; bytes when the pipe's BINARY
/// format is not known.
pub(super) fn writer<'a>(array: &'a dyn Array, cx: &Context) -> Result<Nullable<'a>, Problem> {
    Ok(Nullable {
        array,
        value: value_writer(array, cx)?,
    })
}

fn value_writer<'a>(
    array: &'a dyn Array,
    cx: &Context,
) -> Result<Box<dyn WriteValue + 'a>, Problem> {
    Ok(match array.data_type() {
        DataType::Null => Box::new(Nulls),
        DataType::Boolean => Box::new(Booleans(array.as_boolean())),
        DataType::Int8 => int::<Int8Type>(array),
        DataType::Int16 => int::<Int16Type>(array),
        DataType::Int32 => int::<Int32Type>(array),
        DataType::Int64 => int::<Int64Type>(array),
        DataType::UInt8 => int::<UInt8Type>(array),
        DataType::UInt16 => int::<UInt16Type>(array),
        DataType::UInt32 => int::<UInt32Type>(array),
        DataType::UInt64 => int::<UInt64Type>(array),
        DataType::Float16 => Box::new(Floats(array.as_primitive::<Float16Type>(), |v| {
            f64::from(v.to_f32())
        })),
        DataType::Float32 => Box::new(Floats(array.as_primitive::<Float32Type>(), f64::from)),
        DataType::Float64 => Box::new(Floats(array.as_primitive::<Float64Type>(), |v| v)),
        DataType::Decimal32(_, s) => decimal::<Decimal32Type>(array, *s),
        DataType::Decimal64(_, s) => decimal::<Decimal64Type>(array, *s),
        DataType::Decimal128(_, s) => decimal::<Decimal128Type>(array, *s),
        DataType::Decimal256(_, s) => decimal::<Decimal256Type>(array, *s),
        DataType::Utf8 => Box::new(Strings(array.as_string::<i32>())),
        DataType::LargeUtf8 => Box::new(Strings(array.as_string::<i64>())),
        DataType::Utf8View => Box::new(Strings(array.as_string_view())),
        DataType::Binary => bytes(array.as_binary::<i32>(), cx)?,
        DataType::LargeBinary => bytes(array.as_binary::<i64>(), cx)?,
        DataType::BinaryView => bytes(array.as_binary_view(), cx)?,
        DataType::FixedSizeBinary(_) => bytes(array.as_fixed_size_binary(), cx)?,
        DataType::Date32 => Box::new(Dates(array.as_primitive::<Date32Type>(), i64::from)),
        DataType::Date64 => Box::new(Dates(array.as_primitive::<Date64Type>(), |ms| {
            ms.div_euclid(86_400_000)
        })),
        DataType::Time32(TimeUnit::Second) => time::<Time32SecondType>(array, TimeUnit::Second),
        DataType::Time32(_) => time::<Time32MillisecondType>(array, TimeUnit::Millisecond),
        DataType::Time64(TimeUnit::Microsecond) => {
            time::<Time64MicrosecondType>(array, TimeUnit::Microsecond)
        }
        DataType::Time64(_) => time::<Time64NanosecondType>(array, TimeUnit::Nanosecond),
        DataType::Timestamp(unit, tz) => {
            let zone = Zone::of(tz.as_deref())?;
            match unit {
                TimeUnit::Second => timestamp::<TimestampSecondType>(array, *unit, zone),
                TimeUnit::Millisecond => timestamp::<TimestampMillisecondType>(array, *unit, zone),
                TimeUnit::Microsecond => timestamp::<TimestampMicrosecondType>(array, *unit, zone),
                TimeUnit::Nanosecond => timestamp::<TimestampNanosecondType>(array, *unit, zone),
            }
        }
        DataType::List(_) => list(array.as_list::<i32>(), cx)?,
        DataType::LargeList(_) => list(array.as_list::<i64>(), cx)?,
        DataType::FixedSizeList(_, size) => {
            let a = array.as_fixed_size_list();
            Box::new(FixedList {
                size: usize::try_from(*size).unwrap_or(0),
                offset: a.offset(),
                values: writer(a.values().as_ref(), cx)?,
            })
        }
        DataType::Struct(fields) => {
            let a = array.as_struct();
            let mut columns = Vec::with_capacity(fields.len());
            for (field, column) in fields.iter().zip(a.columns()) {
                columns.push((
                    key_text(field.name()),
                    writer(column.as_ref(), cx)
                        .map_err(|e| format!("field {:?}: {e}", field.name()))?,
                ));
            }
            Box::new(Struct(columns))
        }
        DataType::Map(_, _) => {
            let a = array.as_map();
            Box::new(Map {
                offsets: a.value_offsets(),
                string_keys: is_text(a.keys().data_type()),
                keys: writer(a.keys().as_ref(), cx)?,
                values: writer(a.values().as_ref(), cx)?,
            })
        }
        DataType::Dictionary(_, _) => {
            let a = array.as_any_dictionary();
            Box::new(Dictionary {
                keys: a.normalized_keys(),
                values: writer(a.values().as_ref(), cx)?,
            })
        }
        other @ (DataType::Duration(_) | DataType::Interval(_)) => {
            return Err(format!(
                "{other} has no Snowflake column type: cast it to Int64 (a count of its unit) \
                 or to a string first"
            ))
        }
        other => {
            return Err(format!(
                "{other} is not written (Snowflake has no column for it as such): cast it to \
                 a type it has (a List, a Struct, its values' type) first"
            ))
        }
    })
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// `"name":` as JSON text.
fn key_text(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 3);
    write_str(&mut out, name);
    out.push(b':');
    out
}

struct Nulls;

impl WriteValue for Nulls {
    fn write(&self, _: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        out.extend_from_slice(b"null");
        Ok(())
    }
}

struct Booleans<'a>(&'a arrow_array::BooleanArray);

impl WriteValue for Booleans<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        out.extend_from_slice(if self.0.value(row) { b"true" } else { b"false" });
        Ok(())
    }
}

fn int<'a, T>(array: &'a dyn Array) -> Box<dyn WriteValue + 'a>
where
    T: ArrowPrimitiveType,
    T::Native: itoa::Integer,
{
    Box::new(Ints(array.as_primitive::<T>()))
}

struct Ints<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>);

impl<T> WriteValue for Ints<'_, T>
where
    T: ArrowPrimitiveType,
    T::Native: itoa::Integer,
{
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        out.extend_from_slice(itoa::Buffer::new().format(self.0.value(row)).as_bytes());
        Ok(())
    }
}

/// Floats as JSON numbers (serde_json's shortest form); NaN and the infinities as the strings
/// Snowflake's FLOAT takes (`"NaN"`, `"inf"`, `"-inf"`), as rows write them.
struct Floats<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>, fn(T::Native) -> f64);

impl<T: ArrowPrimitiveType> WriteValue for Floats<'_, T> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        let v = (self.1)(self.0.value(row));
        crate::json::write_f64(out, v);
        Ok(())
    }
}

fn decimal<'a, T>(array: &'a dyn Array, scale: i8) -> Box<dyn WriteValue + 'a>
where
    T: ArrowPrimitiveType,
    T::Native: Digits,
{
    Box::new(Decimals {
        array: array.as_primitive::<T>(),
        scale,
    })
}

/// A decimal's unscaled integer as its digits (with the sign), without an allocation for the
/// native integers.
pub(super) trait Digits {
    fn digits<R>(&self, f: impl FnOnce(&str) -> R) -> R;
}

macro_rules! digits_by_itoa {
    ($($t:ty),*) => {$(
        impl Digits for $t {
            fn digits<R>(&self, f: impl FnOnce(&str) -> R) -> R {
                f(itoa::Buffer::new().format(*self))
            }
        }
    )*};
}
digits_by_itoa!(i32, i64, i128);

impl Digits for arrow_buffer::i256 {
    fn digits<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(&self.to_string())
    }
}

/// Decimals as JSON numbers with every digit (`123.45` for 12345 at scale 2; a negative scale
/// adds zeros): a NUMBER(p,s) column takes the text exactly.
struct Decimals<'a, T: ArrowPrimitiveType> {
    array: &'a PrimitiveArray<T>,
    scale: i8,
}

impl<T> WriteValue for Decimals<'_, T>
where
    T: ArrowPrimitiveType,
    T::Native: Digits,
{
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        self.array
            .value(row)
            .digits(|d| write_decimal(out, d, self.scale));
        Ok(())
    }
}

/// The unscaled integer `digits` (with its sign) at `scale`, as a JSON number.
pub(super) fn write_decimal(out: &mut Vec<u8>, digits: &str, scale: i8) {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", digits),
    };
    out.extend_from_slice(sign.as_bytes());
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        if digits != "0" {
            out.extend(std::iter::repeat_n(b'0', usize::from(scale.unsigned_abs())));
        }
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(whole.as_bytes());
        out.push(b'.');
        out.extend_from_slice(fraction.as_bytes());
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits.as_bytes());
    }
}

/// Text columns (`Utf8`, `LargeUtf8`, `Utf8View`).
struct Strings<A>(A);

impl<'a, A> WriteValue for Strings<A>
where
    A: arrow_array::ArrayAccessor<Item = &'a str>,
{
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        write_str(out, self.0.value(row));
        Ok(())
    }
}

fn bytes<'a, A>(array: A, cx: &Context) -> Result<Box<dyn WriteValue + 'a>, Problem>
where
    A: arrow_array::ArrayAccessor<Item = &'a [u8]> + 'a,
{
    let format = cx.binary.clone().map_err(|why| why.to_string())?;
    Ok(Box::new(Bytes { array, format }))
}

/// Bytes in the pipe's BINARY format (`src/binary.rs`): hex, base64, or UTF-8 text.
struct Bytes<A> {
    array: A,
    format: BinaryFormat,
}

impl<'a, A> WriteValue for Bytes<A>
where
    A: arrow_array::ArrayAccessor<Item = &'a [u8]>,
{
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        crate::binary::write_json(out, self.array.value(row), self.format)
    }
}

/// Dates from days since the epoch (`Date64`'s milliseconds are cut to their day).
struct Dates<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>, fn(T::Native) -> i64);

impl<T: ArrowPrimitiveType> WriteValue for Dates<'_, T> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        temporal::date(out, (self.1)(self.0.value(row)))
    }
}

fn time<'a, T>(array: &'a dyn Array, unit: TimeUnit) -> Box<dyn WriteValue + 'a>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    Box::new(Times(array.as_primitive::<T>(), unit))
}

struct Times<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>, TimeUnit);

impl<T> WriteValue for Times<'_, T>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        temporal::time(out, self.0.value(row).into(), self.1)
    }
}

fn timestamp<'a, T>(array: &'a dyn Array, unit: TimeUnit, zone: Zone) -> Box<dyn WriteValue + 'a>
where
    T: ArrowPrimitiveType<Native = i64>,
{
    Box::new(Timestamps(array.as_primitive::<T>(), unit, zone))
}

struct Timestamps<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>, TimeUnit, Zone);

impl<T: ArrowPrimitiveType<Native = i64>> WriteValue for Timestamps<'_, T> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        temporal::timestamp(out, self.0.value(row), self.1, &self.2)
    }
}

fn list<'a, O: OffsetSizeTrait>(
    array: &'a arrow_array::GenericListArray<O>,
    cx: &Context,
) -> Result<Box<dyn WriteValue + 'a>, Problem> {
    Ok(Box::new(List {
        offsets: array.value_offsets(),
        values: writer(array.values().as_ref(), cx)?,
    }))
}

/// A list's values `offsets[row]..offsets[row + 1]` as a JSON array.
struct List<'a, O> {
    offsets: &'a [O],
    values: Nullable<'a>,
}

fn write_elements(
    out: &mut Vec<u8>,
    range: std::ops::Range<usize>,
    values: &Nullable<'_>,
) -> Result<(), Problem> {
    out.push(b'[');
    for (i, at) in range.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        values.write(at, out)?;
    }
    out.push(b']');
    Ok(())
}

impl<O: OffsetSizeTrait> WriteValue for List<'_, O> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        let range = self.offsets[row].as_usize()..self.offsets[row + 1].as_usize();
        write_elements(out, range, &self.values)
    }
}

/// A fixed-size list: row `row` holds values `(offset + row) * size ..` of the child.
struct FixedList<'a> {
    size: usize,
    offset: usize,
    values: Nullable<'a>,
}

impl WriteValue for FixedList<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        let start = (self.offset + row) * self.size;
        write_elements(out, start..start + self.size, &self.values)
    }
}

/// A struct as a JSON object, its fields in the schema's order.
struct Struct<'a>(Vec<(Vec<u8>, Nullable<'a>)>);

impl WriteValue for Struct<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        out.push(b'{');
        for (i, (key, column)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            column.write(row, out)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// A map as a JSON object: text keys as they are, other keys as their JSON text in a string
/// (`{"1": …}`: an OBJECT's keys are strings). A null key is refused (Arrow forbids them).
struct Map<'a> {
    offsets: &'a [i32],
    string_keys: bool,
    keys: Nullable<'a>,
    values: Nullable<'a>,
}

impl WriteValue for Map<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        let at = |i: usize| usize::try_from(self.offsets[i]).unwrap_or(0);
        let range = at(row)..at(row + 1);
        out.push(b'{');
        let mut key = Vec::new();
        for (i, at) in range.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if self.keys.array.is_null(at) {
                return Err(
                    "a map key is null (Arrow's maps have none; the array is invalid)".into(),
                );
            }
            if self.string_keys {
                self.keys.write(at, out)?;
            } else {
                // The key's JSON text, in a string unless it is one (a date, bytes).
                key.clear();
                self.keys.write(at, &mut key)?;
                if key.len() >= 2 && key.starts_with(b"\"") && key.ends_with(b"\"") {
                    out.extend_from_slice(&key);
                } else {
                    write_str(out, &String::from_utf8_lossy(&key));
                }
            }
            out.push(b':');
            self.values.write(at, out)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// A dictionary by its values (`normalized_keys`: each row's index into the values).
struct Dictionary<'a> {
    keys: Vec<usize>,
    values: Nullable<'a>,
}

impl WriteValue for Dictionary<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        self.values.write(self.keys[row], out)
    }
}
