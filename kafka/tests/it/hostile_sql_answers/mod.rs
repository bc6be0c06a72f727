//! The hostile-input suite (issue 81, item 21) on the SDK's SQL API client (`src/sql.rs`),
//! through the real `snowpipe-kafka audit`, whose questions to the table are SQL API
//! statements: a hostile server in front of the emulator (`snowpipe_hostile::http::Proxy`)
//! forwards everything else and answers the statements with one class of [`Answer`] each:
//! endless and huge bodies, gzip bombs (the first answer, a later partition),
//! `resultSetMetaData` claiming 10^12 rows, 10^6 partitions or 10^5 columns, rows shorter or
//! longer than the columns, values of the wrong JSON type, `data` nested 10,000 deep or not an
//! array, 200 MiB of small rows, a statement still running (`333334`) for ever, a
//! `Retry-After` of 10^18 s, invalid UTF-8.
//!
//! Asserted for each: no crash, within `--sql-timeout` and its grace (the suite's 3 s, so 6 s)
//! and the memory budget + 64 MiB; `audit` exits 1 with the table named as unreadable and a
//! reason naming the answer or the limit. Then a good server: the same audit is clean (20
//! offsets, no gap). `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see
//! `hostile/README.md`.
#![cfg(unix)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use snowpipe_hostile::http::{Hook, Proxy};
use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Suite, MIB};
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};

use crate::audit::append_genuine;
use crate::common::{bin, client, lab, produce_per_partition};

mod answers;

use answers::Answer;

const TOPIC: &str = "sql_answers";
/// Records (and genuine rows) in the topic.
const RECORDS: i64 = 20;

fn limits() -> Limits {
    let mut l = Limits::with_budget(256 * MIB);
    l.wall = Duration::from_secs(40);
    l
}

/// `snowpipe-kafka audit` of `TOPIC`, its SQL through `proxy`.
fn audit(lab: &Lab, proxy: &Proxy) -> (Outcome, Duration) {
    let mut cmd = Command::new(bin());
    cmd.arg("audit")
        .args(["--brokers", &lab.brokers(), "--group", "hostile_sql"])
        .args(["--database", DATABASE, "--schema", SCHEMA])
        .args(["--topic", TOPIC, "--pipe", PIPE, "--format", "json"])
        .args(["--sql-timeout", "3s"]);
    lab.connect(&mut cmd);
    cmd.env("SNOWFLAKE_URL", proxy.url());
    let start = Instant::now();
    let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe-kafka");
    (o, start.elapsed())
}

/// What the error of `a` names (any one of them).
fn named(a: Answer) -> &'static [&'static str] {
    match a {
        Answer::EndlessChunked | Answer::HugeLength | Answer::GzipBomb => &["bytes"],
        Answer::GzipBombPartition | Answer::ManyRows => &["bytes"],
        Answer::RowClaims => &["max_result_bytes"],
        Answer::ManyPartitions => &["max_partitions"],
        Answer::ManyColumns | Answer::ShortRows | Answer::LongRows => &["columns"],
        Answer::WrongTypes | Answer::DataNotArray => &["invalid type"],
        Answer::DeepData => &["recursion limit", "invalid type"],
        Answer::AsyncForever => &["still running"],
        Answer::RetryAfterHuge => &["no result"],
        Answer::InvalidUtf8 => &["unicode"],
        Answer::CountsDisagree => &[],
    }
}

fn check_refused(case: &Case<Answer>, o: &Outcome, wall: Duration) {
    check::no_crash(case, o);
    check::rss_within(case, o, &limits());
    if wall > Duration::from_secs(20) {
        case.fail(format!("audit took {wall:?}: {}", o.summary()));
    }
    if case.class == Answer::CountsDisagree {
        // Not refused (the counts are the server's word), but never a crash.
        return;
    }
    if o.code != Some(1) {
        case.fail(format!("audit did not report (exit 1): {}", o.summary()));
    }
    let report: Value = serde_json::from_str(&o.stdout_text())
        .unwrap_or_else(|e| case.fail(format!("the report is not JSON ({e}): {}", o.summary())));
    let error = report["tables"][0]["error"].as_str().unwrap_or_else(|| {
        case.fail(format!(
            "the table is not reported unreadable: {report}: {}",
            o.summary()
        ))
    });
    let needles = named(case.class);
    if !needles.iter().any(|n| error.contains(n)) {
        case.fail(format!(
            "the table's error names none of {needles:?}: {error}"
        ));
    }
}

fn hook(a: Answer) -> Hook {
    Arc::new(move |req, conn, upstream| {
        if !answers::is_sql(req) {
            return false;
        }
        let _ = answers::answer(a, req, conn, upstream);
        true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_answers() {
    let suite = Suite::from_env("sql_answers", Answer::ALL.len());
    let lab = lab(&[(TOPIC, 1)]).await;
    let url = lab.emulator().url();
    let upstream: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|a| a.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("the lab's emulator is not plain HTTP on an address: {url}"));
    produce_per_partition(&lab, TOPIC, 1, RECORDS).await;
    let client = client(&lab).await;
    append_genuine(&client, TOPIC, "genuine", RECORDS).await;
    client.close().await.ok();
    let proxy = Proxy::start(upstream);
    let mut failures = suite.failures(&Answer::ALL, |case| {
        proxy.set(Some(hook(case.class)));
        let (o, wall) = audit(&lab, &proxy);
        eprintln!(
            "hostile sql_answers case {} ({:?}) in {wall:?}: {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        check_refused(&case, &o, wall);
    });
    proxy.set(None);
    let (good, _) = audit(&lab, &proxy);
    let clean: Option<Value> = serde_json::from_str(&good.stdout_text()).ok();
    let part = clean.as_ref().map(|r| &r["tables"][0]["partitions"][0]);
    if good.code != Some(0) || part.is_none_or(|p| p["distinct_offsets"] != RECORDS) {
        failures.push(format!(
            "hostile sql_answers: after the hostile answers, a good server's audit is not clean \
             with {RECORDS} offsets: {}",
            good.summary()
        ));
    }
    suite.finish(failures);
}
