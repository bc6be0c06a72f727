//! The client-level calls that act on channels by name (the official SDK's client calls):
//! statuses and committed tokens by name, drop by name. Flushing and waiting for every open
//! channel are on the client (`client/mod.rs`).

use std::collections::HashMap;

use super::core::ClientCore;
use crate::channel::{validate_channel_name, ServerChannelStatus};
use crate::transport::{ChannelPath, PipePath};
use crate::{Error, OffsetToken, Result};

impl ClientCore {
    /// Server statuses of `names` on `pipe` (bulk, at most 100 names per request). Channels
    /// the server does not know are absent.
    pub(crate) async fn statuses(
        &self,
        pipe: &PipePath,
        names: &[String],
    ) -> Result<HashMap<String, ServerChannelStatus>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let found = self.state.api.bulk_channel_status(pipe, names).await?;
        Ok(found
            .into_iter()
            .map(|(name, w)| (name, ServerChannelStatus::from_wire(w)))
            .collect())
    }

    /// Drops channel `path` on the server; refused while it is open in this client.
    pub(crate) async fn drop_by_name(&self, path: ChannelPath) -> Result<Option<OffsetToken>> {
        validate_channel_name(&path.channel)?;
        if self.channels.is_open(&path) {
            return Err(Error::invalid_argument(
                "channel",
                format!(
                    "channel {path} is open in this client; use Channel::drop_channel, or close \
                     it first"
                ),
            ));
        }
        Ok(self
            .state
            .api
            .drop_channel(&path)
            .await?
            .map(OffsetToken::from_wire))
    }
}
