//! Snowpipe Streaming client for Rust.
//!
//! (Crate documentation is filled in as the pieces land.)
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(
    rustdoc::broken_intra_doc_links,
    rustdoc::private_intra_doc_links,
    rustdoc::bare_urls,
    rust_2018_idioms,
    unsafe_code
)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::future_not_send,
    clippy::clone_on_ref_ptr,
    clippy::use_self,
    clippy::explicit_iter_loop
)]

pub(crate) mod api;
mod auth;
pub mod channel;
mod client;
mod config;
mod error;
mod http;
mod offset;
mod rest;
#[cfg(test)]
mod test_support;
pub(crate) mod transport;

pub use auth::AuthorizationType;
pub use channel::Channel;
pub use channel::OpenChannelOptions;
pub use client::{ClientBuilder, StreamingIngestClient};
pub use config::{MAX_CLIENT_LAG, MAX_REQUEST_BYTES, MIN_CLIENT_LAG, MIN_REQUEST_BYTES};
pub use error::{Error, Result, ServerError, TransportError, TransportErrorKind};
pub use http::retry::{Jitter, RetryConfig};
pub use offset::OffsetToken;
pub use transport::Compression;
