//! `--connector-config FILE`: Snowflake's Kafka connector's own configuration read as this
//! sink's options, so a team points the sink at the file it already runs the connector with
//! (a Kafka Connect JSON document `{"name": …, "config": {…}}`, the bare `config` object, or a
//! `.properties` file).
//!
//! The file's keys become command-line options, placed after the user's: where the command
//! line gives an option, it wins. The Snowflake connection (URL, user, key, passphrase, role)
//! never becomes an option: it goes to the client builder ([`Connection`], redacted in `Debug`),
//! and the registry's `basic.auth.user.info`, parsed, to the sink's settings as they are
//! (`SinkArgs::registry_auth`, a [`BasicAuth`](crate::formats::registry::BasicAuth) whose `Debug` shows no secret), or, with
//! `basic.auth.credentials.source=SASL_INHERIT`, the word to take the Kafka login's
//! (`SinkArgs::registry_auth_inherit`). A `.properties` file is read as Java reads it
//! (escapes, continued lines: `java_properties`). Every key not taken is listed once, by name, at
//! start (never its value). Key names and values are the connector's (`shared/kafka-connector.md`,
//! the connector's `Utils.java` and `SnowflakeSinkConnectorConfig.java`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use snowpipe_cli_support::env::{is_set, var_for_flag};

use crate::error::{fail, Context, Error, Result};

mod java_properties;
mod translate;

use java_properties::parse_properties;
pub(crate) use translate::Connection;
pub use translate::{translate, ConnectorConfig};

/// The prefix of the variables every option of `snowpipe-kafka` (and of `check`) is also read
/// from: `--connector-config` is `SNOWPIPE_KAFKA_CONNECTOR_CONFIG`
/// ([`snowpipe_cli_support::env`] has the rules). Here because a variable, like the command
/// line, wins over the connector's file.
pub const ENV_PREFIX: &str = "SNOWPIPE_KAFKA_";

/// Reads `path`: JSON when it starts with `{`, else `.properties`.
///
/// # Errors
/// A file that cannot be read or parsed, or a key whose value this sink cannot honour
/// ([`translate`]).
pub(crate) fn read(path: &Path) -> Result<ConnectorConfig> {
    let text = read_text(path, "--connector-config")?;
    let keys = parse(&text).with_context(Error::Config, || {
        format!("--connector-config {}", path.display())
    })?;
    // A file with the private key, a passphrase or a password; one without (the key in
    // `SNOWFLAKE_PRIVATE_KEY_FILE`, as a Kubernetes ConfigMap holds it) may be readable.
    if keys.keys().any(|k| holds_secret(k)) {
        crate::source::properties::warn_if_readable_by_others(path, "--connector-config");
    }
    translate(&keys).with_context(Error::Config, || {
        format!("--connector-config {}", path.display())
    })
}

/// Whether the connector's key `key` holds a secret (the private key, its passphrase, a
/// registry's or SASL's credentials).
fn holds_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "private.key",
        "passphrase",
        "password",
        "user.info",
        "jaas",
        "secret",
        "token",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// The most a configuration file given on the command line may hold: the connector's files
/// are kilobytes, and the file is read before anything else runs.
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// Reads the text of the file `flag` names, at most [`MAX_FILE_BYTES`]
/// (`snowpipe_cli_support::bounded_file`: opened without blocking, so a FIFO nobody writes to
/// is refused rather than waited on; a device, a sparse file or a directory is refused at the
/// limit instead of read without end).
///
/// # Errors
/// A file that cannot be read, is not UTF-8, is not a regular file that gave nothing, or is
/// larger than the limit; the message names `flag` and the file.
pub(crate) fn read_text(path: &Path, flag: &str) -> Result<String> {
    snowpipe_cli_support::bounded_file::read_text(path, "configuration file", MAX_FILE_BYTES)
        .with_context(Error::Config, || {
            format!("cannot read {flag} {}", path.display())
        })
}

/// The configuration's keys and values (as text).
///
/// # Errors
/// JSON that is not an object (or whose `config` is not), a `.properties` line that is a key
/// alone or has a malformed `\uXXXX` (`parse_properties`).
pub fn parse(text: &str) -> Result<BTreeMap<String, String>> {
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_properties(text)
    }
}

fn parse_json(text: &str) -> Result<BTreeMap<String, String>> {
    let doc: serde_json::Value = serde_json::from_str(text).context(Error::Config, "not JSON")?;
    let Some(top) = doc.as_object() else {
        fail!(
            Config,
            "the JSON is not an object: write {{\"name\": …, \"config\": {{…}}}}"
        );
    };
    let mut out = BTreeMap::new();
    let config = match top.get("config") {
        Some(serde_json::Value::Object(c)) => {
            if let Some(name) = top.get("name").and_then(serde_json::Value::as_str) {
                out.insert("name".to_owned(), name.to_owned());
            }
            c
        }
        Some(_) => fail!(
            Config,
            "\"config\" is not an object of connector properties"
        ),
        None => top,
    };
    for (k, v) in config {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// The command line with `--connector-config FILE`'s options added after the user's (an
/// option the user gave, on the command line or in its `SNOWPIPE_KAFKA_*` variable, is not
/// added again; topics and pipes go together), and the translated file. The file may also be
/// named by `SNOWPIPE_KAFKA_CONNECTOR_CONFIG`. Without either, the command line as it is.
///
/// # Errors
/// The file cannot be read or parsed, or a key's value cannot be honoured (as
/// [`translate`] says).
pub fn expand(argv: Vec<OsString>) -> Result<(Vec<OsString>, Option<ConnectorConfig>)> {
    let text: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let path = text.iter().enumerate().find_map(|(i, a)| {
        if a == "--connector-config" {
            text.get(i + 1).cloned()
        } else {
            a.strip_prefix("--connector-config=").map(str::to_owned)
        }
    });
    let path = path.or_else(|| {
        let var = var_for_flag(ENV_PREFIX, "--connector-config");
        std::env::var(var).ok().filter(|p| !p.trim().is_empty())
    });
    let Some(path) = path else {
        return Ok((argv, None));
    };
    let config = read(Path::new(&path))?;
    let given: Vec<String> = text
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or_default().to_owned())
        .collect();
    // A flag the command line gives, or its variable: both win over the file.
    let has = |f: &str| given.iter().any(|g| g == f) || is_set(ENV_PREFIX, f);
    let topic_flags = [
        "--topic",
        "--pipe",
        "--topic-regex",
        "--topic2table-map",
        "--topic2table-regex-replacement",
    ];
    let topics_given = topic_flags.iter().any(|f| has(f)) || has("--topic-map");
    let mut out = argv;
    for (flag, value) in &config.args {
        let skip = if topic_flags.contains(&flag.as_str()) {
            topics_given
        } else if flag == "--create-tables" {
            has(flag) || has("--no-create-tables")
        } else {
            has(flag)
        };
        if skip {
            continue;
        }
        out.push(flag.into());
        if let Some(v) = value {
            out.push(v.into());
        }
    }
    Ok((out, Some(config)))
}

#[cfg(test)]
mod tests;
