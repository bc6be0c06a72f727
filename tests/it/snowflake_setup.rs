//! `docs/snowflake-setup.md` stays true: every ```` ```sql ```` block of the page runs
//! unchanged on the emulator (the DDL as the emulator's setup script, a `SELECT` through the
//! SQL API), with the key `snowpipe-emulator keygen` writes registered by the statement it
//! prints; the page's example connection files connect; and each message of its
//! troubleshooting table is the one the client prints when the emulator is set up wrong that
//! way.

use snowpipe_streaming::{Positions, Rows};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use snowpipe_emulator::{Emulator, EmulatorConfig, FaultRule, KeyFiles, KeyPair};
use snowpipe_streaming::{ClientBuilder, OffsetToken, StreamingIngestClient};

use crate::common::emulator::at_test_pace;
use crate::common::{fixture, TEST_PASSPHRASE};

const PAGE: &str = include_str!("../../docs/snowflake-setup.md");
const PROFILE_JSON: &str = include_str!("../../docs/examples/profile.json.example");
const CONNECTIONS_TOML: &str = include_str!("../../docs/examples/connections.toml.example");

/// The page's user and role, and the account its examples name.
const USER: &str = "SNOWPIPE_INGEST";
const ROLE: &str = "SNOWPIPE_INGEST_ROLE";
const ACCOUNT: &str = "MYORG-MYACCOUNT";

