//! The emulator side: the `emulator` subcommand, key generation, and reading the emulator's
//! tables for the report.

use std::path::Path;

use anyhow::{Context, Result};

pub use crate::common::generate_key;

/// The Snowflake setup: the embedded emulator declares its catalog from it.
pub const SETUP_SQL: &str = include_str!("sql/setup.sql");

/// `ski_resort emulator`: the emulator library with the pipeline's defaults (DDL from
/// `sql/setup.sql`); prints `listening on URL` and serves until Ctrl-C or SIGTERM.
///
/// # Errors
/// When a file cannot be read or written, no key is given, or the emulator cannot start.
///
/// # Cancellation
/// Dropping the future drops the emulator, which stops serving.
pub async fn emulator(args: crate::ski_resort::cli::EmulatorArgs) -> Result<()> {
    let ddl = if args.ddl.is_empty() {
        vec![SETUP_SQL.to_string()]
    } else {
        args.ddl
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read DDL {}", p.display()))
            })
            .collect::<Result<_>>()?
    };
    crate::common::Serve {
        ddl,
        public_keys: args.public_key,
        new_key: args.new_key,
        data_dir: args.data_dir,
        commit_delay: args.commit_delay,
        port: args.port,
        sink: false,
        // Snowflake's per-channel rate, channel and pipe limits, as the real service.
        limits: snowpipe_emulator::Limits::Snowflake,
    }
    .run()
    .await
}

/// Opens the emulator's SQLite database in `data_dir` read-only.
///
/// # Errors
/// If the directory holds no emulator database.
pub fn open_emulator_db(data_dir: &Path) -> Result<rusqlite::Connection> {
    snowpipe_emulator::offline::open_read_only(data_dir).with_context(|| {
        format!(
            "cannot open the emulator database in {}",
            data_dir.display()
        )
    })
}
