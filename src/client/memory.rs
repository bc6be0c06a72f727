//! [`MemoryReservation`]: part of the client's one memory budget held by the application, for
//! memory it keeps on the client's behalf outside any channel (rows being decoded for it), so
//! that `memory_budget_bytes` bounds both together.

use crate::pipeline::budget::BudgetBytes;
use crate::Result;

use super::StreamingIngestClient;

/// Bytes of the client's memory budget set aside for the application
/// ([`StreamingIngestClient::reserve_memory`]); the channels buffer within what is left, and
/// the bytes go back to them when this is dropped.
#[derive(Debug)]
pub struct MemoryReservation {
    bytes: BudgetBytes,
}

impl MemoryReservation {
    /// The bytes reserved.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is reserved.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == 0
    }
}

impl StreamingIngestClient {
    /// The most [`reserve_memory`](Self::reserve_memory) sets aside: half of what the
    /// memory budget holds for rows (the budget less the share kept for pooled buffers).
    pub fn max_memory_reservation(&self) -> usize {
        self.core.state.budget.total() / 2
    }

    /// Takes `bytes` of the client-wide memory budget for memory the application holds on
    /// the client's behalf (for example rows being decoded before they are appended), so the
    /// one `memory_budget_bytes` bounds the channels' buffers and it together: the channels
    /// then buffer within what is left (appends wait, or `try_append` is refused, sooner)
    /// until the reservation is dropped.
    ///
    /// At most half of what the budget holds for rows can be reserved, so the channels keep
    /// room for a request or two; take it at the start, before rows are appended.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when `bytes` is more than
    /// half of what the budget holds for rows (raise `memory_budget_bytes` or reserve less);
    /// [`Error::Backpressure`](crate::Error::Backpressure) when that much is not free now.
    pub fn reserve_memory(&self, bytes: usize) -> Result<MemoryReservation> {
        let budget = &self.core.state.budget;
        let most = self.max_memory_reservation();
        if bytes > most {
            return Err(crate::Error::invalid_argument(
                "bytes",
                format!(
                    "cannot reserve {bytes} bytes of the memory budget: at most {most} (half of \
                     what it holds for rows) can be set aside; raise memory_budget_bytes or \
                     reserve less"
                ),
            ));
        }
        Ok(MemoryReservation {
            bytes: budget.try_acquire(bytes)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::channel::testing::FakeApi;
    use crate::settings::ChannelSettings;
    use crate::{Error, StreamingIngestClient};

    #[test]
    fn a_reservation_holds_budget_until_dropped_and_at_most_half_is_reserved() {
        let settings = ChannelSettings {
            memory_budget_bytes: 32 << 20,
            ..ChannelSettings::default()
        };
        let client = StreamingIngestClient::from_parts(FakeApi::new() as _, settings);
        let budget = &client.core.state.budget;
        let (total, free) = (budget.total(), budget.available());
        assert!(
            total < 32 << 20,
            "the pooled buffers' share is set aside: {total}"
        );
        assert_eq!(client.max_memory_reservation(), total / 2);
        let half = client.reserve_memory(total / 2).unwrap();
        assert_eq!(
            (half.len(), budget.available()),
            (total / 2, free - total / 2)
        );
        let more = client.reserve_memory(total / 2 + 1).unwrap_err();
        assert!(matches!(more, Error::InvalidArgument { .. }), "{more}");
        assert!(more.to_string().contains("memory_budget_bytes"), "{more}");
        drop(half);
        assert_eq!(budget.available(), free);
    }
}
