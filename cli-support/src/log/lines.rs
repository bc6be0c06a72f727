//! The lines a binary writes on stderr itself rather than through a `tracing` macro: its
//! periodic progress, its fatal error (the last line before a non-zero exit), a command-line
//! error and a panic. With `--log-format text` each is written as it always was; with
//! `--log-format json` each is one JSON object on one line, in the schema of the logger's
//! events (`timestamp`, `level`, `fields` with `message`, `target`), its figures as fields of
//! their own (arrays and objects where a line lists several), so a collector never meets a
//! line it cannot parse.
//!
//! The schema of the two events a collector most needs:
//! - progress, `level` `INFO`: `fields.message` is `"progress"`, then the binary's figures
//!   (the sink: `elapsed_s`, `memory_used_bytes`, `memory_budget_bytes`, `partitions`);
//! - the fatal error, `level` `ERROR`: `fields.message` is the error's own message,
//!   `fields.causes` its causes outermost first (`[]` when it has none), `fields.error` the
//!   whole chain as the text format prints it after `error: `.

use std::io::Write as _;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};

use super::LogFormat;

/// The format of the installed logger (`init`), read by the lines written here.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Records the format `init` installed (the first call wins, as the logger's does).
pub(super) fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
}

/// The format this process's lines are in: the one `init` installed, else text.
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Writes one JSON object on stderr in the logger's schema: `timestamp` (the logger's clock and
/// layout), `level`, `fields`, `target`. One write, so a line is never cut by another thread's.
pub fn json_event(level: tracing::Level, target: &str, fields: Map<String, Value>) {
    let mut timestamp = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let line = json!({
        "timestamp": timestamp,
        "level": level.as_str(),
        "fields": fields,
        "target": target,
    });
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// A periodic progress report: `text()` as its own line in text format; in JSON format an
/// `INFO` event of `target` whose message is `progress` and whose other fields are `fields`.
pub fn progress(target: &str, fields: Map<String, Value>, text: impl FnOnce() -> String) {
    match format() {
        LogFormat::Text => eprintln!("{}", text()),
        LogFormat::Json => {
            let mut all = Map::new();
            all.insert("message".into(), "progress".into());
            all.extend(fields);
            json_event(tracing::Level::INFO, target, all);
        }
    }
}

/// A line a binary prints to whoever runs it (`shutting down`, where its data goes): `text` as
/// it is in text format; in JSON format an event of `level` and `target` with `text` as its
/// message. Unlike a `tracing` event it is written whatever the filter.
pub fn notice(level: tracing::Level, target: &str, text: &str) {
    match format() {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => {
            let mut fields = Map::new();
            fields.insert("message".into(), text.into());
            json_event(level, target, fields);
        }
    }
}

/// The error that ends the process, as its chain of messages (outermost first): `error: a: b`
/// in text format; in JSON format an `ERROR` event of `target` (the module's schema).
pub fn fatal_chain(target: &str, chain: impl IntoIterator<Item = String>) {
    let chain: Vec<String> = chain.into_iter().collect();
    match format() {
        LogFormat::Text => eprintln!("error: {}", chain.join(": ")),
        LogFormat::Json => json_event(tracing::Level::ERROR, target, fatal_fields(&chain)),
    }
}

/// The fields of a fatal error's JSON object: `message`, `causes`, `error`.
fn fatal_fields(chain: &[String]) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "message".into(),
        chain.first().cloned().unwrap_or_default().into(),
    );
    fields.insert("causes".into(), chain.iter().skip(1).cloned().collect());
    fields.insert("error".into(), chain.join(": ").into());
    fields
}

/// [`fatal_chain`] of an error and its sources (`anyhow::Error::as_ref()` gives one): in text
/// format the line `error: {e:#}` anyhow prints.
pub fn fatal(target: &str, error: &(dyn std::error::Error + 'static)) {
    let chain = std::iter::successors(Some(error), |e| e.source()).map(ToString::to_string);
    fatal_chain(target, chain);
}

/// A command line clap refuses, in JSON format: an `ERROR` event whose message is clap's first
/// paragraph on one line (`the following required arguments were not provided: --brokers …`),
/// the rest (usage, the hint) as `help`, and `kind`. Exits as clap would.
pub(crate) fn clap_error_json(target: &str, error: &clap::Error) -> ! {
    json_event(tracing::Level::ERROR, target, clap_fields(error));
    std::process::exit(error.exit_code())
}

/// The fields of a refused command line's JSON object: `message`, `causes`, `kind`, `help`.
fn clap_fields(error: &clap::Error) -> Map<String, Value> {
    let text = error.render().to_string();
    let (first, rest) = text.trim().split_once("\n\n").unwrap_or((text.trim(), ""));
    let message: Vec<&str> = first.lines().map(str::trim).collect();
    let message = message.join(" ");
    let mut fields = Map::new();
    fields.insert(
        "message".into(),
        message.strip_prefix("error: ").unwrap_or(&message).into(),
    );
    fields.insert("causes".into(), Value::Array(Vec::new()));
    fields.insert("kind".into(), format!("{:?}", error.kind()).into());
    fields.insert("help".into(), rest.trim().into());
    fields
}

/// In JSON format a panic is one `ERROR` event of target `panic` (`message` `panicked`, `panic`
/// the payload, `location`), not the default hook's lines.
pub(super) fn json_panics() {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a payload that is not text)".to_owned());
        let mut fields = Map::new();
        fields.insert("message".into(), "panicked".into());
        fields.insert("panic".into(), payload.into());
        fields.insert(
            "location".into(),
            info.location().map(ToString::to_string).into(),
        );
        json_event(tracing::Level::ERROR, "panic", fields);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain's first message is `message`, the rest `causes` in order, `error` the text
    /// line's chain.
    #[test]
    fn a_fatal_error_keeps_its_causes_in_order() {
        let chain = ["cannot read a.csv", "permission denied", "os error 13"].map(String::from);
        let fields = fatal_fields(&chain);
        assert_eq!(fields["message"], "cannot read a.csv");
        assert_eq!(
            fields["causes"],
            json!(["permission denied", "os error 13"])
        );
        assert_eq!(
            fields["error"],
            "cannot read a.csv: permission denied: os error 13"
        );
        assert_eq!(fatal_fields(&chain[..1])["causes"], json!([]));
    }

    /// Clap's multi-line error: its first paragraph on one line (the missing flags named),
    /// the usage in `help`, no `error: ` prefix.
    #[test]
    fn a_refused_command_line_names_what_is_missing_on_one_line() {
        let command = clap::Command::new("tool")
            .arg(clap::Arg::new("brokers").long("brokers").required(true))
            .arg(clap::Arg::new("group").long("group").required(true));
        let error = command
            .try_get_matches_from(["tool"])
            .expect_err("missing flags");
        let fields = clap_fields(&error);
        let message = fields["message"].as_str().expect("message");
        assert!(
            message.starts_with("the following required arguments were not provided:")
                && message.contains("--brokers")
                && message.contains("--group")
                && !message.contains('\n'),
            "{message}"
        );
        assert_eq!(fields["kind"], "MissingRequiredArgument");
        assert!(
            fields["help"]
                .as_str()
                .is_some_and(|h| h.contains("Usage: tool")),
            "{fields:?}"
        );
    }
}
