//! Snowpipe Streaming client (work in progress).
