//! The SQL API (`POST /api/v2/statements`) is a sandbox: a statement reads only the
//! catalog's tables its role is granted, wherever it names them, and the scoped-token signing
//! secret is not in the database at all.

use crate::common::*;
use serde_json::json;
use snowpipe_emulator::{Emulator, EmulatorConfig};

/// Runs `statement` in `DB.SCH` as the key-pair user, with `role` in the request when given.
async fn sql(emu: &Emulator, statement: &str, role: Option<&str>) -> Resp {
    sql_statement(emu, statement, role, "").await
}

/// Asserts `r` is a 422 whose `field` (`code` or `sqlState`) is `value` and whose message
/// contains each of `says`; `case` names what was sent.
fn assert_refused(r: &Resp, (field, value): (&str, &str), says: &[&str], case: &str) {
    assert_eq!(
        (r.status, r.body[field].as_str()),
        (422, Some(value)),
        "{case}: {}",
        r.text
    );
    let message = r.body["message"].as_str().unwrap_or_default();
    for part in says {
        assert!(
            message.contains(part),
            "{case}: expected {part:?} in {message}"
        );
    }
}

/// Asserts Snowflake's "does not exist or not authorized" for `object`.
fn assert_not_authorized(r: &Resp, object: &str, statement: &str) {
    let expected = format!("Object '{object}' does not exist or not authorized.");
    assert_refused(r, ("code", "002003"), &[&expected], statement);
    assert_eq!(r.body["sqlState"], "42S02", "{statement}: {}", r.text);
}

async fn with_rows() -> (Emulator, Client) {
    let (emu, c) = connected(config()).await;
    c.commit_rows("c", "3", &rows(0..4)).await;
    (emu, c)
}

/// An emulator answering two rows a result partition, with rows 0 to 4 committed.
async fn with_partitions_of_two() -> Emulator {
    let mut cfg = config();
    cfg.sql_partition_rows = 2;
    let (emu, c) = connected(cfg).await;
    c.commit_rows("c", "5", &rows(0..5)).await;
    emu
}

#[tokio::test]
async fn internal_tables_are_refused_wherever_the_statement_names_them() {
    let (emu, _c) = with_rows().await;
    let cases = [
        // A comma join after a derived table: the name is not right after FROM.
        (
            "SELECT * FROM (SELECT 1) a, _emulator_channels",
            "_EMULATOR_CHANNELS",
        ),
        // A CTE named like an internal table (in a subquery) does not open the real table
        // elsewhere in the statement.
        (
            "SELECT (WITH _emulator_channels AS (SELECT 1) SELECT COUNT(*) FROM \
             _emulator_channels), (SELECT COUNT(*) FROM _emulator_channels)",
            "_EMULATOR_CHANNELS",
        ),
        ("SELECT COUNT(*) FROM T, _emulator_ddl", "_EMULATOR_DDL"),
        // In a subquery, a CTE and IN (SELECT …).
        (
            "SELECT (SELECT sql FROM (SELECT 1) a, _emulator_ddl LIMIT 1)",
            "_EMULATOR_DDL",
        ),
        (
            "WITH x AS (SELECT * FROM (SELECT 1) a, _emulator_channels) SELECT * FROM x",
            "_EMULATOR_CHANNELS",
        ),
        (
            "SELECT ID FROM T WHERE NAME IN (SELECT channel FROM (SELECT 1) a, _emulator_channels)",
            "_EMULATOR_CHANNELS",
        ),
        // SQLite's own schema, also behind a CTE of the same name in another scope.
        (
            "SELECT sqlite_master.sql FROM T, sqlite_master",
            "SQLITE_MASTER",
        ),
        (
            "SELECT * FROM (WITH sqlite_schema AS (SELECT 1) SELECT 1) x JOIN sqlite_schema",
            // SQLite's name for its schema table, whichever alias the statement uses.
            "SQLITE_MASTER",
        ),
        // Virtual tables: the database list (file paths) and the table layouts.
        (
            "SELECT * FROM T, pragma_database_list",
            "PRAGMA_DATABASE_LIST",
        ),
    ];
    for (statement, object) in cases {
        let r = sql(&emu, statement, None).await;
        assert_not_authorized(&r, object, statement);
    }
    // The sandbox is lifted after each statement: rows still commit.
    let c = Client::connect(&emu).await;
    c.commit_rows("d", "1", &rows(10..12)).await;
    assert_eq!(count(&emu), 6);
    emu.shutdown().await;
}

