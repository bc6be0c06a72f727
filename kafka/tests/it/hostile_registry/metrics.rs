//! `hostile_metrics_endpoint`: raw TCP clients against a running sink's `/metrics` port
//! (unauthenticated by design, so anyone who reaches it): heads past 16 KiB, slowloris (a
//! byte now and then), 1,000 connections at once, pipelined requests, invalid UTF-8 and
//! control characters in the path, a huge query string. Meanwhile the sink keeps committing
//! (every message produced during the attack lands), and after it the endpoint answers a
//! good client; the sink stops cleanly when told.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{Rng, Suite};

use crate::common::{lab, produce_per_partition, signal, wait_landed};
use crate::operations::{get, with_metrics_and_log};

/// The hostile clients of `class` against `addr`; the connections they hold open.
fn attack(addr: &str, class: Class, rng: &mut Rng) -> Vec<TcpStream> {
    let connect = || {
        let s = TcpStream::connect(addr).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        Some(s)
    };
    let mut held = Vec::new();
    let send = |bytes: &[u8]| {
        if let Some(mut s) = connect() {
            let _ = s.write_all(bytes);
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
        }
    };
    match class {
        // A head past 16 KiB (one huge header), and a huge query string.
        Class::Size => {
            let n = rng.range(17 << 10, 1 << 20) as usize;
            send(format!("GET /metrics HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(n)).as_bytes());
            send(format!("GET /metrics?{} HTTP/1.1\r\n\r\n", "q=1&".repeat(n / 4)).as_bytes());
        }
        // Slowloris: heads begun and never finished, held open.
        Class::Depth => {
            for _ in 0..rng.range(50, 200) {
                if let Some(mut s) = connect() {
                    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nx-a: ");
                    held.push(s);
                }
            }
        }
        // 1,000 connections at once, held open.
        Class::Count => {
            for _ in 0..1_000 {
                if let Some(s) = connect() {
                    held.push(s);
                }
            }
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            send(format!("GET /metrics HTTP/1.1\r\ncontent-length: {n}\r\n\r\n").as_bytes());
        }
        Class::Encoding => {
            let mut r = b"GET /metrics".to_vec();
            r.extend_from_slice(gen::invalid_utf8(rng));
            r.extend_from_slice(gen::control_chars(rng));
            r.extend_from_slice(b" HTTP/1.1\r\n\r\n");
            send(&r);
        }
        // Pipelined requests: many in one write.
        Class::Claim => {
            let one = "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n";
            send(one.repeat(rng.range(10, 2_000) as usize).as_bytes());
        }
        Class::Reserved => {
            send(b"CONNECT /metrics HTTP/1.1\r\nhost: x\r\nhost: y\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n");
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_metrics_endpoint() {
    const TOPIC: &str = "hostile.metrics";
    let lab = lab(&[(TOPIC, 2)]).await;
    let (child, addr, _log) = with_metrics_and_log(&lab, TOPIC, "hostile-metrics", &[]);
    let suite = Suite::from_env("metrics_endpoint", Class::ALL.len());
    let mut landed = 0;
    for case in suite.cases(&Class::ALL) {
        let a = addr.clone();
        let class = case.class;
        let mut rng = case.rng.clone();
        let attack = std::thread::spawn(move || attack(&a, class, &mut rng));
        // The sink keeps committing meanwhile.
        landed += produce_per_partition(&lab, TOPIC, 2, 20).await.len();
        wait_landed(&lab, landed, Duration::from_secs(60)).await;
        let held = attack.join().expect("the attack's thread");
        let waited = Instant::now();
        // Slow and idle clients are cut off by the endpoint's timeouts (5 s a head, 30 s a
        // connection); a good client is answered meanwhile or soon after.
        let until = Instant::now() + Duration::from_secs(40);
        let answered = loop {
            let a = addr.clone();
            let got = tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(|| get(&a, "/metrics").0).ok()
            })
            .await
            .unwrap();
            if got == Some(200) || Instant::now() > until {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if answered != Some(200) {
            case.fail(format!("a good client got {answered:?} after the attack"));
        }
        eprintln!(
            "hostile metrics endpoint case {} ({:?}): a good client answered after {:?} ({} \
             connections held)",
            case.index,
            case.class,
            waited.elapsed(),
            held.len()
        );
    }
    signal(&child, crate::common::Signal::Term); // a graceful stop
    let out = child.wait_with_output().expect("the sink's end");
    assert!(
        out.status.success(),
        "the sink stops cleanly: {:?}",
        out.status
    );
}
