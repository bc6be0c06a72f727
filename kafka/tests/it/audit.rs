//! `snowpipe-kafka audit`: each duplicate and each gap the broker holds is reported, per
//! partition, beside the channel's token and the group's offset; the printed statement (run
//! by hand, and by `--apply`) leaves every offset exactly once, keeping the copy with the
//! earliest `SnowflakeConnectorPushTime`, and loses no row: not the last copy, not a row
//! without an offset, not another topic's. Planted rows are appended through the SDK as the
//! connector writes them; the overlap test has two real writers on one partition through
//! different channels (the connector's and the sink's), as when both run during a move.
#![cfg(unix)]

use snowpipe_streaming::{Positions, Rows};
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA, TABLE};
use snowpipe_streaming::{OffsetToken, StreamingIngestClient};

use crate::common::{bin, client, client_builder, lab, produce_per_partition, run, run_json};
use snowpipe_cli_support::process::Signal;

const TOPIC: &str = "orders";

/// `snowpipe-kafka audit` of `TOPIC` in the lab's table, group `group`.
fn audit(lab: &Lab, group: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("audit")
        .args(["--brokers", &lab.brokers(), "--group", group])
        .args(["--database", DATABASE, "--schema", SCHEMA])
        .args(["--topic", TOPIC, "--pipe", PIPE]);
    lab.connect(&mut cmd);
    cmd
}

/// The report's entry for partition `p` of `TOPIC`.
fn partition(report: &Value, p: i64) -> &Value {
    report["tables"][0]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .find(|x| x["topic"] == TOPIC && x["partition"] == p)
        .unwrap_or_else(|| panic!("partition {p}: {report}"))
}

/// Appends `rows` (`ID`, `KIND`, `RECORD_METADATA`) through channel `name` of the lab's pipe,
/// the last token `token`, and waits for the commit.
pub(crate) async fn append(
    client: &StreamingIngestClient,
    name: &str,
    rows: Vec<Value>,
    token: i64,
) {
    let ch = client
        .pipe(DATABASE, SCHEMA, PIPE)
        .open_channel(name)
        .await
        .expect("open");
    let token = OffsetToken::new(token.to_string()).expect("token");
    let n = rows.len();
    let tokened: Vec<_> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let t = if i + 1 == n {
                token.clone()
            } else {
                OffsetToken::new(format!("{i}-of-{name}")).expect("token")
            };
            (r, t)
        })
        .collect();
    let (rows, tokens): (Vec<_>, Vec<_>) = tokened.into_iter().unzip();
    ch.append(Rows::serde(rows), Positions::per_row(tokens))
        .await
        .expect("append");
    ch.wait_for_commit(&token, Duration::from_secs(30))
        .await
        .expect("committed");
    ch.close().await.expect("close");
}

/// Appends `records` genuine rows of partition 0 of `topic` (offsets 0 to `records` - 1, each
/// pushed at 5000 + its offset) through channel `name`, as the connector writes them.
pub(crate) async fn append_genuine(
    client: &StreamingIngestClient,
    topic: &str,
    name: &str,
    records: i64,
) {
    let rows: Vec<Value> = (0..records)
        .map(|o| {
            json!({"ID": o, "KIND": "genuine", "AMOUNT": o, "RECORD_METADATA":
                {"topic": topic, "partition": 0, "offset": o, "CreateTime": 1,
                 "SnowflakeConnectorPushTime": 5000 + o}})
        })
        .collect();
    append(client, name, rows, records - 1).await;
}

/// A row as the connector writes it: the record's partition and offset, a push time (`None`:
/// left out) and a kind naming the copy.
fn row(p: i64, o: i64, push: Option<i64>, kind: &str) -> Value {
    let mut meta = json!({"topic": TOPIC, "partition": p, "offset": o, "CreateTime": 1});
    if let Some(t) = push {
        meta["SnowflakeConnectorPushTime"] = json!(t);
    }
    json!({"ID": p * 1000 + o, "KIND": kind, "AMOUNT": o, "RECORD_METADATA": meta})
}