#[tokio::test]
async fn functions_that_leak_or_load_are_unknown() {
    let emu = Emulator::start(config()).await.unwrap();
    for (statement, function) in [
        // Returns a pointer into the process (defeats ASLR).
        ("SELECT fts3_tokenizer('simple')", "FTS3_TOKENIZER"),
        ("SELECT load_extension('/tmp/x')", "LOAD_EXTENSION"),
        // The build: not portable, and it tells an attacker which bugs to try.
        ("SELECT sqlite_version()", "SQLITE_VERSION"),
        ("SELECT SQLITE_SOURCE_ID()", "SQLITE_SOURCE_ID"),
        (
            "SELECT sqlite_compileoption_used('ENABLE_FTS5')",
            "SQLITE_COMPILEOPTION_USED",
        ),
        (
            "SELECT sqlite_compileoption_get(0)",
            "SQLITE_COMPILEOPTION_GET",
        ),
        // The connection's state.
        ("SELECT last_insert_rowid()", "LAST_INSERT_ROWID"),
        ("SELECT total_changes()", "TOTAL_CHANGES"),
        // Anywhere in the statement.
        (
            "SELECT 1 FROM T WHERE ID IN (SELECT sqlite_version())",
            "SQLITE_VERSION",
        ),
    ] {
        let r = sql(&emu, statement, None).await;
        let says = format!("Unknown function {function}: the emulator's SQL API does not offer it");
        assert_refused(&r, ("code", "002140"), &[&says], statement);
    }
    emu.shutdown().await;
}

