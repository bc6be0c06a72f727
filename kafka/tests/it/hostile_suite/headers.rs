//! `hostile_headers`: hostile headers on good values, kept in `RECORD_METADATA`.

use rdkafka::message::{Header, OwnedHeaders};
use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{Rng, Suite};

use super::{check_run, good, produce_and_run, DLQ, MAX_MESSAGE, TABLE_DDL};
use crate::common::lab_with_tables;

/// Hostile headers of `class` on a good value.
fn headers(class: Class, rng: &mut Rng) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    let long = |n: usize| "h".repeat(n);
    match class {
        Class::Size => {
            let v = long(rng.range(1_000, MAX_MESSAGE / 2) as usize);
            h = h.insert(Header {
                key: "big",
                value: Some(&v),
            });
        }
        Class::Count => {
            for i in 0..rng.range(1_000, 20_000) {
                let k = format!("h{i}");
                h = h.insert(Header {
                    key: &k,
                    value: Some("v"),
                });
            }
        }
        Class::Reserved => {
            for k in ["topic", "offset", "partition", "headers", "trace", "trace"] {
                h = h.insert(Header {
                    key: k,
                    value: Some("forged"),
                });
            }
        }
        Class::Encoding => {
            let v = [
                b"a".as_slice(),
                gen::invalid_utf8(rng),
                gen::control_chars(rng),
            ]
            .concat();
            h = h.insert(Header {
                key: "enc",
                value: Some(&v),
            });
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            h = h.insert(Header {
                key: "n",
                value: Some(&n),
            });
        }
        Class::Depth | Class::Claim => {
            let mut v = Vec::new();
            gen::nested_json(&mut v, rng.range(1_000, 50_000) as usize, rng);
            h = h.insert(Header {
                key: "json",
                value: Some(&v),
            });
            h = h.insert(Header::<&str> {
                key: "none",
                value: None,
            });
        }
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers() {
    let topic = "hostile.headers";
    let lab = lab_with_tables(&[(topic, 1), (DLQ, 1)], TABLE_DDL).await;
    let suite = Suite::from_env("headers", Class::ALL.len());
    let cases = suite
        .cases(&Class::ALL)
        .into_iter()
        .map(|mut case| {
            let base = 1_000 * (case.index as u64 + 1);
            let mut bad = good(base + 500);
            bad.headers = Some(headers(case.class, &mut case.rng));
            bad.hostile = true;
            (case, vec![good(base + 1), bad, good(base + 2)])
        })
        .collect();
    let (o, sent) = produce_and_run(&lab, topic, cases, true).await;
    check_run(&lab, &suite, (topic, "HOSTILE_V", DLQ), &o, &sent);
}
