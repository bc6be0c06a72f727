use std::time::Duration;

use super::*;
use crate::service::test_channel::{open_c, DDL};
use crate::settings::config::EmulatorConfig;

/// Spawns an append of the one row `{"ID":1}` (offset tokens `1`) after `token`.
fn spawn_append_one(
    shared: &Arc<Shared>,
    key: ChannelKey,
    target: Arc<Target>,
    token: String,
) -> tokio::task::JoinHandle<Result<(String, Option<String>), ApiError>> {
    let appender = Arc::clone(shared);
    tokio::spawn(async move { appender.append(key, target, row_one(token)).await })
}

#[tokio::test]
async fn a_default_pipe_is_listed_from_its_first_use_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::for_tests()
        .with_ddl(DDL)
        .with_data_dir(dir.path());
    let names = |shared: &Shared| -> Vec<String> {
        shared.status()["pipes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let shared = Shared::build(&config).await.unwrap();
    assert!(names(&shared).is_empty());
    let (key, _) = shared.resolve("db", "sch", "t-streaming", "c").unwrap();
    shared.default_pipe_used(&key).await;
    assert_eq!(names(&shared), ["T-STREAMING"]);
    drop(shared);
    let restarted = Shared::build(&config).await.unwrap();
    assert_eq!(names(&restarted), ["T-STREAMING"]);
}

/// `--max-concurrent-decodes`: with the only turn taken, an append waits for it (it
/// is neither refused nor decoded) and completes once the turn is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_for_a_decode_turn() {
    let mut config = EmulatorConfig::for_tests().with_ddl(DDL);
    config.max_concurrent_decodes = 1;
    let shared = Arc::new(Shared::build(&config).await.unwrap());
    let (key, target, token) = open_c(&shared).await;
    let turn = shared.state.decode_permits.acquire().await.unwrap();
    let mut append = spawn_append_one(&shared, key, target, token);
    let waited = tokio::time::timeout(Duration::from_millis(300), &mut append).await;
    assert!(waited.is_err(), "decoded without a turn: {waited:?}");
    assert_eq!(shared.state.pending_budget.used(), 0, "nothing decoded yet");
    drop(turn);
    let done = tokio::time::timeout(Duration::from_secs(10), append)
        .await
        .expect("the append ran once the turn was free")
        .unwrap();
    assert!(done.is_ok(), "{:?}", done.err().map(|e| e.message));
}

/// An append admitted on its channel but not yet queued (here: waiting for a decode turn)
/// is not uncommitted data: an open with `fail_on_uncommitted_rows=true` meanwhile succeeds
/// (no 409) and reports no committed token. The append must then be fenced when it reaches
/// the queue (its continuation token predates the reopen), as the service refuses an append
/// after a reopen: otherwise its rows would commit behind the token the open returned, and a
/// caller resuming from that token would store them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_admitted_before_a_reopen_is_fenced_when_it_is_queued() {
    let mut config = EmulatorConfig::for_tests().with_ddl(DDL);
    config.max_concurrent_decodes = 1;
    let shared = Arc::new(Shared::build(&config).await.unwrap());
    let (key, target, token) = open_c(&shared).await;
    let turn = shared.state.decode_permits.acquire().await.unwrap();
    let append = shared.append(key.clone(), target, row_one(token));
    let mut append = std::pin::pin!(append);
    // Polled once: admitted on the channel (synchronously, up to its first await), it then
    // waits for the decode turn.
    tokio::select! {
        biased;
        r = &mut append => panic!("the append finished without a decode turn: {:?}", r.map_err(|e| e.message)),
        () = std::future::ready(()) => {}
    }

    let reopened = shared.open_channel(key.clone(), None, true).await.unwrap();
    assert!(reopened["channel_status"]["last_committed_offset_token"].is_null());
    drop(turn);
    let refused = tokio::time::timeout(Duration::from_secs(10), append)
        .await
        .expect("the append ran once the turn was free")
        .expect_err("an append admitted before the reopen is fenced");
    assert_eq!(
        refused.code, "STALE_CONTINUATION_TOKEN_SEQUENCER",
        "{}",
        refused.message
    );
    shared.commit_all().await;
    let channels = shared.channels();
    let ch = channels.get(&key).unwrap();
    assert!(ch.pending.is_empty());
    assert_eq!(ch.committed, None);
}

/// A client that hangs up while its append is being committed (the append commits inline
/// with no commit delay) must not leave the rows stored with the channel's committed token
/// unpublished: the next open would report the older token, and the client's exactly-once
/// replay would store the rows a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_caller_hangs_up_still_publishes_its_token() {
    let shared = Arc::new(
        Shared::build(&EmulatorConfig::for_tests().with_ddl(DDL))
            .await
            .unwrap(),
    );
    let (key, target, token) = open_c(&shared).await;

    // Hold the storage thread, so the append's commit waits inside it.
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let holder = Arc::clone(&shared);
    let held = tokio::spawn(async move {
        holder
            .storage
            .as_ref()
            .unwrap()
            .run(move |_| {
                entered_tx.send(()).unwrap();
                let _ = gate_rx.recv();
            })
            .await
    });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();

    let append = spawn_append_one(&shared, key.clone(), target, token);
    // The batch has been taken for committing once it left the channel's queue.
    let taken = async {
        loop {
            let pending = shared.channels().get(&key).map(|c| c.pending.len());
            if pending == Some(0) && shared.channels()[&key].row_seq > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), taken)
        .await
        .expect("the append reached its commit");
    // The client hangs up: its handler is dropped mid-commit.
    append.abort();
    let _ = append.await;
    gate_tx.send(()).unwrap();
    held.await.unwrap().unwrap();

    let published = async {
        loop {
            if shared.channels()[&key].committed.as_deref() == Some("1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), published)
        .await
        .expect("the committed token is published although the caller hung up");
}

/// An append of the row `{"ID":1}` at offset token `1`, under `token`.
fn row_one(token: String) -> AppendRequest {
    AppendRequest {
        continuation_token: Some(token),
        start_offset_token: Some("1".into()),
        end_offset_token: Some("1".into()),
        content_encoding: None,
        body: Bytes::from_static(b"{\"ID\":1}\n"),
        body_charge: None,
        uncompressed_len: 9,
    }
}
