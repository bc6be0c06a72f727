//! The library's error type.

/// A cause kept inside an [`EmulatorError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the emulator could not start or answer a library call. Each variant keeps the message
/// (what failed, and where) and, when there was one, the underlying error as its
/// [`source`](std::error::Error::source). The message says its own part only: the cause is
/// printed by whoever prints the whole chain ([`EmulatorError::chain`], `: `-joined, as the
/// `snowpipe-emulator` binary and anyhow's `{:#}` do). A message is empty when the cause says it all: the error then
/// displays as its kind alone (`storage error`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// Invalid configuration (a public key, a file).
    #[error("configuration error{}", part(.message))]
    Config {
        /// What is wrong (empty when the source says it all).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The DDL could not be applied.
    #[error("DDL error{}", part(.message))]
    Catalog {
        /// What is wrong (empty when the source says it all).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// TLS setup failed.
    #[error("TLS error{}", part(.message))]
    Tls {
        /// What is wrong (empty when the source says it all).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Socket or file error.
    #[error("I/O error{}", part(.message))]
    Io {
        /// What is wrong (empty when the source says it all).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// SQLite error.
    #[error("storage error{}", part(.message))]
    Storage {
        /// What is wrong (empty when the source says it all).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// `: message` after an error's kind, or nothing for an empty message.
fn part(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl EmulatorError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn catalog(message: impl Into<String>) -> Self {
        Self::Catalog {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn tls(message: impl Into<String>) -> Self {
        Self::Tls {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self::Io {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn storage(message: impl Into<String>) -> Self {
        Self::Storage {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `cause` as this error's source. The message must not repeat it: a chain printer
    /// prints the message, then the cause.
    /// The error and its causes, `: `-joined: the whole text a person should read (the
    /// message says only this error's own part; its cause is the source).
    pub fn chain(&self) -> String {
        chain(self)
    }

    pub(crate) fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        let (Self::Config { source, .. }
        | Self::Catalog { source, .. }
        | Self::Tls { source, .. }
        | Self::Io { source, .. }
        | Self::Storage { source, .. }) = &mut self;
        *source = Some(cause.into());
        self
    }
}

/// A SQLite error as a cause: its message alone. rusqlite's own source would add the result
/// code's generic text (`Error code 1: SQL error or missing database`) to every message, or
/// repeat the message of an error that has no other.
pub(crate) fn sqlite_cause(e: &rusqlite::Error) -> BoxError {
    e.to_string().into()
}

/// `error` and its causes, `: `-joined: what a person reads of an error whose message leaves
/// the cause to its source (an HTTP answer's message).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_printed_once_after_the_message_or_after_the_kind_alone() {
        let cause = || std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = EmulatorError::io("cannot listen on 127.0.0.1:1").with_source(cause());
        assert_eq!(e.to_string(), "I/O error: cannot listen on 127.0.0.1:1");
        assert_eq!(
            chain(&e),
            "I/O error: cannot listen on 127.0.0.1:1: address in use"
        );
        let e = EmulatorError::storage("").with_source(cause());
        assert_eq!(e.to_string(), "storage error");
        assert_eq!(chain(&e), "storage error: address in use");
        assert_eq!(chain(&EmulatorError::catalog("")), "DDL error");
    }
}
