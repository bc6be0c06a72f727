//! The sink's one error type, [`Error`]: a variant per room that fails, each holding a
//! [`Detail`] (what happened, and the error it came from).
//!
//! As in `object_store`, a failure is typed by where it happened, and the foreign errors a room
//! meets come into the crate's with `From` (`std::io::Error` is [`Error::Io`],
//! [`snowpipe_streaming::Error`] is [`Error::Snowflake`], rdkafka's is [`Error::Kafka`]).
//!
//! The text is the contract: the binary prints an error with `{:#}`, every message of the chain
//! joined by `": "`, and the tests and docs quote those lines. So a [`Detail`] is a message, a
//! message with the error it explains (printed first, then the source's chain), or a foreign
//! error shown as it is. `{}` prints the first message, `{:#}` the whole chain (as the binary's
//! own `{:#}` does once the error is its source); [`std::error::Error::source`] walks it.
//!
//! Inside the crate, [`Context`] adds a message to a failure in a named room
//! (`.context(Error::Config, "...")`), and `fail!`/`err!` build one from a format string.

use std::error::Error as StdError;
use std::fmt;

/// A failure from another crate, boxed.
type Source = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with the sink's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What failed, by room; each holds the failure's text and source ([`Detail`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The command line, the settings it becomes, a connector config file, the topic-to-table
    /// map, librdkafka properties: what the user gave does not fit.
    Config(Detail),
    /// Kafka: the consumer, the dead-letter producer, the brokers' answers.
    Kafka(Detail),
    /// Snowflake: the SDK ([`snowpipe_streaming::Error`]), the SQL API, a table, a channel,
    /// the connector's offsets.
    Snowflake(Detail),
    /// JSON that cannot be read or written (`check`'s plan, `audit`'s report).
    Format(Detail),
    /// The operating system: a file, a socket, a thread.
    Io(Detail),
    /// The run: its metrics recorder could not be installed, a partition's worker or the
    /// consumer thread stopped it, or `check` and `audit` found problems.
    Sink(Detail),
}

/// One failure's text and the error it came from.
pub struct Detail(Inner);

/// The three shapes of a [`Detail`].
enum Inner {
    /// A message alone.
    Message(String),
    /// A message explaining `source` (printed first, then the source's chain).
    Context(String, Source),
    /// Another crate's error, shown as it is.
    Foreign(Source),
}

impl Detail {
    /// A message alone.
    pub(crate) fn msg(message: impl fmt::Display) -> Self {
        Self(Inner::Message(message.to_string()))
    }

    /// A message explaining `source`.
    pub(crate) fn context(message: impl fmt::Display, source: impl Into<Source>) -> Self {
        Self(Inner::Context(message.to_string(), source.into()))
    }

    /// Another crate's error, shown as it is.
    pub(crate) fn foreign(source: impl Into<Source>) -> Self {
        Self(Inner::Foreign(source.into()))
    }

    /// The first error of type `E` in the chain, looking through the crate's own layers.
    fn find<E: StdError + 'static>(&self) -> Option<&E> {
        let (Inner::Context(_, first) | Inner::Foreign(first)) = &self.0 else {
            return None;
        };
        let mut next: Option<&(dyn StdError + 'static)> = Some(&**first);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<E>() {
                return Some(found);
            }
            if let Some(ours) = e.downcast_ref::<Error>() {
                return ours.detail().find::<E>();
            }
            next = e.source();
        }
        None
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Message(m) => f.debug_tuple("Message").field(m).finish(),
            Inner::Context(m, s) => f.debug_tuple("Context").field(m).field(s).finish(),
            Inner::Foreign(s) => f.debug_tuple("Foreign").field(s).finish(),
        }
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Message(m) | Inner::Context(m, _) => f.write_str(m)?,
            Inner::Foreign(s) => write!(f, "{s}")?,
        }
        if f.alternate() {
            let mut next = self.source();
            while let Some(e) = next {
                write!(f, ": {e}")?;
                next = e.source();
            }
        }
        Ok(())
    }
}

