//! Client-level operations over many channels (the official SDK's client calls): statuses
//! and committed tokens by name, drop by name, flush every open channel, wait until
//! everything appended so far is committed.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::actor::Cmd;
use super::shared::{ChannelShared, State};
use super::status::ChannelStatus;
use super::{validate_channel_name, ChannelRuntime};
use crate::api::ChannelStatusWire;
use crate::sync::lock;
use crate::transport::{ChannelPath, PipePath};
use crate::{Error, OffsetToken, Result};

/// Every opened channel's shared state and (weak) command sender, by channel id.
pub(super) type Senders = HashMap<
    u64,
    (
        std::sync::Arc<ChannelShared>,
        tokio::sync::mpsc::WeakSender<Cmd>,
    ),
>;

/// A server-reported status as a [`ChannelStatus`] (client-side fields zero).
fn from_wire(w: ChannelStatusWire) -> ChannelStatus {
    ChannelStatus {
        committed_offset_token: w.last_committed_offset_token.map(OffsetToken::from),
        status_code: w.channel_status_code,
        rows_inserted: w.rows_inserted.unwrap_or(0),
        rows_parsed: w.rows_parsed.unwrap_or(0),
        rows_error_count: w.rows_error_count.unwrap_or(0),
        last_error_message: w.last_error_message,
        last_error_offset_upper_bound: w.last_error_offset_upper_bound.map(OffsetToken::from),
        last_error_timestamp_ms: w.last_error_timestamp_ms,
        ..ChannelStatus::default()
    }
}

impl ChannelRuntime {
    /// The settings an elastic channel shares with named channels.
    pub(crate) fn elastic_settings(&self) -> crate::elastic::ElasticSettings {
        let s = &self.inner.settings;
        crate::elastic::ElasticSettings {
            max_client_lag: s.max_client_lag,
            batch_cap: s.batch_cap(),
            compression: s.compression,
            zstd_level: s.zstd_level,
            budget: self.inner.budget.clone(),
        }
    }

    /// The REST layer.
    pub(crate) fn api(&self) -> std::sync::Arc<dyn crate::transport::IngestApi> {
        std::sync::Arc::clone(&self.inner.api)
    }

    /// The live channels of this client with their command senders.
    fn live(
        &self,
    ) -> Vec<(
        std::sync::Arc<ChannelShared>,
        tokio::sync::mpsc::Sender<Cmd>,
    )> {
        let mut senders = lock(&self.inner.senders);
        senders.retain(|_, (_, tx)| tx.strong_count() > 0);
        senders
            .values()
            .filter_map(|(shared, tx)| Some((std::sync::Arc::clone(shared), tx.upgrade()?)))
            .filter(|(shared, _)| matches!(*shared.actor.state.borrow(), State::Open))
            .collect()
    }

    /// Registers a channel's command sender (see [`live`](Self::live)).
    pub(crate) fn track(
        &self,
        shared: &std::sync::Arc<ChannelShared>,
        tx: &tokio::sync::mpsc::Sender<Cmd>,
    ) {
        lock(&self.inner.senders)
            .insert(shared.id, (std::sync::Arc::clone(shared), tx.downgrade()));
    }

    /// Server statuses of `names` on `pipe` (bulk, at most 100 names per request). Channels
    /// the server does not know are absent.
    pub(crate) async fn statuses(
        &self,
        pipe: &PipePath,
        names: &[String],
    ) -> Result<HashMap<String, ChannelStatus>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let found = self.inner.api.bulk_channel_status(pipe, names).await?;
        Ok(found
            .into_iter()
            .map(|(name, w)| (name, from_wire(w)))
            .collect())
    }

    /// Drops channel `path` on the server; refused while it is open in this client.
    pub(crate) async fn drop_by_name(&self, path: ChannelPath) -> Result<Option<OffsetToken>> {
        validate_channel_name(&path.channel)?;
        let open = self.inner.registry.get(&path).is_some_and(|c| {
            matches!(*c.actor.state.borrow(), State::Open)
                // `close()` consumes the handle: a closed channel's handle is gone.
                && !c.controls.handle_dropped.is_cancelled()
        });
        if open {
            return Err(Error::invalid_argument(
                "channel",
                format!(
                    "channel {path} is open in this client; use Channel::drop_channel, or close \
                     it first"
                ),
            ));
        }
        Ok(self
            .inner
            .api
            .drop_channel(&path)
            .await?
            .map(OffsetToken::from))
    }

    /// Flushes every open channel; returns each one's last sent offset token.
    pub(crate) async fn flush_all(
        &self,
    ) -> Result<Vec<(std::sync::Arc<ChannelShared>, Option<OffsetToken>)>> {
        let flushes = self.live().into_iter().map(|(shared, tx)| async move {
            let (reply, rx) = oneshot::channel();
            let closed = || Error::shutdown(format!("channel {}", shared.path.channel));
            if tx.send(Cmd::Flush(reply)).await.is_err() {
                return Err(closed());
            }
            let token = rx.await.map_err(|_| closed())??;
            Ok((shared, token))
        });
        join_all(flushes).await.into_iter().collect()
    }

    /// Flushes every open channel and waits until each reports its last sent offset token
    /// committed, for at most `timeout` in all.
    pub(crate) async fn wait_for_all_committed(&self, timeout: Duration) -> Result<()> {
        let work = async {
            let flushed = self.flush_all().await?;
            self.inner.poller.wake();
            let waits = flushed.into_iter().filter_map(|(shared, token)| {
                let token = token?;
                Some(async move {
                    let _waiting = super::handle::WaiterGuard::new(&shared);
                    self.inner.poller.wake();
                    let mut committed = shared.polled.committed.subscribe();
                    let mut state = shared.actor.state.subscribe();
                    let outcome = tokio::select! {
                        r = committed.wait_for(|c| c.as_ref().is_some_and(|c| c.reaches(&token))) => {
                            r.map(|_| ()).map_err(|_| Error::shutdown("channel"))
                        }
                        _ = state.wait_for(|s| !matches!(s, State::Open)) => {
                            Err(match &*shared.actor.state.borrow() {
                                State::Failed(f) => shared.invalidated(f),
                                _ => Error::shutdown(format!("channel {}", shared.path.channel)),
                            })
                        }
                    };
                    outcome
                })
            });
            join_all(waits)
                .await
                .into_iter()
                .collect::<Result<Vec<()>>>()?;
            Ok(())
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Timeout {
                operation: "commit of everything appended",
                waited: timeout,
            })?
    }
}
