//! Every flag of a binary from an environment variable: `--connector-config` of a binary with
//! the prefix `SNOWPIPE_KAFKA_` is `SNOWPIPE_KAFKA_CONNECTOR_CONFIG`.
//!
//! The rules, the same in every binary:
//! - The variable is the prefix and the flag's long name, upper-cased, `-` as `_`; a flag with
//!   no long name (`-X`) takes its argument's id (`properties` → `…_PROPERTIES`).
//! - A flag on the command line wins over its variable.
//! - A repeated flag's variable holds its values comma-separated (`SNOWPIPE_KAFKA_TOPIC=a,b`).
//!   For a `KEY=VALUE` flag a piece without `=` continues the value before it, so
//!   `bootstrap.servers=h1:9092,h2:9092` stays one property; `\,` writes a comma inside a
//!   value and `\\` a backslash (any other backslash is kept as written).
//! - A secret's value ([`is_secret_key`]: passwords, client secrets, inline keys) is never cut
//!   and never shown: it is taken as written up to the end of the variable, its commas
//!   escaped. An unescaped comma after a secret's `=` could be part of it or start another
//!   property, so the variable is refused, naming the key and this rule and nothing of the
//!   value: put the secret last (one a variable), or in a file of properties.
//! - A switch's variable is `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
//! - `--help` names each variable, never its value (values may be secrets).
//! - The variables apply to the arguments of the command line's own level: with a subcommand
//!   (`snowpipe-kafka check …`) to that subcommand's, unless it is one of the subcommands the
//!   binary leaves out (lab tools, whose flags mean something else).
//!
//! Clap reads a single-valued flag's variable itself; a repeated flag's values are split here
//! and put on the command line before clap parses it (clap would split a command-line value
//! too if it were told to split the variable's).

use std::ffi::OsString;

use clap::{ArgAction, Command};

use crate::log::LogFormat;

/// The variable of the argument `arg` under `prefix`, or `None` for a positional argument
/// and for `--help`/`--version`.
pub fn var_name(prefix: &str, arg: &clap::Arg) -> Option<String> {
    if arg.is_positional()
        || matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpLong | ArgAction::HelpShort | ArgAction::Version
        )
    {
        return None;
    }
    let name = arg
        .get_long()
        .map(str::to_owned)
        .unwrap_or_else(|| arg.get_id().as_str().to_owned());
    Some(format!("{prefix}{}", name.to_uppercase().replace('-', "_")))
}

/// The variable of the long flag `long` (`"--connector-config"` or `"connector-config"`)
/// under `prefix`, as [`var_name`] names it.
pub fn var_for_flag(prefix: &str, long: &str) -> String {
    format!(
        "{prefix}{}",
        long.trim_start_matches('-')
            .to_uppercase()
            .replace('-', "_")
    )
}

/// Whether the long flag `long`'s variable under `prefix` is set (to anything but an empty
/// string): a configuration file a binary merges in comes after the environment.
pub fn is_set(prefix: &str, long: &str) -> bool {
    std::env::var_os(var_for_flag(prefix, long)).is_some_and(|v| !v.is_empty())
}

/// Parses `argv` into `C` with every flag also read from its variable (the rules are the
/// module's). `skip` names subcommands whose flags take no variables.
///
/// # Errors
/// Clap's, as `C::try_parse_from` gives them (print with `exit()`), including a variable
/// whose value the flag refuses (named by clap as the variable).
pub fn try_parse<C: clap::Parser>(
    prefix: &str,
    argv: Vec<OsString>,
    skip: &[&str],
) -> Result<C, clap::Error> {
    try_parse_as(C::command(), prefix, argv, skip)
}

