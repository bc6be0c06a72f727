//! The deprecated [`Channel::append_record_batch`] and
//! [`Channel::append_record_batch_with_tokens`]: thin shims over [`Channel::append`] with
//! [`Rows::arrow`] (`docs/MIGRATING.md`).

use std::future::Future;

use arrow_array::RecordBatch;

use super::handle::Channel;
use super::input::Positions;
use crate::rows::Rows;
use crate::{OffsetToken, Result};

impl Channel {
    /// Appends the rows of an Arrow record batch with optional start and end offset tokens.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.2.0",
        note = "use Channel::append(Rows::arrow(batch.clone()), Positions::span(start..=end))"
    )]
    pub fn append_record_batch<'a>(
        &'a self,
        batch: &'a RecordBatch,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        self.append(
            Rows::arrow(batch.clone()),
            Positions::from_span(start_offset_token, end_offset_token),
        )
    }

    /// Appends the rows of an Arrow record batch each with its own numeric offset token.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.2.0",
        note = "use Channel::append(Rows::arrow(batch.clone()), Positions::numbered(tokens)?)"
    )]
    // Not `async fn`: the signature states that the future is `Send`.
    #[allow(clippy::manual_async_fn)]
    pub fn append_record_batch_with_tokens<'a, I>(
        &'a self,
        batch: &'a RecordBatch,
        tokens: I,
    ) -> impl Future<Output = Result<()>> + Send + 'a
    where
        I: IntoIterator<Item = u64> + Send + 'a,
    {
        async move {
            let positions = Positions::numbered(tokens)?;
            self.append(Rows::arrow(batch.clone()), positions).await
        }
    }
}
