//! The connected parts: the all-in-one run and `stream`.
//!
//! PLACEHOLDER until the SDK's channels land on main.

use anyhow::{bail, Result};

use crate::cli::{RunArgs, StreamArgs};

/// The all-in-one run.
pub async fn run(_args: RunArgs) -> Result<()> {
    bail!("the all-in-one run needs the SDK's channels, which have not landed yet")
}

/// `ski_resort stream`.
pub async fn stream(_args: StreamArgs) -> Result<()> {
    bail!("stream needs the SDK's channels, which have not landed yet")
}