/// [`try_parse`] with `command` for `C`'s.
///
/// # Errors
/// As [`try_parse`].
pub fn try_parse_as<C: clap::FromArgMatches>(
    command: Command,
    prefix: &str,
    argv: Vec<OsString>,
    skip: &[&str],
) -> Result<C, clap::Error> {
    let level = level_of(&command, &argv, skip);
    let (command, argv) = match level {
        Level::None => (command, argv),
        Level::Top => {
            let argv = expand_repeated(&command, prefix, argv, 1)?;
            (with_env(command, prefix), argv)
        }
        Level::Sub(sub) => {
            let argv = expand_repeated(&sub, prefix, argv, 2)?;
            // A global flag (`--log-format`) reaches the subcommand with its variable.
            let command = globals_with_env(command, prefix)
                .mut_subcommand(sub.get_name(), |s| with_env(s, prefix));
            (command, argv)
        }
    };
    let mut matches = command.try_get_matches_from(argv)?;
    C::from_arg_matches_mut(&mut matches)
}

/// [`try_parse`], exiting as clap does on an error or `--help`. With the JSON log format
/// (`--log-format json` or `<prefix>LOG_FORMAT=json`) an error is one JSON object on stderr
/// (`crate::log::lines`), its exit status clap's.
pub fn parse<C: clap::Parser>(prefix: &str, argv: Vec<OsString>, skip: &[&str]) -> C {
    parse_as(C::command(), prefix, argv, skip)
}

/// [`parse`] with `command` for `C`'s (a generic command line named by its binary:
/// [`crate::invocation::Invocation`]).
pub fn parse_as<C: clap::FromArgMatches>(
    command: Command,
    prefix: &str,
    argv: Vec<OsString>,
    skip: &[&str],
) -> C {
    let json = LogFormat::from_args(&argv, prefix) == LogFormat::Json;
    try_parse_as(command, prefix, argv, skip).unwrap_or_else(|e| {
        if json && e.use_stderr() {
            let target = prefix.trim_end_matches('_').to_lowercase();
            crate::log::lines::clap_error_json(&target, &e)
        }
        e.exit()
    })
}

/// Which arguments the variables apply to.
enum Level {
    /// None (a skipped subcommand).
    None,
    /// The command's own.
    Top,
    /// This subcommand's.
    Sub(Box<Command>),
}

/// The level of `argv`: a subcommand named first, else the command itself.
fn level_of(command: &Command, argv: &[OsString], skip: &[&str]) -> Level {
    let first = argv.get(1).and_then(|a| a.to_str());
    let sub = first.and_then(|first| {
        command
            .get_subcommands()
            .find(|s| s.get_name() == first || s.get_all_aliases().any(|a| a == first))
    });
    match sub {
        Some(s) if skip.contains(&s.get_name()) => Level::None,
        Some(s) => Level::Sub(Box::new(s.clone())),
        None => Level::Top,
    }
}

/// `command` with the variable of each of its global arguments set (clap copies a global
/// argument into each subcommand, so its `--help` names the variable too).
fn globals_with_env(command: Command, prefix: &str) -> Command {
    let globals: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().clone())
        .collect();
    globals.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| with_env_arg(arg, prefix))
    })
}

/// `command` with each argument's variable set (shown in `--help` without its value); an
/// argument that already names a variable keeps it.
pub fn with_env(command: Command, prefix: &str) -> Command {
    command.mut_args(|arg| with_env_arg(arg, prefix))
}

/// `arg` with its variable set, unless it names one already.
fn with_env_arg(arg: clap::Arg, prefix: &str) -> clap::Arg {
    if arg.get_env().is_some() {
        return arg;
    }
    match var_name(prefix, &arg) {
        // Clap keeps the names as `&'static str`; a binary sets them once, at start.
        Some(var) => {
            let arg = arg
                .env(&*Box::leak(var.into_boxed_str()))
                .hide_env_values(true);
            // A switch's variable reads `1`/`0`, `yes`/`no`, `on`/`off` too.
            if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
                arg.value_parser(clap::builder::BoolishValueParser::new())
            } else {
                arg
            }
        }
        None => arg,
    }
}

