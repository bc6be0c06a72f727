use super::*;
use std::time::Duration;

pub(crate) const META: RowOptions = RowOptions {
    metadata: true,
    max_row_bytes: 1 << 20,
    layout: crate::rows::layout::Layout::DEFAULT,
};

pub(crate) fn record<'a>(
    offset: i64,
    value: Option<&'a [u8]>,
    headers: &'a [(&'a [u8], Option<&'a [u8]>)],
) -> Record<'a> {
    Record {
        topic: "t",
        partition: 0,
        offset: KafkaOffset::new(offset),
        key: Some(b"k"),
        value,
        timestamp: Some((TimestampKind::CreateTime, 5)),
        headers,
    }
}

/// Adds `r` as the router does.
pub(crate) fn push(b: &mut Batch, r: &Record<'_>) {
    let mut meta = Vec::new();
    match crate::rows::record::metadata_of(r, META, &mut meta) {
        Ok(_) => b.push(r, Some(&meta), true, &META),
        Err(_) => b.push(r, None, false, &META),
    }
}

/// Whatever a producer writes, a message takes no more of its batch's buffers than the
/// router planned for it (`layout::row_len`, `layout::side_len`), so what the budget
/// charged is what is held: values that are no rows (arrays, strings, binary, text that
/// is not UTF-8 or too long), blanks around the `{`, tombstones, in every layout.
#[test]
fn a_message_takes_no_more_of_its_batch_than_the_router_planned() {
    use crate::rows::layout::{Layout, LayoutKind, OnNullValue, ValueText};
    let mut x: u64 = 0x00c0_ffee;
    let mut next = move |n: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n
    };
    let pieces: [&[u8]; 12] = [
        b"{",
        b"}",
        b" ",
        b"\n",
        b"\t",
        b"[1,2]",
        b"\"s\"",
        b"\xff\xfe",
        b"null",
        b"\"a\":1",
        b"\x00",
        b"7",
    ];
    for kind in [LayoutKind::Columns, LayoutKind::RecordContent] {
        for value_text in [ValueText::Json, ValueText::Text] {
            for on_null in [
                OnNullValue::Write,
                OnNullValue::Skip,
                OnNullValue::DeadLetter,
            ] {
                for metadata in [false, true] {
                    let options = RowOptions {
                        metadata,
                        max_row_bytes: 600,
                        layout: Layout {
                            kind,
                            value_text,
                            on_null,
                            ..Layout::DEFAULT
                        },
                    };
                    for _ in 0..300 {
                        let mut value = Vec::new();
                        let repeat = if next(8) == 0 { 200 } else { 1 };
                        for _ in 0..next(12) {
                            let piece = pieces[next(12) as usize];
                            for _ in 0..repeat {
                                value.extend_from_slice(piece);
                            }
                        }
                        let value = (next(10) != 0).then_some(&value[..]);
                        let r = record(1, value, &[]);
                        let mut meta = Vec::new();
                        let meta = metadata.then(|| {
                            crate::rows::record::metadata_of(&r, options, &mut meta).unwrap();
                            &meta[..]
                        });
                        let row = crate::rows::row::row_len(value, meta.map(<[u8]>::len), &options);
                        let side =
                            1 + crate::rows::row::side_len(value, meta.is_some(), row, &options);
                        let budget = Arc::new(Budget::new(64 << 20));
                        let held = Arc::new(AtomicUsize::new(0));
                        let mut b = Batch::new(16, 16, &Arc::default(), &budget, &held);
                        b.push(&r, meta, true, &options);
                        let what = format!("{value:?} in {options:?}");
                        assert!(
                            b.rows.len() <= row,
                            "rows: {} > {row}: {what}",
                            b.rows.len()
                        );
                        assert!(
                            b.side.len() <= side,
                            "side: {} > {side}: {what}",
                            b.side.len()
                        );
                    }
                }
            }
        }
    }
}

/// A buffer that grows all the same is charged: the budget sees every byte held.
#[test]
fn a_buffer_that_grows_is_charged_for_it() {
    let budget = Arc::new(Budget::new(64 << 20));
    let held = Arc::new(AtomicUsize::new(0));
    let mut b = Batch::new(16, 16, &Arc::default(), &budget, &held);
    let before = budget.used();
    let big = vec![b'['; 300 << 10];
    push(&mut b, &record(1, Some(&big), &[]));
    assert!(b.side.capacity() >= big.len());
    assert!(
        budget.used() >= before + big.len() - (16 << 10),
        "{}",
        budget.used()
    );
    assert_eq!(held.load(Ordering::Relaxed), budget.used());
    drop(b);
    assert_eq!((budget.used(), held.load(Ordering::Relaxed)), (0, 0));
}

