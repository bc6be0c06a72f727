//! Random Arrow batches against the same data as serde rows: random schemas (every kind of
//! column a table has: numbers, decimals of random precision and scale, floats with NaN and
//! ±∞, awkward text, booleans, bytes, dates across years 1 to 9999, times, timestamps without
//! a zone and in three zones, lists and structs), random sizes and random nulls. Each case's
//! batch goes to one table through `append_record_batch`, the rows — written independently
//! here, as JSON text a serde user would produce — to a twin table through `append_rows`; the
//! two tables must hold the same values, row by row, column by column.
//!
//! CI runs fixed seeds; `ARROW_RANDOM_SEED=N` tries another first seed and
//! `ARROW_RANDOM_CASES=N` more cases.

use crate::common;
use snowpipe_streaming::{Positions, Rows};

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone as _};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::value::RawValue;
use snowpipe_emulator::Emulator;
use snowpipe_streaming::arrow::arrow_array::builder::{Int32Builder, ListBuilder};
use snowpipe_streaming::arrow::arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, StructArray, Time64MicrosecondArray,
    TimestampMicrosecondArray, UInt64Array,
};
use snowpipe_streaming::arrow::arrow_schema::{DataType, Field};
use snowpipe_streaming::OffsetToken;

/// A column's kind: its Arrow type, its Snowflake type, how its values are drawn and written.
#[derive(Debug, Clone, Copy)]
enum Kind {
    I64,
    I32,
    U64,
    F64,
    Decimal(u8, i8),
    Text,
    Bool,
    Bytes,
    Date,
    Time,
    Naive,
    Zoned(&'static str),
    List,
    Struct,
}

const ZONES: [&str; 3] = ["UTC", "+05:30", "America/New_York"];

impl Kind {
    fn draw(rng: &mut ChaCha8Rng) -> Self {
        match rng.gen_range(0..14) {
            0 => Self::I64,
            1 => Self::I32,
            2 => Self::U64,
            3 => Self::F64,
            4 => {
                let p = rng.gen_range(1..=38u8);
                Self::Decimal(p, rng.gen_range(0..=p.min(12)) as i8)
            }
            5 => Self::Text,
            6 => Self::Bool,
            7 => Self::Bytes,
            8 => Self::Date,
            9 => Self::Time,
            10 => Self::Naive,
            11 => Self::Zoned(ZONES[rng.gen_range(0..ZONES.len())]),
            12 => Self::List,
            _ => Self::Struct,
        }
    }

