//! Rows the server rejects (a value its column's type refuses, `ON_ERROR = CONTINUE`): the
//! partition goes on, the committed token moves past them, and the closing line reports how
//! many, the server's first message and the offsets they are at or before, and which
//! messages they were (`rejected_offsets`, each also logged with its partition and offset).
#![cfg(unix)]

use std::time::Duration;

use rdkafka::producer::FutureRecord;

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