/// `argv` with the values of each repeated flag absent from it taken from its variable,
/// comma-separated (the rules are the module's), placed after the argument at `at`.
///
/// # Errors
/// A `KEY=VALUE` variable where a secret's value is followed by an unescaped comma, naming
/// the variable and the key, never the value.
pub fn expand_repeated(
    command: &Command,
    prefix: &str,
    argv: Vec<OsString>,
    at: usize,
) -> Result<Vec<OsString>, clap::Error> {
    let given: Vec<String> = argv
        .iter()
        .skip(at.min(argv.len()))
        .filter_map(|a| a.to_str())
        .map(str::to_owned)
        .collect();
    let mut added = Vec::new();
    for arg in command.get_arguments() {
        if !matches!(arg.get_action(), ArgAction::Append) || arg.get_env().is_some() {
            continue;
        }
        let Some(var) = var_name(prefix, arg) else {
            continue;
        };
        let on_command_line = given.iter().any(|g| {
            arg.get_long()
                .is_some_and(|l| g == &format!("--{l}") || g.starts_with(&format!("--{l}=")))
                || arg
                    .get_short()
                    .is_some_and(|s| g.starts_with(&format!("-{s}")))
        });
        if on_command_line {
            continue;
        }
        let Some(value) = std::env::var(&var).ok().filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let key_value = arg
            .get_value_names()
            .is_some_and(|n| n.iter().any(|n| n.as_str().contains('=')));
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => continue,
        };
        let pieces = split_list(&value, key_value).map_err(|why| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("the variable {var}: {why}\n"),
            )
        })?;
        for piece in pieces {
            added.push(OsString::from(&flag));
            added.push(OsString::from(piece));
        }
    }
    let mut argv = argv;
    let at = at.min(argv.len());
    argv.splice(at..at, added);
    Ok(argv)
}

/// Whether a `KEY=VALUE` flag's key names a secret: passwords, client secrets, inline
/// private keys, JAAS configurations (which carry passwords), OAuth configurations.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("jaas")
        || key == "ssl.key.pem"
        || key == "ssl_key"
        || key.starts_with("sasl.oauthbearer.config")
        || key == "sasl.oauthbearer.assertion.private.key.passphrase"
        || key == "sasl.oauthbearer.assertion.private.key.pem"
}

/// A variable's comma-separated values, trimmed, empty ones dropped; with `key_value`, the
/// rules of the module: `\,` and `\\` escapes, a piece without `=` continuing the one before,
/// a secret's value whole and as written.
///
/// # Errors
/// With `key_value`, an unescaped comma after a secret's `=`: the reason names the key and
/// the rule, never any part of the value.
fn split_list(value: &str, key_value: bool) -> Result<Vec<String>, String> {
    if !key_value {
        return Ok(value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect());
    }
    let mut out: Vec<String> = Vec::new();
    for piece in unescaped_pieces(value) {
        if let Some(last) = out.last_mut() {
            if let Some(key) = secret_key(last) {
                return Err(format!(
                    "an unescaped ',' follows the start of the secret {key}=…, so where its \
                     value ends cannot be told (a secret may hold commas): write each ',' \
                     inside a value as '\\,' (and '\\' as '\\\\'), and put the secret last, \
                     one a variable; or give secrets in a file (snowpipe-kafka: \
                     --kafka-config). Nothing of the value is shown"
                ));
            }
            if piece.trim().is_empty() {
                continue;
            }
            if !piece.contains('=') {
                last.push(',');
                last.push_str(&piece);
                continue;
            }
        }
        out.push(piece);
    }
    Ok(out
        .into_iter()
        .map(|p| {
            let p = p.trim_start();
            if secret_key(p).is_some() {
                p.to_owned()
            } else {
                p.trim_end().to_owned()
            }
        })
        .filter(|p| !p.is_empty())
        .collect())
}

/// The key of `KEY=VALUE` when it names a secret.
fn secret_key(property: &str) -> Option<&str> {
    let (key, _) = property.split_once('=')?;
    let key = key.trim();
    is_secret_key(key).then_some(key)
}

/// `value` cut at each comma not escaped, with `\,` read as a comma and `\\` as a backslash
/// (any other backslash kept).
fn unescaped_pieces(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next @ (',' | '\\'))) => {
                current.push(next);
                chars.next();
            }
            (',', _) => out.push(std::mem::take(&mut current)),
            (c, _) => current.push(c),
        }
    }
    out.push(current);
    out
}

#[cfg(test)]
mod tests;