    fn sql(self) -> String {
        match self {
            Self::I64 | Self::I32 | Self::U64 => "NUMBER".into(),
            Self::F64 => "FLOAT".into(),
            Self::Decimal(p, s) => format!("NUMBER({p},{s})"),
            Self::Text => "VARCHAR".into(),
            Self::Bool => "BOOLEAN".into(),
            Self::Bytes => "BINARY".into(),
            Self::Date => "DATE".into(),
            Self::Time => "TIME".into(),
            Self::Naive => "TIMESTAMP_NTZ".into(),
            Self::Zoned(_) => "TIMESTAMP_TZ".into(),
            Self::List => "ARRAY".into(),
            Self::Struct => "OBJECT".into(),
        }
    }
}

/// One column: its Arrow array and each row's JSON text (`null` for a null).
struct Column {
    array: ArrayRef,
    json: Vec<String>,
}

fn text(rng: &mut ChaCha8Rng) -> String {
    const PIECES: [&str; 12] = [
        "a",
        "Z",
        " ",
        "\"",
        "\\",
        "/",
        "\n",
        "\t",
        "\u{1}",
        "é",
        "✓",
        "\u{1F600}",
    ];
    (0..rng.gen_range(0..12))
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect()
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The unscaled `v` at `scale`, as decimal text written here (not by the SDK).
fn decimal_text(v: i128, scale: u32) -> String {
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale as usize + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale as usize);
    format!("{sign}{whole}.{fraction}")
}

/// `n` values of `kind`, each null with probability `nulls`.
fn column(kind: Kind, n: usize, nulls: f64, rng: &mut ChaCha8Rng) -> Column {
    let present: Vec<bool> = (0..n).map(|_| !rng.gen_bool(nulls)).collect();
    let json_or_null = |present: bool, text: String| if present { text } else { "null".into() };
    macro_rules! simple {
        ($array:ty, $draw:expr, $json:expr) => {{
            let values: Vec<Option<_>> = present
                .iter()
                .map(|&p| {
                    let v = $draw(&mut *rng);
                    p.then_some(v)
                })
                .collect();
            let json = values
                .iter()
                .map(|v| v.as_ref().map_or_else(|| "null".to_owned(), $json))
                .collect();
            (Arc::new(<$array>::from(values)) as ArrayRef, json)
        }};
    }
    let (array, json): (ArrayRef, Vec<String>) = match kind {
        Kind::I64 => simple!(
            Int64Array,
            |r: &mut ChaCha8Rng| r.gen::<i64>(),
            |v: &i64| v.to_string()
        ),
        Kind::I32 => simple!(
            Int32Array,
            |r: &mut ChaCha8Rng| r.gen::<i32>(),
            |v: &i32| v.to_string()
        ),
        Kind::U64 => simple!(
            UInt64Array,
            |r: &mut ChaCha8Rng| r.gen::<u64>(),
            |v: &u64| v.to_string()
        ),
        Kind::F64 => simple!(
            Float64Array,
            |r: &mut ChaCha8Rng| match r.gen_range(0..8) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => r.gen_range(-1e300..1e300),
                _ => r.gen_range(-1e6..1e6),
            },
            |v: &f64| if v.is_nan() {
                "\"NaN\"".to_owned()
            } else if v.is_infinite() {
                if *v > 0.0 { "\"inf\"" } else { "\"-inf\"" }.to_owned()
            } else {
                serde_json::to_string(v).unwrap()
            }
        ),
        Kind::Decimal(p, s) => {
            let max = 10i128.pow(u32::from(p)) - 1;
            let values: Vec<Option<i128>> = present
                .iter()
                .map(|&keep| {
                    let v = match rng.gen_range(0..4) {
                        0 => max,
                        1 => -max,
                        _ => rng.gen_range(-max..=max),
                    };
                    keep.then_some(v)
                })
                .collect();
            let json = values
                .iter()
                .map(|v| v.map_or_else(|| "null".into(), |v| decimal_text(v, s as u32)))
                .collect();
            let array = Decimal128Array::from(values)
                .with_precision_and_scale(p, s)
                .unwrap();
            (Arc::new(array) as ArrayRef, json)
        }
        Kind::Text => simple!(StringArray, text, |v: &String| quoted(v)),
        Kind::Bool => simple!(
            BooleanArray,
            |r: &mut ChaCha8Rng| r.gen::<bool>(),
            |v: &bool| v.to_string()
        ),
        Kind::Bytes => {
            let values: Vec<Option<Vec<u8>>> = present
                .iter()
                .map(|&keep| {
                    let len = rng.gen_range(0..12);
                    let v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                    keep.then_some(v)
                })
                .collect();
            let json = values
                .iter()
                .map(|v| {
                    v.as_ref().map_or_else(
                        || "null".into(),
                        |b| {
                            let mut hex = String::from("\"");
                            for byte in b {
                                let _ = write!(hex, "{byte:02x}");
                            }
                            hex + "\""
                        },
                    )
                })
                .collect();
            let array = BinaryArray::from_iter(values.iter().map(|v| v.as_deref()));
            (Arc::new(array) as ArrayRef, json)
        }
        Kind::Date => simple!(
            Date32Array,
            // Years 1 to 9999.
            |r: &mut ChaCha8Rng| r.gen_range(-719_162..2_932_896),
            |d: &i32| format!(
                "\"{}\"",
                (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                    + chrono::Duration::days(i64::from(*d)))
                .format("%Y-%m-%d")
            )
        ),
        Kind::Time => simple!(
            Time64MicrosecondArray,
            |r: &mut ChaCha8Rng| r.gen_range(0..86_400_000_000i64),
            |t: &i64| format!(
                "\"{}\"",
                NaiveTime::from_num_seconds_from_midnight_opt(
                    (t / 1_000_000) as u32,
                    (t % 1_000_000 * 1_000) as u32
                )
                .unwrap()
                .format("%H:%M:%S%.6f")
            )
        ),
        Kind::Naive => simple!(
            TimestampMicrosecondArray,
            // 1900 to 2200.
            |r: &mut ChaCha8Rng| r.gen_range(-2_208_988_800_000_000..7_258_118_400_000_000i64),
            |t: &i64| format!(
                "\"{}\"",
                DateTime::from_timestamp_micros(*t)
                    .unwrap()
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.6f")
            )
        ),
        Kind::Zoned(zone) => {
            let values: Vec<Option<i64>> = present
                .iter()
                .map(|&keep| {
                    keep.then_some(rng.gen_range(-2_208_988_800_000_000..7_258_118_400_000_000i64))
                })
                .collect();
            let json = values
                .iter()
                .map(|v| v.map_or_else(|| "null".into(), |t| zoned_text(t, zone)))
                .collect();
            let array = TimestampMicrosecondArray::from(values).with_timezone(zone);
            (Arc::new(array) as ArrayRef, json)
        }
        Kind::List => {
            let mut b = ListBuilder::new(Int32Builder::new());
            let mut json = Vec::with_capacity(n);
            for &keep in &present {
                let items: Vec<Option<i32>> = (0..rng.gen_range(0..5))
                    .map(|_| (!rng.gen_bool(0.2)).then(|| rng.gen()))
                    .collect();
                if keep {
                    json.push(serde_json::to_string(&items).unwrap());
                    b.append_value(items);
                } else {
                    json.push("null".into());
                    b.append_null();
                }
            }
            (Arc::new(b.finish()) as ArrayRef, json)
        }
        Kind::Struct => {
            let names: Vec<Option<String>> = (0..n)
                .map(|_| (!rng.gen_bool(0.3)).then(|| text(rng)))
                .collect();
            let counts: Vec<i64> = (0..n).map(|_| rng.gen()).collect();
            let json = (0..n)
                .map(|i| {
                    json_or_null(
                        present[i],
                        format!(
                            "{{\"name\":{},\"count\":{}}}",
                            names[i].as_deref().map_or("null".into(), quoted),
                            counts[i]
                        ),
                    )
                })
                .collect();
            let fields = vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("count", DataType::Int64, false),
            ];
            let array = StructArray::try_new(
                fields.into(),
                vec![
                    Arc::new(StringArray::from(names)) as ArrayRef,
                    Arc::new(Int64Array::from(counts)) as ArrayRef,
                ],
                Some(present.clone().into()),
            )
            .unwrap();
            (Arc::new(array) as ArrayRef, json)
        }
    };
    Column { array, json }
}

