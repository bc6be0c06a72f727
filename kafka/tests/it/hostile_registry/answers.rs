//! `hostile_registry_answers`: the registry itself is hostile — an answer of 100 MB, one
//! chunked forever, a drip of one byte a second, a redirect, a page that is no registry's
//! answer, a `schema` of the wrong JSON type, HTTP 500s, a connection reset, an id that
//! answers another schema than before. The caps table's row "Schema Registry answers" must
//! hold: 1 MiB an answer (past it a dead letter naming the id and the limit), 10 s a request
//! (then retried), redirects never followed (the sink stops naming the fix, the other host is
//! never asked), passing failures retried with a backoff (one request per attempt, no storm)
//! until the registry answers, when the messages land; an id means what it first meant.
//! The registry's password is never printed (the sink logs at debug).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snowpipe_hostile::{attempt, check, Case, Outcome, Suite};
use snowpipe_kafka_lab::demo::Lab;

use super::double::{raw, serve, Answers, Reply, Seen};
use super::{
    assert_no_secret, check_whole_run, dead_letters, fate, landed, limits, produce, run, sink, At,
    Format, Msg, DLQ, GOOD_ID,
};
use crate::common::{lab_with_tables, CONNECTOR_ROWS};

/// What the registry does for a case's schema id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// 200 with `content-length: 100 MB`, written as long as read.
    Huge,
    /// 200, chunked, forever.
    Endless,
    /// 200, one byte a second (once; then the schema).
    Drip,
    /// 302 to another registry (always).
    Redirect,
    /// 200 with an HTML page (once).
    ContentType,
    /// 200 with `{"schema": 5}` (once).
    WrongType,
    /// 500 (twice).
    ServerError,
    /// The connection reset (once).
    Reset,
    /// Large schemas the cache must forget, each answered differently when asked again.
    Changed,
}

impl Answer {
    const ALL: [Answer; 9] = [
        Answer::Huge,
        Answer::Endless,
        Answer::Drip,
        Answer::Redirect,
        Answer::ContentType,
        Answer::WrongType,
        Answer::ServerError,
        Answer::Reset,
        Answer::Changed,
    ];

    /// How many requests fail before the schema is served (`None`: never served).
    fn failures(self) -> Option<usize> {
        match self {
            Self::Huge | Self::Endless | Self::Redirect | Self::Changed => None,
            Self::ServerError => Some(2),
            Self::Drip | Self::ContentType | Self::WrongType | Self::Reset => Some(1),
        }
    }
}

/// How many large schemas a `Changed` case registers: at ~19 MB a schema in the cache's
/// weight (24 × a 0.8 MB answer), 64 MiB holds three.
const CHANGED_IDS: u32 = 6;

/// A `Changed` case's large Avro schema: a record of one long field named `field`, with a
/// 780 KB doc.
fn large(field: &str) -> String {
    format!(
        r#"{{"type":"record","name":"L","doc":"{}","fields":[{{"name":"{field}","type":"long"}}]}}"#,
        "d".repeat(780_000)
    )
}

/// The schema ids of case `index`: one, or [`CHANGED_IDS`] for a `Changed` case.
fn ids(case: &Case<Answer>) -> Vec<u32> {
    let base = 200 + 100 * u32::try_from(case.index).expect("an index");
    match case.class {
        Answer::Changed => (base..base + CHANGED_IDS).collect(),
        _ => vec![base],
    }
}

