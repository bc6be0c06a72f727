//! A message whose JSON names a key twice (at the top, nested, as an escape of the same text,
//! among many keys) is a dead letter with its own partition and offset and a reason naming the
//! key, not a row the server refuses (issue 95 item 6); every other message lands once (one
//! with its own `RECORD_METADATA` too, the sink's column blanking the value's).
#![cfg(unix)]

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use snowpipe_kafka::{REASON_HEADER, SOURCE_HEADERS};

use crate::common::{bin, deliver, lab, run};

const TOPIC: &str = "twice";
const DLQ: &str = "twice.dlq";

/// The value of message `n`, and whether it names a key twice.
fn value(n: i64) -> (String, bool) {
    let many: Vec<String> = (0..40).map(|k| format!(r#""k{k}":{k}"#)).collect();
    let many = many.join(",");
    let forged = r#"{"topic":"forged","partition":0,"offset":0}"#;
    let v = match n % 8 {
        1 => format!(r#"{{"id":{n},"kind":"a","kind":"b"}}"#),
        2 => format!(r#"{{"id":{n},"kind":"k","tags":[{{"kind":1,"x":{{"kind":2,"kind":3}}}}]}}"#),
        3 => format!(r#"{{"id":{n},"kind":"k","amount":1,"\u0061mount":2}}"#),
        4 => format!(r#"{{"id":{n},"kind":"k","extra":{{{many},"k7":0}}}}"#),
        // Equal keys in distinct objects, and keys differing only in case: one row.
        5 => format!(r#"{{"id":{n},"kind":"k","extra":{{"kind":{{"kind":1}},"Kind":2,{many}}}}}"#),
        // Its own `RECORD_METADATA` beside the sink's (`--metadata`): the sink's wins, a row;
        // with a key of its own twice, still a dead letter.
        6 => format!(r#"{{"id":{n},"kind":"k","RECORD_METADATA":{forged}}}"#),
        7 => format!(r#"{{"id":{n},"kind":"k","RECORD_METADATA":{forged},"kind":"j"}}"#),
        _ => format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#),
    };
    (v, matches!(n % 8, 1..=4 | 7))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_naming_a_key_twice_is_a_dead_letter_at_its_own_offset() {
    let lab = lab(&[(TOPIC, 2), (DLQ, 1)]).await;
    let producer = lab.producer().expect("producer");
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for n in 0..48i64 {
        let (v, twice) = value(n);
        let record = FutureRecord::to(TOPIC)
            .partition(i32::from(n % 4 >= 2))
            .key("k")
            .payload(&v);
        let d = deliver(&producer, record).await;
        if twice {
            bad.push((d.partition, d.offset));
        } else {
            good.push((d.partition, d.offset));
        }
    }
    let out = run(lab.instance(&bin(), TOPIC, "twice").args([
        "--until-idle",
        "3s",
        "--dead-letter-topic",
        DLQ,
    ]))
    .ok();
    let report = out.report();
    for p in ["twice/0", "twice/1"] {
        let errors = &report["consumed"][p]["row_errors"]["count"];
        assert!(
            errors.is_null() || *errors == 0,
            "no row reaches the server to be refused: {report}"
        );
    }
    let mut landed = lab.landed_offsets().expect("table");
    landed.sort_unstable();
    good.sort_unstable();
    assert_eq!(landed, good, "every other message once, nothing else");
    let mut dead = lab
        .dead_letters(DLQ, Duration::from_secs(2))
        .expect("read the dead letters");
    dead.sort_unstable();
    bad.sort_unstable();
    assert_eq!(
        dead, bad,
        "each message naming a key twice dead-lettered once"
    );
    let letters = lab
        .headers_on(DLQ, Duration::from_secs(2))
        .expect("the dead letters' headers");
    for h in &letters {
        let offset: i64 = h[SOURCE_HEADERS[2]].parse().expect("an offset");
        let why = &h[REASON_HEADER];
        assert!(why.contains("twice"), "{why}");
        assert!(
            ["\"kind\"", "\"amount\"", "\"k7\""]
                .iter()
                .any(|k| why.contains(&format!("the key {k} twice"))),
            "offset {offset}: {why}"
        );
    }
}
