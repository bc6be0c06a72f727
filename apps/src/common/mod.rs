//! What every application needs and nothing in the SDK should: [`main`] and [`block_on`]
//! (logging, the exit code, a multi-thread runtime), the embedded emulator's configuration
//! (with a throwaway key pair), the `emulator` subcommand ([`EmulatorArgs`], [`Serve`]), the
//! connection to a real account from `--profile` or `SNOWFLAKE_*` ([`connect`]), the run
//! directory, waiting for Ctrl-C/SIGTERM, and the one-line report of a channel another writer
//! took over ([`ownership_lost`]); the command line's common shape ([`cli`]), the names
//! the generators' catalogs share ([`names`]), the caps on the numbers that size a run
//! ([`sizing`]), the shape of the all-in-one runs ([`all_in_one`]), and one dead-letter
//! channel ([`dead_letters`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
pub use snowpipe_cli_support::signal::terminated;
use snowpipe_emulator::option_file::{MAX_DDL_FILE_BYTES, MAX_SMALL_FILE_BYTES};
use snowpipe_emulator::{Emulator, EmulatorConfig, KeyPair};
use snowpipe_streaming::ClientBuilder;

pub mod all_in_one;
pub mod cli;
pub mod dead_letters;
pub mod names;
pub mod say;
pub mod sizing;

/// The first of `names` found as a file in a `PATH` directory or, after those, in `extra`
/// (where a package installs a server that is not on every user's `PATH`, e.g. `/usr/sbin`).
pub fn find_executable(names: &[&str], extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .collect();
    names
        .iter()
        .find_map(|name| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()))
}

/// A SQL API timestamp value (`[-]seconds.fraction[ offset]`: epoch seconds, the sign applying
/// to the whole number, a `TIMESTAMP_TZ`'s offset after a space) as nanoseconds since the
/// epoch; `None` when `v` is not one.
pub fn sql_api_epoch_nanos(v: &str) -> Option<i128> {
    let secs = v.split(' ').next().unwrap_or(v);
    let (neg, secs) = match secs.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, secs),
    };
    let (s, frac) = secs.split_once('.').unwrap_or((secs, ""));
    let frac = format!("{frac:0<9}");
    let total = s.parse::<i128>().ok()? * 1_000_000_000 + frac[..9].parse::<i128>().ok()?;
    Some(if neg { -total } else { total })
}