impl StdError for Detail {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.0 {
            Inner::Message(_) => None,
            Inner::Context(_, s) => Some(&**s),
            Inner::Foreign(s) => s.source(),
        }
    }
}

impl Error {
    /// The room's text and source.
    pub fn detail(&self) -> &Detail {
        match self {
            Self::Config(d)
            | Self::Kafka(d)
            | Self::Snowflake(d)
            | Self::Format(d)
            | Self::Io(d)
            | Self::Sink(d) => d,
        }
    }

    /// The SDK's error this failure comes from, if it does.
    pub fn snowflake(&self) -> Option<&snowpipe_streaming::Error> {
        self.detail().find()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.detail(), f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.detail().source()
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(Detail::foreign(e))
    }
}

impl From<snowpipe_streaming::Error> for Error {
    fn from(e: snowpipe_streaming::Error) -> Self {
        Self::Snowflake(Detail::foreign(e))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Format(Detail::foreign(e))
    }
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Self::Kafka(Detail::foreign(e))
    }
}

/// A room's variant: `Error::Config`, `Error::Kafka`, ...
pub(crate) type Room = fn(Detail) -> Error;

/// A message added to a failure, in a named room: the message first, the failure its source.
pub(crate) trait Context<T> {
    /// The failure explained by `message`, in `room`.
    fn context(self, room: Room, message: impl fmt::Display) -> Result<T>;

    /// The failure explained by the message `f` makes (only on failure), in `room`.
    fn with_context<M: fmt::Display>(self, room: Room, f: impl FnOnce() -> M) -> Result<T>;
}

impl<T, E: StdError + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, room: Room, message: impl fmt::Display) -> Result<T> {
        self.map_err(|e| room(Detail::context(message, e)))
    }

    fn with_context<M: fmt::Display>(self, room: Room, f: impl FnOnce() -> M) -> Result<T> {
        self.map_err(|e| room(Detail::context(f(), e)))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, room: Room, message: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| room(Detail::msg(message)))
    }

    fn with_context<M: fmt::Display>(self, room: Room, f: impl FnOnce() -> M) -> Result<T> {
        self.ok_or_else(|| room(Detail::msg(f())))
    }
}

/// An [`Error`] in a room from a format string: `err!(Config, "--x: {why}")`.
macro_rules! err {
    ($room:ident, $($arg:tt)+) => {
        $crate::error::Error::$room($crate::error::Detail::msg(format!($($arg)+)))
    };
}

/// Returns an [`Error`] in a room from a format string: `fail!(Config, "--x: {why}")`.
macro_rules! fail {
    ($room:ident, $($arg:tt)+) => {
        return Err($crate::error::err!($room, $($arg)+).into())
    };
}

pub(crate) use {err, fail};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_prints_as_the_binary_printed_it() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e: Result<()> = Err(io).context(Error::Config, "--connector-config c.json");
        let e = e.context(Error::Config, "the run");
        let e = e.unwrap_err();
        assert_eq!(e.to_string(), "the run");
        assert_eq!(
            format!("{e:#}"),
            "the run: --connector-config c.json: no such file"
        );
        let e = anyhow::Error::new(e);
        assert_eq!(
            format!("{e:#}"),
            "the run: --connector-config c.json: no such file"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(format!("{:#}", Error::from(io)), "gone");
        assert!(matches!(err!(Kafka, "x {}", 1), Error::Kafka(_)));
    }

    #[test]
    fn the_sdk_error_is_found_through_the_layers() {
        let sdk = snowpipe_streaming::Error::Auth {
            message: "no".into(),
            source: None,
        };
        let e: Result<()> = Err(Error::from(sdk)).context(Error::Sink, "open");
        let e = e.unwrap_err();
        assert!(matches!(
            e.snowflake(),
            Some(snowpipe_streaming::Error::Auth { .. })
        ));
        assert!(err!(Sink, "x").snowflake().is_none());
    }
}