/// The body of every ```` ```sql ```` block of `page`, in order.
fn sql_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (current.as_mut(), line.trim()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unterminated ```sql block");
    blocks
}

/// Whether a block is a query (run through the SQL API) rather than setup DDL.
fn is_query(block: &str) -> bool {
    block
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("SELECT")
}

/// The page's setup (its DDL blocks, then the statement `keygen` prints for `key`) on an
/// emulator that grants the page's role its database, with `faults`.
async fn account_set_up_by_the_page(key: &KeyPair, faults: &[&str]) -> Emulator {
    let mut ddl: Vec<String> = sql_blocks(PAGE)
        .into_iter()
        .filter(|b| !is_query(b))
        .collect();
    ddl.push(key.alter_user_statement(USER));
    let mut config = EmulatorConfig::for_tests().with_role_grant(ROLE, "DEMO");
    config.ddl = ddl;
    for f in faults {
        config.faults.rules.push(f.parse::<FaultRule>().unwrap());
    }
    Emulator::start(config)
        .await
        .expect("the page's SQL runs on the emulator")
}

/// A builder for the page's user on `emu`, without a role (the user's default role, which the
/// page sets).
fn builder(emu: &Emulator, key: &KeyPair) -> ClientBuilder {
    at_test_pace(
        StreamingIngestClient::builder()
            .account(ACCOUNT)
            .user(USER)
            .private_key_pem(key.private_key_pem()),
        &emu.url(),
    )
}

#[derive(Serialize)]
struct Event {
    id: u64,
    kind: &'static str,
}

/// Appends events `ids` on `pipe` (a table's default pipe when `table`) and waits for their
/// commit.
async fn stream(client: &StreamingIngestClient, pipe: &str, table: bool, ids: (u64, u64)) {
    let pipe = if table {
        client.table_pipe("DEMO", "PUBLIC", pipe)
    } else {
        client.pipe("DEMO", "PUBLIC", pipe)
    };
    let channel = pipe.open_channel("setup-page").await.unwrap();
    let rows = (ids.0..=ids.1).map(|id| Event { id, kind: "sale" });
    let last = OffsetToken::from(ids.1);
    channel
        .append(
            Rows::serde(rows),
            Positions::span(ids.0.into()..=last.clone()),
        )
        .await
        .unwrap();
    channel
        .wait_for_commit(&last, Duration::from_secs(30))
        .await
        .unwrap();
    channel.close().await.unwrap();
}

/// A private copy of `text` at `path` (mode 0600, as the page asks).
fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[tokio::test]
async fn the_pages_sql_keygen_and_example_files_take_an_empty_account_to_rows() {
    let blocks = sql_blocks(PAGE);
    assert_eq!(
        blocks.len(),
        4,
        "the page's SQL blocks (user, table, pipe, count): {blocks:#?}"
    );
    // Step 1: the key pair, as `snowpipe-emulator keygen --out ~/.snowflake/keys` writes it.
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join(".snowflake/keys");
    let key = KeyPair::from_seed(71).unwrap();
    let files = KeyFiles::write(&keys, &key, USER, None).unwrap();
    // What the page shows keygen printing is what it prints (but the paths and the key).
    let printed = files.to_string();
    let shown = PAGE
        .split("snowpipe-emulator keygen --out ~/.snowflake/keys\n```\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the page shows keygen's output");
    assert_eq!(
        shown.lines().count(),
        printed.lines().count(),
        "{shown}\n{printed}"
    );
    for (shown, printed) in shown.lines().zip(printed.lines()) {
        let pattern = match (shown.find("SHA256:"), shown.find("RSA_PUBLIC_KEY='")) {
            (Some(at), _) => format!(
                "{}SHA256:…{}",
                &shown[..at],
                &shown[shown.find(" (DESC").unwrap()..]
            ),
            (_, Some(at)) => format!("{}RSA_PUBLIC_KEY='…';", &shown[..at]),
            _ => shown.replace("/home/me", "…"),
        };
        assert!(
            matches(&pattern, printed),
            "the page shows {shown:?}, keygen prints {printed:?}"
        );
    }
    // Steps 2-4, and the statement keygen printed.
    let emu = account_set_up_by_the_page(&key, &[]).await;

    // Step 5: the example connections.toml's connection (its key path in this home).
    let toml_path = home.path().join("connections.toml");
    write_private(
        &toml_path,
        &CONNECTIONS_TOML.replace(
            "~/.snowflake/keys/rsa_key.p8",
            files.private_key.to_str().unwrap(),
        ),
    );
    let client = at_test_pace(
        ClientBuilder::from_connections_toml(&toml_path, Some("snowpipe_ingest")).unwrap(),
        &emu.url(),
    )
    .build()
    .await
    .expect("the example connection connects");
    let emulator_connection = ClientBuilder::from_connections_toml(&toml_path, Some("emulator"))
        .expect("the example's emulator connection reads");
    let debug = format!("{emulator_connection:?}");
    assert!(
        debug.contains(r#"url_scheme: Some("http")"#)
            && debug.contains(r#"url_host: Some("127.0.0.1")"#)
            && debug.contains(r#"url_port: Some("8080")"#),
        "{debug}"
    );

    // Step 6: the quickstart's rows through the table's default pipe, then the page's count.
    stream(&client, "EVENTS", true, (1, 100)).await;
    let sql = builder(&emu, &key)
        .role(ROLE)
        .build_sql()
        .unwrap()
        .database("DEMO")
        .schema("PUBLIC");
    let queries: Vec<&String> = blocks.iter().filter(|b| is_query(b)).collect();
    assert_eq!(queries.len(), 1, "{queries:?}");
    let counted = sql.query(queries[0].trim()).await.unwrap();
    assert_eq!(counted.rows, vec![vec![Some("100".to_owned())]]);

    // The example profile.json, through the pipe of step 4 (which lower-case keys feed).
    let profile = at_test_pace(
        ClientBuilder::from_profile_json(PROFILE_JSON)
            .unwrap()
            .private_key_file(&files.private_key),
        &emu.url(),
    )
    .build()
    .await
    .expect("the example profile connects");
    stream(&profile, "EVENTS_PIPE", false, (101, 110)).await;
    let rows = emu
        .query(r#"SELECT COUNT(*), MIN(ID), MAX(ID) FROM "DEMO.PUBLIC.EVENTS" WHERE KIND = 'sale'"#)
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            serde_json::json!(110),
            serde_json::json!(1),
            serde_json::json!(110)
        ]]
    );
    client.close().await.unwrap();
    profile.close().await.unwrap();
}

/// The page's troubleshooting table: (what is wrong, the message).
fn troubleshooting_rows(page: &str) -> Vec<(String, String)> {
    let section = page
        .split("## Troubleshooting")
        .nth(1)
        .expect("a Troubleshooting section");
    // Each case is a list item ("- What is wrong — The client prints: `message`; Fix: …"), its
    // lines after the first indented.
    let mut items: Vec<String> = Vec::new();
    for line in section.lines() {
        if let Some(item) = line.strip_prefix("- ") {
            items.push(item.to_owned());
        } else if let (Some(last), Some(more)) = (items.last_mut(), line.strip_prefix("  ")) {
            last.push(' ');
            last.push_str(more);
        } else if line.starts_with("## ") {
            break;
        }
    }
    items
        .iter()
        .filter_map(|item| item.split_once(" — The client prints: "))
        .map(|(case, rest)| {
            let message = rest
                .strip_prefix('`')
                .and_then(|m| m.split_once('`'))
                .map(|(m, _)| m)
                .unwrap_or_else(|| panic!("the message of {case:?} is not in backticks"));
            (case.to_owned(), message.to_owned())
        })
        .collect()
}

/// Whether `printed` is `pattern`, each `…` of the pattern standing for any text.
fn matches(pattern: &str, printed: &str) -> bool {
    let mut pieces = pattern.split('…');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = printed.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        if last {
            return rest.ends_with(piece);
        }
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The error's message; a panic when `result` is not an error.
fn refused<T>(result: snowpipe_streaming::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// What the client prints when the account is set up wrong the way `case` says.
async fn provoke(case: &str, key: &KeyPair) -> String {
    let emu = if case.starts_with("Wrong account identifier") {
        // What Snowflake's front end answers for a host that is not an account's API: a
        // page, not the API's JSON (docs/snowflake-setup.md cites the reports).
        account_set_up_by_the_page(
            key,
            &["hostname:status=403,body=<html>Forbidden</html>,content_type=text/html"],
        )
        .await
    } else {
        account_set_up_by_the_page(key, &[]).await
    };
    let open = |b: ClientBuilder, pipe: &'static str, table: bool| async move {
        let client = b.build().await.unwrap();
        let pipe = if table {
            client.table_pipe("DEMO", "PUBLIC", pipe)
        } else {
            client.pipe("DEMO", "PUBLIC", pipe)
        };
        refused(pipe.open_channel("c").await)
    };
    let local = |key_file: &str| {
        ClientBuilder::new()
            .account(ACCOUNT)
            .user(USER)
            .url(emu.url())
            .private_key_file(fixture(key_file))
    };
    match case {
        c if c.starts_with("Wrong account identifier") => refused(builder(&emu, key).build().await),
        c if c.starts_with("Key not registered") => {
            let other = KeyPair::from_seed(72).unwrap();
            refused(builder(&emu, &other).build().await)
        }
        c if c.starts_with("The role may not use the database") => {
            open(builder(&emu, key).role("PUBLIC"), "EVENTS", true).await
        }
        c if c.starts_with("Pipe missing") => open(builder(&emu, key), "EVENT_PIPE", false).await,
        c if c.starts_with("Table missing") => open(builder(&emu, key), "EVENT", true).await,
        c if c.starts_with("Encrypted key, no passphrase") => {
            refused(local("test_key_encrypted.p8").build().await)
        }
        c if c.starts_with("Key encrypted with DES") => refused(
            local("test_key_des3.p8")
                .private_key_passphrase(TEST_PASSPHRASE)
                .build()
                .await,
        ),
        other => panic!("the troubleshooting row {other:?} has no case here: add one"),
    }
}

#[tokio::test]
async fn each_troubleshooting_message_is_what_the_client_prints() {
    let rows = troubleshooting_rows(PAGE);
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let key = KeyPair::from_seed(71).unwrap();
    for (case, message) in rows {
        let printed = provoke(&case, &key).await;
        assert!(
            matches(&message, &printed),
            "{case}:\n  the page says   {message}\n  the client says {printed}"
        );
    }
}

#[test]
fn the_pattern_matcher_reads_ellipses_as_any_text() {
    assert!(matches("a … c", "a b c"));
    assert!(matches("a … c … e", "a b c d e"));
    assert!(matches("exact", "exact"));
    assert!(!matches("exact", "exact!"));
    assert!(!matches("a … c", "a b d"));
    assert!(matches("…tail", "any tail"));
}
