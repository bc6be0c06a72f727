//! The bad-input catalogue: every way a user (or a server) can get things wrong, each with the
//! error the SDK returns. Every case asserts the error variant *and* that the message names
//! the problem and the fix; where rows were accepted before the fault, it checks that they
//! still land in the (emulated) table.
//!
//! Servers: the in-process emulator (`snowpipe_emulator::Emulator`, plain HTTP on 127.0.0.1,
//! the committed test key registered) for faithful behaviour, wiremock where a misbehaving
//! server is needed (garbage bodies, hanging).

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use crate::common::emulator::{self as emu, DB, PIPE, SCHEMA};
use crate::common::*;
use serde_json::json;
use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultRule, TlsMode};
use snowpipe_streaming::{Error, OffsetToken, StreamingIngestClient, TransportErrorKind};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

/// The error of a `build()` that must fail.
async fn build_err(builder: snowpipe_streaming::ClientBuilder) -> Error {
    match builder.build().await {
        Ok(_) => panic!("build() succeeded, expected an error"),
        Err(e) => e,
    }
}

/// The full message of an error, with its source chain (as `{:#}` in anyhow).
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

fn assert_mentions(e: &Error, words: &[&str]) {
    let msg = chain(e).to_lowercase();
    for w in words {
        assert!(
            msg.contains(&w.to_lowercase()),
            "error message should mention {w:?}: {msg}"
        );
    }
}

fn tok(n: u64) -> Option<OffsetToken> {
    Some(OffsetToken::from(n))
}

/// A mock account whose open-channel calls are all answered with `response`.
async fn account_answering_open(response: ResponseTemplate) -> MockAccount {
    let sf = MockAccount::start().await;
    Mock::given(method("PUT"))
        .and(path_regex(r"/channels/[^/]+$"))
        .respond_with(response)
        .mount(&sf.server)
        .await;
    sf
}

/// The error of opening channel `name` on the mock account's `DB.SCH.PIPE`.
async fn open_err(client: &StreamingIngestClient, name: &str) -> Error {
    client
        .pipe("DB", "SCH", "PIPE")
        .open_channel(name)
        .await
        .unwrap_err()
}

// ----- keys ---------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_private_key_is_a_config_error_naming_the_key() {
    let e =
        build_err(emu::builder_for_url("http://127.0.0.1:9").private_key_pem(
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        ))
        .await;
    let Error::Config { setting, .. } = &e else {
        panic!("expected Error::Config, got {e:?}");
    };
    assert_eq!(setting, "private_key");
    assert_mentions(&e, &["private_key", "pkcs#8"]);

    let e = build_err(emu::builder_for_url("http://127.0.0.1:9").private_key_pem("hello")).await;
    assert!(
        matches!(&e, Error::Config { setting, .. } if setting == "private_key"),
        "{e:?}"
    );
}

#[tokio::test]
async fn encrypted_key_without_passphrase_asks_for_the_passphrase() {
    let e =
        build_err(emu::builder_for_url("http://127.0.0.1:9").private_key_pem(TEST_KEY_ENCRYPTED))
            .await;
    assert!(matches!(&e, Error::Config { .. }), "{e:?}");
    assert_mentions(&e, &["encrypted", "passphrase"]);
}

#[tokio::test]
async fn wrong_passphrase_says_so() {
    let e = build_err(
        emu::builder_for_url("http://127.0.0.1:9")
            .private_key_pem(TEST_KEY_ENCRYPTED)
            .private_key_passphrase("not-the-passphrase"),
    )
    .await;
    assert!(matches!(&e, Error::Config { .. }), "{e:?}");
    assert_mentions(&e, &["passphrase"]);
    assert!(
        !chain(&e).contains("not-the-passphrase"),
        "the passphrase must not appear in errors: {e}"
    );
}

#[tokio::test]
async fn key_not_registered_is_an_auth_error_with_the_fingerprint() {
    let server = emu::start().await;
    let (other_private, _) = emu::other_key();
    let e = build_err(emu::builder(&server).private_key_pem(other_private.clone())).await;
    assert!(matches!(&e, Error::Auth { .. }), "{e:?}");
    assert!(!e.is_retryable());
    // Names the problem (the key/JWT was refused) and how to match it with DESC USER.
    assert_mentions(&e, &["sha256:", "rsa_public_key"]);
    server.shutdown().await;
}

