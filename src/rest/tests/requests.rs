//! The shape of every REST request and the parsing of its answer.

use crate::rest::tests::*;

#[tokio::test]
async fn open_channel_request_shape_and_response() {
    // Arrange
    let account = MockAccount::start().await;
    let encoded =
        "/v2/streaming/databases/my%20db/schemas/S%2F1/pipes/P%C3%9C-STREAMING/channels/ch%20a%2B1";
    answering("PUT", encoded, open_response())
        .expect(1)
        .mount(&account.server)
        .await;
    let api = account.rest().await;

    // Act
    let resp = api
        .open_channel(
            &chan("my db", "S/1", "PÜ-STREAMING", "ch a+1"),
            &OpenChannelRequest {
                offset_token: Some("100".into()),
                fail_on_uncommitted_rows: Some(true),
            },
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(resp.next_continuation_token, "ct0");
    assert_eq!(
        resp.channel_status.channel_status_code.as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        resp.channel_status.last_committed_offset_token.as_deref(),
        Some("5")
    );
    let r = &account.requests_to(encoded).await[0];
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"offset_token": "100", "fail_on_uncommitted_rows": true})
    );
    assert_eq!(
        header(r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(r, "accept").as_deref(), Some("application/json"));
    assert_eq!(
        header(r, "x-snowflake-authorization-token-type").as_deref(),
        Some("OAUTH")
    );
    assert_eq!(
        header(r, "authorization"),
        Some(format!(
            "Bearer {}",
            api.tokens().token().await.unwrap().value.expose()
        ))
    );
    assert_uuid(&query(r, "requestId").unwrap());
    assert_eq!(query(r, "retryCount").as_deref(), Some("0"));
}

#[tokio::test]
async fn open_channel_without_options_sends_an_empty_object() {
    let (account, api) = rest_answering("PUT", CHANNEL_PATH, open_response()).await;
    api.open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap();
    let r = &account.requests_to(CHANNEL_PATH).await[0];
    assert_eq!(&r.body[..], b"{}");
}

#[tokio::test]
async fn append_rows_request_shape() {
    // Arrange
    let account = MockAccount::start().await;
    answering("POST", ROWS_PATH, append_ok())
        .expect(1)
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let req = append_request(Compression::Zstd);

    // Act
    let next = api
        .append_rows(&simple(), &req, None, &ChannelWire::default())
        .await
        .unwrap()
        .next_continuation_token;

    // Assert
    assert_eq!(next, "ct1");
    let r = &account.requests_to(ROWS_PATH).await[0];
    let q = raw_query(r);
    let request_id = query(r, "requestId").unwrap();
    assert_eq!(
        q,
        format!(
            "startOffsetToken=1&endOffsetToken=a%20b%26c%3Dd%2F%C3%A9&continuationToken=ct%3D0%26x\
             &requestId={request_id}&retryCount=0"
        )
    );
    assert_eq!(
        header(r, "content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(header(r, "content-encoding").as_deref(), Some("zstd"));
    assert_eq!(
        header(r, "x-snowflake-uncompressed-content-length").as_deref(),
        Some("16")
    );
    assert_eq!(
        header(r, "x-snowflake-min-append-timestamp-ms").as_deref(),
        Some("1700000000123")
    );
    assert_eq!(
        header(r, "x-snowflake-authorization-token-type").as_deref(),
        Some("OAUTH")
    );
    assert_eq!(r.body, req.body.to_vec());
    assert_eq!(
        zstd::decode_all(&r.body[..]).unwrap(),
        b"{\"a\":1}\n{\"a\":2}\n"
    );
}

#[tokio::test]
async fn append_rows_uncompressed_and_without_start_token() {
    let (account, api) = rest_answering("POST", ROWS_PATH, append_ok()).await;
    let mut req = append_request(Compression::None);
    req.start_offset_token = None;
    req.end_offset_token = None;
    api.append_rows(&simple(), &req, None, &ChannelWire::default())
        .await
        .unwrap();
    let r = &account.requests_to(ROWS_PATH).await[0];
    assert!(raw_query(r)
        .starts_with("startOffsetToken=&endOffsetToken=&continuationToken=ct%3D0%26x&requestId="));
    assert_eq!(header(r, "content-encoding"), None);
    assert_eq!(header(r, "x-snowflake-uncompressed-content-length"), None);
    assert_eq!(&r.body[..], b"{\"a\":1}\n{\"a\":2}\n");

    let req = append_request(Compression::Gzip);
    api.append_rows(&simple(), &req, None, &ChannelWire::default())
        .await
        .unwrap();
    let r = &account.requests_to(ROWS_PATH).await[1];
    assert_eq!(header(r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        header(r, "x-snowflake-uncompressed-content-length").as_deref(),
        Some("16")
    );
}

#[tokio::test]
async fn bulk_status_splits_into_chunks_of_100_and_merges() {
    // Arrange: the server reports every requested name except those ending in 7.
    struct Echo;
    impl Respond for Echo {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let mut statuses = serde_json::Map::new();
            for n in body["channel_names"].as_array().unwrap() {
                let n = n.as_str().unwrap();
                if !n.ends_with('7') {
                    statuses.insert(n.to_owned(), status_json(n));
                }
            }
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"channel_statuses": statuses}))
        }
    }
    let account = MockAccount::start().await;
    answering("POST", STATUS_PATH, Echo)
        .expect(3)
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let names: Vec<String> = (0..250).map(|i| format!("c{i}")).collect();

    // Act
    let map = api
        .bulk_channel_status(&simple().pipe, &names)
        .await
        .unwrap();

    // Assert
    assert_eq!(map.len(), 225);
    assert!(!map.contains_key("c7"));
    assert_eq!(map["c249"].rows_inserted, Some(5));
    let reqs = account.requests_to(STATUS_PATH).await;
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["channel_names"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(
        header(&reqs[0], "content-type").as_deref(),
        Some("application/json")
    );

    // An empty list makes no request.
    assert!(api
        .bulk_channel_status(&simple().pipe, &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 3);
}

#[tokio::test]
async fn drop_channel_parses_the_committed_token_or_nothing() {
    let account = MockAccount::start().await;
    answering(
        "DELETE",
        CHANNEL_PATH,
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"last_committed_offset_token": "7"})),
    )
    .up_to_n_times(1)
    .mount(&account.server)
    .await;
    answer(&account, "DELETE", CHANNEL_PATH, ResponseTemplate::new(200)).await;
    let api = account.rest().await;
    assert_eq!(
        api.drop_channel(&simple()).await.unwrap().as_deref(),
        Some("7")
    );
    assert_eq!(api.drop_channel(&simple()).await.unwrap(), None);
    let r = &account.requests_to(CHANNEL_PATH).await[0];
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn unusable_names_are_rejected_before_any_request() {
    let account = MockAccount::start().await;
    let api = account.rest().await;
    let err = api
        .drop_channel(&chan("DB", "", "P", "C"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { what: "schema", .. }),
        "{err:?}"
    );
    let err = api
        .drop_channel(&chan("DB", "S", "P", ".."))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                what: "channel",
                ..
            }
        ),
        "{err:?}"
    );
}