/// An instant in `zone` as ISO text with the zone's offset (chrono, not the SDK).
fn zoned_text(micros: i64, zone: &str) -> String {
    let utc = DateTime::from_timestamp_micros(micros).unwrap();
    let text = match zone {
        "UTC" => utc.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
        "+05:30" => utc
            .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap())
            .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string(),
        name => {
            let tz: chrono_tz::Tz = name.parse().unwrap();
            tz.from_utc_datetime(&utc.naive_utc())
                .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                .to_string()
        }
    };
    format!("\"{text}\"")
}

/// A case: its kinds, its batch and its rows.
struct Case {
    kinds: Vec<Kind>,
    batch: RecordBatch,
    rows: Vec<Box<RawValue>>,
}

fn case(seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let width = rng.gen_range(1..=10);
    let n = rng.gen_range(1..=120);
    let nulls = [0.0, 0.1, 0.5, 1.0][rng.gen_range(0..4)];
    let kinds: Vec<Kind> = (0..width).map(|_| Kind::draw(&mut rng)).collect();
    let columns: Vec<Column> = kinds
        .iter()
        .map(|&k| column(k, n, nulls, &mut rng))
        .collect();
    let batch = RecordBatch::try_from_iter(
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("C{i}"), c.array.clone())),
    )
    .unwrap();
    let rows = (0..n)
        .map(|r| {
            let mut line = format!("{{\"ID\":{r}");
            for (i, c) in columns.iter().enumerate() {
                let _ = write!(line, ",\"C{i}\":{}", c.json[r]);
            }
            line.push('}');
            RawValue::from_string(line).unwrap()
        })
        .collect();
    // The batch carries the row number too, so both tables order alike.
    let mut with_id: Vec<(String, ArrayRef)> = vec![(
        "ID".into(),
        Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef,
    )];
    with_id.extend(
        batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, a)| (f.name().clone(), a.clone())),
    );
    Case {
        kinds,
        batch: RecordBatch::try_from_iter(with_id).unwrap(),
        rows,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_batches_land_as_the_same_rows_appended_with_serde() {
    let first = env_u64("ARROW_RANDOM_SEED").unwrap_or(1);
    let count = env_u64("ARROW_RANDOM_CASES").unwrap_or(12);
    let cases: Vec<(u64, Case)> = (first..first + count).map(|s| (s, case(s))).collect();
    let mut ddl =
        String::from("CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH;");
    for (seed, case) in &cases {
        let columns: Vec<String> = std::iter::once("ID NUMBER".to_owned())
            .chain(
                case.kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("C{i} {}", k.sql())),
            )
            .collect();
        for prefix in ["A", "R"] {
            let _ = write!(
                ddl,
                " CREATE OR REPLACE TABLE {prefix}{seed} ({});",
                columns.join(", ")
            );
        }
    }
    let emu = Emulator::start(
        common::emulator::config_with_ddl(&ddl).with_commit_delay(Duration::from_millis(10)),
    )
    .await
    .unwrap();
    let client = common::emulator::builder(&emu).build().await.unwrap();
    for (seed, case) in &cases {
        let n = case.rows.len() as u64;
        let arrow = client
            .table_pipe("DB", "SCH", &format!("A{seed}"))
            .open_channel("arrow")
            .await
            .unwrap();
        let serde = client
            .table_pipe("DB", "SCH", &format!("R{seed}"))
            .open_channel("rows")
            .await
            .unwrap();
        arrow
            .append(
                Rows::arrow(case.batch.clone()),
                Positions::numbered(0..n).unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("seed {seed} {:?}: {e}", case.kinds));
        serde
            .append(
                Rows::serde(&case.rows),
                Positions::span(OffsetToken::from(0u64)..=OffsetToken::from(n - 1)),
            )
            .await
            .unwrap();
        common::emulator::close_committed([arrow, serde]).await;
        let select = |t: &str| format!("SELECT * FROM \"DB.SCH.{t}{seed}\" ORDER BY ID");
        let a = emu.query(&select("A")).unwrap();
        let r = emu.query(&select("R")).unwrap();
        assert_eq!(
            r.len() as u64,
            n,
            "seed {seed}: every serde row lands ({:?})",
            case.kinds
        );
        assert_eq!(
            a.len() as u64,
            n,
            "seed {seed}: every batch row lands ({:?})",
            case.kinds
        );
        for (row, (x, y)) in a.iter().zip(&r).enumerate() {
            assert_eq!(
                x, y,
                "seed {seed}, row {row}, kinds {:?}: batch vs rows",
                case.kinds
            );
        }
    }
    client.close().await.unwrap();
    emu.shutdown().await;
}
