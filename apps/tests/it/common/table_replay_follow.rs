//! What the `table_replay follow` tests share: a private MariaDB with the binlog on, the
//! change table's DDL from the binary, and the binary's `follow` and `verify --changes`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use snowpipe_apps::table_replay::mariadb::{self, MariaDb};
use snowpipe_apps::table_replay::source;
use snowpipe_cli_support::server_start;
use snowpipe_emulator::Emulator;

use super::blackhole_proxy::Proxy;

use super::table_replay::{at_destination, destination, destination_config, replay_scripts};

/// A server with `--log-bin --binlog-format=ROW`, or `None` (printed) without `mariadbd`,
/// except under `CI=true`, where that fails.
pub fn start_binlog_or_skip() -> Option<MariaDb> {
    let found = mariadb::server_binary().is_some();
    if !server_start::require_or_skip(found, "mariadbd", mariadb::INSTALL_HINT) {
        return None;
    }
    Some(MariaDb::start_with_binlog().expect("start a private MariaDB server with its binlog"))
}

/// A new database `name` on `db`: its URL and a connection to it.
pub async fn new_database(db: &MariaDb, name: &str) -> (String, mysql_async::Conn) {
    use mysql_async::prelude::Queryable;
    let mut admin = source::connect(&format!("{}/mysql", db.server_url()))
        .await
        .unwrap();
    admin
        .query_drop(format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = db.url(name);
    let conn = source::connect(&url).await.unwrap();
    (url, conn)
}

/// The emulator with the change tables `ddl --changes` prints for `tables`, data in `dir`.
pub async fn change_destination(
    bin: &Path,
    url: &str,
    tables: &[&str],
    dir: &Path,
) -> (Emulator, PathBuf) {
    destination(changes_ddls(bin, url, tables), dir).await
}

/// The `ddl --changes` scripts of `tables`, one after another.
fn changes_ddls(bin: &Path, url: &str, tables: &[&str]) -> String {
    tables
        .iter()
        .map(|t| changes_ddl(bin, url, t, None))
        .collect()
}

/// [`change_destination`] in sink mode (`--sink`: rows counted, not stored, no data
/// directory); its counts are in `Emulator::status()["sink"]`.
pub async fn sink_change_destination(
    bin: &Path,
    url: &str,
    tables: &[&str],
    dir: &Path,
) -> (Emulator, PathBuf) {
    let ddl = changes_ddls(bin, url, tables);
    let (mut config, key) = destination_config(replay_scripts(ddl), dir);
    config.sink = true;
    (Emulator::start(config).await.unwrap(), key)
}

/// What `ddl --changes` prints for `table` (with `--key COLS` when given), whole: the
/// database and schema, the change table, the dead-letter table, their pipes and the
/// current-state view (which the emulator ignores with a notice: `Emulator::ddl_notes`).
pub fn changes_ddl(bin: &Path, url: &str, table: &str, key: Option<&str>) -> String {
    let mut cmd = Command::new(bin);
    cmd.args(["ddl", "--changes", "--source", url, "--table", table]);
    if let Some(columns) = key {
        cmd.args(["--key", columns]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The statements of a `ddl --changes` script the emulator's SQL API runs: its tables and
/// pipes (the database and schema exist already; the view is Snowflake's, which the SQL API
/// does not model).
pub fn sql_api_statements(ddl: &str) -> Vec<&str> {
    ddl.split(';')
        .map(str::trim)
        .filter(|s| {
            !s.is_empty()
                && !s.starts_with("CREATE DATABASE")
                && !s.starts_with("CREATE SCHEMA")
                && !s.starts_with("CREATE OR REPLACE VIEW")
        })
        .collect()
}

/// `table_replay follow --table T,... --until-idle IDLE` as a command (not yet run).
pub fn follow_cmd(
    bin: &Path,
    url: &str,
    tables: &[&str],
    (emulator, key): (&Emulator, &Path),
    idle: &str,
) -> Command {
    follow_cmd_lag(bin, url, tables, (emulator, key), (idle, "200ms"))
}

/// [`follow_cmd`] with `--max-client-lag LAG`.
pub fn follow_cmd_lag(
    bin: &Path,
    url: &str,
    tables: &[&str],
    (emulator, key): (&Emulator, &Path),
    (idle, lag): (&str, &str),
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["follow", "--source", url, "--table", &tables.join(",")])
        .args([
            "--database",
            "REPLAY",
            "--schema",
            "PUBLIC",
            "--batch",
            "100",
        ])
        .args(["--max-client-lag", lag, "--until-idle", idle])
        .stdin(Stdio::null());
    at_destination(&mut cmd, emulator, key);
    cmd
}

/// Runs follow until it is idle; panics with its stderr when it fails.
pub fn follow_until_idle(
    bin: &Path,
    url: &str,
    tables: &[&str],
    emulator: &Emulator,
    key: &Path,
) -> String {
    let out = follow_cmd(bin, url, tables, (emulator, key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "follow failed:\n{err}");
    err
}

/// `table_replay verify --changes` for `table`.
pub fn verify_changes(
    bin: &Path,
    url: &str,
    table: &str,
    emulator: &Emulator,
    key: &Path,
) -> Output {
    at_destination(
        Command::new(bin)
            .args(["verify", "--changes", "--source", url, "--table", table])
            .args(["--database", "REPLAY", "--schema", "PUBLIC"]),
        emulator,
        key,
    )
    .output()
    .unwrap()
}

/// Asserts `verify --changes` found the source and the implied state equal.
pub fn assert_equal(out: &Output) {
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify --changes failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("RESULT: every source row arrived exactly once"),
        "{report}"
    );
}

/// `SELECT COUNT(*) FROM changes WHERE cond` on the emulator.
pub fn count_where(emulator: &Emulator, changes: &str, cond: &str) -> u64 {
    let rows = emulator
        .query(&format!("SELECT COUNT(*) FROM {changes} WHERE {cond}"))
        .unwrap();
    rows[0][0].as_u64().unwrap()
}

/// The binlog positions (file, event, row, op) written more than once to `changes`: none
/// when every change landed once.
pub fn written_twice(emulator: &Emulator, changes: &str) -> Vec<Vec<serde_json::Value>> {
    emulator
        .query(&format!(
            "SELECT _BINLOG_FILE, _BINLOG_POS, _ROW, _OP, COUNT(*) FROM {changes} \
             WHERE _OP <> 'r' GROUP BY _BINLOG_FILE, _BINLOG_POS, _ROW, _OP HAVING COUNT(*) > 1"
        ))
        .unwrap()
}

/// Every dead letter of `table` in `dlq`: key and reason, in key and reason order.
pub fn dead_letters(emulator: &Emulator, dlq: &str, table: &str) -> Vec<(u64, String)> {
    emulator
        .query(&format!(
            "SELECT SOURCE_KEY, REASON FROM {dlq} WHERE SOURCE_TABLE = '{table}' \
             ORDER BY SOURCE_KEY, REASON"
        ))
        .unwrap()
        .into_iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_str().unwrap().to_owned()))
        .collect()
}

/// Runs `follow` (`cmd`, not yet started) and SIGKILLs it as soon as the emulator's `table`
/// (a storage name) holds at least `rows` rows; returns what it wrote to stderr. `Err` naming
/// why when it stopped by itself first or `patience` passed without them (killed then too).
/// The one watch-and-kill of the `follow` tests.
pub async fn kill_at_rows(
    mut cmd: Command,
    emulator: &Emulator,
    (table, rows): (&str, u64),
    patience: Duration,
) -> Result<String, String> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut why = None;
    while count_where(emulator, table, "1 = 1") < rows {
        if let Some(status) = child.try_wait().unwrap() {
            why = Some(format!(
                "follow stopped before {rows} rows in {table} ({status})"
            ));
            break;
        }
        if start.elapsed() > patience {
            why = Some(format!("not {rows} rows in {table} in {patience:?}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    match why {
        None => Ok(stderr),
        Some(why) => Err(format!("{why}:\n{stderr}")),
    }
}

/// Asserts `verify --changes` of `table` finds the rest equal and reports `keys`
/// dead-lettered keys.
pub fn assert_equal_but_dead(
    bin: &Path,
    url: &str,
    table: &str,
    (emulator, key): (&Emulator, &Path),
    keys: usize,
) {
    let out = verify_changes(bin, url, table, emulator, key);
    assert_equal(&out);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!("but for {keys} dead-lettered keys")),
        "verify does not report the dead-lettered keys:\n{report}"
    );
}

/// Waits (60 s at most) until `probe` holds.
pub async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !probe().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The replica's applied GTID position equals the primary's binlog position (admin URLs).
pub async fn caught_up(primary: &str, replica: &str) -> bool {
    use mysql_async::prelude::Queryable;
    let mut p = source::connect(primary).await.unwrap();
    let mut r = source::connect(replica).await.unwrap();
    let want: Option<String> = p.query_first("SELECT @@gtid_binlog_pos").await.unwrap();
    let got: Option<String> = r.query_first("SELECT @@gtid_slave_pos").await.unwrap();
    want.is_some() && want == got
}

/// A second private server (server id 2, its own binlog with `log_slave_updates`)
/// replicating `primary` by GTID, started: it and its admin URL.
pub async fn start_replica_of(primary: &MariaDb) -> (MariaDb, String) {
    use mysql_async::prelude::Queryable;
    let replica = MariaDb::start_with(&[
        "--log-bin=binlog",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--server-id=2",
        "--log-slave-updates=ON",
    ])
    .expect("start the replica");
    let port = primary.server_url().rsplit(':').next().unwrap().to_owned();
    let admin = format!("{}/mysql", replica.server_url());
    let mut r = source::connect(&admin).await.unwrap();
    r.query_drop(format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {port}, \
         MASTER_USER = 'root', MASTER_USE_GTID = slave_pos"
    ))
    .await
    .unwrap();
    r.query_drop("START SLAVE").await.unwrap();
    (replica, admin)
}

