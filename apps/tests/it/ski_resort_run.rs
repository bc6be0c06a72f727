//! The all-in-one `ski_resort` run (embedded emulator) and the `generate` contract, through
//! the application binary.

use std::process::Command;

use crate::common::bin::ski_resort_bin;

#[test]
fn all_in_one_run_lands_everything_exactly_once_and_reports() {
    let out = Command::new(ski_resort_bin())
        .args([
            "--events",
            "1500",
            "--rate",
            "0",
            "--seed",
            "1",
            "--commit-delay",
            "50ms",
        ])
        .env_remove("SNOWFLAKE_ACCOUNT")
        .env_remove("SNOWFLAKE_URL")
        .output()
        .expect("run ski_resort");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}: {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("exactly once").count(), 3, "{stdout}");
    for heading in [
        "Reconciliation",
        "Ticket revenue by resort and day",
        "Lift rides by resort and hour",
        "Busiest lifts",
        "Season pass vs ticket revenue by day",
        "queue: 0 rows waiting",
        // Under Snowflake's limits, at the client's defaults: nothing too large, and a
        // channel never outrun at this rate.
        "answered 413, 0 answered 429",
        "appends, 0 answered 413",
    ] {
        assert!(
            stdout.contains(heading),
            "missing {heading:?} in:\n{stdout}"
        );
    }
}

#[test]
fn generate_prints_counts_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = Command::new(ski_resort_bin())
            .args([
                "generate", "--events", "700", "--rate", "0", "--seed", "42", "--queue",
            ])
            .arg(dir.path().join(name))
            .output()
            .expect("run generate");
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let counts = &last["generated"];
        let total: u64 = ["RESORT_TICKET", "SEASON_PASS", "LIFT_RIDE"]
            .iter()
            .map(|t| counts[t].as_u64().expect("count per table"))
            .sum();
        assert_eq!(total, 700);
        let conn = rusqlite::Connection::open(dir.path().join(name)).unwrap();
        let mut stmt = conn
            .prepare("SELECT json FROM q_lift_ride UNION ALL SELECT json FROM q_resort_ticket")
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    assert_eq!(run("a.sqlite"), run("b.sqlite"));
}
