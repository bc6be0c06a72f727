//! The conformance suite (`test_util::conformance`) against the in-memory fake server
//! (`testing::FakeApi`): one fake per table, commits on every status poll, appends taking
//! 3 ms (real time: the crash model runs each process on a runtime of its own), so crashes
//! land between requests. The emulator and an account run the same functions in the
//! integration tests' `conformance` module.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::testing::FakeApi;
use crate::settings::ChannelSettings;
use crate::test_util::conformance::{self, ConformanceTarget, Knobs, Table};
use crate::StreamingIngestClient;

/// The fake as a conformance target.
#[derive(Default)]
struct FakeTarget {
    tables: Mutex<HashMap<String, Arc<FakeApi>>>,
}

impl FakeTarget {
    fn fake(&self, table: &Table) -> Arc<FakeApi> {
        Arc::clone(&self.tables.lock().unwrap()[&table.name])
    }
}

#[async_trait]
impl ConformanceTarget for FakeTarget {
    async fn create_table(&self, name: &str) -> Table {
        let fake = FakeApi::new();
        fake.set_latency(Duration::from_millis(3));
        self.tables.lock().unwrap().insert(name.to_owned(), fake);
        Table {
            database: "DB".into(),
            schema: "SC".into(),
            name: name.to_owned(),
        }
    }

    async fn client(&self, table: &Table, knobs: &Knobs) -> StreamingIngestClient {
        let defaults = ChannelSettings::default();
        let settings = ChannelSettings {
            max_request_bytes: knobs
                .max_request_bytes
                .unwrap_or(defaults.max_request_bytes),
            compression: knobs.compression.unwrap_or(defaults.compression),
            max_client_lag: knobs.max_client_lag.unwrap_or(Duration::from_millis(20)),
            commit_poll_interval: Duration::from_millis(20),
            ..defaults
        };
        StreamingIngestClient::from_parts(self.fake(table) as _, settings)
    }

    async fn ids(&self, table: &Table) -> Vec<i64> {
        let fake = self.fake(table);
        let channels: BTreeSet<String> = fake.appends().into_iter().map(|a| a.channel).collect();
        let mut ids: Vec<i64> = channels
            .iter()
            .flat_map(|c| fake.committed_rows(c))
            .map(|r| {
                serde_json::from_str::<serde_json::Value>(&r).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    fn accepted_appends(&self) -> Option<usize> {
        let tables = self.tables.lock().unwrap();
        let accepted = tables
            .values()
            .map(|f| f.appends().iter().filter(|a| a.accepted).count())
            .sum();
        Some(accepted)
    }
}

fn target() -> Arc<dyn ConformanceTarget> {
    Arc::new(FakeTarget::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_resume() {
    conformance::crash_and_resume(target(), 1..7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_kb_appends_resume_exactly() {
    conformance::thirty_kb_appends_resume_exactly(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefixed_span_larger_than_a_request_resumes_exactly() {
    conformance::a_prefixed_span_larger_than_a_request_resumes_exactly(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_opener_fences_the_first() {
    conformance::the_second_opener_fences_the_first(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_passes_the_channel_on() {
    conformance::a_hand_over_passes_the_channel_on(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_row_tokens_out_of_order_are_refused() {
    conformance::per_row_tokens_out_of_order_are_refused(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_sharing_a_request_name_their_rows() {
    conformance::appends_sharing_a_request_name_their_rows(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_stream_resumes_and_resizes_exactly() {
    conformance::a_lane_stream_resumes_and_resizes_exactly(target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_routed_stream_resumes_lanes_opened_one_by_one() {
    conformance::a_caller_routed_stream_resumes_lanes_opened_one_by_one(target()).await;
}