/// `follow` started with stderr to a file; returns the child and the file.
pub fn spawn_logged(mut cmd: Command) -> (Child, tempfile::NamedTempFile) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

/// Waits (up to `within`) for `child` to exit; its success and stderr.
pub async fn exit_of(
    mut child: Child,
    log: &tempfile::NamedTempFile,
    within: Duration,
) -> (bool, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "follow did not exit within {within:?}:\n{}",
                std::fs::read_to_string(log.path()).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (
        status.success(),
        std::fs::read_to_string(log.path()).unwrap(),
    )
}

/// A proxy in front of `db` and the URL of `database` through it.
pub async fn proxied(db: &MariaDb, database: &str) -> (Proxy, String) {
    let target: SocketAddr = ([127, 0, 0, 1], db.port()).into();
    let proxy = Proxy::start(target).await;
    let url = format!("mysql://root@127.0.0.1:{}/{database}", proxy.port());
    (proxy, url)
}

/// `file:pos` of the binlog event whose statement contains `needle`.
pub async fn binlog_position(conn: &mut mysql_async::Conn, needle: &str) -> String {
    use mysql_async::prelude::Queryable as _;
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.unwrap();
    for log in logs {
        let file: String = log.get(0).unwrap();
        let events: Vec<mysql_async::Row> = conn
            .query(format!("SHOW BINLOG EVENTS IN '{file}'"))
            .await
            .unwrap();
        for e in events {
            let info: String = e.get(5).unwrap_or_default();
            if info.contains(needle) {
                let pos: u64 = e.get(1).unwrap();
                return format!("{file}:{pos}");
            }
        }
    }
    panic!("no binlog event holds {needle:?}");
}

/// A session on `db` with no default database (the `mysql` client without `-D`).
pub async fn without_database(db: &MariaDb) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(&db.server_url()).unwrap();
    mysql_async::Conn::new(opts).await.unwrap()
}
