//! The library's error type.

/// A cause kept inside an [`EmulatorError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the emulator could not start or answer a library call. Each variant keeps the message
/// (what failed, and where) and, when there was one, the underlying error as its
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// Invalid configuration (a public key, a file).
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The DDL could not be applied.
    #[error("DDL error: {message}")]
    Catalog {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// TLS setup failed.
    #[error("TLS error: {message}")]
    Tls {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Socket or file error.
    #[error("I/O error: {message}")]
    Io {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// SQLite error.
    #[error("storage error: {message}")]
    Storage {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
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

    /// Keeps `cause` as this error's source.
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
