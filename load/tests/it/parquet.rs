//! Parquet through parquet's Arrow reader: lands once, resumes by rows.

use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use snowpipe_streaming::arrow::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};

use crate::common::Lab;

pub(crate) fn write_parquet(path: &std::path::Path, ids: std::ops::Range<i64>, row_group: usize) {
    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(ids.clone()));
    let name: ArrayRef = Arc::new(StringArray::from_iter(
        ids.map(|i| (i % 7 != 0).then(|| format!("name-{i}"))),
    ));
    let batch = RecordBatch::try_from_iter([("id", id), ("name", name)]).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_lands_once_and_a_rerun_adds_nothing() {
    let lab = Lab::new();
    let file = lab.path("t.parquet");
    write_parquet(&file, 0..20_000, 3_000);
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(s["rows"], 20_000, "{s}");
    let f = &s["per_file"][0];
    assert_eq!(f["end_position"], 20_000);
    assert!(
        f["committed_token"].as_str().unwrap().starts_with("pq1:"),
        "{f}"
    );
    assert_eq!(lab.counts(), (20_000, 20_000));
    let rows = lab.rows("ID, NAME");
    assert_eq!(rows[7][1], serde_json::Value::Null);
    assert_eq!(rows[8][1], "name-8");
    assert_eq!(lab.load(&[&file], &[]).ok()["rows"], 0);
    // Rewritten with other rows: loaded anew.
    write_parquet(&file, 100_000..100_500, 3_000);
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(
        (s["rows"].as_u64(), s["per_file"][0]["replaced"].as_bool()),
        (Some(500), Some(true))
    );
    assert_eq!(lab.counts(), (20_500, 20_500));
}

#[cfg(unix)]
#[test]
fn sigkill_mid_parquet_load_then_rerun_writes_every_row_once() {
    let lab = Lab::new();
    let file = lab.path("big.parquet");
    write_parquet(&file, 0..300_000, 20_000);
    let killed_at = crate::crash::kill_and_rerun(&lab, &[&file], &[1, 50_000, 50_000]);
    assert!(
        killed_at.iter().any(|&n| n > 0 && n < 300_000),
        "no kill landed mid-load: {killed_at:?}"
    );
    assert_eq!(lab.counts(), (300_000, 300_000), "killed at {killed_at:?}");
}
