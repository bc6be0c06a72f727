//! An async Rust client for Snowflake **Snowpipe Streaming** (the high-performance
//! architecture's REST API): stream rows into Snowflake tables with low latency and
//! exactly-once delivery through offset tokens.
//!
//! # Quickstart
//!
//! ```no_run
//! use std::time::Duration;
//! use snowpipe_streaming::{StreamingIngestClient, Result};
//!
//! # async fn run() -> Result<()> {
//! let client = StreamingIngestClient::builder()
//!     .account("MYORG-MYACCOUNT")            // https://myorg-myaccount.snowflakecomputing.com
//!     .user("INGEST_USER")
//!     .private_key_file("rsa_key.p8")        // PKCS#8 PEM, plain or encrypted
//!     .role("INGEST_ROLE")
//!     .max_client_lag(Duration::from_millis(500))
//!     .build()
//!     .await?;                               // validates, discovers the ingest host, gets a token
//! let channel = client.pipe("DB", "SCHEMA", "PIPE").open_channel("channel-1").await?;
//! # let _ = channel;
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! Settings can also come from the environment ([`ClientBuilder::from_env`]:
//! `SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_USER`, `SNOWFLAKE_URL`, `SNOWFLAKE_PRIVATE_KEY` or
//! `SNOWFLAKE_PRIVATE_KEY_FILE`, `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`, `SNOWFLAKE_ROLE`) or from
//! the official SDK's `profile.json` ([`ClientBuilder::from_profile_file`]); setters called
//! afterwards override them.
//!
//! # Connection and authentication
//!
//! [`ClientBuilder::build`] checks every setting (an invalid one is reported as
//! [`Error::Config`] naming it), loads the private key, then calls the account host: `GET
//! /v2/streaming/hostname` finds the ingest host, and `POST /oauth/token` exchanges a key-pair
//! JWT (or a programmatic access token) for a *scoped token*. The scoped token authenticates
//! every channel call. It is cached, refreshed five minutes before it expires, and refreshed
//! once — shared by all concurrent callers — when Snowflake answers HTTP 401.
//!
//! TLS uses rustls with the built-in and OS root certificates, plus the file named by
//! `SSL_CERT_FILE` and any [`ClientBuilder::root_ca_pem`]. Plain `http://` is used only when the
//! URL says so (for the local emulator). A proxy can be set per client
//! ([`ClientBuilder::proxy`]); otherwise `HTTPS_PROXY`/`NO_PROXY` apply.
//!
//! # Errors and retries
//!
//! Every fallible call returns [`Error`], whose variants say what to do next (fix a setting,
//! reopen a channel, retry later...); [`Error::is_retryable`] answers the common question.
//! Requests are retried inside the client on HTTP 429/500/502/503/504, on connection
//! failures, on a non-JSON 404 (a proxy's page) and, for opening a channel, on 409
//! `ERR_OPEN_CHANNEL_IN_PROGRESS` / `ERR_CHANNEL_HAS_UNCOMMITTED_DATA` — with exponential
//! backoff and jitter, bounded by attempts and a time budget ([`RetryConfig`]), honouring
//! `Retry-After`. All attempts of one call share a `requestId`; `retryCount` counts them.
//!
//! Appending rows is **not idempotent** on the server. An append that timed out or lost its
//! connection after being sent is never re-sent blindly: the channel reopens and replays the
//! rows after the last committed offset token, so delivery stays exactly-once as long as
//! offset tokens increase. An append retried after a 429 or 5xx carries `retryCount > 0`; if
//! the server had in fact applied the first attempt, those rows could be stored twice (this is
//! the behaviour Snowflake documents for its own SDK).
//!
//! # Channels, commits and exactly-once delivery
//!
//! A [`Channel`] buffers appended rows and sends them in order, one request at a time, every
//! `max_client_lag` or whenever a request is full; [`Channel::flush`] and [`Channel::close`]
//! send at once. Appends wait when the client-wide memory budget is full (`try_append`
//! return [`Error::Backpressure`] instead). One poller per client tracks what the server has
//! committed ([`Channel::latest_committed_offset_token`], [`Channel::wait_for_commit`],
//! [`Channel::watch_committed`]) and reports rows the server rejected
//! ([`Channel::events`]). When a channel is invalidated it reopens itself and replays exactly
//! the batches that were not committed. The [`channel`] module documents all of this, the
//! exactly-once recipe (resume after the committed token, strictly increasing tokens, replay
//! after [`Channel::reopen`]) and what dropping a channel without closing it does.
//!
//! [Delivery guarantees](#delivery-guarantees-and-failure-handling), below, states them in one
//! place: what is retried and for how long, what invalidates a channel and what the
//! application must do then, and the faults the chaos suite injects to check all of it.
//! [Metrics](#metrics) lists what the client reports through the `metrics` crate and what to
//! read from them.
//!
//! # SQL API (feature `sql`)
//!
//! With the `sql` feature, `ClientBuilder::build_sql` gives a `sql::SqlClient` that runs
//! statements through Snowflake's SQL API with the same settings and credentials — to check
//! what a pipeline landed. The emulator answers it for read-only `SELECT`s.
//!
//! # Secrets
//!
//! Private keys, passphrases, tokens and proxy credentials never appear in `Debug` or
//! `Display` output, in errors or in logs. The public-key fingerprint (not a secret) is shown
//! in authentication errors to help match it with `DESC USER`.
#![doc = ""]
#![doc = include_str!("../docs/GUARANTEES.md")]
#![doc = ""]
#![doc = include_str!("../docs/METRICS.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The workspace's lints (`[workspace.lints]`: unsafe code, `unreachable_pub`, Rust 2018 idioms,
// broken doc links) and the SDK's own:
#![deny(rustdoc::private_intra_doc_links, rustdoc::bare_urls)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::future_not_send,
    clippy::clone_on_ref_ptr,
    clippy::use_self,
    clippy::explicit_iter_loop
)]

pub(crate) mod api;
#[cfg(feature = "arrow")]
pub mod arrow;
mod auth;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals;
pub mod binary;
pub mod channel;
pub(crate) mod client;
mod client_state;
mod compression;
mod config;
pub mod duration;
mod elastic;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
mod error;
mod http;
mod json;
mod lanes;
#[cfg(test)]
mod module_graph_tests;
mod offset;
mod pipeline;
mod rest;
mod rows;
mod secret;
mod settings;
#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub mod sql;
mod sync;
#[cfg(test)]
mod test_support;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
pub(crate) mod transport;
mod wire_time;

pub use auth::AuthorizationType;
pub use channel::{
    Channel, ChannelStatus, CloseOptions, RowErrorEvent, RowErrorSummary, ServerChannelStatus,
};
pub use channel::{OpenChannelOptions, Positions, RawRows, RowErrors, Rows};
pub use client::{MemoryReservation, Pipe, StreamingIngestClient};
pub use compression::Compression;
pub use config::ClientBuilder;
pub use config::ConfigKey;
pub use elastic::{ElasticChannel, ElasticEvent};
pub use error::{Error, Result, ServerError, TransportError, TransportErrorKind};
pub use http::is_loopback;
pub use http::retry::{Jitter, RetryConfig};
pub use lanes::{LaneRouting, LaneStream, OpenLanesOptions};
pub use offset::OffsetToken;
pub use transport::{default_pipe_name, default_pipe_table};

/// The README's code blocks, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
