//! The base every room may use: errors, the clock, the service's limits and memory budget,
//! fault injection, the request log, private files and the float printers. Nothing here uses another room.
//!
//! `clock`, `faults`, `limits` and `requests` are public, re-exported at the crate root
//! (`snowpipe_emulator::clock`, …); the rest is the crate's own.

pub(crate) mod api_error;
pub mod clock;
pub(crate) mod error;
pub mod faults;
pub(crate) mod float_text;
pub mod limits;
pub mod option_file;
pub(crate) mod pending_budget;
pub(crate) mod private_fs;
pub mod requests;
