//! `table_replay follow`'s source connections, against a private MariaDB with its binlog on
//! (skipped without `mariadbd`, except under `CI=true`): a binlog connection that goes silent
//! (a loopback proxy stops forwarding without closing, as a firewall or NAT that dropped its
//! state) is noticed within a few heartbeat periods and the changes committed meanwhile land;
//! every connection uses the TCP port given, not the server's local socket; two `follow`s of
//! different databases get different replica ids, and a `follow` whose replica id another
//! reader took stops naming `--server-id`.
#![cfg(unix)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::mariadb::MariaDb;
use snowpipe_apps::table_replay::source;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay::at_destination;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, exit_of, follow_cmd, new_database, proxied,
    spawn_logged, start_binlog_or_skip, verify_changes, written_twice,
};

const TABLE: &str = "quiet";
const CHANGES: &str = "\"REPLAY.PUBLIC.QUIET_CHANGES\"";

/// The heartbeat the tests ask for: a silent connection is noticed after three of them.
const HEARTBEAT: &str = "250ms";

/// Waits (up to `within`) until `probe` holds; panics naming `what` and `child`'s fate.
async fn wait_for(
    what: &str,
    within: Duration,
    child: &mut Child,
    mut probe: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !probe() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what}: follow stopped first ({status})");
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The host the server sees for the binlog dump connections (`127.0.0.1:PORT` over TCP,
/// `localhost` over the socket file).
async fn dump_hosts(url: &str) -> Vec<String> {
    let mut conn = source::connect(url).await.unwrap();
    conn.query("SELECT HOST FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binlog_connection_gone_silent_is_noticed_and_the_changes_after_it_land() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE quiet (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO quiet SELECT seq, seq FROM seq_1_to_10",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    let (proxy, via_proxy) = proxied(&db, "cdc").await;
    let mut cmd = follow_cmd(bin, &via_proxy, &[TABLE], (&emulator, &key), "4s");
    cmd.args(["--heartbeat", HEARTBEAT]);
    let (mut child, log) = spawn_logged(cmd);
    let em = &emulator;
    let rows = |n: u64| move || count_where(em, CHANGES, "1 = 1") >= n;
    wait_for(
        "the snapshot",
        Duration::from_secs(60),
        &mut child,
        rows(10),
    )
    .await;
    conn.query_drop("INSERT INTO quiet SELECT seq, seq FROM seq_11_to_15")
        .await
        .unwrap();
    wait_for(
        "the first changes",
        Duration::from_secs(30),
        &mut child,
        rows(15),
    )
    .await;

    // The connection goes silent; 50 changes are committed behind it.
    proxy.blackhole();
    let accepted = proxy.accepted();
    let silent = Instant::now();
    conn.query_drop("INSERT INTO quiet SELECT seq, seq FROM seq_16_to_45")
        .await
        .unwrap();
    conn.query_drop("UPDATE quiet SET v = v + 1000 WHERE id BETWEEN 16 AND 35")
        .await
        .unwrap();
    // A few heartbeat periods to notice, 1 s before connecting again, the commit: 15 s is
    // generous on a loaded machine; without a read timeout they never land.
    wait_for(
        "the changes behind the silence",
        Duration::from_secs(15),
        &mut child,
        rows(65),
    )
    .await;
    let landed = silent.elapsed();
    let (ok, stderr) = exit_of(child, &log, Duration::from_secs(60)).await;
    assert!(ok, "follow failed:\n{stderr}");
    assert!(
        stderr.contains("the connection went silent"),
        "the silence is not named:\n{stderr}"
    );
    assert!(
        proxy.accepted() > accepted,
        "follow did not connect again through the port it was given"
    );
    eprintln!("changes behind a silent connection landed in {landed:?}");
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_connection_uses_the_tcp_port_given_not_the_local_socket() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    conn.query_drop("CREATE TABLE quiet (id BIGINT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    // The library's connection itself: over TCP (a socket connection's host is `localhost`).
    let mut mine = source::connect(&url).await.unwrap();
    let host: Option<String> = mine
        .query_first("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
        .await
        .unwrap();
    let host = host.unwrap();
    assert!(
        host.starts_with("127.0.0.1:"),
        "connected as {host:?}, not over TCP"
    );

    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    let (proxy, via_proxy) = proxied(&db, "cdc").await;
    let mut cmd = follow_cmd(bin, &via_proxy, &[TABLE], (&emulator, &key), "3s");
    cmd.args(["--heartbeat", HEARTBEAT]);
    let (mut child, log) = spawn_logged(cmd);
    let start = Instant::now();
    let hosts = loop {
        let hosts = dump_hosts(&url).await;
        if !hosts.is_empty() {
            break hosts;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("follow stopped before its binlog connection ({status})");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no binlog connection in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        hosts.iter().all(|h| h.starts_with("127.0.0.1:")),
        "the binlog connection is not over TCP: {hosts:?}"
    );
    let before = proxy.forwarded();
    conn.query_drop("INSERT INTO quiet SELECT seq, seq FROM seq_1_to_200")
        .await
        .unwrap();
    let (ok, stderr) = exit_of(child, &log, Duration::from_secs(60)).await;
    assert!(ok, "follow failed:\n{stderr}");
    assert!(
        proxy.forwarded() > before + 200 * 8,
        "the changes did not come through the port given ({} bytes)",
        proxy.forwarded() - before
    );
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'c'"), 200);
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}

/// `follow` of `database.orders` into its own emulator, until idle for `idle`.
async fn orders_follow(
    bin: &Path,
    db: &MariaDb,
    database: &str,
    dir: &Path,
) -> (String, mysql_async::Conn, Emulator, std::path::PathBuf) {
    let (url, mut conn) = new_database(db, database).await;
    for sql in [
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO orders SELECT seq, seq FROM seq_1_to_20",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let (emulator, key) = change_destination(bin, &url, &["orders"], dir).await;
    (url, conn, emulator, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_follows_of_different_databases_do_not_collide_and_a_taken_id_is_named() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (url1, mut conn1, em1, key1) = orders_follow(bin, &db, "shop", d1.path()).await;
    let (url2, mut conn2, em2, key2) = orders_follow(bin, &db, "shop2", d2.path()).await;
    let changes = "\"REPLAY.PUBLIC.ORDERS_CHANGES\"";

    // The default ids: both run side by side, neither knocked off.
    let (mut a, log_a) = spawn_logged(follow_cmd(bin, &url1, &["orders"], (&em1, &key1), "3s"));
    let (mut b, log_b) = spawn_logged(follow_cmd(bin, &url2, &["orders"], (&em2, &key2), "3s"));
    wait_for("shop's snapshot", Duration::from_secs(60), &mut a, || {
        count_where(&em1, changes, "1 = 1") >= 20
    })
    .await;
    wait_for("shop2's snapshot", Duration::from_secs(60), &mut b, || {
        count_where(&em2, changes, "1 = 1") >= 20
    })
    .await;
    for i in 0..20 {
        let sql = format!("UPDATE orders SET v = v + 1 WHERE id = {}", i + 1);
        conn1.query_drop(&sql).await.unwrap();
        conn2.query_drop(&sql).await.unwrap();
    }
    for (child, log) in [(a, &log_a), (b, &log_b)] {
        let (ok, stderr) = exit_of(child, log, Duration::from_secs(60)).await;
        assert!(ok, "follow failed:\n{stderr}");
        assert!(
            !stderr.contains("connection was lost"),
            "a follow was knocked off:\n{stderr}"
        );
    }
    assert_equal(&verify_changes(bin, &url1, "orders", &em1, &key1));
    assert_equal(&verify_changes(bin, &url2, "orders", &em2, &key2));

    // One id for both: the server ends the older connection when the newer registers
    // (MariaDB's error 4052); that follow stops, naming the flag, instead of taking the id
    // back, and the other goes on undisturbed.
    let with_id = |url: &str, em: &Emulator, key: &Path| {
        let mut cmd = follow_cmd(bin, url, &["orders"], (em, key), "5s");
        cmd.args(["--server-id", "4242", "--heartbeat", HEARTBEAT]);
        spawn_logged(cmd)
    };
    let (first, log_first) = with_id(&url1, &em1, &key1);
    let (second, log_second) = with_id(&url2, &em2, &key2);
    let writer = async {
        for i in 0..30 {
            let sql = format!("UPDATE orders SET v = v + 1 WHERE id = {}", i % 20 + 1);
            conn1.query_drop(&sql).await.unwrap();
            conn2.query_drop(&sql).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (_, (ok1, err1), (ok2, err2)) = tokio::join!(
        writer,
        exit_of(first, &log_first, Duration::from_secs(90)),
        exit_of(second, &log_second, Duration::from_secs(90))
    );
    let (stopped, went_on) = match (ok1, ok2) {
        (false, true) => (err1, err2),
        (true, false) => (err2, err1),
        _ => panic!("not exactly one follow stopped:\nfirst:\n{err1}\nsecond:\n{err2}"),
    };
    assert!(
        stopped.contains("another replica registered") && stopped.contains("--server-id"),
        "the collision does not name the flag:\n{stopped}"
    );
    assert!(
        !stopped.contains("connecting again") && !went_on.contains("connection was lost"),
        "the follows knocked each other off:\n{stopped}\n{went_on}"
    );
    em1.shutdown().await;
    em2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_without_until_idle_runs_through_heartbeats_until_sigterm() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    conn.query_drop("CREATE TABLE quiet (id BIGINT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    // follow_cmd's flags without --until-idle: only a signal ends it.
    let mut cmd = Command::new(bin);
    cmd.args(["follow", "--source", &url, "--table", TABLE])
        .args(["--database", "REPLAY", "--schema", "PUBLIC"])
        .args(["--max-client-lag", "200ms", "--heartbeat", "100ms"])
        .stdin(std::process::Stdio::null());
    at_destination(&mut cmd, &emulator, &key);
    let (mut child, log) = spawn_logged(cmd);
    let following = || {
        std::fs::read_to_string(log.path())
            .unwrap()
            .contains("following the binlog from")
    };
    wait_for("the binlog", Duration::from_secs(60), &mut child, following).await;
    conn.query_drop("INSERT INTO quiet SELECT seq, seq FROM seq_1_to_10")
        .await
        .unwrap();
    let em = &emulator;
    wait_for("the changes", Duration::from_secs(60), &mut child, || {
        count_where(em, CHANGES, "_OP = 'c'") >= 10
    })
    .await;
    // Twenty heartbeat periods with nothing committed: still running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "follow stopped by itself"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (ok, stderr) = exit_of(child, &log, Duration::from_secs(60)).await;
    assert!(ok, "follow failed on SIGTERM:\n{stderr}");
    assert!(!stderr.contains("connection was lost"), "{stderr}");
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}
