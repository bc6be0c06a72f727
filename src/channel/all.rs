//! Client-level operations over many channels (the official SDK's client calls): statuses
//! and committed tokens by name, drop by name, flush every open channel, wait until
//! everything appended so far is committed.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::cmd::Cmd;
use super::shared::{ChannelShared, WaiterGuard};
use super::status::ChannelStatus;
use super::{validate_channel_name, ChannelRuntime, ChannelSettings};
use crate::api::ChannelStatusWire;
use crate::transport::{ChannelPath, PipePath};
use crate::{Error, OffsetToken, Result};

/// A server-reported status as a [`ChannelStatus`] (client-side fields zero).
fn from_wire(w: ChannelStatusWire) -> ChannelStatus {
    ChannelStatus {
        committed_offset_token: w.last_committed_offset_token.map(OffsetToken::from_wire),
        status_code: w.channel_status_code,
        rows_inserted: w.rows_inserted.unwrap_or(0),
        rows_parsed: w.rows_parsed.unwrap_or(0),
        rows_error_count: w.rows_error_count.unwrap_or(0),
        last_error_message: w.last_error_message,
        last_error_offset_upper_bound: w.last_error_offset_upper_bound.map(OffsetToken::from_wire),
        last_error_timestamp_ms: w.last_error_timestamp_ms,
        ..ChannelStatus::default()
    }
}

impl ChannelRuntime {
    /// The client's channel settings (elastic channels take theirs from these too).
    pub(crate) fn settings(&self) -> &ChannelSettings {
        &self.inner.settings
    }

    /// The client-wide memory budget (elastic channels charge it too).
    pub(crate) fn budget(&self) -> super::budget::Budget {
        self.inner.budget.clone()
    }

    /// The client's pool of row and body buffers (elastic channels use it too).
    pub(crate) fn buffers(&self) -> std::sync::Arc<super::pool::BufferPool> {
        std::sync::Arc::clone(&self.inner.buffers)
    }

    /// The client's compressors (elastic channels use them too).
    pub(crate) fn compressors(&self) -> std::sync::Arc<super::compress::CompressorPool> {
        std::sync::Arc::clone(&self.inner.compressor_pool)
    }

    /// The REST layer.
    pub(crate) fn api(&self) -> std::sync::Arc<dyn crate::transport::IngestApi> {
        std::sync::Arc::clone(&self.inner.api)
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
            c.actor.lifecycle.borrow().is_open()
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
            .map(OffsetToken::from_wire))
    }

    /// Flushes every open channel; returns each one's last sent offset token.
    pub(crate) async fn flush_all(
        &self,
    ) -> Result<Vec<(std::sync::Arc<ChannelShared>, Option<OffsetToken>)>> {
        let flushes = self
            .inner
            .registry
            .live()
            .into_iter()
            .map(|(shared, tx)| async move {
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
                    let _waiting = WaiterGuard::new(&shared);
                    self.inner.poller.wake();
                    let mut committed = shared.polled.committed.subscribe();
                    let mut lifecycle = shared.actor.lifecycle.subscribe();
                    let outcome = tokio::select! {
                        r = committed.wait_for(|c| c.as_ref().is_some_and(|c| c.reaches(&token))) => {
                            r.map(|_| ()).map_err(|_| Error::shutdown("channel"))
                        }
                        _ = lifecycle.wait_for(|l| !l.is_open()) => {
                            Err(shared.check_open().err().unwrap_or_else(|| {
                                Error::shutdown(format!("channel {}", shared.path.channel))
                            }))
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