// ----- reaching the account ------------------------------------------------------------------

#[tokio::test]
async fn nothing_listening_at_the_account_url_is_a_connect_error() {
    // A port nothing listens on: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = build_err(emu::builder_for_url(&url)).await;
    let Error::Transport(t) = &e else {
        panic!("expected Error::Transport, got {e:?}");
    };
    assert_eq!(t.kind, TransportErrorKind::Connect);
    assert!(e.is_retryable());
    assert_mentions(&e, &["hostname", "connect"]);
}

#[tokio::test]
async fn unresolvable_account_host_is_a_connect_error_naming_the_host() {
    // `.invalid` never resolves (RFC 2606); the resolver answers from its own rules.
    let e = build_err(
        emu::builder_for_url("http://no-such-account.invalid:9").danger_accept_cleartext_http(true),
    )
    .await;
    let Error::Transport(t) = &e else {
        panic!("expected Error::Transport, got {e:?}");
    };
    assert_eq!(t.kind, TransportErrorKind::Connect, "{e:#?}");
    assert_mentions(&e, &["no-such-account.invalid"]);
}

#[tokio::test]
async fn wrong_account_url_pointing_at_another_server_is_reported() {
    // Something answers at the URL, but it is not Snowflake: 404 with an HTML page.
    let sf = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><body>Not Found</body></html>"),
        )
        .mount(&sf)
        .await;
    let e = build_err(emu::builder_for_url(&sf.uri())).await;
    assert!(matches!(&e, Error::Server(_)), "{e:?}");
    assert_eq!(e.status(), Some(404));
    assert_mentions(&e, &["hostname"]);
}

#[tokio::test]
async fn untrusted_tls_certificate_is_a_tls_error_about_the_certificate() {
    let server = Emulator::start(emu::config().with_tls(TlsMode::Generate))
        .await
        .unwrap();
    assert!(server.url().starts_with("https://"));
    // Without the emulator's CA the handshake fails...
    let e = build_err(emu::builder(&server)).await;
    let Error::Transport(t) = &e else {
        panic!("expected Error::Transport, got {e:?}");
    };
    assert_eq!(t.kind, TransportErrorKind::Tls);
    assert!(
        !e.is_retryable(),
        "an untrusted certificate does not fix itself: {e}"
    );
    assert_mentions(&e, &["certificate", "root_ca_pem"]);
    // ...and trusting it (root_ca_pem / SSL_CERT_FILE) is the fix.
    let client = emu::builder(&server)
        .root_ca_pem(server.ca_pem().unwrap())
        .build()
        .await
        .expect("trusting the CA fixes it");
    client.close().await.unwrap();
    server.shutdown().await;
}

// ----- names ----------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_database_schema_or_pipe_is_a_not_found_naming_the_object() {
    let server = emu::start().await;
    let client = emu::client(&server).await;
    for (db, schema, pipe) in [
        ("NO_DB", SCHEMA, PIPE),
        (DB, "NO_SCHEMA", PIPE),
        (DB, SCHEMA, "NO_PIPE"),
    ] {
        let e = client
            .pipe(db, schema, pipe)
            .open_channel("c1")
            .await
            .expect_err("opening on a missing object fails");
        assert!(matches!(&e, Error::Server(_)), "{e:?}");
        assert_eq!(e.status(), Some(404), "{e}");
        assert!(!e.is_retryable());
        let code = e.snowflake_code().unwrap_or_default().to_owned();
        assert!(code.contains("DOES_NOT_EXIST"), "{code}");
        assert_mentions(&e, &["open channel", "not authorized"]);
    }
    client.close().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_channel_names_are_rejected_before_any_request() {
    let server = emu::start().await;
    let client = emu::client(&server).await;
    let long = "c".repeat(300);
    for (name, why) in [
        ("", "empty"),
        ("  ", "blank"),
        ("bad\nname", "control"),
        ("a/b", "'/'"),
        (long.as_str(), "long"),
    ] {
        let e = client
            .pipe(DB, SCHEMA, PIPE)
            .open_channel(name)
            .await
            .expect_err("invalid channel name");
        let Error::InvalidArgument { what, .. } = &e else {
            panic!("{name:?}: expected InvalidArgument, got {e:?}");
        };
        assert_eq!(*what, "channel");
        assert_mentions(&e, &["channel", why]);
    }
    let opens = server
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::OpenChannel)
        .count();
    assert_eq!(opens, 0, "nothing was sent for invalid names");
    // A channel that is already open in this client is named as such.
    let c = emu::open_on(&client, PIPE, "dup").await;
    let e = client
        .pipe(DB, SCHEMA, PIPE)
        .open_channel("dup")
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument { .. }), "{e:?}");
    assert_mentions(&e, &["already open", "close it"]);
    c.close().await.unwrap();
    client.close().await.unwrap();
    server.shutdown().await;
}