/// Every row of the table: (`KIND`, `RECORD_METADATA`).
pub(crate) fn table_rows(lab: &Lab) -> Vec<(String, Value)> {
    lab.emulator()
        .query(&format!(
            r#"SELECT KIND, RECORD_METADATA FROM "{DATABASE}.{SCHEMA}.{TABLE}""#
        ))
        .expect("rows")
        .iter()
        .map(|r| {
            let meta = match &r[1] {
                Value::String(s) => serde_json::from_str(s).expect("metadata"),
                v => v.clone(),
            };
            (r[0].as_str().unwrap_or_default().to_owned(), meta)
        })
        .collect()
}

/// How many rows of `TOPIC` each (partition, offset) has, and the kind of each kept copy.
fn copies(lab: &Lab) -> BTreeMap<(i64, i64), Vec<String>> {
    let mut out: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for (kind, meta) in table_rows(lab) {
        if meta["topic"] != TOPIC {
            continue;
        }
        if let (Some(p), Some(o)) = (meta["partition"].as_i64(), meta["offset"].as_i64()) {
            out.entry((p, o)).or_default().push(kind);
        }
    }
    out
}

/// Planted: on partition 0, offset 3 twice (push times 2000, 1000), 10 three times (3000,
/// 1000, none), 12 twice alike, 5-7 missing; on partition 1, 15 missing; a row without a
/// partition and another topic's row twice. Each duplicate and gap is reported, with the
/// channel's token and the group's offset, exit 1; the printed statement, run through the SQL
/// API, keeps the earliest copy of each and every other row; `--apply` does the same to new
/// duplicates and the audit after it finds none (the gaps remain, exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_duplicates_and_gaps_are_reported_and_the_statement_keeps_one_of_each() {
    let lab = lab(&[(TOPIC, 2)]).await;
    produce_per_partition(&lab, TOPIC, 2, 20).await;
    let client = client(&lab).await;
    let mut p0: Vec<Value> = (0..20)
        .filter(|o| !(5..=7).contains(o))
        .map(|o| row(0, o, Some(5000 + o), "once"))
        .collect();
    p0.extend([
        row(0, 3, Some(1000), "earliest"),
        row(0, 10, Some(1000), "earliest"),
        row(0, 10, None, "no push time"),
        row(0, 12, Some(5012), "once"),
    ]);
    // Offset 3's first copy is later than its planted one.
    p0[3]["RECORD_METADATA"]["SnowflakeConnectorPushTime"] = json!(2000);
    p0[7]["RECORD_METADATA"]["SnowflakeConnectorPushTime"] = json!(3000); // offset 10
    p0.push(json!({"ID": -1, "KIND": "no partition", "RECORD_METADATA": {"topic": TOPIC}}));
    for _ in 0..2 {
        p0.push(json!({"ID": -2, "KIND": "other topic",
            "RECORD_METADATA": {"topic": "other", "partition": 0, "offset": 1}}));
    }
    append(&client, "audit_orders_0", p0, 19).await;
    let p1: Vec<Value> = (0..20)
        .filter(|o| *o != 15)
        .map(|o| row(1, o, Some(5000 + o), "once"))
        .collect();
    append(&client, "audit_orders_1", p1, 19).await;

    let (out, report) = run_json(&mut audit(&lab, "audit"));
    assert!(!out.success, "problems exit 1: {}", out.stdout);
    assert_eq!(report["clean"], false);
    let a = partition(&report, 0);
    assert_eq!(a["rows"], 21, "{a}");
    assert_eq!(a["distinct_offsets"], 17, "{a}");
    assert_eq!(a["duplicated_offsets"], 3, "{a}");
    assert_eq!(a["extra_copies"], 4, "{a}");
    assert_eq!(
        a["duplicates"],
        json!([{"offset": 3, "copies": 2}, {"offset": 10, "copies": 3},
               {"offset": 12, "copies": 2}])
    );
    assert_eq!(a["missing"], 3, "{a}");
    assert_eq!(a["gaps"], json!([{"from": 5, "to": 7}]), "{a}");
    assert_eq!(a["channel"], "audit_orders_0");
    assert_eq!(a["committed_token"], "19");
    assert_eq!(a["log_end"], 20);
    assert_eq!(a["group_offset"], Value::Null);
    let b = partition(&report, 1);
    assert_eq!(b["extra_copies"], 0, "{b}");
    assert_eq!(b["gaps"], json!([{"from": 15, "to": 15}]), "{b}");
    assert!(
        out.stderr
            .contains("3 offsets landed more than once (4 extra rows): 3 (2×), 10 (3×), 12 (2×)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "topic orders partition 1: 1 offset the broker still holds is not in the table: 15"
        ),
        "{}",
        out.stderr
    );
    assert!(report["channel_of_rows"]
        .as_str()
        .unwrap()
        .contains("no channel name"));

    // The text report says the same, with the statement.
    let text = run(&mut audit(&lab, "audit")).stdout;
    for line in [
        "orders/0: 21 rows, 17 distinct offsets (0..19)",
        "channel audit_orders_0: token 19; group offset none; log 0..20",
        "DUPLICATES: 3 offsets, 4 extra rows: 3×2 10×3 12×2",
        "GAPS: 3 offsets the broker holds: 5-7",
        "GAPS: 1 offsets the broker holds: 15\n",
        "INSERT OVERWRITE INTO DEMO.KAFKA.EVENTS SELECT * FROM DEMO.KAFKA.EVENTS QUALIFY",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    // The printed statement, run as a user would.
    let statement = report["tables"][0]["dedup_statement"].as_str().unwrap();
    let sql = client_builder(&lab)
        .build_sql()
        .expect("sql")
        .database(DATABASE)
        .schema(SCHEMA);
    let kept = sql.query(statement).await.expect("the statement runs");
    assert_eq!(kept.rows, [[Some((17 + 19 + 3).to_string())]]);
    let after = copies(&lab);
    assert!(after.values().all(|k| k.len() == 1), "{after:?}");
    assert_eq!(after.len(), 17 + 19, "no offset lost");
    assert_eq!(after[&(0, 3)], ["earliest"]);
    assert_eq!(after[&(0, 10)], ["earliest"]);
    let rows = table_rows(&lab);
    let kinds = |k: &str| rows.iter().filter(|(kind, _)| kind == k).count();
    assert_eq!((kinds("no partition"), kinds("other topic")), (1, 2));

    // New duplicates, then --apply: the audit after it finds none; the gaps remain.
    append(
        &client,
        "audit_orders_1",
        vec![
            row(1, 4, Some(9000), "late"),
            row(1, 4, Some(9001), "later"),
        ],
        19,
    )
    .await;
    // The token was 19 already: wait for the rows themselves.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while copies(&lab)[&(1, 4)].len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the late rows never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (out, report) = run_json(audit(&lab, "audit").arg("--apply"));
    assert!(!out.success, "the gaps remain: {}", out.stdout);
    assert_eq!(report["applied"][0]["rows_kept"], 17 + 19 + 3);
    for p in [0, 1] {
        assert_eq!(partition(&report, p)["duplicated_offsets"], 0, "{report}");
    }
    assert_eq!(partition(&report, 1)["missing"], 1);
    assert_eq!(copies(&lab)[&(1, 4)], ["once"]);
    client.close().await.ok();
}

