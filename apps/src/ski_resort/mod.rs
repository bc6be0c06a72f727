//! The Snowflake quickstart "Build a Streaming Data Pipeline in Python" (ski resort), rebuilt
//! in Rust on `snowpipe_streaming`, exactly once across crashes.
//!
//! ```text
//!  generate ──► queue.sqlite (one table per target, id = offset token, ledger)
//!                   │
//!  stream   ◄───────┘ rows after the committed token ──► Channel per pipe ──► Snowflake
//!           ──► delete rows up to the committed token
//!  report   ──► ledger vs landed tables + dashboard views
//!  dashboard──► the dashboard views as SVG charts in one HTML page (through the SQL API)
//! ```
//!
//! `cargo run --example ski_resort` runs all of it in one process against an embedded
//! emulator; the subcommands run the parts as separate processes. See `cli.rs` for options.
//!
//! Run one streamer per queue: when another process opens one of the channels, this one gets
//! `OwnershipLost`, stops all three tables at once (no reopen) and exits non-zero with one
//! `error: ownership lost: channel …` line naming the committed token.
//!
//! A bad record never wedges the pipeline: a queued record that cannot become a
//! row — its `json` not text, empty, not JSON, not an object, or holding a value its column's
//! type refuses (`validate.rs`) — is moved to the `dead_letters` table of the queue file
//! (table, id, txid, the raw json unchanged, reason, time) in the same transaction that removes
//! it from the queue, so it is there exactly once through any crash; it is logged once with
//! the reason, counted in the live line (`dead=`) and the closing report, and streaming goes
//! on. Rows the server rejects (row errors) are in the closing report with their count, first
//! message and id range. The reconciliation counts dead letters (`DEAD_LETTERED`): records
//! from other writers are not in the ledger's `generated`, ones our generator wrote are, and
//! both reconcile exactly. `apps/tests/it/ski_resort_bad_records.rs` checks this from the producer's
//! side, with SIGKILLs.

mod bad_records;
mod catalog;
mod charts;
mod cli;
use crate::common;
use crate::common::say::say;
#[cfg(test)]
mod compat;
mod dashboard;
pub mod embedded;
#[cfg(test)]
mod fake;
mod generator;
mod model;
mod pipeline;
mod progress;
mod queue;
mod report;
mod streamer;
mod validate;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::ski_resort::cli::{Cli, Command, GenerateArgs, ReportArgs};
use crate::ski_resort::model::Table;
use crate::ski_resort::queue::Queue;

/// The `ski_resort` command line.
pub fn main() -> ExitCode {
    common::main(|| {
        let cli = Cli::from_args(std::env::args_os().collect());
        match cli.command {
            Some(Command::Generate(args)) => generate(&args),
            Some(Command::Report(args)) => common::block_on(report(&args)),
            Some(Command::Stream(args)) => common::block_on(pipeline::stream(args)),
            Some(Command::Dashboard(args)) => common::block_on(dashboard::run(args)),
            Some(Command::Emulator(args)) => common::block_on(embedded::emulator(args)),
            None => common::block_on(pipeline::run(cli.run)),
        }
    })
}

/// `ski_resort generate`.
fn generate(args: &GenerateArgs) -> Result<()> {
    let opts = args.gen.options(10_000)?;
    let mut queue = Queue::open(&args.queue)?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // First Ctrl-C or SIGTERM: finish the current batch and stop; rows enqueued so far
        // are kept.
        let _ = ctrlc_flag(move || stop.store(true, std::sync::atomic::Ordering::Relaxed));
    }
    if !args.quiet {
        say!(
            "generating {} into {} (seed {}, {} events/s)",
            match opts.limit {
                generator::Limit::Events(n) => format!("{n} events"),
                generator::Limit::Duration(d) => format!("for {}", humantime::format_duration(d)),
            },
            args.queue.display(),
            opts.config.seed,
            if opts.rate > 0.0 {
                opts.rate.to_string()
            } else {
                "max".into()
            },
        );
    }
    let counts = generator::produce(&mut queue, &opts, &stop)?;
    let generated: serde_json::Map<String, serde_json::Value> = Table::ALL
        .iter()
        .map(|t| (t.name().to_string(), counts[t.index()].into()))
        .collect();
    println!("{}", serde_json::json!({ "generated": generated }));
    Ok(())
}

/// Calls `on_signal` on Ctrl-C or SIGTERM ([`common::terminated`]), listened for by a tiny
/// tokio runtime on its own thread, so the blocking generator can stay synchronous. The
/// handlers are installed before this returns.
fn ctrlc_flag(on_signal: impl FnOnce() + Send + 'static) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = {
        let _runtime = rt.enter();
        common::terminated()
    };
    std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            rt.block_on(stop);
            on_signal();
        })?;
    Ok(())
}

/// `ski_resort report`: the emulator's file with `--data-dir`, else the SQL API of
/// `--profile` or the SNOWFLAKE_* variables.
async fn report(args: &ReportArgs) -> Result<()> {
    let queue = Queue::open_read_only(&args.queue)?;
    let ledger = queue.ledger()?;
    let source: Box<dyn report::SqlSource> = match &args.data_dir {
        Some(dir) => Box::new(embedded::open_emulator_db(dir)?),
        None => Box::new(pipeline::report_sql(common::builder_from(
            args.profile.as_deref(),
        )?)?),
    };
    let recs = report::reconcile(source.as_ref(), &ledger).await?;
    if args.json {
        println!("{}", serde_json::json!({ "reconciliation": recs }));
    } else {
        println!("Reconciliation (generated vs landed, by TXID)");
        print!("{}", report::format_reconciliation(&recs));
        print!(
            "{}",
            bad_records::format_bad_records(&ledger, &queue.first_dead_letters()?, None)
        );
        print!("{}", report::format_views(source.as_ref()).await?);
    }
    if recs.iter().all(report::Reconciliation::exact) {
        Ok(())
    } else {
        anyhow::bail!("the landed tables do not hold exactly the generated rows")
    }
}