// ----- offset tokens ----------------------------------------------------------------------------

#[tokio::test]
async fn offset_tokens_that_go_backwards_or_repeat_are_refused_and_nothing_is_lost() {
    let (server, client, ch) = emu::open_channel("tokens").await;
    for id in 1..=10u64 {
        ch.append(Rows::serde([&json!({"ID": id})]), Positions::from(tok(id)))
            .await
            .unwrap();
    }
    // Reused: the same token as the last append.
    let e = ch
        .append(Rows::serde([&json!({"ID": 99})]), Positions::from(tok(10)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::InvalidArgument {
                what: "offset_token",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["reuses", "strictly increase"]);
    // Backwards.
    let e = ch
        .append(Rows::serde([&json!({"ID": 98})]), Positions::from(tok(3)))
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument { .. }), "{e:?}");
    assert_mentions(&e, &["goes back", "strictly increase"]);
    // Start after end within one call.
    let e = ch
        .append(
            Rows::serde([json!({"ID": 97}), json!({"ID": 96})]),
            Positions::span(OffsetToken::from(20)..=OffsetToken::from(19)),
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument { .. }), "{e:?}");
    assert_mentions(&e, &["start offset token 20", "after end"]);
    // Non-numeric tokens are opaque: only exact reuse is refused.
    let ch2 = emu::open_on(&client, PIPE, "opaque").await;
    ch2.append(
        Rows::serde([&json!({"ID": 200})]),
        Positions::at(OffsetToken::new("b").unwrap()),
    )
    .await
    .unwrap();
    ch2.append(
        Rows::serde([&json!({"ID": 201})]),
        Positions::at(OffsetToken::new("a").unwrap()),
    )
    .await
    .unwrap();
    let e = ch2
        .append(
            Rows::serde([&json!({"ID": 202})]),
            Positions::at(OffsetToken::new("a").unwrap()),
        )
        .await
        .unwrap_err();
    assert_mentions(&e, &["reuses"]);
    ch2.close().await.unwrap();

    // The channel still works, and the refused rows were not taken.
    ch.append(Rows::serde([&json!({"ID": 11})]), Positions::from(tok(11)))
        .await
        .unwrap();
    ch.wait_for_commit(&OffsetToken::from(11u64), Duration::from_secs(10))
        .await
        .unwrap();
    ch.close().await.unwrap();
    let mut want: Vec<i64> = (1..=11).collect();
    want.extend([200, 201]);
    want.sort_unstable();
    assert_eq!(emu::ids(&server), want);
    client.close().await.unwrap();
    server.shutdown().await;
}

// ----- rows -------------------------------------------------------------------------------------

#[tokio::test]
async fn unserializable_rows_are_refused_with_their_index_and_nothing_is_buffered() {
    let (server, client, ch) = emu::open_channel("serde").await;
    ch.append(Rows::serde([&json!({"ID": 1})]), Positions::from(tok(1)))
        .await
        .unwrap();

    // A map with non-string keys cannot be JSON.
    let mut bad = std::collections::BTreeMap::new();
    bad.insert((1, 2), "x");
    let rows = vec![
        serde_json::to_value(json!({"ID": 2})).unwrap(),
        serde_json::Value::Null,
    ];
    let e = ch
        .append(Rows::serde([&bad]), Positions::from(tok(2)))
        .await
        .unwrap_err();
    let Error::Serialization { row_index, .. } = &e else {
        panic!("expected Serialization, got {e:?}");
    };
    assert_eq!(*row_index, 0);
    assert_mentions(&e, &["cannot be serialized", "key must be a string"]);
    // A row that is not a JSON object: the error names the row.
    let e = ch
        .append(
            Rows::serde(rows),
            Positions::span(OffsetToken::from(2)..=OffsetToken::from(3)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Serialization { row_index: 1, .. }),
        "{e:?}"
    );
    assert_mentions(&e, &["row 1", "json object"]);
    assert_eq!(
        ch.status().buffered_rows,
        0,
        "nothing of the failed call was taken"
    );

    ch.append(Rows::serde([&json!({"ID": 2})]), Positions::from(tok(2)))
        .await
        .unwrap();
    assert_eq!(emu::finish(ch, client, server).await, vec![1, 2]);
}