/// Two writers on each partition through different channels: the connector (played through
/// the SDK, as `connector_takeover.rs` does) landed offsets 0-19 under its channels, then
/// `snowpipe-kafka` in a group of its own (its channels `sink_orders_<p>`) read the topic from
/// the start. The audit reports offsets 0-19 twice on each partition and no gap; `--apply`
/// leaves each offset once, the connector's copy (the earlier push time), exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlap_of_two_writers_is_found_and_removed_keeping_the_earliest_copy() {
    const PER: i64 = 30;
    let lab = lab(&[(TOPIC, 2)]).await;
    let messages = produce_per_partition(&lab, TOPIC, 2, PER).await;
    let client = client(&lab).await;
    for p in 0..2 {
        let rows = (0..20)
            .map(|o| {
                json!({"ID": messages[&(p, o)], "KIND": "connector", "AMOUNT": o,
                       "RECORD_METADATA": {"topic": TOPIC, "partition": p, "offset": o,
                                           "SnowflakeConnectorPushTime": 1_000}})
            })
            .collect();
        append(
            &client,
            &format!("SNOWFLAKE_SINK_1996731346_{TOPIC}_{p}"),
            rows,
            19,
        )
        .await;
    }
    client.close().await.ok();
    run(lab
        .instance(&bin(), TOPIC, "sink")
        .args(["--until-idle", "3s"]))
    .ok();

    let (out, report) = run_json(&mut audit(&lab, "sink"));
    assert!(!out.success, "{}", out.stdout);
    for p in [0, 1] {
        let a = partition(&report, p);
        assert_eq!(a["rows"], 50, "{a}");
        assert_eq!(a["distinct_offsets"], PER, "{a}");
        assert_eq!(a["duplicated_offsets"], 20, "{a}");
        assert_eq!(
            a["duplicates"].as_array().unwrap().len(),
            20,
            "the default list"
        );
        assert_eq!(a["missing"], 0, "{a}");
        assert_eq!(a["committed_token"], (PER - 1).to_string());
        assert_eq!(
            a["group_offset"], PER,
            "the sink commits the group's offsets too"
        );
        assert_eq!(a["rows_with_push_time"], 50, "{a}");
    }
    // `--list` bounds what is listed, not what is counted.
    let (_, short) = run_json(audit(&lab, "sink").args(["--list", "2"]));
    assert_eq!(
        partition(&short, 0)["duplicates"].as_array().unwrap().len(),
        2
    );
    assert_eq!(partition(&short, 0)["duplicated_offsets"], 20);

    let (out, report) = run_json(audit(&lab, "sink").arg("--apply"));
    assert!(
        out.success,
        "clean after --apply: {} {}",
        out.stdout, out.stderr
    );
    assert_eq!(report["clean"], true);
    let after = copies(&lab);
    let expected: HashMap<(i64, i64), Vec<String>> = (0..2)
        .flat_map(|p| (0..PER).map(move |o| (p, o)))
        .map(|(p, o)| {
            let kind = if o < 20 { "connector" } else { "k" };
            ((p, o), vec![kind.to_owned()])
        })
        .collect();
    assert_eq!(after.into_iter().collect::<HashMap<_, _>>(), expected);
    let text = run(&mut audit(&lab, "sink")).ok().stdout;
    assert!(text.contains("clean: every offset landed once"), "{text}");
}

