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
pub mod channel;
mod client;
mod config;
mod error;
mod offset;
pub(crate) mod transport;

pub use channel::Channel;
pub use channel::OpenChannelOptions;
pub use client::{ClientBuilder, StreamingIngestClient};
pub use error::{Error, Result};
pub use offset::OffsetToken;
pub use transport::Compression;
