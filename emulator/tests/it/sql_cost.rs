//! Issue 42, rows 3–7: what each SQL API attack costs, printed (not asserted: the tests in
//! `sql_sandbox.rs` and the unit tests assert the bounds). Run alone, so the process's CPU time
//! and peak RSS are the attack's:
//!
//! ```text
//! cargo test -p snowpipe-emulator --features cli --test it sql_cost -- --ignored --nocapture
//! ```
//!
//! Linux only (it reads `/proc/self`). It uses only API that `main` had, so the same file
//! measures the build before the fixes.

use std::time::Instant;

use crate::common::*;
use serde_json::json;
use snowpipe_emulator::Emulator;

/// The process's CPU time (user + system) in seconds.
fn cpu_s() -> f64 {
    snowpipe_cli_support::process::self_usage()
        .unwrap()
        .cpu
        .as_secs_f64()
}

/// The peak RSS since the last [`reset_peak`], in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `f`, printing its wall time, CPU time and peak RSS, and what it answered.
async fn measure<F: std::future::Future<Output = String>>(row: &str, f: F) {
    reset_peak();
    let (cpu, wall) = (cpu_s(), Instant::now());
    let outcome = f.await;
    println!(
        "row {row}: wall {:.1} s, CPU {:.1} s, peak RSS {:.0} MB: {outcome}",
        wall.elapsed().as_secs_f64(),
        cpu_s() - cpu,
        peak_mb()
    );
}

fn outcome(r: &Resp) -> String {
    let message: String = r.body["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(110)
        .collect();
    format!("{} {} {message:?}", r.status, r.body["code"])
}

#[tokio::test]
#[ignore = "prints the cost of each attack; run alone with --ignored --nocapture"]
async fn sql_cost_of_the_issue_42_attacks() {
    let cfg = config()
        .with_ddl("CREATE DATABASE VAULT; CREATE SCHEMA VAULT.S; CREATE TABLE VAULT.S.SECRET (ID NUMBER);")
        .with_role_grant("PUBLIC", "DB")
        .with_role_grant("ADMIN", "VAULT");
    let emu = Emulator::start(cfg).await.unwrap();
    measure("3 (4 × zeroblob(60e6))", async {
        let r = sql(
            &emu,
            "SELECT zeroblob(60e6), zeroblob(60e6), zeroblob(60e6), zeroblob(60e6)",
        )
        .await;
        outcome(&r)
    })
    .await;
    measure("3 (3 × zeroblob(12e6))", async {
        let r = sql(
            &emu,
            "SELECT zeroblob(12e6), zeroblob(12e6), zeroblob(12e6), zeroblob(12e6)",
        )
        .await;
        outcome(&r)
    })
    .await;
    measure("3 (12 statements ?async=true at once)", async {
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                    WHERE i < 2000000) SELECT COUNT(*) FROM n";
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let (url, token) = (emu.url(), jwt(0));
            set.spawn(async move {
                reqwest::Client::new()
                    .post(format!("{url}/api/v2/statements?async=true"))
                    .bearer_auth(token)
                    .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
                    .json(&json!({"statement": slow}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            });
        }
        // Every statement admitted at once is answered 202 at once.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut admitted = 0;
        while let Some(done) = set.try_join_next() {
            admitted += usize::from(done.unwrap() == 202);
        }
        let mut later = std::collections::BTreeMap::new();
        while let Some(status) = set.join_next().await {
            *later.entry(status.unwrap()).or_insert(0) += 1;
        }
        // Let the statements end.
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        format!("{admitted} running within 0.5 s; the others answered later: {later:?}")
    })
    .await;
    let like = |pattern: usize| {
        format!(
            "SELECT printf('%.*c', 1500000, 'a') LIKE '%' || printf('%.*c', {pattern}, 'a') || 'b'"
        )
    };
    measure("4 (LIKE, 1.5 MB value, 5,000-byte pattern)", async {
        outcome(&sql(&emu, &like(5000)).await)
    })
    .await;
    measure("4 (LIKE, 1.5 MB value, 999-byte pattern)", async {
        outcome(&sql(&emu, &like(998)).await)
    })
    .await;
    measure("4 (instr, 400 KB needle in an 800 KB value)", async {
        outcome(
            &sql(
                &emu,
                "SELECT instr(printf('%.*c', 800000, 'a'), printf('%.*c', 400000, 'a') || 'b')",
            )
            .await,
        )
    })
    .await;
    measure("5 (request role ADMIN, user BOB has no grant)", async {
        let r = sql_request(
            &emu,
            &jwt(0),
            json!({"statement": "SELECT COUNT(*) FROM VAULT.S.SECRET", "role": "ADMIN"}),
            "",
        )
        .await;
        outcome(&r)
    })
    .await;
    measure("6 (console lists handles; another user fetches)", async {
        let r = sql_request(
            &emu,
            &jwt_for(0, "ALICE"),
            json!({"statement": "SELECT 42"}),
            "",
        )
        .await;
        let handle = r.body["statementHandle"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The owner polls its handle, as a client does.
        get_statement(&emu, "ALICE", &handle, "").await;
        let state = console_state(&emu).await;
        let fetched = get_statement(&emu, "MALLORY", &handle, "").await;
        format!(
            "handle in console: {}; MALLORY's fetch: {}",
            state.contains(&handle),
            fetched.status().as_u16()
        )
    })
    .await;
    measure("7 (WITH json_each … main.json_each)", async {
        let r = sql(
            &emu,
            "WITH json_each AS (SELECT 1) SELECT value FROM T, main.json_each('[1,2]')",
        )
        .await;
        outcome(&r)
    })
    .await;
    emu.shutdown().await;
}

async fn sql(emu: &Emulator, statement: &str) -> Resp {
    sql_statement(emu, statement, None, "").await
}
