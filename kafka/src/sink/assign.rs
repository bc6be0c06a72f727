//! An assignment: the partitions' channels opened concurrently (at most
//! [`OPEN_CONCURRENCY`] at once), each partition's worker started as its channel opens, and
//! each partition's start offset (its channel's committed token + 1) answered to the consumer
//! thread, which seeks there. A channel that cannot be opened fails the run
//! ([`Outcome::fail`](crate::sink::state::Outcome::fail)); the partitions already opened go on
//! until the hand-over that follows.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::StreamExt as _;
use rdkafka::Offset;

use crate::rows::TopicPartition;
use crate::sink::open::OPEN_CONCURRENCY;
use crate::sink::state::Sink;
use crate::source::router::Inbox;

impl Sink {
    /// Opens the channels of `parts` and starts their workers. Returns where each partition
    /// whose channel opened starts.
    pub(super) async fn assign(
        &mut self,
        parts: Vec<(TopicPartition, Inbox)>,
    ) -> HashMap<TopicPartition, Offset> {
        self.health.joined();
        self.health.opening(true);
        let started = Instant::now();
        let n = parts.len();
        // Opened concurrently; each partition's worker starts as its channel opens.
        let opener = &self.opener;
        let mut opening = futures_util::stream::iter(parts)
            .map(|(part, inbox)| async move {
                let opened = opener.open(&part).await;
                (part, inbox, opened)
            })
            .buffer_unordered(OPEN_CONCURRENCY);
        let mut starts = HashMap::new();
        while let Some((part, inbox, opened)) = opening.next().await {
            let (channel, check) = match opened {
                Ok(c) => c,
                Err(e) => {
                    self.outcome.fail(e);
                    continue;
                }
            };
            starts.insert(part.clone(), opener.start_of(&channel));
            self.workers
                .start(part, inbox, channel, check, &self.metrics);
        }
        drop(opening);
        if n > 0 {
            tracing::info!(
                partitions = n,
                elapsed = ?started.elapsed(),
                "assignment ready: channels open, partitions consuming"
            );
        }
        self.metrics.assigned(self.workers.len());
        self.health.opening(false);
        // And again once they are open: opening may take longer than the idle time, and the
        // partitions have read nothing yet.
        self.idle.restart();
        starts
    }
}
