//! A continuous sensor feed from a real stream broker into Snowflake, exactly once by stream
//! sequence: the Kinesis → Lambda → Snowflake pipeline of the user's fourth system, on NATS
//! JetStream (streams, subjects as shards, increasing stream sequences).
//!
//! ```text
//!  publish ──► JetStream stream SENSORS, subjects sensors.<shard> (seq = stream sequence)
//!  (or any     │ ordered consumer per shard, from committed + 1 (no broker acks)
//!  publisher)  │
//!  consume ◄───┘ one append per broker batch, tokens = stream sequences
//!          ──► Channel <STREAM>_<shard> ──► SENSOR_READINGS (…, SHARD, STREAM_SEQ)
//!          ──► what cannot be a row: subject <STREAM>.dlq.<shard> (stream <STREAM>_DLQ)
//!  report  ──► the stream's sequences vs STREAM_SEQ, dead letters, row errors, latency
//! ```
//!
//! # What the consumer accepts
//!
//! Any publisher's readings, not only ours: the seed's format
//! `{"sensorId": 8, "currentTemperature": 59, "status": "WARN"}` has no time, so the event time
//! is the message's JetStream timestamp unless the payload has an RFC 3339 `eventTime` (as
//! `publish` sends). `sensorId` (an integer) and `currentTemperature` (a number; both may be
//! strings of one) are required; `status` may be missing or `null` (SQL NULL); other fields
//! are ignored. The rules are in `reading.rs`.
//!
//! # Bad records: dead letters, not crashes
//!
//! A message that cannot become a row (not JSON, not an object, an array, empty, a required
//! field missing or of the wrong type, a value the table's columns cannot hold: `columns.rs`)
//! never stops its shard. It is published, as it was, to
//! `<STREAM>.dlq.<shard>` — stored by the stream that captures that subject, else by
//! `<STREAM>_DLQ`, which `consume` creates (subjects `<STREAM>.dlq.>`, whatever the source
//! stream's subjects) — with headers `Snowpipe-Error` (the reason), `Snowpipe-Source-Stream`,
//! `Snowpipe-Source-Subject`, `Snowpipe-Source-Sequence`, `Snowpipe-Source-Time` and
//! `Nats-Msg-Id: <STREAM>:<seq>` (at the broker's limits, what does not fit is left out and
//! named: `dead_letter.rs`). It is logged once (`warn`, with the reason), counted in the
//! live line and the closing report, and the shard moves on.
//!
//! Each bad record is in the dead-letter stream **exactly once**, through crashes and
//! restarts: a shard's dead letters are stored one at a time, in order, each acknowledged
//! before anything after it is appended; a record read again after a restart (it is after the
//! committed token) is first looked up — the last dead letter of the shard already at or past
//! its sequence means it is there — and not published again; and `Nats-Msg-Id` makes the
//! broker drop a second copy within its duplicate window (2 minutes by default), for two
//! consumers of one shard at once. Only deleting a shard's last dead letter and reading the
//! record again more than the window later can add a second copy. See `dead_letter.rs`.
//!
//! The committed token moves past bad records: a row's token is the last sequence of the dead
//! letters that follow it in its append. Bad records after the last row (a shard whose only
//! new messages are bad) stay after the token until a row follows; a restart reads them again
//! and skips them as already dead-lettered, so `--until-idle` still ends (exit 0) and the last
//! line's `through` (every sequence up to it is committed or dead-lettered) is the shard's
//! last sequence.
//!
//! Rows the server rejects (row errors) still advance the committed token
//! (`ON_ERROR = CONTINUE`); the SDK reports them, and the closing report gives their count, the
//! first message and the sequences they are at or before. A value past the table's columns (a
//! `STATUS` longer than `VARCHAR(8)`, a number beyond its `NUMBER(p,0)`) never gets there: it
//! is a dead letter (`columns.rs`), since a rejected row is a message lost.
//!
//! `cargo run --example sensor_stream` runs all of it in one process with a private
//! `nats-server -js` and an embedded emulator; `publish` and `consume` run the parts as
//! separate processes. See `cli.rs` for options.
//!
//! Run one consumer per stream: when another process opens a shard's channel, this one gets
//! `OwnershipLost`, stops every shard at once (no reopen) and exits non-zero with one
//! `error: ownership lost: channel …` line naming the committed token.

mod bad_records;
pub mod broker;
pub mod cli;
pub mod columns;
use crate::common;
mod consume;
mod dead_letter;
mod event;
mod idle_board;
pub mod kinesis;
mod latency;
pub mod nats_server;
pub mod pipeline;
mod publish;
mod reading;
mod report;

use std::process::ExitCode;

use crate::sensor_stream::cli::{Cli, Command};

/// The `sensor_stream` command line.
pub fn main() -> ExitCode {
    common::main(|| {
        let cli = Cli::from_args(cli::arguments(std::env::args_os()));
        common::block_on(async {
            match cli.command {
                Some(Command::Publish(args)) => pipeline::publish_cmd(args).await,
                Some(Command::Consume(args)) if args.source == cli::Source::Kinesis => {
                    kinesis::pipeline::consume_cmd(args).await
                }
                Some(Command::Consume(args)) => pipeline::consume_cmd(args).await,
                Some(Command::Lambda(args)) => kinesis::pipeline::lambda_cmd(args).await,
                None if cli.run.source == cli::Source::Kinesis => {
                    kinesis::pipeline::run(cli.run).await
                }
                None => pipeline::run(cli.run).await,
            }
        })
    })
}
