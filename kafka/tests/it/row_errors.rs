//! Rows the server rejects (a value its column's type refuses, `ON_ERROR = CONTINUE`): the
//! partition goes on, the committed token moves past them, and the closing line reports how
//! many, the server's first message and the offsets they are at or before, and which
//! messages they were (`rejected_offsets`, each also logged with its partition and offset).
//! With a dead-letter topic, each rejected row located is read again from Kafka and
//! dead-lettered as it was produced.
#![cfg(unix)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use snowpipe_kafka::{REASON_HEADER, SOURCE_HEADERS};

use crate::common::{bin, deliver, lab, run, wait_landed};

const TOPIC: &str = "events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_server_rejects_are_reported_and_the_partition_goes_on() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let producer = lab.producer().expect("producer");
    // A third-party producer: mostly good rows, three whose ID is not a number.
    let mut bad_offsets = Vec::new();
    let mut last = 0;
    for n in 0..30 {
        let bad = matches!(n, 7 | 8 | 21);
        let v = if bad {
            format!(r#"{{"id":"order-{n}","kind":"k"}}"#)
        } else {
            format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#)
        };
        let d = deliver(&producer, FutureRecord::to(TOPIC).key("k").payload(&v)).await;
        if bad {
            bad_offsets.push(d.offset);
        }
        last = d.offset;
    }
    let report = run(lab
        .instance(&bin(), TOPIC, "rejects")
        .args(["--until-idle", "3s"]))
    .ok()
    .report();
    let part = &report["consumed"]["events/0"];
    assert_eq!(part["committed"], last.to_string(), "{report}");
    let errors = &part["row_errors"];
    assert_eq!(errors["count"], 3, "{report}");
    let message = errors["first_message"].as_str().expect("a message");
    assert!(message.contains("order-"), "{message}");
    let first: i64 = errors["first_at_or_before"]
        .as_str()
        .expect("a bound")
        .parse()
        .expect("an offset");
    let last_bound: i64 = errors["last_at_or_before"]
        .as_str()
        .expect("a bound")
        .parse()
        .expect("an offset");
    assert!(
        first >= bad_offsets[0] && last_bound >= bad_offsets[2],
        "{errors}"
    );
    assert!(last_bound <= last, "{errors}");
    // Every other row landed.
    assert_eq!(lab.landed_offsets().expect("table").len(), 27);
    // One batch, one request: the server's status names its last rejected row.
    let located = part["rejected_offsets"].as_array().expect("a list");
    let last_bad = serde_json::Value::from(bad_offsets[2].to_string());
    assert_eq!(located.last(), Some(&last_bad), "{report}");
}

/// Rejected rows each in a request of its own while the sink runs, one behind a message that
/// was no row (a gap in the request's offsets) and one at a later place in its request: each
/// is named by its own offset, in the report and in the log, and every other row lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rejected_row_is_named_by_its_own_partition_and_offset() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let producer = lab.producer().expect("producer");
    let mut cmd = lab.instance(&bin(), TOPIC, "located");
    // Idle long enough that a slow machine's landing between bursts never ends the run.
    cmd.args(["--until-idle", "30s"]);
    let sink = tokio::task::spawn_blocking(move || run(&mut cmd));
    let good = |n: i64| format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#);
    let bad = |n: i64| format!(r#"{{"id":"order-{n}","kind":"k"}}"#);
    // Each burst: what it sends (`None`: not JSON, a dead letter), then rows landed after it.
    let bursts: [(&[Option<bool>], usize); 4] = [
        (&[Some(true); 3], 3),
        (&[Some(false), Some(true), Some(true)], 5),
        (&[Some(true), None, Some(false), Some(true)], 7),
        (&[Some(true), Some(true), Some(false)], 9),
    ];
    let (mut bad_offsets, mut landed) = (Vec::new(), 0);
    for (burst, rows) in bursts {
        for &kind in burst {
            let n = i64::try_from(landed + bad_offsets.len()).expect("small");
            let v = match kind {
                Some(true) => good(n),
                Some(false) => bad(n),
                None => "not json".to_owned(),
            };
            let d = deliver(&producer, FutureRecord::to(TOPIC).key("k").payload(&v)).await;
            if kind == Some(false) {
                bad_offsets.push(d.offset);
            }
        }
        landed = rows;
        wait_landed(&lab, rows, Duration::from_secs(60)).await;
    }
    let run = sink.await.expect("the sink's task").ok();
    let report = run.report();
    let part = &report["consumed"]["events/0"];
    assert_eq!(part["row_errors"]["count"], 3, "{report}");
    let expected: Vec<serde_json::Value> =
        bad_offsets.iter().map(|o| o.to_string().into()).collect();
    assert_eq!(
        part["rejected_offsets"],
        serde_json::Value::from(expected),
        "{report}"
    );
    for o in &bad_offsets {
        assert!(
            run.stderr
                .contains(&format!("rejected the row of the message at offset {o}:")),
            "offset {o} named in the log: {}",
            run.stderr
        );
    }
    let mut offsets = lab.landed_offsets().expect("table");
    offsets.sort_unstable();
    let before = offsets.len();
    offsets.dedup();
    assert_eq!(
        (before, offsets.len()),
        (9, 9),
        "every other row once: {offsets:?}"
    );
    assert!(
        offsets.iter().all(|(_, o)| !bad_offsets.contains(o)),
        "{offsets:?}"
    );
}

