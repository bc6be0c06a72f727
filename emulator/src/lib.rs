//! Snowpipe Streaming emulator (work in progress).
