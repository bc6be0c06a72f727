/// Issue 56: credentials never go over http to another machine (a connector file can
/// name the registry and inherit the Kafka SASL password); loopback and https are fine.
#[test]
fn credentials_are_refused_over_cleartext_to_another_machine() {
    let auth = || Some(BasicAuth::new("u", "secret"));
    let e = Registry::new("http://registry.internal:8081", auth())
        .err()
        .unwrap();
    assert!(e.contains("clear text") && !e.contains("secret"), "{e}");
    assert!(Registry::new("https://a:8081,http://b:8081", auth()).is_err());
    assert!(Registry::new("http://registry.internal:8081", None).is_ok());
    for fine in [
        "https://registry.internal",
        "http://127.0.0.1:8081",
        "http://localhost:1",
        "http://[::1]:8081",
    ] {
        assert!(Registry::new(fine, auth()).is_ok(), "{fine}");
    }
}

/// Issue 56: a registry that redirects (to another host, or from https to http) is not
/// followed: the credentials never reach the other host, and the answer says why and
/// what to give instead. (reqwest follows up to 10 redirects by default.)
#[tokio::test]
async fn a_redirect_is_not_followed_and_names_the_fix() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_url = format!("http://{}", elsewhere.local_addr().unwrap());
    let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&reached);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = elsewhere.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = s
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let registry = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", registry.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = registry.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 302 Found\r\nlocation: {elsewhere_url}/schemas/ids/1\r\n\
                     content-length: 0\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    let r = Registry::new(&url, Some(BasicAuth::new("u", "secret"))).unwrap();
    let failure = tokio::time::timeout(Duration::from_secs(10), r.schema(1))
        .await
        .expect("answered at once, not retried")
        .unwrap_err();
    let Failure::Refused(why) = failure else {
        panic!("{failure:?}")
    };
    assert!(why.contains("does not follow redirects"), "{why}");
    assert!(!why.contains("secret"), "{why}");
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
}
use super::*;

