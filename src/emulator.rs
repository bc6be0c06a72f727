//! The local emulator with a client already pointed at it, for tests and examples (feature
//! `emulator`).
//!
//! [`Emulator::start`] runs the `snowpipe-emulator` server inside this process on a free
//! loopback port, with a freshly generated key pair registered, and
//! [`Emulator::client_builder`] returns a [`ClientBuilder`] that signs in with that key.
//! [`from_env_or_start`] is the switch the examples open with: your account when
//! `SNOWFLAKE_ACCOUNT` is set, else an emulator.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use snowpipe_streaming::emulator::Emulator;
//!
//! let emulator = Emulator::builder()
//!     .ddl("CREATE DATABASE DB; CREATE SCHEMA DB.S; CREATE TABLE DB.S.T (ID NUMBER)")
//!     .start()
//!     .await?;
//! let client = emulator.client_builder().build().await?;
//! let channel = client.table_pipe("DB", "S", "T").open_channel("c").await?;
//! // … append, wait for the commit, close; then check what landed:
//! let rows = emulator.query(r#"SELECT COUNT(*) FROM "DB.S.T""#)?;
//! # let _ = (channel, rows);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The types here belong to this crate: the emulator crate's own API (its configuration, fault
//! plans, TLS, limits, data directory) is not part of `snowpipe-streaming`'s, so the two crates
//! version independently. A test that needs more than this module offers depends on
//! `snowpipe-emulator` itself and starts it with its `EmulatorConfig` through
//! `snowpipe_emulator::Emulator::start_with_new_key`, which registers a fresh key pair and
//! returns it for the client (the function [`EmulatorBuilder::start`] uses). Faults are given in the emulator's compact
//! `--fault` syntax ([`EmulatorBuilder::fault`]), the one its command line takes.

use std::fmt;
use std::time::Duration;

use crate::ClientBuilder;

/// The account name the emulator's client builder uses (the emulator accepts any).
pub const ACCOUNT: &str = "EMULATOR";

/// The user name the emulator's client builder uses (the generated key is accepted for any
/// user).
pub const USER: &str = "TEST";

/// The variable that selects a real account in [`from_env_or_start`].
const ACCOUNT_VAR: &str = "SNOWFLAKE_ACCOUNT";

/// Your account when `SNOWFLAKE_ACCOUNT` is set (and not empty): a builder from
/// [`ClientBuilder::from_env`] and no emulator. Otherwise an emulator started here with
/// `ddl` applied, and a builder for it.
///
/// Keep the returned emulator alive while the client streams: dropping it stops the server.
/// `ddl` is not run against a real account: create the tables there first (`IF NOT EXISTS`
/// DDL works in both places).
///
/// # Errors
/// When the emulator cannot start: the DDL is not understood, or no key or port is available.
///
/// # Cancellation
/// Dropping the future before it completes stops the emulator it was starting.
pub async fn from_env_or_start(
    ddl: &str,
) -> Result<(ClientBuilder, Option<Emulator>), EmulatorError> {
    if account_configured(|k| std::env::var(k).ok()) {
        return Ok((ClientBuilder::from_env(), None));
    }
    let emulator = Emulator::builder().ddl(ddl).start().await?;
    Ok((emulator.client_builder(), Some(emulator)))
}

/// Whether `lookup` names a real account (the environment, in [`from_env_or_start`]).
fn account_configured(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup(ACCOUNT_VAR).is_some_and(|v| !v.trim().is_empty())
}

/// What to start: DDL scripts, faults and the commit delay. Made by [`Emulator::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EmulatorBuilder {
    ddl: Vec<String>,
    faults: Vec<String>,
    commit_delay: Duration,
}

impl EmulatorBuilder {
    /// Adds a DDL script, run at start: `CREATE DATABASE`, `SCHEMA`, `TABLE` (a table gets
    /// its default pipe `<TABLE>-STREAMING`) and `PIPE` statements, separated by `;`.
    pub fn ddl(mut self, sql: impl Into<String>) -> Self {
        self.ddl.push(sql.into());
        self
    }

    /// Adds a fault rule in the emulator's compact syntax, `ENDPOINT:KEY[=VALUE],...`: for
    /// example `append_rows:lost_ack,after=1,times=1` (the second append is applied but its
    /// answer is lost) or `append_rows:status=503,channel=c,times=1`. The emulator's README
    /// lists the endpoints and keys. A rule that does not parse fails [`start`](Self::start).
    pub fn fault(mut self, rule: impl Into<String>) -> Self {
        self.faults.push(rule.into());
        self
    }

