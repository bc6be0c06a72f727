//! The Parquet files of `hostile_parquet`: good rows around a hostile row group, and files
//! whose schema or footer is the hostile part (written with the low-level writer where Arrow
//! cannot hold what a foreign producer can write).

use std::path::Path;
use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::column::writer::ColumnWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use snowpipe_streaming::arrow::arrow_array::types::Int32Type;
use snowpipe_streaming::arrow::arrow_array::{
    ArrayRef, BinaryArray, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::Rng;

use super::GOOD;

/// A batch of `ids` as `id` Int64 and `name` dictionary-encoded Utf8 (`name-<id>`).
pub(super) fn pq_good(ids: std::ops::RangeInclusive<i64>) -> RecordBatch {
    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(ids.clone()));
    let names: Vec<String> = ids.map(|i| format!("name-{i}")).collect();
    let name: DictionaryArray<Int32Type> = names.iter().map(String::as_str).collect();
    RecordBatch::try_from_iter([("id", id), ("name", Arc::new(name) as ArrayRef)]).unwrap()
}

/// A Parquet file: one row group of good rows, `hostile` (its own row group, same schema),
/// another of good rows.
pub(super) fn pq_around(path: &Path, base: i64, hostile: &RecordBatch) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(hostile.num_rows().max(GOOD as usize) + 1))
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, hostile.schema(), Some(props)).unwrap();
    for b in [
        &pq_good(base + 1..=base + GOOD as i64),
        hostile,
        &pq_good(base + GOOD as i64 + 1..=base + 2 * GOOD as i64),
    ] {
        w.write(b).unwrap();
        w.flush().unwrap();
    }
    w.close().unwrap();
}

/// A Parquet file of one row whose schema is `message` (written with the low-level writer:
/// Arrow cannot hold every schema a foreign producer can write): required INT64 columns hold
/// `id`, every optional leaf is null.
pub(super) fn pq_schema_row(path: &Path, message: &str, id: i64) {
    let schema = Arc::new(parse_message_type(message).expect("a valid message type"));
    let file = std::fs::File::create(path).unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    while let Some(mut col) = rg.next_column().unwrap() {
        let written = match col.untyped() {
            ColumnWriter::Int64ColumnWriter(t) => t.write_batch(&[id], None, None),
            ColumnWriter::Int32ColumnWriter(t) => {
                let repeated = t.get_descriptor().max_rep_level() > 0;
                t.write_batch(&[], Some(&[0]), repeated.then_some(&[0][..]))
            }
            ColumnWriter::ByteArrayColumnWriter(t) => t.write_batch(&[], Some(&[0]), None),
            _ => panic!("pq_schema_row writes INT64, INT32 and BYTE_ARRAY leaves only"),
        };
        written.unwrap();
        col.close().unwrap();
    }
    rg.close().unwrap();
    w.close().unwrap();
}

/// Writes the hostile Parquet file of `class`; returns whether good rows are in it.
pub(super) fn pq_file(class: Class, rng: &mut Rng, path: &Path, base: i64) -> (bool, String) {
    let id = base + 10 * GOOD as i64;
    match class {
        Class::Size => {
            // A dictionary claim: one 16 KiB value, repeated for many rows (item 5: 2.6 KB on
            // disk, 5.7 GB in memory). 8,000-12,000 rows: 125-190 MiB decoded from a few KB,
            // which a reader batching by encoded size holds at once. Since batches follow the
            // decoded size (item 5) the file loads, streamed: every decoded byte then crosses a
            // debug emulator, so 20,000-40,000 rows (0.3-0.6 GB) took past the 30 s wall limit.
            let rows = rng.range(8_000, 12_000) as usize;
            let keys = Int32Array::from(vec![0; rows]);
            let values = StringArray::from(vec!["v".repeat(16 << 10)]);
            let name = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap();
            let ids: ArrayRef = Arc::new(Int64Array::from(vec![id; rows]));
            let b = RecordBatch::try_from_iter([("id", ids), ("name", Arc::new(name) as ArrayRef)])
                .unwrap();
            pq_around(path, base, &b);
            (true, format!("{rows} rows of one 16 KiB dictionary value"))
        }
        Class::Depth => {
            // Optional and repeated groups (lists of structs of lists…), as item 6's 4 KB schema.
            let depth = rng.range(300, 600) as usize;
            let mut m = String::from("message m { required int64 id; ");
            for i in 0..depth {
                m.push_str(if i % 2 == 0 {
                    "optional group g { "
                } else {
                    "repeated group r { "
                });
            }
            m.push_str("optional int32 leaf; ");
            m.push_str(&"} ".repeat(depth));
            m.push('}');
            pq_schema_row(path, &m, id);
            (false, format!("a schema nested {depth} deep"))
        }
        Class::Count => {
            let n = rng.range(20_000, 50_000) as usize;
            let mut m = String::from("message m { ");
            for i in 0..n {
                m.push_str(&format!("optional int32 c{i}; "));
            }
            m.push('}');
            pq_schema_row(path, &m, id);
            (false, format!("{n} columns"))
        }
        Class::Number => {
            let edges = [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                f64::MAX,
                f64::MIN_POSITIVE / 2.0,
            ];
            let v = *rng.pick(&edges);
            let ids: ArrayRef = Arc::new(Float64Array::from(vec![v]));
            let note: ArrayRef = Arc::new(StringArray::from(vec!["edge"]));
            let b = RecordBatch::try_from_iter([("id", ids), ("note", note)]).unwrap();
            let props = WriterProperties::builder().build();
            let mut w = ArrowWriter::try_new(
                std::fs::File::create(path).unwrap(),
                b.schema(),
                Some(props),
            )
            .unwrap();
            w.write(&b).unwrap();
            w.close().unwrap();
            (false, format!("id {v}"))
        }
        Class::Encoding => {
            let bad = [
                b"a".as_slice(),
                gen::invalid_utf8(rng),
                gen::control_chars(rng),
            ]
            .concat();
            let ids: ArrayRef = Arc::new(Int64Array::from(vec![id]));
            let name: ArrayRef = Arc::new(BinaryArray::from(vec![bad.as_slice()]));
            let b = RecordBatch::try_from_iter([("id", ids), ("name", name)]).unwrap();
            let props = WriterProperties::builder().build();
            let mut w = ArrowWriter::try_new(
                std::fs::File::create(path).unwrap(),
                b.schema(),
                Some(props),
            )
            .unwrap();
            w.write(&b).unwrap();
            w.close().unwrap();
            (false, format!("invalid UTF-8 {bad:?} in a binary column"))
        }
        Class::Claim => {
            let b = pq_good(base + 10_000..=base + 10_100);
            pq_around(path, base, &b);
            let mut bytes = std::fs::read(path).unwrap();
            gen::corrupt_tail(&mut bytes, rng);
            std::fs::write(path, &bytes).unwrap();
            (false, "a damaged footer".to_owned())
        }
        Class::Reserved => {
            pq_schema_row(
                path,
                "message m { required int64 id; optional binary ID (UTF8); required int64 id; }",
                id,
            );
            (false, "the column id twice".to_owned())
        }
    }
}
