use chrono::NaiveDate;

use super::*;
use crate::ski_resort::generator::{Generator, GeneratorConfig};

fn rows_after(q: &Queue, table: Table, after: u64, max: usize, bytes: usize) -> Option<Batch> {
    match q.read_after(table, after, max, bytes).unwrap() {
        Some(Next::Rows(b)) => Some(b),
        Some(Next::Bad(bad)) => panic!("unexpected bad record {bad:?}"),
        None => None,
    }
}

fn rows(n: usize) -> Vec<Row> {
    let mut g = Generator::new(&GeneratorConfig {
        seed: 9,
        start: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
        events_per_day: 1500,
    });
    (0..n).map(|_| g.next_row()).collect()
}

#[test]
fn enqueue_read_delete_and_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
    let rows = rows(500);
    q.enqueue(&rows[..200]).unwrap();
    q.enqueue(&rows[200..]).unwrap();
    let rides: Vec<&Row> = rows
        .iter()
        .filter(|r| r.table() == Table::LiftRide)
        .collect();
    let ledger = q.ledger().unwrap();
    let l = ledger[Table::LiftRide.index()];
    assert_eq!(l.generated, rides.len() as u64);
    assert_eq!(
        l.digest,
        rides
            .iter()
            .fold(0u64, |a, r| a.wrapping_add(txid_hash(r.txid())))
    );
    assert_eq!(q.depth().unwrap().iter().sum::<u64>(), 500);

    // Ids are 1..=n per table, in order; batches respect the row and byte limits.
    let b = rows_after(&q, Table::LiftRide, 0, 10, usize::MAX).unwrap();
    assert_eq!((b.first, b.last, b.rows), (1, 10, 10));
    let lines: Vec<&str> = std::str::from_utf8(&b.ndjson).unwrap().lines().collect();
    assert_eq!(lines[0], rides[0].to_json());
    let small = rows_after(&q, Table::LiftRide, 10, 1000, 1).unwrap();
    assert_eq!((small.first, small.last), (11, 11));

    assert_eq!(q.delete_through(Table::LiftRide, 10).unwrap(), 10);
    assert_eq!(
        q.delete_through(Table::LiftRide, 10).unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(q.ledger().unwrap()[Table::LiftRide.index()].committed, 10);
    let all = rows_after(&q, Table::LiftRide, 0, 100_000, usize::MAX).unwrap();
    assert_eq!((all.first, all.rows), (11, rides.len() as u64 - 10));
    assert!(rows_after(&q, Table::LiftRide, all.last, 10, usize::MAX).is_none());
}

#[test]
fn bind_shifts_a_fresh_queue_past_the_channel_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
    let rows = rows(300);
    q.enqueue(&rows).unwrap();
    let n = q.ledger().unwrap()[Table::LiftRide.index()].generated;
    // A channel that already committed offset 100 from an older queue.
    assert_eq!(q.bind_channel(Table::LiftRide, Some(100)).unwrap(), 100);
    let all = rows_after(&q, Table::LiftRide, 100, 100_000, usize::MAX).unwrap();
    assert_eq!((all.first, all.last), (101, 100 + n));
    // New rows continue after the shifted ids.
    q.enqueue(&rows[..50]).unwrap();
    let more = rows_after(&q, Table::LiftRide, 100 + n, 100_000, usize::MAX).unwrap();
    assert_eq!(more.first, 101 + n);
    // Binding again is a no-op; a token beyond anything this queue produced is an error.
    assert_eq!(q.bind_channel(Table::LiftRide, Some(120)).unwrap(), 0);
    let err = q
        .bind_channel(Table::LiftRide, Some(1_000_000))
        .unwrap_err();
    assert!(err.to_string().contains("another queue"), "{err}");
    // No history: no shift.
    assert_eq!(q.bind_channel(Table::SeasonPass, None).unwrap(), 0);
}

