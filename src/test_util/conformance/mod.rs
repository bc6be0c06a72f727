//! One conformance suite every backend runs (feature `test-util`; not a stable API): the
//! exactly-once writer model and the protocol cases as async functions over the public ingest
//! API, each taking a [`ConformanceTarget`], as `object_store::integration` does for its stores.
//!
//! A target makes clients (each one a process of its own, as far as the server can tell),
//! creates tables and reads back the IDs committed to them. The SDK runs the suite against its
//! in-memory fake transport (the unit tests' `channel/conformance_tests.rs`), against the
//! in-process emulator (`tests/it/exactly_once.rs`, `ownership.rs` and `conformance.rs`) and,
//! when `SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_DATABASE` and `SNOWFLAKE_SCHEMA` are set, against that
//! account (`tests/it/conformance.rs`; skipped with a message otherwise). The emulator and the
//! account are [`SqlTarget`]s (feature `sql`): tables made and read through the SQL API.
//!
//! Every function creates the one table it streams into, `(ID NUMBER NOT NULL, PAD VARCHAR)`
//! ([`TABLE_COLUMNS`]), and writes through its default pipe; it panics, naming what went
//! wrong, when the target breaks the rule it checks.
//!
//! * The exactly-once writer model: [`Writer`], the README's recipe (open, resume after the
//!   committed token, append; reopen after an invalidation, stop when fenced), run by
//!   processes that die at any instant ([`crash_and_resume`],
//!   [`thirty_kb_appends_resume_exactly`],
//!   [`a_prefixed_span_larger_than_a_request_resumes_exactly`]): the table must hold every
//!   source row once. The
//!   unit tests' two-writer property test drives the same [`Writer`] through the fake's faults.
//! * Protocol cases ([`the_second_opener_fences_the_first`], [`a_hand_over_passes_the_channel_on`],
//!   [`per_row_tokens_out_of_order_are_refused`]): two writers on one channel (the fenced one
//!   stops, the table holds each token once), the hand-over recipe, the checks of an append's
//!   tokens.
//!
//! * A lane stream ([`a_lane_stream_resumes_and_resizes_exactly`]): one logical stream over
//!   several channels, dropped, reopened and resized, every record once; and one routed by the
//!   caller ([`a_caller_routed_stream_resumes_lanes_opened_one_by_one`]) resuming lanes
//!   opened one by one.
//!
//! Fixed seeds in CI; the caller picks the seeds ([`crash_and_resume`] takes them), so random
//! exploration stays an opt-in of the test that runs the suite.

mod crash;
mod lanes;
mod protocol;
#[cfg(feature = "sql")]
mod sql_target;
mod writer;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub use crash::{
    a_prefixed_span_larger_than_a_request_resumes_exactly, crash_and_resume,
    thirty_kb_appends_resume_exactly,
};
pub use lanes::{
    a_caller_routed_stream_resumes_lanes_opened_one_by_one,
    a_lane_stream_resumes_and_resizes_exactly,
};
pub use protocol::{
    a_hand_over_passes_the_channel_on, appends_sharing_a_request_name_their_rows,
    per_row_tokens_out_of_order_are_refused, the_second_opener_fences_the_first,
};
#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub use sql_target::SqlTarget;
pub use writer::{Tokens, Writer};

use crate::{Channel, ClientBuilder, Compression, StreamingIngestClient};

/// The columns of every table the suite creates.
pub const TABLE_COLUMNS: &str = "(ID NUMBER NOT NULL, PAD VARCHAR)";

/// A backend the suite runs against.
#[async_trait]
pub trait ConformanceTarget: Send + Sync + 'static {
    /// Creates a fresh table with [`TABLE_COLUMNS`]; `name` is unique within one run of the
    /// suite (a target may add to it to keep it unique in its account).
    async fn create_table(&self, name: &str) -> Table;

    /// A connected client for streaming into `table`, with `knobs` applied: a process of its
    /// own, as far as the server can tell.
    async fn client(&self, table: &Table, knobs: &Knobs) -> StreamingIngestClient;

    /// The IDs committed to `table`, sorted.
    async fn ids(&self, table: &Table) -> Vec<i64>;

    /// Append requests the server has accepted so far, when the target can tell (a crash
    /// "after the server answered k more appends" needs it; without it such a crash comes
    /// when the process has appended all it was to).
    fn accepted_appends(&self) -> Option<usize> {
        None
    }
}

/// A table the suite streams into, through its default pipe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Table {
    /// Its database.
    pub database: String,
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
}

impl Table {
    /// Opens channel `channel` of `client` on this table's default pipe.
    ///
    /// # Errors
    /// As [`Pipe::open_channel`](crate::Pipe::open_channel).
    pub async fn open(
        &self,
        client: &StreamingIngestClient,
        channel: &str,
    ) -> crate::Result<Channel> {
        client
            .table_pipe(&self.database, &self.schema, &self.name)
            .open_channel(channel)
            .await
    }
}

/// The client settings a case asks for; a target applies them on top of its own.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// [`ClientBuilder::max_request_bytes`].
    pub max_request_bytes: Option<usize>,
    /// [`ClientBuilder::compression`].
    pub compression: Option<Compression>,
    /// [`ClientBuilder::max_client_lag`].
    pub max_client_lag: Option<Duration>,
}

impl Knobs {
    /// `builder` with these knobs set.
    pub fn apply(&self, mut builder: ClientBuilder) -> ClientBuilder {
        if let Some(bytes) = self.max_request_bytes {
            builder = builder.max_request_bytes(bytes);
        }
        if let Some(compression) = self.compression {
            builder = builder.compression(compression);
        }
        if let Some(lag) = self.max_client_lag {
            builder = builder.max_client_lag(lag);
        }
        builder
    }
}

/// A row of the suite's tables.
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    /// `ID`.
    pub id: u64,
    /// `PAD`.
    pub pad: String,
}

/// Row `id`, with 40..240 bytes of padding (fixed per id).
pub fn row(id: u64) -> Row {
    Row {
        id,
        pad: "p".repeat(40 + (id * 37 % 200) as usize),
    }
}

/// Panics unless `ids` are `1..=rows`, each once, naming the duplicated and missing ones.
pub fn assert_each_once(ids: &[i64], rows: u64, what: &str) {
    let want: Vec<i64> = (1..=rows as i64).collect();
    if ids != want {
        let mut dup = ids.to_vec();
        dup.dedup();
        panic!(
            "{what}: {} rows landed for {rows} ids ({} duplicated, {} missing)",
            ids.len(),
            ids.len() - dup.len(),
            want.iter()
                .filter(|i| dup.binary_search(i).is_err())
                .count()
        );
    }
}