/// A dead letter as a test reads it: key, value, headers by name.
struct Letter {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: HashMap<String, String>,
}

/// Every message of `topic`'s partition 0, from its start until `idle` passes without one.
fn read_all(brokers: &str, topic: &str, idle: Duration) -> Vec<Letter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "row-errors-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a reader");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("a partition");
    consumer.assign(&list).expect("assigned");
    let (mut out, mut last) = (Vec::new(), Instant::now());
    while last.elapsed() < idle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last = Instant::now();
            let headers = m.headers().map_or_else(HashMap::new, |h| {
                h.iter()
                    .filter_map(|h| {
                        let v = String::from_utf8_lossy(h.value?).into_owned();
                        Some((h.key.to_owned(), v))
                    })
                    .collect()
            });
            out.push(Letter {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
            });
        }
    }
    out
}

/// With `--dead-letter-topic`, a row the server rejects reaches the dead-letter topic as its
/// producer wrote it (key, value, its own header), named by its own offset with the server's
/// message as the reason; a message that was no row is dead-lettered beside them as before;
/// every other row lands once and nothing else reaches the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_are_dead_lettered_as_they_were_produced() {
    const DLQ: &str = "events.dlq";
    let lab = lab(&[(TOPIC, 1), (DLQ, 1)]).await;
    let producer = lab.producer().expect("producer");
    let mut cmd = lab.instance(&bin(), TOPIC, "rejects-dlq");
    cmd.args(["--until-idle", "30s", "--dead-letter-topic", DLQ]);
    let sink = tokio::task::spawn_blocking(move || run(&mut cmd));
    // Bursts, each landed before the next, so each rejected row is its request's only one.
    // `Some(true)`: a row; `Some(false)`: a row the server rejects; `None`: not JSON.
    let bursts: [&[Option<bool>]; 4] = [
        &[Some(true), Some(true), Some(false)],
        &[Some(false), Some(true)],
        &[Some(true), None, Some(false), Some(true)],
        &[Some(true); 2],
    ];
    let (mut landed, mut rejected, mut not_rows) = (0, Vec::new(), Vec::new());
    let mut n = 0i64;
    for burst in bursts {
        for &kind in burst {
            n += 1;
            let v = match kind {
                Some(true) => format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#),
                Some(false) => format!(r#"{{"id":"order-{n}","kind":"k"}}"#),
                None => format!("not json {n}"),
            };
            let key = format!("key-{n}");
            let headers = OwnedHeaders::new().insert(Header {
                key: "trace",
                value: Some(format!("t{n}").as_bytes()),
            });
            let record = FutureRecord::to(TOPIC)
                .key(&key)
                .payload(&v)
                .headers(headers);
            let d = deliver(&producer, record).await;
            match kind {
                Some(true) => landed += 1,
                Some(false) => rejected.push((d.offset, key, v)),
                None => not_rows.push(d.offset),
            }
        }
        wait_landed(&lab, landed, Duration::from_secs(60)).await;
    }
    let run = sink.await.expect("the sink's task").ok();
    let report = run.report();
    let part = &report["consumed"]["events/0"];
    assert_eq!(part["row_errors"]["count"], 3, "{report}");
    assert_eq!(part["rejected_dead_letters"], 3, "{report}");
    let letters = read_all(&lab.brokers(), DLQ, Duration::from_secs(2));
    let offset_of = |l: &Letter| -> i64 {
        l.headers[SOURCE_HEADERS[2]]
            .parse()
            .expect("an offset header")
    };
    let mut dead: Vec<i64> = letters.iter().map(offset_of).collect();
    dead.sort_unstable();
    let mut expected: Vec<i64> = rejected.iter().map(|r| r.0).chain(not_rows).collect();
    expected.sort_unstable();
    assert_eq!(
        dead, expected,
        "each rejected row and each non-row once, nothing else"
    );
    for (offset, key, value) in &rejected {
        let l = letters
            .iter()
            .find(|l| offset_of(l) == *offset)
            .expect("its letter");
        assert_eq!(l.key.as_deref(), Some(key.as_bytes()), "offset {offset}");
        assert_eq!(
            l.value.as_deref(),
            Some(value.as_bytes()),
            "offset {offset}"
        );
        assert_eq!(
            l.headers["trace"],
            format!("t{}", &key[4..]),
            "its own header kept"
        );
        let why = &l.headers[REASON_HEADER];
        assert!(
            why.starts_with("rejected by Snowflake: ") && why.contains("order-"),
            "offset {offset}: {why}"
        );
    }
    let mut offsets = lab.landed_offsets().expect("table");
    offsets.sort_unstable();
    let before = offsets.len();
    offsets.dedup();
    assert_eq!((before, offsets.len()), (landed, landed), "{offsets:?}");
}