    /// How long after an append its rows are committed. Default zero: committed before the
    /// append is answered.
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.commit_delay = delay;
        self
    }

    /// Generates a key pair and starts the emulator with its public key registered, on a free
    /// port of 127.0.0.1, over plain HTTP, keeping its tables in memory. Strict about offset
    /// tokens: a request whose tokens cannot name its rows is refused.
    ///
    /// # Errors
    /// When a fault rule does not parse (the error names it), the DDL is not understood, or
    /// the key cannot be generated or the server cannot listen.
    ///
    /// # Cancellation
    /// Dropping the future before it completes stops the emulator it was starting.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
        let mut config =
            snowpipe_emulator::EmulatorConfig::for_tests().with_commit_delay(self.commit_delay);
        config.ddl = self.ddl;
        for rule in &self.faults {
            config.faults.rules.push(parse_fault(rule)?);
        }
        let (inner, key) = snowpipe_emulator::Emulator::start_with_new_key(config)
            .await
            .map_err(EmulatorError::start)?;
        let client = ClientBuilder::new()
            .account(ACCOUNT)
            .user(USER)
            .url(inner.url())
            .private_key_pem(key.private_key_pem());
        Ok(Emulator { inner, client })
    }
}

/// A fault rule in the emulator's compact syntax.
fn parse_fault(rule: &str) -> Result<snowpipe_emulator::FaultRule, EmulatorError> {
    rule.parse().map_err(|e| EmulatorError {
        message: format!("{e}"),
    })
}

/// A running emulator and a client builder for it. It serves until [`shutdown`](Self::shutdown)
/// or until it is dropped.
pub struct Emulator {
    inner: snowpipe_emulator::Emulator,
    client: ClientBuilder,
}

impl fmt::Debug for Emulator {
    // The builder holds the private key: only the address is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.inner.url())
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A builder: add DDL, faults or a commit delay, then [`start`](EmulatorBuilder::start).
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with `ddl` applied: `Emulator::builder().ddl(ddl).start()`.
    ///
    /// # Errors
    /// As [`EmulatorBuilder::start`].
    ///
    /// # Cancellation
    /// Dropping the future before it completes stops the emulator it was starting.
    pub async fn start(ddl: impl Into<String>) -> Result<Self, EmulatorError> {
        Self::builder().ddl(ddl).start().await
    }

    /// A client builder signed in to this emulator: account [`ACCOUNT`], user [`USER`], its
    /// URL and the generated private key. Add settings, then `build()`; each call returns a
    /// fresh copy.
    pub fn client_builder(&self) -> ClientBuilder {
        self.client.clone()
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// Runs a read-only SQL query (SQLite) on what landed and returns its rows. Each table
    /// `DB.SCHEMA.TABLE` is the SQLite table `"DB.SCHEMA.TABLE"`, quotes included:
    /// `SELECT COUNT(*) FROM "DB.S.T"`.
    ///
    /// # Errors
    /// When the SQL is not valid SQLite or is not read-only.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<serde_json::Value>>, EmulatorError> {
        self.inner.query(sql).map_err(|e| EmulatorError {
            message: format!("emulator query {sql:?} failed: {}", e.chain()),
        })
    }

    /// Adds a fault rule while the emulator runs, in the syntax of [`EmulatorBuilder::fault`].
    ///
    /// # Errors
    /// When the rule does not parse (the error names it and shows the syntax).
    pub fn add_fault(&self, rule: &str) -> Result<(), EmulatorError> {
        self.inner.faults().add(parse_fault(rule)?);
        Ok(())
    }

    /// Stops accepting connections, finishes in-flight requests (up to 5 s) and commits every
    /// accepted batch.
    ///
    /// # Cancellation
    /// Dropping the future leaves the emulator stopping in the background, possibly without
    /// the final commit.
    pub async fn shutdown(self) {
        self.inner.shutdown().await;
    }
}

/// The emulator could not start, a fault rule did not parse, or a query failed; the message
/// says which, and holds the emulator's error with its causes (the emulator's errors leave
/// their cause to their source: the message prints the whole chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorError {
    message: String,
}

impl EmulatorError {
    fn start(e: snowpipe_emulator::EmulatorError) -> Self {
        Self {
            message: format!("the emulator could not start: {}", e.chain()),
        }
    }
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EmulatorError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_empty_account_variable_selects_a_real_account() {
        let env = |value: Option<&'static str>| {
            move |k: &str| (k == "SNOWFLAKE_ACCOUNT").then_some(value?.to_owned())
        };
        assert!(account_configured(env(Some("MYORG-MYACCOUNT"))));
        assert!(!account_configured(env(Some(" "))));
        assert!(!account_configured(env(None)));
    }

    #[tokio::test]
    async fn a_bad_fault_rule_fails_the_start_naming_the_rule() {
        let err = Emulator::builder()
            .fault("append_rows:teapot")
            .start()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("append_rows:teapot"), "{err}");
        assert!(err.contains("unknown key"), "{err}");
    }

    #[tokio::test]
    async fn debug_shows_the_address_and_no_key_and_a_bad_query_names_its_sql() {
        let emulator = Emulator::start("CREATE DATABASE D; CREATE SCHEMA D.S;")
            .await
            .unwrap();
        let debug = format!("{emulator:?}");
        assert!(debug.contains(&emulator.url()), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let err = emulator.query("SELECT * FROM nowhere").unwrap_err();
        assert!(err.to_string().contains("SELECT * FROM nowhere"), "{err}");
        // The emulator's error leaves SQLite's message to its source: it is here, once.
        assert_eq!(err.to_string().matches("no such table").count(), 1, "{err}");
        emulator.shutdown().await;
    }
}
