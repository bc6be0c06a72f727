//! The way in, `Channel::append(rows, positions)`: every form of rows at every form of
//! positions, split across 1 KB requests, each request carrying exactly its rows' positions.

use super::*;

/// Rows `first..first + n` as NDJSON text a foreign producer wrote (not our encoder).
fn ndjson(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|id| format!("{{ \"id\" : {id} }}\n"))
        .collect()
}

/// Each request's `(start, end)` tokens.
fn ends(fake: &FakeApi) -> Vec<(Option<String>, Option<String>)> {
    fake.appends_to("c")
        .into_iter()
        .map(|a| (a.start, a.end))
        .collect()
}

/// Each request's first and last row id, as tokens `f(id)` would name them.
fn row_ends(fake: &FakeApi, f: impl Fn(u64) -> String) -> Vec<(Option<String>, Option<String>)> {
    fake.appends_to("c")
        .iter()
        .map(|a| {
            let ids = ids(&a.rows);
            (ids.first().map(|&i| f(i)), ids.last().map(|&i| f(i)))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ndjson_rows_at_a_dense_span_split_into_exact_requests() {
    let fake = FakeApi::new();
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    let span = OffsetToken::from(1_000u64)..=OffsetToken::from(1_199u64);
    ch.append(Rows::ndjson(ndjson(1_000, 200)), span.into())
        .await
        .unwrap();
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    assert!(appends.len() > 2, "{} requests", appends.len());
    assert_eq!(ends(&fake), row_ends(&fake, |id| id.to_string()));
    let all: Vec<u64> = appends.iter().flat_map(|a| ids(&a.rows)).collect();
    assert_eq!(all, (1_000..1_200).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn serde_rows_numbered_with_gaps_split_into_exact_requests() {
    let fake = FakeApi::new();
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    let positions = Positions::numbered((0..150).map(|id| 3 * id + 5)).unwrap();
    ch.append(Rows::serde((0..150).map(|id| Row { id })), positions)
        .await
        .unwrap();
    ch.flush().await.unwrap();
    assert!(fake.appends_to("c").len() > 1);
    assert_eq!(ends(&fake), row_ends(&fake, |id| (3 * id + 5).to_string()));
    // The next append must follow the last number.
    let err = ch
        .append(
            Rows::serde([&Row { id: 0 }]),
            Positions::at(OffsetToken::from(452u64)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reuses the last token"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn per_row_tokens_that_are_not_one_per_row_are_refused_and_nothing_is_taken() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let tokens = ["a", "b"].map(|t| OffsetToken::new(t).unwrap());
    let err = ch
        .append(Rows::ndjson(ndjson(0, 3)), Positions::per_row(tokens))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2 tokens for 3 rows"), "{err}");
    ch.flush().await.unwrap();
    assert!(fake.appends_to("c").is_empty());
}

#[tokio::test(start_paused = true)]
async fn try_append_takes_all_rows_or_none() {
    let fake = FakeApi::new();
    let client = client(&fake, small_budget());
    let ch = open(&client, "c").await;
    let mut taken = 0;
    let refused = loop {
        let positions = Positions::numbered([taken]).unwrap();
        match ch.try_append(Rows::ndjson(ndjson(taken, 1)), positions) {
            Ok(()) => taken += 1,
            Err(e) => break e,
        }
        assert!(taken < 1_000, "a 4 KB budget never filled");
    };
    assert!(matches!(refused, Error::Backpressure { .. }), "{refused}");
    ch.flush().await.unwrap();
    let all: Vec<u64> = fake
        .appends_to("c")
        .iter()
        .flat_map(|a| ids(&a.rows))
        .collect();
    assert_eq!(
        all,
        (0..taken).collect::<Vec<_>>(),
        "the refused row was not taken"
    );
}

#[tokio::test(start_paused = true)]
async fn a_prefixed_span_larger_than_one_request_splits_into_exact_sub_spans() {
    let fake = FakeApi::new();
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    let t = |s: &str| OffsetToken::new(s).unwrap();
    let span = t("order_1000")..=t("order_1199");
    ch.append(Rows::ndjson(ndjson(1_000, 200)), span.into())
        .await
        .unwrap();
    ch.flush().await.unwrap();
    assert!(fake.appends_to("c").len() > 2);
    assert_eq!(ends(&fake), row_ends(&fake, |id| format!("order_{id}")));
    // The next append follows the span's last token by its number.
    let err = ch
        .append(Rows::ndjson(ndjson(0, 1)), t("order_1199").into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reuses the last token"), "{err}");
    ch.append(Rows::ndjson(ndjson(1_200, 1)), t("order_1200").into())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_prefixed_span_naming_fewer_rows_than_the_append_is_refused() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let t = |s: &str| OffsetToken::new(s).unwrap();
    let err = ch
        .append(Rows::ndjson(ndjson(0, 3)), (t("o_1")..=t("o_2")).into())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("name 2 rows but the append has 3"),
        "{err}"
    );
}
