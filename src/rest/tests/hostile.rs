//! A hostile or broken server: answers too large to hold, host names that are not host names.
//! The client refuses them with an error naming the call, and its memory stays bounded by the
//! call's cap whatever the server streams.

use crate::http::Call;
use crate::http::SMALL_ANSWER_BYTES;
use crate::rest::tests::*;

/// An account whose hostname discovery answers `body`, and whose token exchange answers
/// `token_body` (a valid 1 h token when `None`).
async fn account_answering(body: Vec<u8>, token_body: Option<Vec<u8>>) -> MockAccount {
    let server = wiremock::MockServer::start().await;
    answering(
        "GET",
        "/v2/streaming/hostname",
        ResponseTemplate::new(200).set_body_bytes(body),
    )
    .mount(&server)
    .await;
    match token_body {
        Some(b) => {
            answering(
                "POST",
                "/oauth/token",
                ResponseTemplate::new(200).set_body_bytes(b),
            )
            .mount(&server)
            .await;
        }
        None => {
            answering(
                "POST",
                "/oauth/token",
                TokenResponder {
                    count: std::sync::Arc::new(AtomicUsize::new(0)),
                    ttl: Duration::from_secs(3600),
                    delay: Duration::ZERO,
                },
            )
            .mount(&server)
            .await;
        }
    }
    MockAccount::from_server(server)
}

async fn connect_err(account: &MockAccount) -> String {
    let options = account.builder().resolve().expect("settings").connect;
    let e = RestApi::connect(options)
        .await
        .map(|_| ())
        .expect_err("refused");
    format!("{e}")
}

#[tokio::test]
async fn a_huge_hostname_answer_is_refused_without_reading_it_all() {
    let account = account_answering(vec![b'a'; 8 << 20], None).await;
    let msg = connect_err(&account).await;
    assert!(
        msg.contains("hostname discovery") && msg.contains(&SMALL_ANSWER_BYTES.to_string()),
        "{msg}"
    );
    // Not retried: the same server would send it again.
    assert_eq!(account.requests_to("/v2/streaming/hostname").await.len(), 1);
}

#[tokio::test]
async fn a_huge_token_answer_is_refused() {
    let account = account_answering(b"127.0.0.1".to_vec(), Some(vec![b'x'; 1 << 20])).await;
    let msg = connect_err(&account).await;
    assert!(
        msg.contains("token exchange") && msg.contains("larger than"),
        "{msg}"
    );
}

#[tokio::test]
async fn host_names_that_are_not_host_names_are_refused_and_shown_short() {
    let long = "a".repeat(300);
    for bad in [
        "evil.example/../x",
        "a b.example",
        "user@evil.example",
        "evil.example:443",
        "héllo.example",
        "a..b",
        "",
        long.as_str(),
    ] {
        let account = account_answering(bad.as_bytes().to_vec(), None).await;
        let msg = connect_err(&account).await;
        assert!(msg.contains("unusable ingest hostname"), "{bad:?}: {msg}");
        assert!(msg.len() < 400, "the error repeats the whole answer: {msg}");
    }
    for good in ["127.0.0.1", "[::1]", "my_acct.ingest.example"] {
        let account = account_answering(good.as_bytes().to_vec(), None).await;
        let options = account
            .builder()
            .danger_accept_cleartext_http(true)
            .resolve()
            .expect("settings")
            .connect;
        assert!(RestApi::connect(options).await.is_ok(), "{good} refused");
    }
}

/// A server that streams a chunked body forever (no `Content-Length`): the read stops at the
/// cap instead of growing.
#[tokio::test]
async fn an_endless_chunked_answer_stops_at_the_cap() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&sent);
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if sock.write_all(head).await.is_err() {
            return;
        }
        let chunk = vec![b'['; 64 << 10];
        loop {
            let frame = format!("{:x}\r\n", chunk.len());
            if sock.write_all(frame.as_bytes()).await.is_err()
                || sock.write_all(&chunk).await.is_err()
                || sock.write_all(b"\r\n").await.is_err()
            {
                return; // the client hung up
            }
            counter.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    let account = MockAccount::start().await;
    let resolved = account.builder().resolve().unwrap();
    let call = Call::new(
        "channel status",
        http::Method::GET,
        format!("http://{addr}/"),
    )
    .max_response_bytes(1 << 20);
    let started = Instant::now();
    let e = resolved
        .connect
        .http
        .execute(&call, &resolved.connect.control)
        .await
        .map(|_| ())
        .expect_err("refused");
    assert!(format!("{e}").contains("larger than 1048576 bytes"), "{e}");
    // Only a hang is caught here (a client reading the endless body would never return); the
    // guard is the bytes the server could send, counted below.
    assert!(started.elapsed() < Duration::from_secs(60));
    // The server got at most the cap plus what the socket buffers held before the hang-up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sent.load(Ordering::Relaxed) < 16 << 20,
        "the client kept reading: {} bytes",
        sent.load(Ordering::Relaxed)
    );
}
