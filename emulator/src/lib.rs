//! Snowpipe Streaming emulator (work in progress).

pub mod catalog;
pub mod convert;
