//! Protocol cases over the public API: two writers on one channel (the newer opener fences
//! the older one, which stops and never takes the channel back), the hand-over recipe, and
//! the checks of an append's tokens.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::{ConformanceTarget, Knobs, Row};
use crate::{OffsetToken, Positions, Rows};

fn rows(ids: Range<u64>) -> impl Iterator<Item = Row> {
    ids.map(one)
}

fn one(id: u64) -> Row {
    Row {
        id,
        pad: format!("row {id}"),
    }
}

fn tok(t: u64) -> Option<OffsetToken> {
    Some(OffsetToken::from(t))
}

fn span(first: u64, last: u64) -> Positions {
    Positions::span(OffsetToken::from(first)..=OffsetToken::from(last))
}

/// Rows `ids` with their own tokens (the id).
fn with_tokens<const N: usize>(ids: [u64; N]) -> (Rows<[Row; N]>, Positions) {
    (
        Rows::serde(ids.map(one)),
        Positions::per_row(ids.map(OffsetToken::from)),
    )
}

/// Two clients (two processes as far as the server can tell) on channel `c`: the second open
/// fences the first, whose next append fails with `OwnershipLost` naming the channel and the
/// committed token, and stays failed; the second resumes after the committed token; the table
/// holds each row once.
pub async fn the_second_opener_fences_the_first(target: Arc<dyn ConformanceTarget>) {
    let table = target.create_table("fence").await;
    let first = target.client(&table, &Knobs::default()).await;
    let second = target.client(&table, &Knobs::default()).await;
    let a = table.open(&first, "c").await.expect("first open");
    a.append(Rows::serde(rows(0..100)), span(0, 99))
        .await
        .expect("append");
    a.wait_for_commit(&OffsetToken::from(99u64), Duration::from_secs(30))
        .await
        .expect("commit");

    let b = table.open(&second, "c").await.expect("second open");
    assert_eq!(b.latest_committed_offset_token(), tok(99));
    a.append(Rows::serde(rows(100..150)), span(100, 149))
        .await
        .expect("an append is admitted before the server is asked");
    let err = a.flush().await.expect_err("the first writer is fenced");
    assert!(err.is_ownership_lost(), "{err}");
    assert_eq!(err.last_committed_offset_token(), tok(99).as_ref());
    assert!(err.to_string().contains("channel c"), "{err}");
    let err = a
        .append(Rows::serde(rows(150..160)), span(150, 159))
        .await
        .expect_err("a fenced handle stays failed");
    assert!(err.is_ownership_lost(), "{err}");

    b.append(Rows::serde(rows(100..200)), span(100, 199))
        .await
        .expect("append");
    b.wait_for_commit(&OffsetToken::from(199u64), Duration::from_secs(30))
        .await
        .expect("commit");
    assert_eq!(target.ids(&table).await, (0..200).collect::<Vec<i64>>());
    assert!(a.close().await.expect_err("fenced").is_ownership_lost());
    b.close().await.expect("close");
    first.close().await.unwrap_or(());
    second.close().await.expect("close");
}

/// The hand-over recipe on channel `p3`: the old owner flushes, waits for the commit and
/// closes (`hand_over`), reporting the committed token; the new owner opens and resumes after
/// it. Nobody is fenced while appending, and every row lands once.
pub async fn a_hand_over_passes_the_channel_on(target: Arc<dyn ConformanceTarget>) {
    let table = target.create_table("hand_over").await;
    let old = target.client(&table, &Knobs::default()).await;
    let new = target.client(&table, &Knobs::default()).await;
    let a = table.open(&old, "p3").await.expect("open");
    for k in 0..5u64 {
        a.append(
            Rows::serde(rows(k * 40..k * 40 + 40)),
            span(k * 40, k * 40 + 39),
        )
        .await
        .expect("append");
    }
    let handed = a
        .hand_over(Duration::from_secs(30))
        .await
        .expect("hand over");
    assert_eq!(handed, tok(199));

    let b = table.open(&new, "p3").await.expect("open");
    let resume = b
        .latest_committed_offset_token()
        .and_then(|t| t.as_u64())
        .expect("a numeric committed token")
        + 1;
    assert_eq!(resume, 200);
    b.append(Rows::serde(rows(resume..300)), span(resume, 299))
        .await
        .expect("append");
    b.wait_for_commit(&OffsetToken::from(299u64), Duration::from_secs(30))
        .await
        .expect("commit");
    assert_eq!(target.ids(&table).await, (0..300).collect::<Vec<i64>>());
    b.close().await.expect("close");
    old.close().await.expect("close");
    new.close().await.expect("close");
}

/// Per-row tokens that repeat or go back are refused at the call, naming the row; the next
/// append must follow the last row's token.
pub async fn per_row_tokens_out_of_order_are_refused(target: Arc<dyn ConformanceTarget>) {
    let table = target.create_table("per_row_order").await;
    let client = target.client(&table, &Knobs::default()).await;
    let ch = table.open(&client, "c").await.expect("open");
    let (rows, positions) = with_tokens([5, 9, 9]);
    let err = ch
        .append(rows, positions)
        .await
        .expect_err("a repeated token is refused");
    let err = err.to_string();
    assert!(
        err.contains("row 2 (9) repeats the token of row 1 (9)"),
        "{err}"
    );
    let (rows, positions) = with_tokens([5, 9]);
    ch.append(rows, positions).await.expect("append");
    // The next append must follow the last row's token.
    let (rows, positions) = with_tokens([8]);
    assert!(ch.append(rows, positions).await.is_err());
    ch.close_with(crate::CloseOptions::default().wait_for_commit(true))
        .await
        .expect("close");
    assert_eq!(target.ids(&table).await, [5, 9]);
    client.close().await.expect("close");
}

/// Appends sharing one request name a span only when it counts their rows: ten rows at the
/// span `1..=10` and five at the one token `13` in one request, then ten at the span
/// `21..=30` (past a gap) and two at `31..=32` in another. A request naming `1..=13` for 15
/// rows (more rows than tokens, refused by a server checking spans) must not be sent, nor
/// `1..=32` for 27 rows; the spans that meet (`21..=32` for 12 rows) may share one. Every row
/// lands once and the committed token is the last append's end.
pub async fn appends_sharing_a_request_name_their_rows(target: Arc<dyn ConformanceTarget>) {
    let table = target.create_table("merged_spans").await;
    let knobs = Knobs {
        max_client_lag: Some(Duration::from_secs(1)),
        ..Knobs::default()
    };
    let client = target.client(&table, &knobs).await;
    let ch = table.open(&client, "c").await.expect("open");
    ch.append(Rows::serde(rows(1..11)), span(1, 10))
        .await
        .expect("append");
    ch.append(
        Rows::serde(rows(11..16)),
        Positions::at(OffsetToken::from(13)),
    )
    .await
    .expect("append");
    ch.flush().await.expect("the merged request is accepted");
    ch.append(Rows::serde(rows(16..26)), span(21, 30))
        .await
        .expect("append");
    ch.append(Rows::serde(rows(26..28)), span(31, 32))
        .await
        .expect("append");
    ch.flush().await.expect("the merged request is accepted");
    ch.wait_for_commit(&OffsetToken::from(32), Duration::from_secs(30))
        .await
        .expect("committed");
    assert_eq!(target.ids(&table).await, (1..28).collect::<Vec<i64>>());
    ch.close().await.expect("close");
    client.close().await.expect("close");
}
