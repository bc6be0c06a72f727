//! A fixed amount of the `pipeline` bench's work (`benches/pipeline.rs`), for counting
//! instructions under valgrind, where criterion's timed loops would run a different number of
//! iterations each time: the bench's rows (same generator, same seed), appended through
//! `bench_internals::Pipeline` in the bench's calls until `MB` megabytes of NDJSON went in,
//! then the open batch sealed and compressed.
//!
//! ```sh
//! cargo build --profile bench --features bench-internals --example pipeline_fixed
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/pipeline_fixed zstd 10000 20
//! ```
//!
//! Arguments: `zstd` or `none`, the row size in bytes (the bench's 100, 1000, 10000), and the
//! megabytes of rows (0 runs the setup alone: subtract its count to leave the work).

use serde::Serialize;
use snowpipe_streaming::bench_internals::{Output, Pipeline};
use snowpipe_streaming::Compression;

#[derive(Serialize, Clone)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Row {
    id: u64,
    ts: String,
    name: String,
    score: f64,
    note: String,
}

/// `n` rows of about `size` bytes of NDJSON each, and their exact NDJSON size (as the bench).
fn rows(size: usize, n: usize) -> (Vec<Row>, u64) {
    let rows: Vec<Row> = (0..n as u64)
        .map(|i| {
            let base = Row {
                id: i * 7919,
                ts: format!("2026-01-01T09:{:02}:{:02}.{:06}", i % 60, (i / 60) % 60, i),
                name: format!("skier-{}", i % 1000),
                score: i as f64 / 3.0,
                note: String::new(),
            };
            let len = serde_json::to_vec(&base).map_or(0, |v| v.len()) + 1;
            let pad = size.saturating_sub(len);
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let note: String = (0..pad)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 32 {
                        0..=4 => ' ',
                        k => (b'a' + (k % 26) as u8) as char,
                    }
                })
                .collect();
            Row { note, ..base }
        })
        .collect();
    let bytes = rows
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len() as u64 + 1))
        .sum();
    (rows, bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: pipeline_fixed zstd|none ROW_BYTES MB";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [codec, size, mb] = args.as_slice() else {
        return Err(usage.into());
    };
    let compression = match codec.as_str() {
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        _ => return Err(usage.into()),
    };
    let size: usize = size.parse()?;
    let mb: u64 = mb.parse()?;
    // The bench's call: 1000 rows, or about 1 MB of rows when they are larger.
    let per_call = (1_000_000 / size.max(1)).clamp(1, 1000);
    let (batch, bytes) = rows(size, per_call);
    let calls = (mb * 1_000_000).div_ceil(bytes.max(1));
    let mut p = Pipeline::new(compression)?;
    let mut out = Output::default();
    for _ in 0..calls {
        p.append(batch.iter(), &mut out)?;
    }
    p.finish(&mut out)?;
    println!(
        "{codec} {size} B rows: {calls} calls of {per_call} rows ({bytes} B), {} requests, \
         {} B of NDJSON, {} B on the wire",
        out.requests, out.ndjson_bytes, out.body_bytes
    );
    Ok(())
}