#[test]
fn a_batch_holds_rows_as_ndjson_and_gives_up_only_the_ones_that_are_not_rows() {
    let budget = Arc::new(Budget::new(1 << 20));
    let held = Arc::new(AtomicUsize::new(0));
    let mut b = Batch::new(4096, 1024, &Arc::default(), &budget, &held);
    let charged = budget.used();
    assert!(charged >= 4096 + 1024);
    assert_eq!(held.load(Ordering::Relaxed), charged);
    let h: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"v")), (b"n", None)];
    let bad_key: &[(&[u8], Option<&[u8]>)] = &[(b"\xff", Some(b"v"))];
    push(&mut b, &record(7, Some(b" {\"a\":\n1}"), h));
    push(&mut b, &record(8, Some(b"{\"a\":"), &[]));
    push(&mut b, &record(9, None, &[]));
    push(&mut b, &record(10, Some(b"[1]"), &[]));
    push(&mut b, &record(11, Some(b"{}"), bad_key));
    push(&mut b, &record(12, Some(b"{ }"), &[]));
    let values: Vec<_> = (0..b.len())
        .map(|i| b.get(i).value().map(|v| v.into_owned()))
        .collect();
    assert_eq!(
        values,
        [
            Some(b" {\"a\":\n1}".to_vec()),
            Some(b"{\"a\":".to_vec()),
            None,
            Some(b"[1]".to_vec()),
            Some(b"{}".to_vec()),
            Some(b"{ }".to_vec())
        ],
        "every value as the producer wrote it"
    );
    let headers: Vec<_> = b.get(0).headers().collect();
    assert_eq!(headers, [(&b"h"[..], Some(&b"v"[..])), (&b"n"[..], None)]);
    let keep: Vec<bool> = (0..b.len()).map(|i| b.finish(i, 1 << 20)).collect();
    // The tombstone (9) is a row of `RECORD_METADATA` alone (`--on-null-value write`).
    assert_eq!(keep, [true, false, true, false, false, true]);
    let rows = b.into_taken(&keep);
    assert_eq!(rows.tokens, [7, 9, 12]);
    let text = String::from_utf8(rows.ndjson.to_vec()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["a"], 1);
    assert_eq!(lines[0]["RECORD_METADATA"]["offset"], 7);
    assert_eq!(lines[0]["RECORD_METADATA"]["headers"]["h"], "v");
    assert_eq!(lines[1].as_object().unwrap().len(), 1, "{text}");
    assert_eq!(lines[1]["RECORD_METADATA"]["offset"], 9);
    assert_eq!(lines[2]["RECORD_METADATA"]["offset"], 12);
    assert_eq!(text.matches('\n').count(), 3, "one line each: {text}");
    drop(rows);
    assert_eq!((budget.used(), held.load(Ordering::Relaxed)), (0, 0));
}

#[test]
fn the_pool_hands_out_its_sizes_and_keeps_what_comes_back_within_its_bound() {
    assert_eq!(size_for(1), Some(0), "16 KB");
    assert_eq!(size_for(40 << 10), Some(2), "64 KB");
    assert_eq!(size_for(BATCH_BYTES), Some(SIZES - 1));
    assert_eq!(size_for(BATCH_BYTES + 1), None);
    assert_eq!(size_index(64 << 10), Some(2));
    assert_eq!(size_index(40 << 10), None, "not one of the sizes");
    let pool = Pool::default();
    let big = pool.take(1 << 20);
    assert_eq!(
        big.capacity(),
        1 << 20,
        "a row larger than any size gets its own"
    );
    pool.give(big);
    let mut a = pool.take(40 << 10);
    assert_eq!(a.capacity(), 64 << 10);
    a.extend_from_slice(b"rows");
    let at = a.as_ptr();
    pool.give(a);
    let again = pool.take(33 << 10);
    assert_eq!(
        (again.as_ptr(), again.len()),
        (at, 0),
        "the same buffer, emptied"
    );
    // At most 2 MiB (and at least 8 buffers) of each size stay idle.
    for _ in 0..100 {
        pool.give(Vec::with_capacity(BATCH_BYTES));
        pool.give(Vec::with_capacity(MIN_BATCH_BYTES));
    }
    let idle = lock(&pool.idle);
    assert_eq!(idle[SIZES - 1].len(), 8);
    assert_eq!(idle[0].len(), 100);
    assert!(idle.iter().flatten().all(|b| b.is_empty()));
}

#[cfg(target_os = "linux")]
#[test]
fn a_size_the_pool_ran_out_of_comes_faulted_in_from_then_on() {
    let pool = Pool::default();
    // A miss: this one is fresh, and from now on buffers of its size are made ahead.
    let first = pool.take(BATCH_BYTES);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.ahead.waiting(SIZES - 1) < 4 {
        assert!(Instant::now() < deadline, "nothing made ahead");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut next = pool.take(BATCH_BYTES);
    assert_eq!((next.capacity(), next.len()), (BATCH_BYTES, 0));
    let before = crate::rows::prefault::thread_minor_faults();
    next.resize(BATCH_BYTES, 7);
    let faults = crate::rows::prefault::thread_minor_faults() - before;
    assert!(faults < 8, "{faults} faults filling 64 pages made ahead");
    drop(first);
}
