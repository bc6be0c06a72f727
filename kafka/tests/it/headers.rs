//! A producer we did not write sends a header whose key is not UTF-8 (Kafka allows any bytes;
//! rdkafka's own `Headers::iter` panics on it). The message is dead-lettered with the reason,
//! its partition goes on, and every other message lands once, with its headers in
//! `RECORD_METADATA`.
#![cfg(unix)]

use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::message::{BorrowedHeaders, Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::common::{bin, deliver, lab, run, variant};

const TOPIC: &str = "tagged";
const DLQ: &str = "tagged.dlq";

/// Headers with one raw (key, value) pair, whatever bytes the key holds: the C API takes
/// bytes, as every Kafka client that is not rdkafka's Rust wrapper does.
fn raw_header(key: &[u8], value: &[u8]) -> OwnedHeaders {
    let headers = OwnedHeaders::new().insert(Header {
        key: "trace",
        value: Some("t-1"),
    });
    // `BorrowedHeaders` is rdkafka's view of the C `rd_kafka_headers_t`: its address is the
    // C pointer (rdkafka makes it with `&*(ptr as *const BorrowedHeaders)`).
    let raw = std::ptr::from_ref::<BorrowedHeaders>(headers.as_borrowed())
        .cast_mut()
        .cast::<rd::rd_kafka_headers_t>();
    // SAFETY: `raw` is the live headers object `headers` owns; librdkafka copies the bytes.
    #[allow(unsafe_code)]
    let err = unsafe {
        rd::rd_kafka_header_add(
            raw,
            key.as_ptr().cast(),
            isize::try_from(key.len()).unwrap(),
            value.as_ptr().cast(),
            isize::try_from(value.len()).unwrap(),
        )
    };
    assert_eq!(err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_key_that_is_not_utf8_is_a_dead_letter_and_the_partition_goes_on() {
    let lab = lab(&[(TOPIC, 2), (DLQ, 1)]).await;
    let producer = lab.producer().expect("producer");
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for n in 0..40i64 {
        let partition = i32::from(n % 2 == 1);
        let v = format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#);
        let headers = if n % 10 == 4 {
            raw_header(&[0xff, 0xfe, b'k'], b"v")
        } else {
            raw_header(b"tenant", "caf\u{e9}".as_bytes())
        };
        let record = FutureRecord::to(TOPIC)
            .partition(partition)
            .key("k")
            .payload(&v)
            .headers(headers);
        let d = deliver(&producer, record).await;
        if n % 10 == 4 {
            bad.push((d.partition, d.offset));
        } else {
            good.push((d.partition, d.offset));
        }
    }
    let stderr = run(lab.instance(&bin(), TOPIC, "headers").args([
        "--until-idle",
        "3s",
        "--dead-letter-topic",
        DLQ,
    ]))
    .ok()
    .stderr;
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut landed = lab.landed_offsets().expect("table");
    landed.sort_unstable();
    good.sort_unstable();
    assert_eq!(landed, good, "every other message once, nothing else");
    let mut dead = lab
        .dead_letters(DLQ, Duration::from_secs(2))
        .expect("read the dead letters");
    dead.sort_unstable();
    bad.sort_unstable();
    assert_eq!(dead, bad, "each bad-header message dead-lettered once");
    let rows = lab
        .emulator()
        .query(r#"SELECT RECORD_METADATA FROM "DEMO.KAFKA.EVENTS" LIMIT 1"#)
        .expect("query");
    let meta = variant(&rows[0][0]);
    assert_eq!(meta["headers"]["tenant"], "caf\u{e9}", "{meta}");
    assert_eq!(meta["headers"]["trace"], "t-1", "{meta}");
}

/// Connector mode (`--header-converter simple`, as `header.converter` gives it): a header
/// name that is not UTF-8 is decoded as the Java client decodes it, each malformed byte as
/// U+FFFD, and the row lands (`kafka/docs/connector-compatibility.md` 11.12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_that_is_not_utf8_lands_decoded_as_java_decodes_it_in_connector_mode() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let producer = lab.producer().expect("producer");
    let mut sent = Vec::new();
    for n in 0..5i64 {
        let v = format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#);
        let record = FutureRecord::to(TOPIC)
            .partition(0)
            .key("k")
            .payload(&v)
            .headers(raw_header(&[0xff, 0xfe, b'k'], b"v"));
        sent.push(deliver(&producer, record).await);
    }
    let stderr = run(lab.instance(&bin(), TOPIC, "headers-simple").args([
        "--until-idle",
        "3s",
        "--header-converter",
        "simple",
    ]))
    .ok()
    .stderr;
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut landed = lab.landed_offsets().expect("table");
    landed.sort_unstable();
    let mut want: Vec<_> = sent.iter().map(|d| (d.partition, d.offset)).collect();
    want.sort_unstable();
    assert_eq!(landed, want, "every message once");
    let rows = lab
        .emulator()
        .query(r#"SELECT RECORD_METADATA FROM "DEMO.KAFKA.EVENTS" LIMIT 1"#)
        .expect("query");
    let meta = variant(&rows[0][0]);
    assert_eq!(meta["headers"]["\u{FFFD}\u{FFFD}k"], "v", "{meta}");
}

/// Connector mode's Simple header converter: a header of 30,000 nested brackets (60 KB) is
/// kept as its text (Kafka's `SimpleHeaderConverter` keeps the bytes when `Values.parseString`
/// throws), and the message and the one after it land. Parsing it recursed once per bracket
/// and overflowed the `kafka-poll` thread's stack: the sink aborted before committing, so
/// every restart met the message again (issue 81).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_nested_past_the_limit_lands_as_its_text_in_connector_mode() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let producer = lab.producer().expect("producer");
    let deep = format!("{}1{}", "[".repeat(30_000), "]".repeat(30_000));
    let mut sent = Vec::new();
    for (n, header) in [deep.as_str(), "[1,2]"].into_iter().enumerate() {
        let v = format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#);
        let headers = OwnedHeaders::new().insert(Header {
            key: "deep",
            value: Some(header),
        });
        let record = FutureRecord::to(TOPIC)
            .partition(0)
            .key("k")
            .payload(&v)
            .headers(headers);
        sent.push(deliver(&producer, record).await);
    }
    let out = run(lab.instance(&bin(), TOPIC, "headers-deep").args([
        "--until-idle",
        "3s",
        "--header-converter",
        "simple",
    ]));
    assert!(out.success, "{}", out.stderr);
    let mut landed = lab.landed_offsets().expect("table");
    landed.sort_unstable();
    let mut want: Vec<_> = sent.iter().map(|d| (d.partition, d.offset)).collect();
    want.sort_unstable();
    assert_eq!(landed, want, "every message once");
    let rows = lab
        .emulator()
        .query(
            r#"SELECT RECORD_METADATA FROM "DEMO.KAFKA.EVENTS"
               ORDER BY json_extract(RECORD_METADATA, '$.offset')"#,
        )
        .expect("query");
    let headers: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| variant(&r[0])["headers"]["deep"].clone())
        .collect();
    assert_eq!(headers[0], deep.as_str());
    assert_eq!(headers[1], "[1, 2]");
}
