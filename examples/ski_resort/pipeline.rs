//! The connected parts: the all-in-one run, `stream`, and `emulator`.
//!
//! PLACEHOLDER until the SDK's channels and the emulator library land on main.

use std::path::Path;

use anyhow::{bail, Result};

use crate::cli::{EmulatorArgs, RunArgs, StreamArgs};

/// The all-in-one run.
pub async fn run(_args: RunArgs) -> Result<()> {
    bail!("the all-in-one run needs the SDK's channels, which have not landed yet")
}

/// `ski_resort stream`.
pub async fn stream(_args: StreamArgs) -> Result<()> {
    bail!("stream needs the SDK's channels, which have not landed yet")
}

/// `ski_resort emulator`.
pub async fn emulator(_args: EmulatorArgs) -> Result<()> {
    bail!("the emulator library has not landed yet")
}

/// Opens the emulator's SQLite database in `data_dir` read-only.
pub fn open_emulator_db(data_dir: &Path) -> Result<rusqlite::Connection> {
    let mut candidates = Vec::new();
    for entry in std::fs::read_dir(data_dir)
        .map_err(|e| anyhow::anyhow!("cannot read emulator data dir {}: {e}", data_dir.display()))?
    {
        let path = entry?.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("sqlite" | "sqlite3" | "db")
        ) {
            candidates.push(path);
        }
    }
    match candidates.as_slice() {
        [one] => Ok(rusqlite::Connection::open_with_flags(
            one,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?),
        [] => bail!("no emulator database (*.sqlite) in {}", data_dir.display()),
        many => bail!("several databases in {}: {many:?}", data_dir.display()),
    }
}