/// The registry of every case; redirects go to `elsewhere`.
async fn registry(cases: &[Case<Answer>], elsewhere: String) -> (String, Arc<Mutex<Seen>>) {
    let by_id: HashMap<u32, Answer> = cases
        .iter()
        .flat_map(|c| ids(c).into_iter().map(move |id| (id, c.class)))
        .collect();
    let answers: Answers = Arc::new(move |id, before| {
        let good = |schema: String| Reply::Schema {
            kind: "AVRO",
            schema,
            references: None,
        };
        let Some(&class) = by_id.get(&id) else {
            return if id == GOOD_ID {
                good(Format::Avro.good_schema().to_owned())
            } else {
                raw(
                    "404 Not Found",
                    r#"{"error_code":40403,"message":"not found"}"#,
                )
            };
        };
        if class.failures().is_some_and(|n| before >= n) {
            return good(Format::Avro.good_schema().to_owned());
        }
        match class {
            Answer::Huge => Reply::Huge(100 << 20),
            Answer::Endless => Reply::Endless,
            Answer::Drip => Reply::Drip,
            Answer::Redirect => Reply::Redirect(format!("{elsewhere}/schemas/ids/{id}")),
            Answer::ContentType => Reply::Raw {
                status: "200 OK",
                content_type: "text/html",
                body: b"<html><body>a proxy's page</body></html>".to_vec(),
            },
            Answer::WrongType => raw("200 OK", r#"{"schema":5,"schemaType":["AVRO"]}"#),
            Answer::ServerError => raw("500 Internal Server Error", r#"{"error_code":50001}"#),
            Answer::Reset => Reply::Reset,
            Answer::Changed => good(large(if before == 0 { "first" } else { "second" })),
        }
    });
    serve(answers).await
}

/// Sends each case's messages on its own partition of `topic`: a good one, the case's (for a
/// `Changed` case each large id, then each again), a good one.
async fn send(lab: &Lab, topic: &str, cases: &[Case<Answer>]) -> Vec<(Case<Answer>, Vec<At>)> {
    let mut sent = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let base = 1_000 * (case.index as u64 + 1);
        let v = |id, n| Format::Avro.value(id, n);
        let mut msgs = vec![Msg {
            value: v(GOOD_ID, base + 1),
            hostile: None,
        }];
        let ids = ids(case);
        let repeat = if case.class == Answer::Changed { 2 } else { 1 };
        for (i, id) in ids.iter().cycle().take(ids.len() * repeat).enumerate() {
            msgs.push(Msg {
                value: v(*id, base + 500 + i as u64),
                hostile: Some(*id),
            });
        }
        msgs.push(Msg {
            value: v(GOOD_ID, base + 2),
            hostile: None,
        });
        let p = i32::try_from(k).expect("a partition");
        sent.push((case.clone(), produce(lab, topic, p, msgs).await));
    }
    sent
}

/// What a case's hostile message may come to: `Ok` if `got` is right for `class`.
fn judge(class: Answer, id: u32, got: &Result<Option<String>, String>) -> Result<(), String> {
    let named =
        |why: &str, needle: &str| why.contains(&format!("schema id {id}")) && why.contains(needle);
    match (class, got) {
        (Answer::Huge | Answer::Endless, Ok(Some(why)))
            if named(why, "larger than 1048576 bytes") =>
        {
            Ok(())
        }
        (Answer::Changed, Ok(None)) => Ok(()),
        (Answer::Changed, Ok(Some(why))) if named(why, "another schema than earlier") => Ok(()),
        (c, Ok(None)) if c.failures().is_some() => Ok(()),
        _ => Err(format!("{got:?}")),
    }
}

/// The checks of the main run (every case but the redirects).
fn check_main(
    lab: &Lab,
    topic: &str,
    o: &Outcome,
    sent: &[(Case<Answer>, Vec<At>)],
    seen: &Seen,
) -> Vec<String> {
    let mut failures = Vec::new();
    eprintln!("hostile registry answers: {}", o.summary());
    if let Some((first, _)) = sent.first() {
        failures.extend(check_whole_run(first, o).err());
    }
    let (rows, dead) = (landed(lab, topic), dead_letters(lab, topic));
    for (case, at) in sent {
        failures.extend(attempt(|| check_case(case, at, &rows, &dead, seen, o)).err());
    }
    failures
}

/// One case of the main run: each message's fate, and what the registry saw.
fn check_case(
    case: &Case<Answer>,
    at: &[At],
    rows: &HashMap<(i64, i64), Vec<serde_json::Value>>,
    dead: &HashMap<(i64, i64), Vec<String>>,
    seen: &Seen,
    o: &Outcome,
) {
    let stderr = || o.stderr_text().chars().take(1500).collect::<String>();
    for &(p, off, hostile) in at {
        let got = fate(rows, dead, (p, off));
        eprintln!(
            "  case {} ({:?}) {p}/{off}: {got:?}",
            case.index, case.class
        );
        let verdict = match hostile {
            None => got.clone().and_then(|g| g.map_or(Ok(()), Err)),
            Some(id) => judge(case.class, id, &got),
        };
        if let Err(e) = verdict {
            case.fail(format!(
                "the message at {p}/{off} ({hostile:?}): {e} (stderr: {})",
                stderr()
            ));
        }
        // A changed schema is never applied: what landed has the first schema's field.
        for row in rows.get(&(i64::from(p), off)).into_iter().flatten() {
            if row.get("second").is_some() {
                case.fail(format!("a row decoded with the id's second answer: {row}"));
            }
        }
    }
    for id in ids(case) {
        let asked = seen.asked.get(&id).copied().unwrap_or(0);
        let conns: Vec<_> = seen.connections.iter().filter(|c| c.0 == id).collect();
        let most_bytes = conns.iter().map(|c| c.1).max().unwrap_or(0);
        let longest = conns.iter().map(|c| c.2).max().unwrap_or_default();
        eprintln!("  case {} ({:?}) id {id}: asked {asked}, at most {most_bytes} bytes written, longest {longest:?}", case.index, case.class);
        match case.class {
            // Read up to the cap, then dropped: the socket buffers hold a few MB more at most.
            Answer::Huge | Answer::Endless if most_bytes > 32 << 20 => case.fail(format!(
                "the sink read {most_bytes} bytes of an answer capped at 1 MiB"
            )),
            // Cut at the 10 s a request may take (a drip of 1 byte a second writes one more
            // byte before it sees the connection closed).
            Answer::Drip if longest > Duration::from_secs(15) => case.fail(format!(
                "a dripping answer was read for {longest:?} (the cap is 10 s)"
            )),
            c if c.failures().is_some_and(|n| asked != n + 1) => case.fail(format!(
                "asked {asked} times; want {} (each failure retried once, after a backoff)",
                c.failures().unwrap_or(0) + 1
            )),
            _ => {}
        }
    }
    if case.class == Answer::Changed && !ids(case).iter().any(|id| seen.asked.get(id) > Some(&1)) {
        case.fail("no large schema was forgotten and fetched again: the case tested nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_answers() {
    let suite = Suite::from_env("registry_answers", Answer::ALL.len());
    let (redirects, cases): (Vec<_>, Vec<_>) = suite
        .cases(&Answer::ALL)
        .into_iter()
        .partition(|c| c.class == Answer::Redirect);
    let (topic, redirect_topic) = ("hostile.answers", "hostile.answers.redirect");
    let parts = |n: usize| i32::try_from(n.max(1)).expect("partitions");
    let lab = lab_with_tables(
        &[
            (topic, parts(cases.len())),
            (redirect_topic, parts(redirects.len())),
            (DLQ, 1),
        ],
        CONNECTOR_ROWS,
    )
    .await;
    let (elsewhere, other_seen) = serve(Arc::new(|_, _| raw("200 OK", "{}"))).await;
    let (url, seen) = registry(&[cases.clone(), redirects.clone()].concat(), elsewhere).await;
    let sent = send(&lab, topic, &cases).await;
    let redirect_sent = send(&lab, redirect_topic, &redirects).await;
    let debug = |mut cmd: std::process::Command| {
        cmd.env("RUST_LOG", "info,snowpipe_kafka=debug");
        cmd
    };
    let main_run = async {
        if cases.is_empty() {
            return None;
        }
        let cmd = debug(sink(&lab, topic, Format::Avro, &url, "2s"));
        Some(run(cmd, limits(Duration::from_secs(120))).await)
    };
    let redirect_run = async {
        if redirects.is_empty() {
            return None;
        }
        let cmd = debug(sink(&lab, redirect_topic, Format::Avro, &url, "2s"));
        Some(run(cmd, limits(Duration::from_secs(60))).await)
    };
    let (main, redirected) = tokio::join!(main_run, redirect_run);
    let mut failures = Vec::new();
    if let Some(o) = main {
        let seen = seen.lock().unwrap().clone();
        failures.extend(check_main(&lab, topic, &o, &sent, &seen));
    }
    if let (Some(o), Some(first)) = (redirected, redirects.first()) {
        eprintln!("hostile registry answers, redirects: {}", o.summary());
        let dead = dead_letters(&lab, redirect_topic);
        failures.extend(
            attempt(|| {
                check::no_crash(first, &o);
                check::refused_naming(first, &o, &["does not follow redirects", "--schema-registry-url"]);
                assert_no_secret(&o).unwrap_or_else(|e| first.fail(e));
                if let Some(hostile) = redirect_sent.iter().flat_map(|(_, at)| at).find(|a| a.2.is_some() && dead.contains_key(&(i64::from(a.0), a.1))) {
                    first.fail(format!("a message whose registry redirects is a dead letter (it must wait for the fix): {hostile:?}"));
                }
                let asked = {
                    let other = other_seen.lock().unwrap();
                    other.asked.len() + other.unauthorized
                };
                if asked > 0 {
                    first.fail(format!("the host a redirect named was asked {asked} time(s)"));
                }
            })
            .err(),
        );
    }
    suite.finish(failures);
}
