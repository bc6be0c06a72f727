//! Client configuration: [`ClientBuilder`].
//!
//! PLACEHOLDER: settings, profile.json and env loading, validation land here.

use std::sync::Arc;

use crate::channel::ChannelSettings;
use crate::{Result, StreamingIngestClient};

/// Builds a [`StreamingIngestClient`].
#[derive(Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    channel: ChannelSettings,
}

impl ClientBuilder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the configuration and connects.
    ///
    /// # Errors
    /// Not implemented yet.
    ///
    /// # Cancellation
    /// Dropping the future abandons the connection attempt.
    pub async fn build(self) -> Result<StreamingIngestClient> {
        let _ = Arc::new(());
        let _ = self.channel;
        Err(crate::Error::config("builder", "not implemented yet"))
    }
}