/// Offsets absent from the table that the broker no longer delivers are not gaps: here
/// offsets below the log start (deleted by retention: the mock cluster keeps 5 MiB per
/// partition; it has no compaction and writes no transaction markers, the other holes the
/// audit asks the broker about). What the broker still delivers is a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_deleted_by_retention_are_not_gaps() {
    let lab = lab(&[(TOPIC, 1)]).await;
    // 60 records of 100 KB; the oldest are deleted past 5 MiB.
    let producer = lab.producer().expect("producer");
    let pad = "r".repeat(100_000);
    let values: Vec<String> = (0..60)
        .map(|i| format!(r#"{{"id":{i},"kind":"{pad}","amount":0}}"#))
        .collect();
    crate::common::deliver_all(
        &producer,
        values.iter().map(|v| {
            rdkafka::producer::FutureRecord::to(TOPIC)
                .partition(0)
                .key("k")
                .payload(v)
        }),
    )
    .await;
    // Landed: offset 0 (before retention deleted it) and 40-59.
    let client = client(&lab).await;
    let rows = std::iter::once(0)
        .chain(40..60)
        .map(|o| row(0, o, Some(1), "k"))
        .collect();
    append(&client, "audit_orders_0", rows, 59).await;
    client.close().await.ok();

    let (out, report) = run_json(&mut audit(&lab, "audit"));
    assert!(!out.success, "{}", out.stdout);
    let a = partition(&report, 0);
    let start = a["log_start"].as_i64().expect("log start");
    assert!((2..40).contains(&start), "retention deleted some: {a}");
    assert_eq!(a["gaps"], json!([{"from": start, "to": 39}]), "{a}");
    assert_eq!(a["missing"].as_i64(), Some(40 - start), "{a}");
    assert_eq!(a["absent_not_held"].as_i64(), Some(start - 1), "{a}");
    assert_eq!(a["absent_not_checked"], 0, "{a}");
    assert!(
        out.stderr.contains(&format!(
            "topic orders partition 0: {} offsets the broker still holds are not in the table: \
             {start}-39;",
            40 - start
        )),
        "{}",
        out.stderr
    );
}

/// Two real runs of the sink in different consumer groups (a renamed group, or a second
/// deployment by mistake): each writes every offset through channels of its own, so every
/// offset lands twice. The audit counts them all; `--apply` keeps the first run's copies (the
/// earlier push times) and loses none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sink_runs_in_different_groups_land_twice_and_apply_keeps_the_first() {
    const PER: i64 = 15;
    let lab = lab(&[(TOPIC, 2)]).await;
    let messages = produce_per_partition(&lab, TOPIC, 2, PER).await;
    for group in ["first", "second"] {
        run(lab
            .instance(&bin(), TOPIC, group)
            .args(["--until-idle", "2s"]))
        .ok();
    }
    let push_times = |lab: &Lab| -> HashMap<(i64, i64), Vec<i64>> {
        let mut out: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
        for (_, meta) in table_rows(lab) {
            let key = (
                meta["partition"].as_i64().unwrap(),
                meta["offset"].as_i64().unwrap(),
            );
            let at = meta["SnowflakeConnectorPushTime"]
                .as_i64()
                .expect("push time");
            out.entry(key).or_default().push(at);
        }
        out
    };
    let before = push_times(&lab);
    assert!(before.values().all(|t| t.len() == 2), "{before:?}");

    let (out, report) = run_json(&mut audit(&lab, "second"));
    assert!(!out.success, "{}", out.stdout);
    for p in [0, 1] {
        let a = partition(&report, p);
        assert_eq!(
            (a["rows"].as_i64(), a["extra_copies"].as_i64()),
            (Some(2 * PER), Some(PER)),
            "{a}"
        );
        assert_eq!(a["channel"], format!("second_{TOPIC}_{p}"));
        assert_eq!(a["committed_token"], (PER - 1).to_string());
    }
    let (out, _) = run_json(audit(&lab, "second").arg("--apply"));
    assert!(out.success, "{} {}", out.stdout, out.stderr);
    let after = push_times(&lab);
    assert_eq!(after.len(), messages.len(), "no offset lost");
    for (key, times) in &after {
        assert_eq!(
            times,
            &[*before[key].iter().min().unwrap()],
            "{key:?} keeps its first copy"
        );
    }
}