#[tokio::test]
async fn a_row_larger_than_the_request_limit_is_refused_and_earlier_rows_land() {
    let server = emu::start().await;
    let client = emu::builder(&server)
        .max_request_bytes(4096)
        .build()
        .await
        .unwrap();
    let ch = emu::open_on(&client, PIPE, "big").await;
    ch.append(
        Rows::serde([&json!({"ID": 1, "NAME": "small"})]),
        Positions::from(tok(1)),
    )
    .await
    .unwrap();
    // Letters that do not compress: a row larger than a request goes alone only when it
    // compresses into one.
    let mut seed = 7u64;
    let huge: String = (0..20_000)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + (seed >> 59) as u8 % 26)
        })
        .collect();
    let e = ch
        .append(
            Rows::serde([&json!({"ID": 2, "NAME": huge})]),
            Positions::from(tok(2)),
        )
        .await
        .unwrap_err();
    let Error::RowTooLarge { size, max, .. } = &e else {
        panic!("expected RowTooLarge, got {e:?}");
    };
    assert!(size > max, "{size} > {max}");
    assert_mentions(
        &e,
        &["exceeds", "split it", "compresses into max_request_bytes"],
    );
    ch.append(Rows::serde([&json!({"ID": 3})]), Positions::from(tok(3)))
        .await
        .unwrap();
    assert_eq!(emu::finish(ch, client, server).await, vec![1, 3]);
}

#[tokio::test]
async fn rows_violating_the_table_schema_are_reported_with_their_offsets() {
    let (server, client, ch) = emu::open_channel("schema").await;
    let mut events = ch.events();
    let rows = vec![
        json!({"ID": 1, "NAME": "ok"}),
        json!({"ID": null, "NAME": "ID is NOT NULL"}),
        json!({"ID": "not a number"}),
        json!({"ID": 4, "NAME": "ok"}),
    ];
    ch.append(
        Rows::serde(rows),
        Positions::span(OffsetToken::from(1)..=OffsetToken::from(4)),
    )
    .await
    .unwrap();
    // ON_ERROR = CONTINUE: the offset still advances past the bad rows...
    ch.wait_for_commit(&OffsetToken::from(4u64), Duration::from_secs(10))
        .await
        .unwrap();
    // ...and the client reports them instead of failing the append.
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a row-error event")
        .expect("event channel open");
    assert_eq!(ev.total_errors, 2, "{ev:?}");
    assert_eq!(ev.offset_upper_bound, tok(4), "{ev:?}");
    let msg = ev.last_error_message.clone().unwrap_or_default();
    assert!(!msg.is_empty(), "the server's message is passed on: {ev:?}");
    let st = ch.status();
    assert_eq!(st.rows_error_count, 2);
    assert!(!st.failed, "row errors do not fail the channel");
    ch.close().await.unwrap();
    assert_eq!(emu::ids(&server), vec![1, 4], "the valid rows landed");
    client.close().await.unwrap();
    server.shutdown().await;
}

// ----- misbehaving servers ------------------------------------------------------------------------

