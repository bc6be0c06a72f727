//! `hostile_json_values`: hostile JSON values between good ones, into the table with
//! client-side validation and schema evolution, and the map-into-text class at two sizes for
//! CPU linearity. Values naming a key twice (nested, among many keys, spelled as escapes) also
//! go through the server's validation (`json_values_key_twice`), where only the sink's JSON
//! check stands between them and a row error the server refuses (issue 95 item 6).

use std::time::Duration;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{attempt, check, Case, Rng, Suite};

use super::{check_run, good, produce_and_run, Msg, DLQ, MAX_MESSAGE, TABLE_DDL};
use crate::common::lab_with_tables;

/// One hostile JSON value of `class`.
fn json_value(class: Class, rng: &mut Rng, id: u64) -> Vec<u8> {
    let mut v = Vec::new();
    match class {
        // Past the column's length (VARCHAR(100)), within the producer's limit.
        Class::Size => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"#).as_bytes());
            gen::long_json_string(&mut v, rng.range(101, MAX_MESSAGE - 100) as usize, rng);
            v.push(b'}');
        }
        Class::Depth => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"#).as_bytes());
            gen::nested_json(&mut v, rng.range(1_000, 100_000) as usize, rng);
            v.push(b'}');
        }
        // A map into a text column (item 3), or many new keys for schema evolution (item 4).
        Class::Count => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"#).as_bytes());
            if rng.one_in(2) {
                gen::many_keys_object(&mut v, rng.range(1_000, 60_000) as usize);
                v.push(b'}');
            } else {
                v.clear();
                gen::many_keys_object(&mut v, rng.range(300, 3_000) as usize);
            }
        }
        // Numbers at the edges into the text column (item 1) and the number column.
        Class::Number => {
            let col = if rng.one_in(2) { "a" } else { "id" };
            let n = gen::edge_number(rng);
            v.extend_from_slice(format!(r#"{{"id":{id},"{col}":{n}}}"#).as_bytes());
            if col == "id" {
                v = format!(r#"{{"id":{n},"a":"x"}}"#).into_bytes();
            }
        }
        Class::Encoding => match rng.below(3) {
            0 => {
                v.extend_from_slice(gen::BOM);
                v.extend_from_slice(format!(r#"{{"id":{id},"a":"bom"}}"#).as_bytes());
            }
            1 => {
                v.extend_from_slice(format!(r#"{{"id":{id},"a":"x"#).as_bytes());
                v.extend_from_slice(gen::invalid_utf8(rng));
                v.extend_from_slice(b"\"}");
            }
            _ => {
                v.extend_from_slice(
                    format!(r#"{{"id":{id},"a":"x{}"}}"#, gen::bad_json_escape(rng)).as_bytes(),
                );
            }
        },
        Class::Claim => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"never closed"#).as_bytes());
        }
        // The sink's own column in a value (item 2), a key twice (at the top; nested, among
        // many keys or spelled as an escape: issue 95 item 6), a key differing in case.
        Class::Reserved => {
            let forged = r#"{"topic":"forged","partition":0,"offset":0,"CreateTime":0}"#;
            v = match rng.below(4) {
                0 => gen::reserved_json_object("RECORD_METADATA", forged, &format!(r#""id":{id}"#)),
                1 => format!(r#"{{"id":{id},"a":"one","a":"two"}}"#),
                2 => gen::key_twice_json(&format!(r#""id":{id}"#), rng),
                _ => format!(r#"{{"id":{id},"a":"upper","\"a\"":"quoted lower"}}"#),
            }
            .into_bytes();
        }
    }
    v
}

/// A case's messages: a good one, the hostile one(s), a good one. Numbers send every one of
/// [`gen::EDGE_NUMBERS`] into the text column and into the number column, and one drawn.
fn json_case(case: &mut Case<Class>) -> Vec<Msg> {
    let base = 1_000 * (case.index as u64 + 1);
    let hostile = |value: Vec<u8>| Msg {
        value,
        headers: None,
        hostile: true,
    };
    let mut msgs = vec![good(base + 1)];
    if case.class == Class::Number {
        for (i, n) in gen::EDGE_NUMBERS.iter().enumerate() {
            let id = base + 100 + i as u64;
            msgs.push(hostile(format!(r#"{{"id":{id},"a":{n}}}"#).into_bytes()));
            msgs.push(hostile(format!(r#"{{"id":{n},"a":"x"}}"#).into_bytes()));
        }
    }
    msgs.push(hostile(json_value(case.class, &mut case.rng, base + 500)));
    msgs.push(good(base + 2));
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_values() {
    let topic = "hostile.json";
    let topic_twice = "hostile.json.twice";
    let linear = ["hostile.linear1", "hostile.linear2"];
    let lab = lab_with_tables(
        &[
            (topic, 1),
            (topic_twice, 1),
            (DLQ, 1),
            (linear[0], 1),
            (linear[1], 1),
        ],
        TABLE_DDL,
    )
    .await;
    let suite = Suite::from_env("json_values", Class::ALL.len());
    let cases = suite
        .cases(&Class::ALL)
        .into_iter()
        .map(|mut case| {
            let msgs = json_case(&mut case);
            (case, msgs)
        })
        .collect();
    // Linear: a map of n and 2n keys into the text column (item 3: 100,000 keys, 13.9 s),
    // one run after the other, beside the cases' run (CPU is measured per process); none when
    // `HOSTILE_ONLY` leaves out `Count` (the harness prints that it skipped).
    let linear_case = Suite::from_env("json_values_linear", 1)
        .cases(&[Class::Count])
        .pop();
    let linear_runs = async {
        let mut runs = Vec::new();
        let Some(case) = &linear_case else {
            return runs;
        };
        for (t, n) in linear.iter().zip([15_000usize, 30_000]) {
            let mut value = br#"{"id":1,"a":"#.to_vec();
            gen::many_keys_object(&mut value, n);
            value.push(b'}');
            let msg = Msg {
                value,
                headers: None,
                hostile: true,
            };
            let (o, _) = produce_and_run(&lab, t, vec![(case.clone(), vec![msg])], true).await;
            runs.push((n as u64, o));
        }
        runs
    };
    // A key twice, validated by the server: a good message, the hostile one, a good one.
    let twice = Suite::from_env("json_values_key_twice", 4);
    let twice_cases: Vec<_> = twice
        .cases(&[Class::Reserved])
        .into_iter()
        .map(|mut case| {
            let base = 1_000 * (case.index as u64 + 1);
            let value = gen::key_twice_json(&format!(r#""id":{}"#, base + 500), &mut case.rng);
            let hostile = Msg {
                value: value.into_bytes(),
                headers: None,
                hostile: true,
            };
            (case, vec![good(base + 1), hostile, good(base + 2)])
        })
        .collect();
    let ((o, sent), runs, (o2, sent2)) = tokio::join!(
        produce_and_run(&lab, topic, cases, true),
        linear_runs,
        produce_and_run(&lab, topic_twice, twice_cases, false)
    );
    let mut failures = attempt(|| check_run(&lab, &suite, (topic, "HOSTILE_V", DLQ), &o, &sent))
        .err()
        .into_iter()
        .collect::<Vec<_>>();
    failures.extend(
        attempt(|| check_run(&lab, &twice, (topic_twice, "HOSTILE_V", DLQ), &o2, &sent2)).err(),
    );
    if let Some(case) = &linear_case {
        failures.extend(
            attempt(|| {
                check::no_crash(case, &runs[0].1);
                check::no_crash(case, &runs[1].1);
                check::assert_linear(
                    case,
                    (runs[0].0, &runs[0].1),
                    (runs[1].0, &runs[1].1),
                    2.6,
                    Duration::from_millis(800),
                );
            })
            .err(),
        );
    }
    suite.finish(failures);
}