/// Functions are an allow-list: those the project's tests, apps and docs use pass.
#[tokio::test]
async fn portable_functions_are_offered() {
    let (emu, _c) = with_rows().await;
    let r = sql(
        &emu,
        "SELECT COUNT(*), MIN(ID), MAX(ID), SUM(ID), AVG(ID), TOTAL(ID), GROUP_CONCAT(NAME), \
         COALESCE(NULL, 1), IFNULL(NULL, 2), NULLIF(1, 1), IIF(1, 'a', 'b'), ABS(-1), \
         ROUND(1.25, 1), LENGTH('abc'), UPPER('a'), LOWER('A'), TRIM(' a '), LTRIM(' a'), \
         RTRIM('a '), SUBSTR('abc', 2), REPLACE('abc', 'b', 'x'), INSTR('abc', 'c'), \
         TYPEOF(1), HEX('a'), PRINTF('%05d', 1), JSON_EXTRACT('{\"a\": 1}', '$.a'), \
         '{\"a\": 2}' ->> '$.a', JSON_ARRAY_LENGTH('[1, 2]'), DATE('2024-01-02'), \
         STRFTIME('%Y', '2024-01-02'), 'ab' LIKE 'A%', 'ab' GLOB 'a*', CAST(ID AS TEXT) \
         FROM T",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = sql(
        &emu,
        "SELECT ID, ROW_NUMBER() OVER (ORDER BY ID), LAG(ID) OVER (ORDER BY ID), \
         JSON_OBJECT('a', ID), SIGN(-2), CONCAT('a', ID), UNIXEPOCH('2024-01-01') \
         FROM T ORDER BY ID",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    emu.shutdown().await;
}

#[tokio::test]
async fn writes_hidden_in_a_with_are_refused_by_the_sandbox() {
    let (emu, _c) = with_rows().await;
    for (statement, action) in [
        ("WITH x AS (SELECT 1) DELETE FROM T", "DELETE"),
        (
            "WITH x AS (SELECT 1) INSERT INTO \"DB.SCH.T\" (ID) SELECT 99",
            "INSERT",
        ),
    ] {
        let r = sql(&emu, statement, None).await;
        let says = format!("{action} is not allowed");
        assert_refused(&r, ("sqlState", "0A000"), &[&says], statement);
    }
    assert_eq!(count(&emu), 4, "nothing was written");
    emu.shutdown().await;
}

#[tokio::test]
async fn ordinary_queries_over_user_tables_still_work() {
    let (emu, _c) = with_rows().await;
    let ok = |r: &Resp| {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["data"].clone()
    };
    let r = sql(
        &emu,
        "SELECT COUNT(*), MIN(ID), MAX(ID), SUM(ID) FROM T",
        None,
    )
    .await;
    assert_eq!(ok(&r), json!([["4", "0", "3", "6"]]));
    let r = sql(
        &emu,
        "WITH big AS (SELECT ID FROM T WHERE ID >= 2) \
         SELECT a.ID, UPPER(b.NAME) FROM big a JOIN DB.SCH.T b ON a.ID = b.ID ORDER BY a.ID",
        None,
    )
    .await;
    assert_eq!(ok(&r), json!([["2", "N2"], ["3", "N3"]]));
    let r = sql(
        &emu,
        "SELECT ID FROM T WHERE ID IN (SELECT ID + 1 FROM T) ORDER BY ID DESC LIMIT 2",
        None,
    )
    .await;
    assert_eq!(ok(&r), json!([["3"], ["2"]]));
    let r = sql(
        &emu,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) \
         SELECT SUM(i) FROM n",
        None,
    )
    .await;
    assert_eq!(ok(&r), json!([["6"]]));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_role_reads_only_the_databases_it_is_granted() {
    let cfg = config()
        .with_ddl(
            "CREATE DATABASE OTHER; CREATE SCHEMA OTHER.S; CREATE TABLE OTHER.S.U (ID NUMBER);",
        )
        .with_ddl("GRANT ROLE ANALYST TO USER BOB;")
        .with_role_grant("PUBLIC", "DB")
        .with_role_grant("ANALYST", "OTHER");
    let emu = Emulator::start(cfg).await.unwrap();
    // PUBLIC (no role in the request or the JWT) has DB, not OTHER.
    let r = sql(&emu, "SELECT COUNT(*) FROM T", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for statement in [
        "SELECT COUNT(*) FROM OTHER.S.U",
        "SELECT * FROM OTHER.S.U",
        "SELECT * FROM T, \"OTHER.S.U\"",
        "SELECT ID FROM T WHERE ID IN (SELECT ID FROM OTHER.S.U)",
        "WITH x AS (SELECT ID FROM OTHER.S.U) SELECT * FROM x",
    ] {
        let r = sql(&emu, statement, None).await;
        assert_not_authorized(&r, "OTHER.S.U", statement);
    }
    // ANALYST has OTHER, not DB.
    let r = sql(&emu, "SELECT COUNT(*) FROM OTHER.S.U", Some("ANALYST")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = sql(&emu, "SELECT COUNT(*) FROM T", Some("analyst")).await;
    assert_not_authorized(&r, "DB.SCH.T", "SELECT COUNT(*) FROM T as ANALYST");
    emu.shutdown().await;
}

/// The role a statement runs as is the token's (or the user's default role); a `role` in the
/// request is used only when `GRANT ROLE … TO USER` granted it to the user (before, the
/// request's role replaced the token's: any user read what ADMIN reads).
#[tokio::test]
async fn a_role_in_the_request_is_used_only_when_granted_to_the_user() {
    let cfg = config()
        .with_ddl(
            "CREATE DATABASE VAULT; CREATE SCHEMA VAULT.S; CREATE TABLE VAULT.S.SECRET (ID NUMBER);
             GRANT ROLE ADMIN TO USER ALICE;
             GRANT ROLE ADMIN TO USER CAROL; REVOKE ROLE ADMIN FROM USER CAROL;
             ALTER USER DAVE SET DEFAULT_ROLE = ADMIN;",
        )
        .with_role_grant("PUBLIC", "DB")
        .with_role_grant("ADMIN", "VAULT");
    let emu = Emulator::start(cfg).await.unwrap();
    let statement = |role: Option<&str>| {
        let mut body = json!({"statement": "SELECT COUNT(*) FROM VAULT.S.SECRET"});
        if let Some(r) = role {
            body["role"] = json!(r);
        }
        body
    };
    // (user, role in the JWT's scope, role in the request) → reads VAULT?
    let cases = [
        ("MALLORY", None, Some("ADMIN"), false),
        ("MALLORY", None, Some("\"admin\""), false),
        ("CAROL", None, Some("ADMIN"), false),
        ("ALICE", None, Some("ADMIN"), true),
        ("ALICE", None, Some("admin"), true),
        ("ALICE", None, None, false),
        ("ALICE", None, Some("PUBLIC"), false),
        ("DAVE", None, None, true),
        ("DAVE", None, Some("ADMIN"), true),
        // The token's role decides; the request may repeat it.
        ("ERIN", Some("ADMIN"), None, true),
        ("ERIN", Some("ADMIN"), Some("ADMIN"), true),
        ("ERIN", Some("ADMIN"), Some("PUBLIC"), false),
    ];
    for (user, token_role, role, reads) in cases {
        let claims = match token_role {
            Some(r) => {
                let now = chrono::Utc::now().timestamp();
                json!({"iat": now, "exp": now + 3000, "scp": format!("session:role:{r}")})
            }
            None => {
                let now = chrono::Utc::now().timestamp();
                json!({"iat": now, "exp": now + 3000})
            }
        };
        let token = signed_jwt(0, user, claims);
        let r = sql_request(&emu, &token, statement(role), "").await;
        let case = format!("{user} token role {token_role:?} request role {role:?}");
        if reads {
            assert_eq!(r.status, 200, "{case}: {}", r.text);
            continue;
        }
        let granted = role.is_none_or(|r| {
            r.eq_ignore_ascii_case("PUBLIC") || Some(r) == token_role || user == "DAVE"
        });
        if granted {
            assert_not_authorized(&r, "VAULT.S.SECRET", &case);
        } else {
            let grant = format!("GRANT ROLE ADMIN TO USER {user}");
            let says = ["is not granted to this user", grant.as_str()];
            assert_refused(&r, ("code", "390189"), &says, &case);
        }
    }
    emu.shutdown().await;
}

/// A scoped token signed with `secret`, as the emulator mints them: any user, any role, valid
/// until 2100.
fn forged_token(secret: &[u8]) -> String {
    let claims = json!({"iss": "snowpipe-emulator", "sub": "ACME.MALLORY", "scope": "127.0.0.1",
                        "role": "ACCOUNTADMIN", "iat": 1_700_000_000i64, "exp": 4_102_444_800i64,
                        "jti": "forged"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn the_signing_secret_is_not_in_the_database_and_an_old_one_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // A data directory from before the fix: the secret in `_emulator_meta`, where the SQL API
    // could read it.
    let leaked = [7u8; 32];
    {
        let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite3")).unwrap();
        db.execute_batch("CREATE TABLE _emulator_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            .unwrap();
        db.execute(
            "INSERT INTO _emulator_meta VALUES ('scoped_token_secret', ?1)",
            [&leaked[..]],
        )
        .unwrap();
    }
    let emu = Emulator::start(config().with_data_dir(dir.path()))
        .await
        .unwrap();
    let r = sql(&emu, "SELECT * FROM (SELECT 1) a, _emulator_meta", None).await;
    assert_not_authorized(&r, "_EMULATOR_META", "reading _emulator_meta");
    // A token signed with the leaked secret opens nothing.
    let forger = Client {
        http: reqwest::Client::new(),
        url: emu.url(),
        token: forged_token(&leaked),
    };
    let r = forger.open("c", json!({})).await;
    assert_eq!(
        r.status, 401,
        "a forged scoped token was accepted: {}",
        r.text
    );
    // The old table is gone; the secret lives in a 0600 file and tokens survive a restart.
    let tables: Vec<String> = emu
        .query("SELECT name FROM sqlite_master WHERE name LIKE '\\_emulator%' ESCAPE '\\'")
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    assert!(!tables.contains(&"_emulator_meta".to_owned()), "{tables:?}");
    let c = Client::connect(&emu).await;
    c.open_ok("c").await;
    emu.shutdown().await;
    let key = dir.path().join("scoped-token.key");
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let emu = Emulator::start(
        EmulatorConfig::for_tests()
            .with_public_key(keys(0).1)
            .with_data_dir(dir.path()),
    )
    .await
    .unwrap();
    let c = Client {
        http: c.http.clone(),
        url: emu.url(),
        token: c.token.clone(),
    };
    assert_eq!(
        c.open("c", json!({})).await.status,
        200,
        "token kept across a restart"
    );
    emu.shutdown().await;
}

/// Submits `statement` with `?async=true` (answered 202 at once) and returns its handle.
async fn submit_async(emu: &Emulator, statement: &str) -> String {
    let r = sql_statement(emu, statement, None, "?async=true").await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body["statementHandle"].as_str().unwrap().to_owned()
}

/// The HTTP status of `GET /api/v2/statements/{handle}` (202 while the statement runs).
async fn statement_status(emu: &Emulator, handle: &str) -> u16 {
    get_statement(emu, "BOB", handle, "")
        .await
        .status()
        .as_u16()
}

/// Waits (30 s at most) until statement `handle` no longer runs, so its thread is free.
async fn wait_until_done(emu: &Emulator, handle: &str) {
    for _ in 0..600 {
        if statement_status(emu, handle).await != 202 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A long SQL API statement runs on a reader connection: rows appended meanwhile commit while
/// it still runs (before, statements ran on the writer's thread and every commit waited).
#[tokio::test]
async fn a_running_statement_does_not_hold_up_commits() {
    let (emu, c) = with_rows().await;
    // Millions of recursion steps: seconds, still far below the 10 s limit.
    let handle = submit_async(
        &emu,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 15000000) \
         SELECT COUNT(*) FROM n",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(statement_status(&emu, &handle).await, 202, "still running");
    c.commit_rows("d", "9", &rows(10..20)).await;
    assert_eq!(
        count(&emu),
        14,
        "Emulator::query reads beside the statement too"
    );
    assert_eq!(
        statement_status(&emu, &handle).await,
        202,
        "the rows committed while the statement was still running"
    );
    // The statement ends on its own (answer or time limit).
    wait_until_done(&emu, &handle).await;
    emu.shutdown().await;
}

/// A statement whose result would pass the emulator's per-statement size limit fails with a
/// message saying how to narrow it, instead of building it in memory.
#[tokio::test]
async fn a_result_past_the_size_limit_is_refused_with_the_fix() {
    let (emu, _c) = with_rows().await;
    let r = sql(
        &emu,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 800000) \
         SELECT printf('%0100d', i) FROM n",
        None,
    )
    .await;
    assert_refused(&r, ("code", "000603"), &["64 MiB", "LIMIT"], "800000 rows");
    // One value may not pass the limit either, even when the result is small: SQLite
    // refuses to build it (before, `hex(zeroblob(40 MB))` took 120 MB to answer one number).
    let r = sql(&emu, "SELECT length(hex(zeroblob(40000000)))", None).await;
    assert_refused(&r, ("code", "000603"), &[], "one value of 80 MB");
    assert!(r.text.contains("16 MiB per value"), "{}", r.text);
    // A narrower statement over the same rows still answers.
    let r = sql(
        &emu,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 800000) \
         SELECT COUNT(*) FROM n",
        None,
    )
    .await;
    assert_eq!(r.body["data"], json!([["800000"]]), "{}", r.text);
    emu.shutdown().await;
}

/// A result partition can be fetched again while the result is held, as on Snowflake (a
/// client that lost a partition's answer retries it); a partition the result lacks is
/// `000711`.
#[tokio::test]
async fn a_result_partition_can_be_fetched_twice() {
    let emu = with_partitions_of_two().await;
    let r = sql(&emu, "SELECT ID FROM T ORDER BY ID", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["resultSetMetaData"]["partitionInfo"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let handle = r.body["statementHandle"].as_str().unwrap().to_owned();
    let fetch = |partition: u32| fetch_as(&emu, "BOB", &handle, partition);
    for attempt in ["first", "second"] {
        let r = fetch(1).await;
        assert_eq!(r.status, 200, "{attempt} fetch: {}", r.text);
        assert_eq!(r.body["data"], json!([["2"], ["3"]]), "{attempt} fetch");
    }
    let r = fetch(2).await;
    assert_eq!((r.status, r.body["data"].clone()), (200, json!([["4"]])));
    let r = fetch(1).await;
    assert_eq!(r.status, 200, "after the last partition too: {}", r.text);
    let r = fetch(3).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("000711")),
        "{}",
        r.text
    );
    emu.shutdown().await;
}

/// A CTE's name opens only an unqualified name: `main.json_each` stays the virtual table,
/// refused, whatever CTE the statement calls `json_each` (before, the CTE name let it through).
#[tokio::test]
async fn a_cte_name_does_not_open_a_schema_qualified_table() {
    let (emu, _c) = with_rows().await;
    for (statement, object) in [
        (
            "WITH json_each AS (SELECT 1) SELECT value FROM T, main.json_each('[1,2]')",
            "JSON_EACH",
        ),
        (
            "WITH json_each AS (SELECT 1) SELECT COUNT(*) FROM T, main.json_each('[1,2]')",
            "JSON_EACH",
        ),
        (
            "WITH pragma_table_info AS (SELECT 1) \
             SELECT cid FROM T, main.pragma_table_info('_emulator_channels')",
            "PRAGMA_TABLE_INFO",
        ),
    ] {
        let r = sql(&emu, statement, None).await;
        assert_not_authorized(&r, object, statement);
    }
    // The CTE itself is still read, with or without its columns.
    for statement in [
        "WITH json_each AS (SELECT 7 AS v) SELECT COUNT(*) FROM json_each",
        "WITH json_each AS (SELECT 7 AS v) SELECT v FROM json_each",
    ] {
        let r = sql(&emu, statement, None).await;
        assert_eq!(r.status, 200, "{statement}: {}", r.text);
    }
    emu.shutdown().await;
}

/// GETs `/api/v2/statements/{handle}[?partition=N]` as `user` (key 0): (status, body).
async fn fetch_as(emu: &Emulator, user: &str, handle: &str, partition: u32) -> Resp {
    let query = format!("?partition={partition}");
    Resp::read(get_statement(emu, user, handle, &query).await).await
}

/// A statement handle is its owner's: another credential is answered as for an unknown handle
/// (and so cannot consume a failed statement's answer), and the unauthenticated console does
/// not show handles (before, it listed them and any credential could fetch them).
#[tokio::test]
async fn a_statement_handle_belongs_to_the_credential_that_made_it() {
    let emu = with_partitions_of_two().await;
    let body =
        json!({"statement": "SELECT ID FROM T ORDER BY ID", "database": "DB", "schema": "SCH"});
    let r = sql_request(&emu, &jwt_for(0, "ALICE"), body, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let handle = r.body["statementHandle"].as_str().unwrap().to_owned();
    // A failed statement's error is answered once, to its owner.
    let failing = json!({"statement": "SELECT zeroblob(60000000)"});
    let r = sql_request(&emu, &jwt_for(0, "ALICE"), failing, "?async=true").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let failed = r.body["statementHandle"].as_str().unwrap().to_owned();
    let unknown = fetch_as(&emu, "MALLORY", "01234567-89ab-cdef-0123-456789abcdef", 0).await;
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str()),
        (422, Some("000709"))
    );
    for (h, partition) in [(&handle, 0), (&handle, 1), (&failed, 0)] {
        let r = fetch_as(&emu, "MALLORY", h, partition).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (422, Some("000709")),
            "{}",
            r.text
        );
        assert_eq!(
            r.text.replace(h.as_str(), "H"),
            unknown
                .text
                .replace("01234567-89ab-cdef-0123-456789abcdef", "H"),
            "answered as an unknown handle"
        );
    }
    let r = fetch_as(&emu, "ALICE", &handle, 1).await;
    assert_eq!((r.status, &r.body["data"]), (200, &json!([["2"], ["3"]])));
    let mut r = fetch_as(&emu, "ALICE", &failed, 0).await;
    for _ in 0..200 {
        if r.status != 202 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        r = fetch_as(&emu, "ALICE", &failed, 0).await;
    }
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("000603")),
        "the owner still gets the error: {}",
        r.text
    );
    // The console lists the requests, not the handles.
    let state = console_state(&emu).await;
    assert!(state.contains("/api/v2/statements/{handle}"), "{state}");
    for h in [&handle, &failed] {
        assert!(!state.contains(h.as_str()), "{h} in {state}");
    }
    emu.shutdown().await;
}

/// The result cap is checked for each value before and as it is encoded: a row of large
/// values stops at the value that passes the cap, before the later ones are encoded (before,
/// the whole row was encoded first: four `zeroblob(60e6)` took 716 MB), and no value is larger
/// than 16 MiB.
#[tokio::test]
async fn the_result_cap_stops_at_the_value_that_passes_it() {
    // Encoding 64 MiB in a debug build on a busy machine can pass the 10 s statement limit;
    // this test is about the cap, so the limit is out of its way.
    let mut config = config();
    config.sql_statement_timeout = std::time::Duration::from_secs(300);
    let emu = Emulator::start(config).await.unwrap();
    for (statement, says) in [
        // Each value's hex is 24 MB: the third passes 64 MiB.
        (
            "SELECT zeroblob(12000000), zeroblob(12000000), zeroblob(12000000), \
             zeroblob(12000000)",
            "at row 1, column 3",
        ),
        // (In-process: the statement memory bound is off here, see `heap.rs`; the binary's
        // test is `hostile_input::one_row_of_many_large_values_…`.)
        (
            "SELECT x, x, x, x, x, x FROM (SELECT printf('%.*c', 15000000, 'a') AS x)",
            "at row 1, column 5",
        ),
        (
            "SELECT zeroblob(60e6), zeroblob(60e6), zeroblob(60e6), zeroblob(60e6)",
            "16 MiB per value",
        ),
    ] {
        let r = sql(&emu, statement, None).await;
        assert_refused(&r, ("code", "000603"), &[says], statement);
    }
    emu.shutdown().await;
}

/// At most `sql_max_running` statements run at once, `?async=true` too: one more waits for a
/// slot and is answered 429 when none frees up within `sql_queue_wait` (before, every
/// statement got its own blocking thread).
#[tokio::test]
async fn statements_beyond_the_running_bound_wait_then_get_429() {
    let mut cfg = config();
    cfg.sql_max_running = 1;
    cfg.sql_queue_wait = std::time::Duration::from_millis(200);
    // The running statement holds its slot until the time limit stops it, however fast the
    // machine: 500 million rows take SQLite far longer than 5 s (5 million, which this used,
    // took under half a second on a fast machine, freeing the slot before the second try).
    cfg.sql_statement_timeout = std::time::Duration::from_secs(5);
    let emu = Emulator::start(cfg).await.unwrap();
    let long =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000000) \
                SELECT COUNT(*) FROM n";
    let handle = submit_async(&emu, long).await;
    for query in ["?async=true", ""] {
        let r = sql_statement(&emu, "SELECT 1", None, query).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (429, Some("ERR_TOO_MANY_STATEMENTS")),
            "{query}: {}",
            r.text
        );
        assert!(r.text.contains("retry later"), "{}", r.text);
    }
    let status = get_json(&emu.url()).await;
    assert_eq!(status["sql_api"]["busy_answers"], json!(2), "{status}");
    // Once the running statement ends (stopped at the time limit), the next one runs.
    wait_until_done(&emu, &handle).await;
    let r = sql(&emu, "SELECT 1", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    emu.shutdown().await;
}

/// A `LIKE`/`GLOB` pattern past the emulator's limit is refused with the limit and the fix
/// (one long call is stopped at the time limit: see the unit test
/// `one_long_like_call_stops_at_the_time_limit`).
#[tokio::test]
async fn a_long_like_pattern_is_refused_with_the_limit() {
    let (emu, _c) = with_rows().await;
    for statement in [
        "SELECT COUNT(*) FROM T WHERE NAME LIKE '%' || printf('%.*c', 1000, 'a') || 'b'",
        "SELECT COUNT(*) FROM T WHERE NAME GLOB printf('%.*c', 1001, '*')",
    ] {
        let r = sql(&emu, statement, None).await;
        assert_eq!(r.status, 422, "{statement}: {}", r.text);
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("longer than the emulator's limit of 1000 bytes"),
            "{statement}: {message}"
        );
    }
    let r = sql(
        &emu,
        "SELECT COUNT(*) FROM T WHERE NAME LIKE 'n%' OR NAME GLOB '*[0-9]'",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    emu.shutdown().await;
}
