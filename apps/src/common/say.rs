//! The lines an application prints on stderr itself (its progress, its report, what it is
//! doing): as they always were with `--log-format text`; with `--log-format json` each line is
//! one JSON object in the logger's schema (`snowpipe_cli_support::log::lines`: `timestamp`,
//! `level`, `fields.message`, `target`), so a collector never meets a line it cannot parse.
//! A text of several lines (a report) is one event a line; blank lines are left out.
//!
//! `say!` is `eprintln!`, `say_warn!` the same at `WARN`, `say_block!` is `eprint!`
//! (a text that ends with its own newline); the target is the calling module's path.

use snowpipe_cli_support::log::{self, LogFormat};

/// Writes `text` on stderr as the module says; `newline`: end it with one in text format.
pub fn write(level: tracing::Level, target: &str, text: &str, newline: bool) {
    match log::format() {
        LogFormat::Text if newline => eprintln!("{text}"),
        LogFormat::Text => eprint!("{text}"),
        LogFormat::Json => {
            for line in text
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
            {
                log::notice(level, target, line);
            }
        }
    }
}

/// `eprintln!`, one JSON event a line with `--log-format json` (`INFO`).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::common::say::write(
            tracing::Level::INFO, module_path!(), &format!($($arg)*), true,
        )
    };
}

/// `eprintln!` of a warning, one JSON event a line with `--log-format json` (`WARN`).
macro_rules! say_warn {
    ($($arg:tt)*) => {
        $crate::common::say::write(
            tracing::Level::WARN, module_path!(), &format!($($arg)*), true,
        )
    };
}

/// `eprint!` (the text ends with its own newline), one JSON event a line with
/// `--log-format json` (`INFO`).
macro_rules! say_block {
    ($($arg:tt)*) => {
        $crate::common::say::write(
            tracing::Level::INFO, module_path!(), &format!($($arg)*), false,
        )
    };
}

pub(crate) use {say, say_block, say_warn};