/// Rows past the partition's end (a table written from another cluster, or forged offsets):
/// the audit reads the broker from the first absent offset and meets the partition's end at
/// once. That end is expected and is not logged as an error (librdkafka reports it as an error
/// event, which the client library logged at ERROR level on every audit that read a gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_partition_is_not_an_error() {
    let lab = lab(&[(TOPIC, 1)]).await;
    produce_per_partition(&lab, TOPIC, 1, 5).await;
    let client = client(&lab).await;
    let rows = (0..5)
        .chain(std::iter::once(9))
        .map(|o| row(0, o, Some(1), "k"))
        .collect();
    append(&client, "audit_orders_0", rows, 9).await;
    client.close().await.ok();

    let (out, report) = run_json(&mut audit(&lab, "audit"));
    let a = partition(&report, 0);
    assert_eq!(a["absent_not_held"], 4, "{a}");
    assert_eq!(a["absent_not_checked"], 0, "{a}");
    assert!(
        !out.stderr.contains("ERROR") && !out.stderr.contains("EOF"),
        "the partition's end is logged as a problem: {}",
        out.stderr
    );
}

/// Issue 81, item 2: a value carrying its own `RECORD_METADATA` (as written, first in the
/// value, escaped, in lower case), naming offset 0 with push time 0, landed with the key twice;
/// the emulator kept the forgery and the audit called offset 0 a duplicate. The sink's
/// `RECORD_METADATA` wins (as in the connector v4): each row has its own offset and a real
/// push time, the value's other columns land, and the audit is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_values_own_record_metadata_never_replaces_the_sinks() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let forged = r#"{"topic":"orders","partition":0,"offset":0,"SnowflakeConnectorPushTime":0}"#;
    let values = [
        r#"{"id":0,"kind":"genuine","amount":0}"#.to_owned(),
        format!(r#"{{"id":1,"kind":"exact","amount":1,"RECORD_METADATA":{forged}}}"#),
        format!(r#"{{"RECORD_METADATA":{forged},"id":2,"kind":"first","amount":2}}"#),
        format!(r#"{{"id":3,"kind":"escaped","RECORD\u005fMETADATA":{forged},"amount":3}}"#),
        format!(r#"{{"id":4,"kind":"lower","amount":4,"record_metadata":{forged}}}"#),
    ];
    let producer = lab.producer().expect("producer");
    crate::common::deliver_all(
        &producer,
        values.iter().map(|v| {
            rdkafka::producer::FutureRecord::to(TOPIC)
                .partition(0)
                .key("k")
                .payload(v)
        }),
    )
    .await;
    run(lab
        .instance(&bin(), TOPIC, "sink")
        .args(["--until-idle", "3s"]))
    .ok();
    let mut rows = table_rows(&lab);
    rows.sort_by_key(|(_, m)| m["offset"].as_i64());
    let kinds: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["genuine", "exact", "first", "escaped", "lower"],
        "{rows:?}"
    );
    for (o, (_, meta)) in rows.iter().enumerate() {
        assert_eq!(meta["offset"], o, "{meta}");
        assert!(
            meta["SnowflakeConnectorPushTime"].as_i64() > Some(0),
            "the sink's push time: {meta}"
        );
    }
    let (out, report) = run_json(&mut audit(&lab, "sink"));
    assert!(out.success, "{} {}", out.stdout, out.stderr);
    assert_eq!(partition(&report, 0)["duplicated_offsets"], 0, "{report}");
}

/// Issue 81, item 2 (`audit`): copies whose push time cannot be trusted (0, or before the
/// row's own `CreateTime`) are never kept over one whose push time can, however early they
/// claim to be; between trusted copies the earliest still wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_never_keeps_a_copy_with_untrusted_metadata_over_a_trusted_one() {
    let lab = lab(&[(TOPIC, 1)]).await;
    produce_per_partition(&lab, TOPIC, 1, 4).await;
    let client = client(&lab).await;
    let mut rows: Vec<Value> = (0..4)
        .map(|o| row(0, o, Some(5000 + o), "genuine"))
        .collect();
    rows.push(row(0, 1, Some(0), "push time 0"));
    let mut before_its_record = row(0, 2, Some(1), "before its record");
    before_its_record["RECORD_METADATA"]["CreateTime"] = json!(4000);
    rows.push(before_its_record);
    rows.push(row(0, 3, Some(-7), "negative"));
    rows.push(row(0, 0, Some(4000), "earlier genuine"));
    append(&client, "planted", rows, 3).await;
    client.close().await.ok();

    let (out, report) = run_json(&mut audit(&lab, "sink"));
    assert!(!out.success, "{}", out.stdout);
    assert_eq!(partition(&report, 0)["rows_untrusted"], 3, "{report}");
    let (out, _) = run_json(audit(&lab, "sink").args(["--apply", "--idle-for", "1s"]));
    assert!(out.success, "{} {}", out.stdout, out.stderr);
    let kept: Vec<(i64, Vec<String>)> = copies(&lab)
        .into_iter()
        .map(|((_, o), kinds)| (o, kinds))
        .collect();
    assert_eq!(
        kept,
        [
            (0, vec!["earlier genuine".to_owned()]),
            (1, vec!["genuine".to_owned()]),
            (2, vec!["genuine".to_owned()]),
            (3, vec!["genuine".to_owned()]),
        ]
    );
}

/// Issue 81, item 16: `--apply` while a writer commits (a sink of the audited group reading a
/// topic a producer keeps writing to) is refused, naming the channel whose token moved, and
/// changes nothing; `--force` is needed to run it anyway. Once the writer stopped it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_is_refused_while_a_writer_commits() {
    let lab = lab(&[(TOPIC, 1)]).await;
    produce_per_partition(&lab, TOPIC, 1, 10).await;
    run(lab
        .instance(&bin(), TOPIC, "first")
        .args(["--until-idle", "2s"]))
    .ok();
    let mut sink = KillOnDrop(lab.instance(&bin(), TOPIC, "second").spawn().expect("sink"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (stop, producer) = (stop.clone(), lab.producer().expect("producer"));
        tokio::spawn(async move {
            let mut n = 100;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = format!(r#"{{"id":{n},"kind":"later","amount":0}}"#);
                crate::common::deliver(
                    &producer,
                    rdkafka::producer::FutureRecord::to(TOPIC)
                        .partition(0)
                        .key("k")
                        .payload(&v),
                )
                .await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // The second group lands the first ten offsets again.
    crate::common::wait_landed(&lab, 21, Duration::from_secs(60)).await;
    let refused = run(audit(&lab, "second").args(["--apply", "--idle-for", "3s"]));
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("--apply refused")
            && refused.stderr.contains("committed offset token")
            && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    let duplicated = copies(&lab).values().filter(|k| k.len() > 1).count();
    assert_eq!(duplicated, 10, "nothing removed");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producing.await.expect("producer");
    crate::common::signal(&sink.0, Signal::Term);
    sink.0.wait().expect("sink stops");
    let applied = run(audit(&lab, "second").args(["--apply", "--idle-for", "1s"]));
    assert!(applied.success, "{} {}", applied.stdout, applied.stderr);
    assert!(copies(&lab).values().all(|k| k.len() == 1));
}

/// A child process killed when dropped (a failed assertion must not leave it running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Rows the server rejects, several in one request (the channel's status names only the last):
/// the table's error table (`ERROR_LOGGING = TRUE`, as the connector creates its tables) holds
/// each line as sent, so the audit names every rejected offset by its own partition and offset,
/// as rejected rather than as gaps; every other offset landed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_server_rejected_are_named_from_the_error_table_not_as_gaps() {
    const LOGGED: &str = "LOGGED-STREAMING";
    let lab = crate::common::lab_with_tables(
        &[(TOPIC, 1)],
        "CREATE OR REPLACE TABLE DEMO.KAFKA.LOGGED (ID NUMBER, KIND VARCHAR, AMOUNT NUMBER, \
         RECORD_METADATA VARIANT) ERROR_LOGGING = TRUE;",
    )
    .await;
    let producer = lab.producer().expect("producer");
    let mut bad = Vec::new();
    for n in 0..12i64 {
        let rejected = matches!(n, 2 | 3 | 9);
        let v = if rejected {
            format!(r#"{{"id":"order-{n}","kind":"k"}}"#)
        } else {
            format!(r#"{{"id":{n},"kind":"k","amount":{n}}}"#)
        };
        let d = crate::common::deliver(
            &producer,
            rdkafka::producer::FutureRecord::to(TOPIC)
                .partition(0)
                .key("k")
                .payload(&v),
        )
        .await;
        if rejected {
            bad.push(d.offset);
        }
    }
    let mut sink = lab.instance_of(&bin(), "logged");
    sink.args(["--topic", TOPIC, "--pipe", LOGGED, "--metadata"])
        .args(["--until-idle", "3s"]);
    let report = run(&mut sink).ok().report();
    assert_eq!(
        report["consumed"][format!("{TOPIC}/0")]["row_errors"]["count"],
        3,
        "{report}"
    );

    let mut cmd = Command::new(bin());
    cmd.arg("audit")
        .args(["--brokers", &lab.brokers(), "--group", "logged"])
        .args(["--database", DATABASE, "--schema", SCHEMA])
        .args(["--topic", TOPIC, "--pipe", LOGGED]);
    lab.connect(&mut cmd);
    let (out, report) = run_json(&mut cmd);
    assert!(!out.success, "rejected rows are a problem: {}", out.stdout);
    let a = partition(&report, 0);
    assert_eq!(a["rejected"], 3, "{a}");
    assert_eq!(a["rejected_offsets"], json!(bad), "{a}");
    assert_eq!(a["missing"], 0, "not gaps: {a}");
    assert_eq!(a["gaps"], json!([]), "{a}");
    assert_eq!(a["distinct_offsets"], 9, "{a}");
    assert_eq!(a["duplicated_offsets"], 0, "{a}");
    let listed: Vec<String> = bad.iter().map(ToString::to_string).collect();
    assert!(
        out.stderr.contains(&format!(
            "topic {TOPIC} partition 0: 3 offsets were rejected by Snowflake (in the table's \
             error table, not gaps): {}",
            listed.join(", ")
        )),
        "{}",
        out.stderr
    );
}
