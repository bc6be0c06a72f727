//! Rows the server rejects (a value its column's type refuses, `ON_ERROR = CONTINUE`): the
//! partition goes on, the committed token moves past them, and the closing line reports how
//! many, the server's first message and the offsets they are at or before.
#![cfg(unix)]

use rdkafka::producer::FutureRecord;

use crate::common::{bin, deliver, lab, run};

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
}