/// Bad records end a batch, come back alone as `Next::Bad`, and move to `dead_letters`
/// unchanged, exactly once, with the ledger counting them; reading then goes on.
#[test]
fn bad_records_are_dead_lettered_once_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    let mut q = Queue::open(&path).unwrap();
    let rides: Vec<Row> = rows(400)
        .into_iter()
        .filter(|r| r.table() == Table::LiftRide)
        .take(4)
        .collect();
    q.enqueue(&rides[..2]).unwrap();
    // Another writer: not JSON, then a BLOB (ids 3 and 4), then good rows again (5, 6).
    let side = Connection::open(&path).unwrap();
    side.execute(
        "INSERT INTO q_lift_ride (txid, json) VALUES ('x1', 'not json')",
        [],
    )
    .unwrap();
    side.execute(
        "INSERT INTO q_lift_ride (txid, json) VALUES ('x2', x'00ff')",
        [],
    )
    .unwrap();
    q.enqueue(&rides[2..]).unwrap();

    let b = rows_after(&q, Table::LiftRide, 0, 100, usize::MAX).unwrap();
    assert_eq!(
        (b.first, b.last, b.rows),
        (1, 2, 2),
        "the batch stops before id 3"
    );
    for (id, reason) in [(3, "not JSON"), (4, "json is a BLOB, not text")] {
        let Some(Next::Bad(bad)) = q.read_after(Table::LiftRide, 2, 100, usize::MAX).unwrap()
        else {
            panic!("id {id} should be bad");
        };
        assert_eq!(bad.id, id);
        assert!(bad.reason.contains(reason), "{}", bad.reason);
        assert!(q.dead_letter(Table::LiftRide, &bad).unwrap());
        assert!(!q.dead_letter(Table::LiftRide, &bad).unwrap(), "twice");
    }
    let b = rows_after(&q, Table::LiftRide, 2, 100, usize::MAX).unwrap();
    assert_eq!((b.first, b.last, b.rows), (5, 6, 2));

    let l = q.ledger().unwrap()[Table::LiftRide.index()];
    assert_eq!(
        l.generated, 4,
        "other writers' records are not in `generated`"
    );
    assert_eq!(l.dead_lettered, 2);
    assert_eq!(l.dead_digest, txid_hash("x1").wrapping_add(txid_hash("x2")));
    let (n, blob): (i64, Vec<u8>) = side
        .query_row(
            "SELECT (SELECT COUNT(*) FROM dead_letters), json FROM dead_letters WHERE id = 4",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, blob), (2, vec![0, 0xff]), "copied unchanged, once each");
    let first = q.first_dead_letters().unwrap();
    assert_eq!(
        first[Table::LiftRide.index()].as_ref().map(|f| f.0),
        Some(3)
    );
    assert_eq!(first[Table::ResortTicket.index()], None);
}

/// A queue file from an earlier version gains the dead-letter columns when opened.
#[test]
fn old_queue_files_are_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE ledger (tbl TEXT PRIMARY KEY, generated INTEGER NOT NULL DEFAULT 0,
                     digest INTEGER NOT NULL DEFAULT 0, committed INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO ledger (tbl, generated) VALUES ('LIFT_RIDE', 7);",
        )
        .unwrap();
    let old = Queue::open_read_only(&path).unwrap().ledger().unwrap();
    assert_eq!(old[Table::LiftRide.index()].generated, 7);
    let q = Queue::open(&path).unwrap();
    let l = q.ledger().unwrap()[Table::LiftRide.index()];
    assert_eq!((l.generated, l.dead_lettered), (7, 0));
}

#[test]
fn generator_flag_tracks_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
    assert!(!q.generator_active().unwrap());
    q.set_generator_active(true).unwrap();
    assert!(q.generator_active().unwrap());
    q.set_generator_active(false).unwrap();
    assert!(!q.generator_active().unwrap());
}

/// The generator and the streamer are separate processes that open the same queue, often at
/// the same moment (the all-in-one run starts both). On a fresh file, SQLite refuses one of two
/// simultaneous switches to WAL with "database is locked" at once, whatever the busy timeout
/// (one of them would otherwise wait for a lock the other waits to upgrade). Every open must
/// still succeed: eight threads open each of a hundred fresh queues together (before the fix,
/// 30 such queues failed five runs in eight, 300 every run).
#[test]
fn queues_opened_at_the_same_moment_all_open() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..100 {
        let path = dir.path().join(format!("q{n}.sqlite"));
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Queue::open(&path).map(|q| q.depth().unwrap())
                })
            })
            .collect();
        for open in opens {
            let depth = open
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("queue {n}: {e:#}"));
            assert_eq!(depth, [0, 0, 0]);
        }
    }
}