#[tokio::test]
async fn garbage_instead_of_json_is_a_decode_error_naming_the_operation() {
    let sf = account_answering_open(
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string("<html>surprise</html>"),
    )
    .await;
    let client = sf.client().await;
    let e = open_err(&client, "garbage").await;
    let Error::Transport(t) = &e else {
        panic!("expected Transport(Decode), got {e:?}");
    };
    assert_eq!(t.kind, TransportErrorKind::Decode);
    assert_mentions(&e, &["open channel"]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn an_error_status_with_a_non_json_body_shows_the_body() {
    let sf = account_answering_open(ResponseTemplate::new(400).set_body_string("upstream said no"))
        .await;
    let client = sf.client().await;
    let e = open_err(&client, "garbage").await;
    assert!(matches!(&e, Error::Server(_)), "{e:?}");
    assert_eq!(e.status(), Some(400));
    assert_mentions(&e, &["open channel", "non-json body", "upstream said no"]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn garbage_append_responses_end_in_recovery_not_loss() {
    // The append answers 200 with a body that is not JSON: the client cannot know the next
    // continuation token, so it reopens and replays; every row lands exactly once.
    let server = emu::start().await;
    server.faults().add(
        FaultRule::new(
            Endpoint::AppendRows,
            FaultAction::raw(200, "this is not json", "application/json"),
        )
        .after(2)
        .times(1),
    );
    let client = emu::client(&server).await;
    streams_ids_through_a_recovery(&client, "garbled", &server, 50).await;
    client.close().await.ok();
    server.shutdown().await;
}

#[tokio::test]
async fn a_hanging_server_times_out_with_a_clear_error() {
    let sf =
        account_answering_open(ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
    let client = sf
        .builder()
        .request_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = open_err(&client, "hang").await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by the timeouts"
    );
    let Error::Transport(t) = &e else {
        panic!("expected Transport(Timeout), got {e:?}");
    };
    assert_eq!(t.kind, TransportErrorKind::Timeout);
    assert!(e.is_retryable());
    assert_mentions(&e, &["open channel", "timed out"]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_server_hanging_mid_stream_costs_a_replay_not_a_row() {
    // One append hangs past the request timeout: its fate is unknown, so the channel reopens
    // and replays after the committed token; nothing is lost or duplicated.
    let server = emu::start().await;
    server.faults().add(
        FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 2_000 })
            .after(1)
            .times(1),
    );
    let client = emu::builder(&server)
        .request_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    streams_ids_through_a_recovery(&client, "hang", &server, 30).await;
    client.close().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn emulator_restarted_mid_stream_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || emu::config().with_data_dir(dir.path());
    let server = Emulator::start(cfg()).await.unwrap();
    let port = server.addr().port();
    let client = emu::builder(&server)
        .retry(
            snowpipe_streaming::RetryConfig::default()
                .initial_backoff(Duration::from_millis(20))
                .max_backoff(Duration::from_millis(200))
                .max_attempts(50)
                .total_budget(Duration::from_secs(20)),
        )
        .build()
        .await
        .unwrap();
    let ch = emu::open_on(&client, PIPE, "restart").await;
    for id in 1..=100u64 {
        ch.append(Rows::serde([&json!({"ID": id})]), Positions::from(tok(id)))
            .await
            .unwrap();
    }
    ch.wait_for_commit(&OffsetToken::from(100u64), Duration::from_secs(10))
        .await
        .unwrap();

    // Stop the server; rows appended meanwhile wait in the client.
    server.shutdown().await;
    for id in 101..=200u64 {
        ch.append(Rows::serde([&json!({"ID": id})]), Positions::from(tok(id)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut config = cfg();
    config.port = port;
    let server = Emulator::start(config)
        .await
        .expect("restart on the same port");

    ch.wait_for_commit(&OffsetToken::from(200u64), Duration::from_secs(30))
        .await
        .expect("the channel recovers by itself");
    ch.close().await.unwrap();
    assert_eq!(emu::ids(&server), (1..=200).collect::<Vec<_>>());
    client.close().await.unwrap();
    server.shutdown().await;
}

/// Opens channel `name` of `client` and appends ids `1..=n` (flushing every 10) to it, which
/// must recover from the faults the test planted by itself; then checks the table holds every
/// id exactly once.
async fn streams_ids_through_a_recovery(
    client: &StreamingIngestClient,
    name: &str,
    server: &Emulator,
    n: u64,
) {
    let ch = emu::open_on(client, PIPE, name).await;
    for id in 1..=n {
        ch.append(Rows::serde([&json!({"ID": id})]), Positions::from(tok(id)))
            .await
            .unwrap();
        if id % 10 == 0 {
            let _ = ch.flush().await;
        }
    }
    ch.wait_for_commit(&OffsetToken::from(n), Duration::from_secs(20))
        .await
        .expect("recovers without help");
    assert!(ch.status().recoveries >= 1, "{:?}", ch.status());
    ch.close().await.unwrap();
    let want: Vec<i64> = (1..=n).map(|i| i64::try_from(i).unwrap()).collect();
    assert_eq!(emu::ids(server), want);
}
