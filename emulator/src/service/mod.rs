//! The protocol operations, independent of HTTP: the shared state (`state`), channel
//! lifecycle (`lifecycle`), appends and commits (`append`), request bodies (`body`), schema
//! evolution (`evolve`) and the file registrations of the official SDK's file mode (`files`).

use std::sync::Arc;

use bytes::Bytes;

use crate::base::api_error::ApiError;
use crate::channels::{ChannelKey, Target};
use crate::storage::{self};

mod append;
mod body;
mod classic;
mod commit;
mod ddl;
mod dropped;
mod evolve;
mod files;
mod lifecycle;
mod memory;
pub(crate) mod offsets;
mod state;
mod status;
#[cfg(test)]
mod test_channel;

use body::{check_row_count, sink_count};
pub(crate) use body::{decompress, lines, Decoded};
pub(crate) use memory::refused;
pub(crate) use state::{Model, Shared};
pub use status::ChannelTotals;
pub(crate) use status::STATUS_PAGE_CHANNELS;

fn no_channel(key: &ChannelKey) -> ApiError {
    ApiError::new(
        404,
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        format!(
            "channel {} does not exist on pipe {}.{}.{}; open it first (PUT …/channels/{{channel}})",
            key.channel, key.database, key.schema, key.pipe
        ),
    )
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
        format!("storage error: {e}"),
    )
}

/// A decoded append request.
pub(crate) struct AppendRequest {
    pub continuation_token: Option<String>,
    pub start_offset_token: Option<String>,
    pub end_offset_token: Option<String>,
    pub content_encoding: Option<String>,
    pub body: Bytes,
    /// The body's charge to the memory budget while it was read (`http::read_body`); the
    /// append's decoding takes it over.
    pub body_charge: Option<crate::base::pending_budget::Reservation>,
    /// `x-snowflake-uncompressed-content-length`, else the body's length.
    pub uncompressed_len: usize,
}
