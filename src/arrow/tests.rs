use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder, MapBuilder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    Decimal256Array, DictionaryArray, DurationSecondArray, FixedSizeBinaryArray,
    FixedSizeListArray, Float16Array, Float32Array, Float64Array, Int64Array, Int8Array,
    LargeStringArray, NullArray, RecordBatch, StringArray, StringViewArray, StructArray,
    Time32MillisecondArray, Time64NanosecondArray, TimestampMicrosecondArray, TimestampSecondArray,
    UInt64Array,
};
use arrow_buffer::i256;
use arrow_schema::{DataType, Field};

use super::encode;
use crate::binary::BinaryFormat;
use crate::Error;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn lines(batch: &RecordBatch, binary: BinaryFormat) -> Vec<String> {
    let out = encode(batch, Ok(binary)).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every line is one JSON object serde_json reads.
fn parsed(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn scalars_are_written_with_every_digit_and_nulls_as_null() {
    let b = batch(vec![
        (
            "I8",
            Arc::new(Int8Array::from(vec![Some(-128), None])) as ArrayRef,
        ),
        (
            "I64",
            Arc::new(Int64Array::from(vec![i64::MIN, i64::MAX])) as ArrayRef,
        ),
        (
            "U64",
            Arc::new(UInt64Array::from(vec![u64::MAX, 0])) as ArrayRef,
        ),
        (
            "F64",
            Arc::new(Float64Array::from(vec![0.1, f64::NAN])) as ArrayRef,
        ),
        (
            "F32",
            Arc::new(Float32Array::from(vec![f32::INFINITY, 1.5])) as ArrayRef,
        ),
        (
            "F16",
            Arc::new(Float16Array::from(vec![
                half::f16::NEG_INFINITY,
                half::f16::from_f32(0.5),
            ])) as ArrayRef,
        ),
        (
            "B",
            Arc::new(BooleanArray::from(vec![Some(true), None])) as ArrayRef,
        ),
        ("N", Arc::new(NullArray::new(2)) as ArrayRef),
        (
            "S",
            Arc::new(StringArray::from(vec![Some("a\"\n✓"), None])) as ArrayRef,
        ),
        (
            "LS",
            Arc::new(LargeStringArray::from(vec!["x", ""])) as ArrayRef,
        ),
        (
            "SV",
            Arc::new(StringViewArray::from(vec![
                "a string longer than twelve bytes",
                "v",
            ])) as ArrayRef,
        ),
    ]);
    assert_eq!(
        lines(&b, BinaryFormat::Hex),
        [
            r#"{"I8":-128,"I64":-9223372036854775808,"U64":18446744073709551615,"F64":0.1,"F32":"inf","F16":"-inf","B":true,"N":null,"S":"a\"\n✓","LS":"x","SV":"a string longer than twelve bytes"}"#,
            r#"{"I8":null,"I64":9223372036854775807,"U64":0,"F64":"NaN","F32":1.5,"F16":0.5,"B":null,"N":null,"S":null,"LS":"","SV":"v"}"#,
        ]
    );
}

#[test]
fn decimals_keep_their_scale_exactly() {
    let d128 = Decimal128Array::from(vec![Some(12_345), Some(-5), Some(0), None, Some(i128::MAX)])
        .with_precision_and_scale(38, 2)
        .unwrap();
    let negative_scale = Decimal128Array::from(vec![7, 0, -3, 1, 2])
        .with_precision_and_scale(10, -3)
        .unwrap();
    let d256 = Decimal256Array::from(vec![
        i256::from_i128(1),
        i256::from_i128(-123_456_789),
        i256::MAX,
        i256::ZERO,
        i256::MIN,
    ])
    .with_precision_and_scale(76, 4)
    .unwrap();
    let b = batch(vec![
        ("D", Arc::new(d128) as ArrayRef),
        ("NEG", Arc::new(negative_scale) as ArrayRef),
        ("W", Arc::new(d256) as ArrayRef),
    ]);
    let got = lines(&b, BinaryFormat::Hex);
    assert_eq!(got[0], r#"{"D":123.45,"NEG":7000,"W":0.0001}"#);
    assert_eq!(got[1], r#"{"D":-0.05,"NEG":0,"W":-12345.6789}"#);
    assert_eq!(got[3], r#"{"D":null,"NEG":1000,"W":0.0000}"#);
    assert!(got[4].starts_with(r#"{"D":1701411834604692317316873037158841057.27,"#));
    assert!(got[2].contains(&format!(r#""W":{}"#, {
        let digits = i256::MAX.to_string();
        format!(
            "{}.{}",
            &digits[..digits.len() - 4],
            &digits[digits.len() - 4..]
        )
    })));
    // Each is a JSON number serde_json reads.
    parsed(&got);
}

#[test]
fn bytes_follow_the_pipes_binary_format() {
    let b = batch(vec![
        (
            "BIN",
            Arc::new(BinaryArray::from(vec![Some(&[0xca, 0xfe][..]), None])) as ArrayRef,
        ),
        (
            "FIXED",
            Arc::new(
                FixedSizeBinaryArray::try_from_iter(
                    vec![b"hi".to_vec(), b"yo".to_vec()].into_iter(),
                )
                .unwrap(),
            ) as ArrayRef,
        ),
    ]);
    assert_eq!(
        lines(&b, BinaryFormat::Hex),
        [
            r#"{"BIN":"CAFE","FIXED":"6869"}"#,
            r#"{"BIN":null,"FIXED":"796F"}"#
        ]
    );
    assert_eq!(
        lines(&b, BinaryFormat::Base64)[0],
        r#"{"BIN":"yv4=","FIXED":"aGk="}"#
    );
    // UTF-8: text bytes go as text, others are refused naming the column and the row.
    let err = encode(&b, Ok(BinaryFormat::Utf8)).unwrap_err();
    match err {
        Error::Serialization {
            row_index, message, ..
        } => {
            assert_eq!(row_index, 0);
            assert!(
                message.contains("\"BIN\"") && message.contains("not UTF-8"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The format unknown: a batch with bytes is refused; one without goes.
    let why: Arc<str> = Arc::from("pipe-info failed: name BINARY_INPUT_FORMAT on the client");
    let err = encode(&b, Err(Arc::clone(&why))).unwrap_err().to_string();
    assert!(
        err.contains("BIN") && err.contains("pipe-info failed"),
        "{err}"
    );
    let no_bytes = batch(vec![("A", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]);
    assert_eq!(encode(&no_bytes, Err(why)).unwrap(), b"{\"A\":1}\n");
}

#[test]
fn dates_times_and_timestamps_are_text_the_columns_read() {
    let b = batch(vec![
        ("D32", Arc::new(Date32Array::from(vec![19_737])) as ArrayRef),
        (
            "D64",
            Arc::new(Date64Array::from(vec![1_705_312_800_000])) as ArrayRef,
        ),
        (
            "T32",
            Arc::new(Time32MillisecondArray::from(vec![49_530_123])) as ArrayRef,
        ),
        (
            "T64",
            Arc::new(Time64NanosecondArray::from(vec![49_530_123_456_789])) as ArrayRef,
        ),
        (
            "NTZ",
            Arc::new(TimestampMicrosecondArray::from(vec![1_705_312_800_000_001])) as ArrayRef,
        ),
        (
            "TZ",
            Arc::new(TimestampSecondArray::from(vec![1_705_312_800]).with_timezone("Asia/Kolkata"))
                as ArrayRef,
        ),
    ]);
    assert_eq!(
        lines(&b, BinaryFormat::Hex),
        [
            r#"{"D32":"2024-01-15","D64":"2024-01-15","T32":"13:45:30.123","T64":"13:45:30.123456789","NTZ":"2024-01-15 10:00:00.000001","TZ":"2024-01-15 15:30:00+05:30"}"#
        ]
    );
    // Year 10000 is refused with the column and row.
    let far = batch(vec![(
        "AT",
        Arc::new(TimestampSecondArray::from(vec![0, 253_402_300_800])) as ArrayRef,
    )]);
    match encode(&far, Ok(BinaryFormat::Hex)).unwrap_err() {
        Error::Serialization {
            row_index, message, ..
        } => {
            assert_eq!(row_index, 1);
            assert!(
                message.contains("\"AT\"") && message.contains("9999"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nested_values_are_json_arrays_and_objects() {
    // A list of ints with a null list and a null element.
    let mut list = ListBuilder::new(Int32Builder::new());
    list.append_value([Some(1), None, Some(3)]);
    list.append_null();
    list.append_value([]);
    let list = list.finish();
    // A struct with a nested string and a null row.
    let inner = StructArray::from(vec![
        (
            Arc::new(Field::new("city", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("Oslo"), None, Some("Lyon")])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("n", DataType::Int64, false)),
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        ),
    ]);
    let inner = StructArray::try_new(
        inner.fields().clone(),
        inner.columns().to_vec(),
        Some(vec![true, false, true].into()),
    )
    .unwrap();
    // A map of string keys, and a fixed-size list.
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    map.keys().append_value("a");
    map.values().append_value(1);
    map.keys().append_value("b\"");
    map.values().append_null();
    map.append(true).unwrap();
    map.append(false).unwrap();
    map.append(true).unwrap();
    let map = map.finish();
    let fixed = FixedSizeListArray::from_iter_primitive::<Int32Type, _, _>(
        vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![None, Some(4)]),
            None,
        ],
        2,
    );
    // Dictionary-encoded strings, one null.
    let dict: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("x")].into_iter().collect();
    let b = batch(vec![
        ("L", Arc::new(list) as ArrayRef),
        ("S", Arc::new(inner) as ArrayRef),
        ("M", Arc::new(map) as ArrayRef),
        ("F", Arc::new(fixed) as ArrayRef),
        ("DICT", Arc::new(dict) as ArrayRef),
    ]);
    assert_eq!(
        lines(&b, BinaryFormat::Hex),
        [
            r#"{"L":[1,null,3],"S":{"city":"Oslo","n":1},"M":{"a":1,"b\"":null},"F":[1,2],"DICT":"x"}"#,
            r#"{"L":null,"S":null,"M":null,"F":[null,4],"DICT":null}"#,
            r#"{"L":[],"S":{"city":"Lyon","n":3},"M":{},"F":null,"DICT":"x"}"#,
        ]
    );
}

#[test]
fn a_sliced_batch_writes_its_own_rows() {
    let mut list = ListBuilder::new(Int32Builder::new());
    for i in 0..6 {
        list.append_value([Some(i), Some(i * 10)]);
    }
    let fixed = FixedSizeListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..6).map(|i| Some(vec![Some(i)])),
        1,
    );
    let b = batch(vec![
        (
            "ID",
            Arc::new(Int64Array::from_iter_values(0..6)) as ArrayRef,
        ),
        ("L", Arc::new(list.finish()) as ArrayRef),
        ("F", Arc::new(fixed) as ArrayRef),
    ])
    .slice(2, 3);
    assert_eq!(
        lines(&b, BinaryFormat::Hex),
        [
            r#"{"ID":2,"L":[2,20],"F":[2]}"#,
            r#"{"ID":3,"L":[3,30],"F":[3]}"#,
            r#"{"ID":4,"L":[4,40],"F":[4]}"#,
        ]
    );
}

#[test]
fn map_keys_that_are_not_text_become_strings() {
    let mut map = MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
    map.keys().append_value(16);
    map.values().append_value("p");
    map.keys().append_value(-1);
    map.values().append_value("a");
    map.append(true).unwrap();
    let b = batch(vec![("M", Arc::new(map.finish()) as ArrayRef)]);
    assert_eq!(
        lines(&b, BinaryFormat::Hex),
        [r#"{"M":{"16":"p","-1":"a"}}"#]
    );
}

#[test]
fn types_snowflake_has_no_column_for_are_refused_naming_the_column_and_a_cast() {
    let b = batch(vec![
        ("OK", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        (
            "WAIT",
            Arc::new(DurationSecondArray::from(vec![5])) as ArrayRef,
        ),
    ]);
    let err = encode(&b, Ok(BinaryFormat::Hex)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"WAIT\"") && text.contains("Duration") && text.contains("Int64"),
        "{text}"
    );
}

#[test]
fn two_columns_of_one_name_are_refused() {
    let b = RecordBatch::try_new(
        Arc::new(arrow_schema::Schema::new(vec![
            Field::new("A", DataType::Int64, false),
            Field::new("A", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            Arc::new(Int64Array::from(vec![2])) as ArrayRef,
        ],
    )
    .unwrap();
    let err = encode(&b, Ok(BinaryFormat::Hex)).unwrap_err().to_string();
    assert!(err.contains("two columns are named \"A\""), "{err}");
}
