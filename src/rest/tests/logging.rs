//! What the REST layer logs: retries, never secrets.

use crate::rest::tests::*;

#[tokio::test]
async fn logs_show_retries_but_never_tokens() {
    // Arrange: a 503, then a 401 (refresh), then success, with every log line captured.
    let logs = LogCapture::global();
    let account = MockAccount::start().await;
    answer_once(
        &account.server,
        1,
        "POST",
        ROWS_PATH,
        ResponseTemplate::new(503),
    )
    .await;
    answering(
        "POST",
        ROWS_PATH,
        RejectToken {
            reject: 1,
            ok: append_ok(),
            hits: Default::default(),
        },
    )
    .with_priority(2)
    .mount(&account.server)
    .await;
    let api = account.rest().await;

    // Act
    append_simple(&api, Compression::Zstd).await.unwrap();

    // Assert (on everything logged by every test so far, which only strengthens the
    // no-secrets checks).
    let text = logs.text();
    assert!(text.contains("retrying after backoff"), "{text}");
    assert!(
        text.contains("HTTP 401: retrying with a refreshed token"),
        "{text}"
    );
    assert!(!text.contains("eyJ"), "a JWT leaked into the logs:\n{text}");
    assert!(
        !text.contains("Bearer"),
        "an authorization header leaked:\n{text}"
    );
    assert!(
        !text.contains("BEGIN PRIVATE KEY") && !text.contains("MII"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_profile_keys_are_logged_as_warnings() {
    let logs = LogCapture::global();
    let _ = crate::config::ClientBuilder::from_profile_json(
        r#"{"account":"a","enable_telemetry_reporting":false}"#,
    )
    .unwrap();
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("enable_telemetry_reporting"))
        .unwrap_or_else(|| panic!("no warning logged:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
}
