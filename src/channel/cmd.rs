//! The commands a channel's handle (and the client-level calls) send its actor: one file of
//! its own, so the registry can hold a channel's sender without depending on the actor.

use tokio::sync::oneshot;

use crate::pipeline::batch::Chunk;
use crate::{OffsetToken, Result};

/// Commands from the handle.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Boxed: a mailbox preallocates its slots in blocks of 32, so the largest command sets
    /// what every channel's mailbox holds before it is used (112 bytes a slot unboxed).
    Append(Box<Chunk>),
    /// Resolves when every row accepted before it has been sent, with the last end token.
    Flush(oneshot::Sender<Result<Option<OffsetToken>>>),
    /// Drains and exits.
    Close(oneshot::Sender<Result<()>>),
    /// Reopens on the server, discarding everything buffered; returns the committed token.
    Reopen(oneshot::Sender<Result<Option<OffsetToken>>>),
}
