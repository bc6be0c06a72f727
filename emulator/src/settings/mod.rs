//! What the emulator is started with: [`EmulatorConfig`](config::EmulatorConfig) and its
//! defaults (`config`), and the Snowpipe Streaming Classic channels it is seeded with
//! (`classic`). Both are public, re-exported at the crate root (`snowpipe_emulator::config`,
//! `snowpipe_emulator::classic`).

pub mod classic;
pub mod config;
