//! How an append body is compressed: one enum, with nothing below it. Settings, the
//! configuration keys, the pipeline's codecs and the REST layer all name it, so it lives in a
//! leaf of its own rather than in one of them; the crate root re-exports it.

/// How an append body is compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// zstd (the default, as the official SDK).
    #[default]
    Zstd,
    /// gzip.
    Gzip,
    /// No compression.
    None,
}
