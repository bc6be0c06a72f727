//! A continuous sensor feed from a real stream broker into Snowflake, exactly once by stream
//! sequence: the Kinesis → Lambda → Snowflake pipeline of the user's fourth system, on NATS
//! JetStream (streams, subjects as shards, increasing stream sequences).
//!
//! ```text
//!  publish ──► JetStream stream SENSORS, subjects sensors.<shard> (seq = stream sequence)
//!                  │ ordered consumer per shard, from committed + 1 (no broker acks)
//!  consume ◄───────┘ one append per broker batch, tokens = stream sequences
//!          ──► Channel <STREAM>_<shard> ──► SENSOR_READINGS (…, SHARD, STREAM_SEQ)
//!  report  ──► the stream's sequences vs STREAM_SEQ, latency p50/p99, throughput
//! ```
//!
//! `cargo run --example sensor_stream` runs all of it in one process with a private
//! `nats-server -js` and an embedded emulator; `publish` and `consume` run the parts as
//! separate processes. See `cli.rs` for options.
//!
//! Run one consumer per stream: when another process opens a shard's channel, this one gets
//! `OwnershipLost`, stops every shard at once (no reopen) and exits non-zero with one
//! `error: ownership lost: channel …` line naming the committed token.

mod broker;
mod cli;
#[path = "../common/mod.rs"]
mod common;
mod consume;
mod event;
mod latency;
mod nats_server;
mod pipeline;
mod publish;
mod report;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            match cli.command {
                Some(Command::Publish(args)) => pipeline::publish_cmd(args).await,
                Some(Command::Consume(args)) => pipeline::consume_cmd(args).await,
                None => pipeline::run(cli.run).await,
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            common::print_error(&e);
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}