#[test]
fn answers_parse_by_their_schema_type() {
    let avro = br#"{"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}"}"#;
    assert_eq!(parse_answer(avro).unwrap().type_name(), "AVRO");
    let json = br#"{"schema":"{\"type\":\"object\"}","schemaType":"JSON"}"#;
    assert_eq!(parse_answer(json).unwrap().type_name(), "JSON");
    let cases: &[(&[u8], &str)] = &[
        (br#"{"schema":"\"nope\""}"#, "not an Avro schema"),
        (
            br#"{"schema":"x","schemaType":"XML"}"#,
            "\"XML\" is unknown",
        ),
        (
            br#"{"schema":"\"string\"","references":[{"name":"a","subject":"s","version":1}]}"#,
            "references other schemas",
        ),
    ];
    for (body, why) in cases {
        match parse_answer(body) {
            Err(BadAnswer::Schema(err)) => assert!(err.contains(why), "{err}"),
            other => panic!("{other:?}"),
        }
    }
    // A page that is not the registry's answer is nobody's message's fault.
    match parse_answer(b"<html>") {
        Err(BadAnswer::NotAnAnswer(err)) => assert!(err.contains("not {\"schema\""), "{err}"),
        other => panic!("{other:?}"),
    }
}

/// Only "schema not found" blames the message; refused credentials stop the sink; the
/// rest is retried.
#[test]
fn only_an_unknown_id_is_the_messages_fault() {
    let not_found = br#"{"error_code":40403,"message":"Schema 99 not found"}"#;
    assert_eq!(classify(404, not_found), Class::NotFound);
    for (status, body) in [
        (
            404,
            &br#"{"error_code":404,"message":"HTTP 404 Not Found"}"#[..],
        ),
        (404, b"<html>nginx</html>"),
        (503, b""),
        (500, br#"{"error_code":50001}"#),
        (502, b""),
        (429, b""),
        (408, b""),
        (400, b""),
    ] {
        assert!(
            matches!(classify(status, body), Class::Passing(_)),
            "{status}"
        );
    }
    assert_eq!(classify(401, b""), Class::Refused);
    assert_eq!(classify(403, b""), Class::Refused);
}

#[test]
fn the_backoff_doubles_from_100_ms_to_10_s() {
    let mut waits = vec![FIRST_BACKOFF];
    while waits.len() < 10 {
        waits.push(next_backoff(*waits.last().unwrap()));
    }
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert_eq!(
        ms,
        [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
    );
}

#[test]
fn urls_are_http_and_hold_no_credentials_and_the_secret_is_never_printed() {
    assert!(Registry::new("http://127.0.0.1:8081/", None).is_ok());
    let err = Registry::new("ftp://x", None).unwrap_err();
    assert!(err.contains("not an http"), "{err}");
    let err = Registry::new("https://u:p@registry", None).unwrap_err();
    assert!(err.contains("holds credentials"), "{err}");
    assert!(!err.contains("u:p"), "{err}");
    // A scheme in capitals is a scheme; credentials behind it are refused unprinted, and so
    // are they behind a scheme that is no http.
    for url in [
        "HTTPS://user:s3cret@host",
        "htps://user:s3cret@host:8081",
        "https://sr:8081,HTTP://user:s3cret@host",
        "user:s3cret@host",
    ] {
        let err = Registry::new(url, None).unwrap_err();
        assert!(!err.contains("s3cret"), "{url}: {err}");
        assert!(err.contains("***@host"), "{url}: {err}");
    }
    let r = Registry::new("HTTPS://Registry:8081/", None).unwrap();
    assert_eq!(r.urls(), ["https://Registry:8081"]);
    let auth = BasicAuth::parse("user:s3cret\n").unwrap();
    assert_eq!(
        (auth.user.as_str(), auth.password.as_str()),
        ("user", "s3cret")
    );
    assert!(!format!("{auth:?}").contains("s3cret"));
    let err = BasicAuth::parse("s3cret").unwrap_err();
    assert!(!err.contains("s3cret"), "{err}");
}

/// `schema.registry.url`'s comma-separated list, as Confluent's clients take it.
#[test]
fn a_comma_separated_list_is_several_registries() {
    let r = Registry::new(" http://sr1:8081/ , https://sr2:8081,", None).unwrap();
    assert_eq!(r.urls(), ["http://sr1:8081", "https://sr2:8081"]);
    let err = Registry::new("http://sr1:8081,sr2:8081", None).unwrap_err();
    assert!(err.contains("\"sr2:8081\" is not an http"), "{err}");
    assert!(Registry::new(" , ", None).unwrap_err().contains("no URL"));
}

/// Everything up to the last `@` is hidden: a password may hold `/`, `?` or `#`, which
/// would end the authority early (such a URL is refused anyway; the message must not show
/// it). A registry URL with an `@` in its path loses a little more than it must.
#[test]
fn redacting_hides_everything_up_to_the_last_at() {
    for (url, shown) in [
        ("https://u:p@h:1/x", "https://***@h:1/x"),
        ("https://h:1/p?q=a", "https://h:1/p?q=a"),
        ("u:p@h", "***@h"),
        ("http://a:b@c@h", "http://***@h"),
        ("https://user:pa#s3cret@sr:8081", "https://***@sr:8081"),
        ("https://user:pa/s3cret@sr:8081", "https://***@sr:8081"),
        ("https://u:p@h:1/x@y", "https://***@y"),
    ] {
        assert_eq!(redact_url(url), shown);
    }
    for url in [
        "https://user:pa#s3cret@sr:8081",
        "https://user:pa/s3cret@sr:8081",
    ] {
        let err = Registry::new(url, None).unwrap_err();
        assert!(err.contains("holds credentials"), "{url}: {err}");
        assert!(!err.contains("s3cret"), "{url}: {err}");
    }
}

/// An id no registry gives (its ids are Java ints) is the message's fault at once: the
/// registry's plain 404 for it would otherwise be retried for good.
#[tokio::test]
async fn an_id_over_the_largest_int_is_a_dead_letter_without_asking() {
    // Nothing listens there: a request would be a passing failure, retried.
    let r = Registry::new("http://127.0.0.1:9", None).unwrap();
    match r.schema(u32::MAX).await {
        Err(Failure::Dead(why)) => assert!(why.contains("wire format"), "{why}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// Issue 56: the cache is bounded by what its schemas weigh, not only by their count. A
/// registry serving forty distinct 100 KB schemas (each asked once, as a flood of ids would
/// be) leaves at most [`MAX_CACHED_BYTES`] cached: older schemas are forgotten and fetched
/// again when needed, every id is still answered, and an id fetched again that answers with
/// another schema is refused (its meaning was fixed by its first answer).
#[tokio::test]
async fn the_cache_is_bounded_in_bytes_and_forgotten_schemas_are_fetched_again() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    // Once set, every id answers with another schema (a registry that should not).
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let change = Arc::clone(&changed);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            let change = Arc::clone(&change);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, SeqCst);
                let head = String::from_utf8_lossy(&head);
                let id: u32 = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.rsplit('/').next())
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(0);
                let fields: Vec<String> = (0..3_000)
                    .map(|i| format!("{{\"name\":\"f{id}_{i}\",\"type\":\"int\"}}"))
                    .collect();
                let name = if change.load(SeqCst) { "Other" } else { "R" };
                let schema = format!(
                    "{{\"type\":\"record\",\"name\":\"{name}{id}\",\"fields\":[{}]}}",
                    fields.join(",")
                );
                let body = serde_json::json!({ "schema": schema }).to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    let r = Registry::new(&url, None).unwrap();
    for id in 1..=40 {
        r.schema(id).await.unwrap();
        let cache = lock(&r.cache);
        assert!(cache.bytes <= MAX_CACHED_BYTES, "{} bytes", cache.bytes);
        assert_eq!(
            cache.bytes,
            cache.entries.values().map(Cached::weight).sum::<usize>()
        );
    }
    let held = lock(&r.cache).entries.len();
    assert!((10..40).contains(&held), "{held} schemas held");
    assert_eq!(asked.load(SeqCst), 40);
    // The last one is held; all forty still answer, the forgotten ones fetched again.
    r.schema(40).await.unwrap();
    assert_eq!(asked.load(SeqCst), 40);
    for id in 1..=40 {
        let s = r.schema(id).await.unwrap();
        assert_eq!(s.type_name(), "AVRO");
    }
    assert!(asked.load(SeqCst) > 40);
    // A forgotten id fetched again must mean what it meant: the other schema is refused.
    changed.store(true, SeqCst);
    let mut refused = 0;
    for id in 1..=40 {
        match r.schema(id).await {
            Ok(s) => assert_eq!(s.type_name(), "AVRO"),
            Err(Failure::Dead(why)) => {
                assert!(why.contains("another schema than earlier"), "{why}");
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(refused > 0);
}

/// A loopback registry answering each id with the JSON Schema `schema_of(id)`; it counts the
/// requests.
async fn json_registry(
    schema_of: fn(u32) -> String,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, SeqCst);
                let head = String::from_utf8_lossy(&head);
                let id: u32 = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.rsplit('/').next())
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(0);
                let body = serde_json::json!({ "schema": schema_of(id), "schemaType": "JSON" })
                    .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, asked)
}

/// Issue 72: an 823 KB schema took 36 s of CPU to compile on an async worker, compiled by
/// each partition that met its id at once. Now one caller fetches and compiles an id while
/// the others wait for its outcome (one request, one compilation, one shared schema), the
/// compilation runs off the async workers (the runtime's one worker runs a task meanwhile, which
/// the compilation waits for),
/// and the cache weighs a JSON Schema by what it holds; a schema past the compile bound is a
/// dead letter naming its id, remembered like other schema failures.
#[tokio::test]
async fn partitions_meeting_a_new_id_share_one_compilation_off_the_workers() {
    use std::sync::atomic::Ordering::SeqCst;
    fn schema_of(id: u32) -> String {
        // A compilation of about 800,000 steps (under the bound), in 40 KB.
        let heavy = |objects: usize| {
            let nulls = vec![r#"{"type":"null"}"#; 2_000].join(",");
            let types = vec!["\"object\""; objects].join(",");
            format!(r#"{{"type":[{types}],"properties":{{"p":{{"anyOf":[{nulls}]}}}}}}"#)
        };
        match id {
            7 => heavy(400),
            // Past the bound.
            9 => heavy(3_000),
            // The first attack, scaled down: 300 type branches of one 10 KB default.
            _ => format!(
                r#"{{"type":[{}],"default":"{}"}}"#,
                vec!["\"string\""; 300].join(","),
                "d".repeat(10_000)
            ),
        }
    }
    let (url, asked) = json_registry(schema_of).await;
    let r = Registry::new(&url, None).unwrap();
    // The compilation waits until a task on this (current-thread) runtime's only worker saw
    // it running: it ends only when it runs off the worker.
    let rendezvous = Arc::new(super::cache::Rendezvous::default());
    lock(&r.cache).rendezvous = Some(Arc::clone(&rendezvous));
    let watching = Arc::clone(&rendezvous);
    let watcher = tokio::spawn(async move {
        while !watching.compiling.load(SeqCst) {
            tokio::task::yield_now().await;
        }
        watching.seen.store(true, SeqCst);
    });
    let all = futures_util::future::join_all((0..8).map(|_| r.schema(7))).await;
    lock(&r.cache).rendezvous = None;
    assert!(
        rendezvous.seen.load(SeqCst),
        "the worker did not run while the schema compiled"
    );
    watcher.await.unwrap();
    let all: Vec<Arc<Registered>> = all.into_iter().map(Result::unwrap).collect();
    assert!(all.iter().all(|s| Arc::ptr_eq(s, &all[0])));
    assert_eq!(asked.load(SeqCst), 1, "one request for eight callers");
    // Weighed by what it holds, not 24 times its answer.
    let scaled = r.schema(8).await.unwrap();
    let Registered::Json(j) = &*scaled else {
        panic!("{}", scaled.type_name())
    };
    let answer = schema_of(8).len();
    let weight = lock(&r.cache).entries.get(&8).map(Cached::weight);
    assert_eq!(weight, Some(j.weight() + 1024));
    assert!(j.weight() < 3 * answer, "{} bytes for {answer}", j.weight());
    // Refused, naming the id; remembered (no second request).
    for _ in 0..2 {
        match r.schema(9).await {
            Err(Failure::Dead(why)) => {
                assert!(
                    why.contains("schema id 9") && why.contains("steps"),
                    "{why}"
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    assert_eq!(asked.load(SeqCst), 3);
    assert!(lock(&r.gates).is_empty());
}

/// A compilation that panics is the schema's refusal, remembered for `RETRY_AFTER` like any
/// refused schema: the messages of its id after the first are dead letters without compiling
/// it again (it was compiled once per message before, its panic never cached). Once the
/// refusal expires the id is fetched and compiled again, as other refusals are.
#[tokio::test]
async fn a_compilation_that_panics_is_remembered_as_a_refused_schema() {
    use std::sync::atomic::Ordering::SeqCst;
    fn schema_of(_: u32) -> String {
        r#"{"type":"object","properties":{"id":{"type":"integer"}}}"#.to_owned()
    }
    let (url, asked) = json_registry(schema_of).await;
    let r = Registry::new(&url, None).unwrap();
    lock(&r.cache).panics = true;
    for _ in 0..5 {
        match r.schema(3).await {
            Err(Failure::Dead(why)) => {
                assert!(
                    why.contains("schema id 3") && why.contains("panicked"),
                    "{why}"
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    assert_eq!(
        lock(&r.cache).compiles,
        1,
        "compiled once for five messages"
    );
    assert_eq!(asked.load(SeqCst), 1);
    assert!(lock(&r.gates).is_empty());
    // Expired, the id is asked for and compiled again (now without panicking).
    if let Some(Cached::Failed(_, at)) = lock(&r.cache).entries.get_mut(&3) {
        *at -= RETRY_AFTER;
    }
    lock(&r.cache).panics = false;
    assert_eq!(r.schema(3).await.unwrap().type_name(), "JSON");
    assert_eq!(lock(&r.cache).compiles, 2);
    assert_eq!(asked.load(SeqCst), 2);
}