/// The name of a JSON value's type with its article (`a number`, `null`), for the reasons a
/// bad record is refused.
pub fn json_type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes a private key readable only by the owner ([`snowpipe_emulator::write_private_key`]),
/// naming the file when it cannot.
///
/// # Errors
/// If the file cannot be written.
pub fn write_private_key(path: &Path, pem: &str) -> Result<()> {
    snowpipe_emulator::write_private_key(path, pem)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The SDK's [`OwnershipLost`](snowpipe_streaming::Error::OwnershipLost) anywhere in `e`'s
/// chain (under any context, or as the shared source of another SDK error): another process
/// opened the channel after this one, so this handle was fenced. Final: the streamers stop
/// at once and never reopen the channel (that would fence the other writer in turn, and both
/// would write from their own positions: duplicates).
pub fn ownership_lost(e: &anyhow::Error) -> Option<&snowpipe_streaming::Error> {
    e.chain().find_map(|c| {
        let sdk = c.downcast_ref::<snowpipe_streaming::Error>().or_else(|| {
            c.downcast_ref::<Arc<snowpipe_streaming::Error>>()
                .map(|a| &**a)
        })?;
        sdk.is_ownership_lost().then_some(sdk)
    })
}

/// Whether `e` holds an [`ownership_lost`] error: never retry or reopen on it.
pub fn is_ownership_lost(e: &anyhow::Error) -> bool {
    ownership_lost(e).is_some()
}

/// The one stderr line for an [`ownership_lost`] error, naming the channel and its last
/// committed offset token; `None` for any other error.
pub fn ownership_lost_line(e: &anyhow::Error) -> Option<String> {
    let lost = ownership_lost(e)?;
    let snowpipe_streaming::Error::OwnershipLost { channel, .. } = lost else {
        return None;
    };
    let token = lost.last_committed_offset_token().map_or_else(
        || "none".to_owned(),
        |t| format!("{:?}", t.as_ref() as &str),
    );
    Some(format!(
        "error: ownership lost: channel {channel} was opened by another writer; last committed \
         offset token {token}; stopping without writing more (run one writer per channel)"
    ))
}

/// Prints a failed command's error on stderr: the [`ownership_lost_line`] alone when another
/// writer took a channel over, else `error: ` and the whole chain; with `--log-format json`
/// one JSON object with the message and its causes as fields
/// ([`snowpipe_cli_support::log::lines`]).
pub fn print_error(e: &anyhow::Error) {
    const TARGET: &str = "snowpipe_apps";
    match ownership_lost_line(e) {
        Some(line) => snowpipe_cli_support::log::fatal_chain(
            TARGET,
            [line.strip_prefix("error: ").unwrap_or(&line).to_owned()],
        ),
        None => snowpipe_cli_support::log::fatal(TARGET, e.as_ref()),
    }
}

/// An application's `main`: runs `command` (which parses the command line and installs the
/// logger, `Cli::from_args`) and turns its result into the exit code, printing a failure with
/// [`print_error`].
pub fn main(command: impl FnOnce() -> Result<()>) -> std::process::ExitCode {
    match command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `future` to completion on a new multi-thread tokio runtime.
///
/// # Errors
/// When the runtime cannot start, or as `future`.
pub fn block_on(future: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(future)
}

/// Thousands separators: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An aligned plain-text table, as the applications print their reports: two spaces before and
/// between columns, a rule under the header, trailing spaces trimmed. The first column (the
/// row's label) is left-aligned; any other column whose cells are all numbers (`1,234`,
/// `-12.50`, `$3`, `40%`; a `-` for none does not count) is right-aligned, header included;
/// the rest are left-aligned.
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    use std::fmt::Write as _;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric = |s: &str| {
        let plain: String = s.chars().filter(|c| !",$%".contains(*c)).collect();
        !plain.is_empty() && plain.parse::<f64>().is_ok()
    };
    let right: Vec<bool> = (0..headers.len())
        .map(|i| {
            let mut cells = rows
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|c| c.as_str() != "-")
                .peekable();
            i > 0 && cells.peek().is_some() && cells.all(|c| numeric(c))
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .zip(&right)
            .map(|((c, &w), &r)| {
                let pad = " ".repeat(w.saturating_sub(c.chars().count()));
                if r {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        let _ = writeln!(out, "  {}", parts.join("  ").trim_end());
    };
    line(&mut headers.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Whether the user pointed the application at a real account (or an external emulator):
/// `--profile`, or `SNOWFLAKE_ACCOUNT` / `SNOWFLAKE_URL` set.
pub fn external_configured(profile: Option<&Path>) -> bool {
    profile.is_some()
        || ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
}

/// A client builder from `--profile FILE`, else from the `SNOWFLAKE_*` variables.
///
/// # Errors
/// When the profile cannot be read.
pub fn builder_from(profile: Option<&Path>) -> Result<ClientBuilder> {
    match profile {
        Some(path) => ClientBuilder::from_profile_file(path)
            .with_context(|| format!("cannot read connection profile {}", path.display())),
        None => Ok(ClientBuilder::from_env()),
    }
}

/// The configuration of an application's embedded emulator: `ddl`, commits `commit_delay`
/// after each append, and strict offsets (any request whose tokens cannot name its rows is a
/// bug in the application). Start it with [`Emulator::start_with_new_key`] (or
/// [`all_in_one::start_embedded`]), which registers a new key pair and returns it for the
/// client.
pub fn embedded_config(ddl: Vec<String>, commit_delay: Duration) -> EmulatorConfig {
    let mut config = EmulatorConfig::default();
    config.ddl = ddl;
    config.commit_delay = commit_delay;
    config.strict_offsets = true;
    config
}

/// A client from `--profile` (else the `SNOWFLAKE_*` variables) with `max_client_lag`.
///
/// # Errors
/// When the profile cannot be read or the configuration is incomplete or rejected.
///
/// # Cancellation
/// Dropping the future stops connecting.
pub async fn connect(
    profile: Option<&Path>,
    max_client_lag: Duration,
) -> Result<snowpipe_streaming::StreamingIngestClient> {
    builder_from(profile)?
        .max_client_lag(max_client_lag)
        .build()
        .await
        .context(CONNECT_HINT)
}

/// The directory of an all-in-one run: `keep` (created if missing), else a new temporary
/// directory named after `prefix`, removed when the returned guard is dropped.
///
/// # Errors
/// When the directory cannot be created.
pub fn run_dir(keep: Option<&Path>, prefix: &str) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    match keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok((None, dir.to_owned()))
        }
        None => {
            let temp = tempfile::Builder::new().prefix(prefix).tempdir()?;
            let path = temp.path().to_owned();
            Ok((Some(temp), path))
        }
    }
}

/// What to say when connecting to a real account fails.
pub const CONNECT_HINT: &str = "cannot connect: pass --profile profile.json, or set \
     SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PRIVATE_KEY_FILE (plus \
     SNOWFLAKE_URL=http://127.0.0.1:PORT for an emulator)";

/// The options of the `emulator` subcommand the applications offer.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where the emulator keeps its SQLite database (in memory when omitted).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// DDL scripts to load; defaults to the application's sql/setup.sql.
    #[arg(long)]
    pub ddl: Vec<PathBuf>,
    /// Public keys (PEM) to accept.
    #[arg(long)]
    pub public_key: Vec<PathBuf>,
    /// Generate a key pair, accept its public key and write the private key (PKCS#8 PEM) here.
    #[arg(long)]
    pub new_key: Option<PathBuf>,
    /// Delay between accepting rows and committing them.
    #[arg(long, default_value = "200ms", value_parser = snowpipe_streaming::duration::parse)]
    pub commit_delay: Duration,
    /// Benchmark mode: count rows and commit them, store nothing.
    #[arg(long)]
    pub sink: bool,
}

impl EmulatorArgs {
    /// Serves (see [`Serve::run`]) the `--ddl` scripts, else `default_ddl`, enforcing `limits`.
    ///
    /// # Errors
    /// When a file cannot be read or written, no key is given, or the emulator cannot start.
    ///
    /// # Cancellation
    /// Dropping the future drops the emulator, which stops serving.
    pub async fn serve(self, default_ddl: &str, limits: snowpipe_emulator::Limits) -> Result<()> {
        let ddl = if self.ddl.is_empty() {
            vec![default_ddl.to_string()]
        } else {
            self.ddl
                .iter()
                .map(|p| read_option_file(p, "DDL", MAX_DDL_FILE_BYTES))
                .collect::<Result<_>>()?
        };
        Serve {
            ddl,
            public_keys: self.public_key,
            new_key: self.new_key,
            data_dir: self.data_dir,
            commit_delay: self.commit_delay,
            port: self.port,
            sink: self.sink,
            limits,
        }
        .run()
        .await
    }
}

/// The `emulator` subcommand every application offers: which DDL, keys and storage to serve.
#[derive(Debug, Clone)]
pub struct Serve {
    /// DDL scripts (their text) to load.
    pub ddl: Vec<String>,
    /// Public keys (PEM files) to accept.
    pub public_keys: Vec<PathBuf>,
    /// Generate a key pair, accept its public key and write the private key here.
    pub new_key: Option<PathBuf>,
    /// Where the emulator keeps its SQLite database (in memory when `None`).
    pub data_dir: Option<PathBuf>,
    /// Delay between accepting rows and committing them.
    pub commit_delay: Duration,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Count rows without storing them.
    pub sink: bool,
    /// The service's limits to enforce (`Limits::Snowflake` models the real service's
    /// per-channel rate, channels per pipe and pipes per table).
    pub limits: snowpipe_emulator::Limits,
}

impl Serve {
    /// Starts the emulator (strict offsets: any request whose tokens cannot name its rows is a
    /// bug in the application), prints `listening on URL` (other tools read it) and serves until
    /// Ctrl-C or SIGTERM, then shuts down, committing what it accepted.
    ///
    /// # Errors
    /// When a file cannot be read or written, no key is given, or the emulator cannot start.
    ///
    /// # Cancellation
    /// Dropping the future drops the emulator, which stops serving.
    pub async fn run(self) -> Result<()> {
        let mut public_keys = self
            .public_keys
            .iter()
            .map(|p| read_option_file(p, "public key", MAX_SMALL_FILE_BYTES))
            .collect::<Result<Vec<_>>>()?;
        if let Some(path) = &self.new_key {
            let key = KeyPair::generate().context("cannot generate a key pair")?;
            write_private_key(path, key.private_key_pem())?;
            public_keys.push(key.public_key_pem().to_owned());
        }
        if public_keys.is_empty() {
            bail!(
                "no key to accept: pass --public-key FILE (PEM) or --new-key FILE to generate a \
                 key pair"
            );
        }
        if let Some(dir) = &self.data_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut config = EmulatorConfig::default();
        config.ddl = self.ddl;
        config.public_keys = public_keys;
        config.commit_delay = self.commit_delay;
        config.data_dir = self.data_dir;
        config.port = self.port;
        config.sink = self.sink;
        config.limits = self.limits;
        config.strict_offsets = true;
        // Listened for before the line announces the server (see `signal::terminated`).
        let stop = terminated();
        let emulator = Emulator::start(config)
            .await
            .context("cannot start the emulator")?;
        println!("listening on {}", emulator.url());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        stop.await;
        emulator.shutdown().await;
        Ok(())
    }
}

/// The text of a file an option names (`--ddl`, `--public-key`, `--config`), at most `limit`
/// bytes, read as the emulator reads its own (`snowpipe_emulator::option_file::read`: a
/// device or a FIFO is never read whole nor waited on without end).
///
/// # Errors
/// When it cannot be read, holds more than `limit` or is not UTF-8; the message names the
/// file and `what`.
pub fn read_option_file(path: &Path, what: &str, limit: u64) -> Result<String> {
    let bytes = snowpipe_emulator::option_file::read(path, what, limit)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| {
        format!(
            "cannot read {what} {}: it is not UTF-8 text",
            path.display()
        )
    })
}

#[cfg(test)]
mod ownership_tests {
    use super::*;
    use anyhow::anyhow;
    use snowpipe_streaming::{Error, OffsetToken};

    fn lost(token: Option<&str>) -> Error {
        Error::OwnershipLost {
            channel: "ORDERS_CHANNEL_0".into(),
            reason: "the server answered STALE_CONTINUATION_TOKEN_SEQUENCER".into(),
            last_committed: token.map(|t| OffsetToken::new(t).unwrap()),
            source: None,
        }
    }

    #[test]
    fn ownership_lost_is_found_under_contexts_and_named_in_one_line() {
        let e = anyhow::Error::new(lost(Some("order_1234")))
            .context("append to ORDERS_CHANNEL_0 failed")
            .context("instance 0 failed");
        assert!(is_ownership_lost(&e));
        let line = ownership_lost_line(&e).unwrap();
        assert_eq!(
            line,
            "error: ownership lost: channel ORDERS_CHANNEL_0 was opened by another writer; last \
             committed offset token \"order_1234\"; stopping without writing more (run one \
             writer per channel)"
        );
        assert!(!line.contains('\n'));

        let e = anyhow::Error::new(lost(None)).context("flush failed");
        let line = ownership_lost_line(&e).unwrap();
        assert!(line.contains("channel ORDERS_CHANNEL_0 "), "{line}");
        assert!(line.contains("offset token none;"), "{line}");
    }

    #[test]
    fn ownership_lost_is_found_as_the_shared_source_of_another_error() {
        let e = anyhow::Error::new(Error::ChannelInvalidated {
            channel: "C".into(),
            reason: "fenced".into(),
            last_committed: None,
            source: Some(Arc::new(lost(Some("7")))),
        });
        let line = ownership_lost_line(&e).unwrap();
        assert!(line.contains("channel ORDERS_CHANNEL_0 "), "{line}");
        assert!(line.contains("token \"7\";"), "{line}");
    }

    #[test]
    fn other_errors_are_not_ownership_lost() {
        let invalidated = anyhow::Error::new(Error::ChannelInvalidated {
            channel: "ORDERS_CHANNEL_0".into(),
            reason: "the server invalidated it".into(),
            last_committed: Some(OffsetToken::new("order_1234").unwrap()),
            source: None,
        })
        .context("append failed");
        assert!(!is_ownership_lost(&invalidated));
        assert_eq!(ownership_lost_line(&invalidated), None);
        // The words alone are not the error: only the SDK's variant counts.
        let text = anyhow!("channel C is now written by another client");
        assert!(!is_ownership_lost(&text));
    }
}

#[cfg(test)]
mod tests {
    use super::{format_table, thousands};

    #[test]
    fn a_table_aligns_labels_left_and_number_columns_right() {
        let t = format_table(
            &["NAME", "N", "NOTE", "USD"],
            &[
                vec!["Vail".into(), "1,234".into(), "ok".into(), "-".into()],
                vec![
                    "Beaver Creek".into(),
                    "5".into(),
                    "late".into(),
                    "-12.50".into(),
                ],
            ],
        );
        assert_eq!(
            t,
            "  NAME              N  NOTE     USD\n  \
             ------------  -----  ----  ------\n  \
             Vail          1,234  ok         -\n  \
             Beaver Creek      5  late  -12.50\n"
        );
    }

    #[test]
    fn a_label_column_of_numbers_stays_left_and_an_empty_table_is_its_header() {
        let t = format_table(&["ID", "N"], &[vec!["7".into(), "10".into()]]);
        assert_eq!(t, "  ID   N\n  --  --\n  7   10\n");
        assert_eq!(format_table(&["A"], &[]), "  A\n  -\n");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
