//! The "Automated Intelligence" e-commerce streamer (built on the official Python SDK in the
//! original), rebuilt in Rust on `snowpipe_streaming`: synthetic orders and order items
//! through two channels per instance, `order_<id>` / `item_<id>` offset tokens, resumable and
//! exactly once without a queue, scaled out by partitioning customers among instances.
//!
//! ```text
//!  instance i (task or process) ── generator(seed, i, id) ──► orders_channel_<i>      ──► ORDERS
//!                                                          └─► order_items_channel_<i> ──► ORDER_ITEMS
//!  report ──► every ORDER_ID / ORDER_ITEM_ID once, items match their order, revenue by segment
//! ```
//!
//! `cargo run --example ecommerce` runs it against an embedded emulator; `stream`, `report`
//! and `emulator` run the parts as separate processes. See `cli.rs` for options.
//!
//! Run one writer per instance: when another process opens an instance's channel, this one
//! gets `OwnershipLost` and stops at once (no reopen), its other channels are closed, and it
//! exits non-zero with one `error: ownership lost: channel …` line naming the committed token.

mod catalog;
mod cli;
use crate::common;
#[cfg(test)]
mod compat;
mod config;
mod generator;
mod progress;
mod report;
mod run;
mod streamer;

use std::process::ExitCode;

use crate::ecommerce::cli::{Cli, Command};

/// The `ecommerce` command line.
pub fn main() -> ExitCode {
    common::main(|| {
        let cli = Cli::from_args(std::env::args_os().collect());
        match cli.command {
            Some(Command::Stream(args)) => common::block_on(run::stream(args)),
            Some(Command::Report(args)) => run::report_command(&args),
            Some(Command::Emulator(args)) => common::block_on(run::emulator(args)),
            None => common::block_on(run::run(cli.run)),
        }
    })
}
