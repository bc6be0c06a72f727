//! `config.properties`: the official example's tuning keys.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The settings of `config.properties` (defaults: the file shipped next to this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    /// `orders.batch.size`: orders generated and appended per batch.
    pub orders_batch_size: u64,
    /// `max.client.lag` (seconds): how long rows may wait in the client before they are sent.
    pub max_client_lag: Duration,
    /// `num.orders.per.batch`: orders to stream when `--orders` is not given.
    pub default_orders: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            orders_batch_size: 10_000,
            max_client_lag: Duration::from_secs(1),
            default_orders: 100,
        }
    }
}

impl Settings {
    /// Reads `path`, or returns the defaults when `None`.
    ///
    /// # Errors
    /// When the file cannot be read or a value is invalid.
    pub(super) fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Ok(Self::default()),
            Some(p) => {
                let text = crate::common::read_option_file(
                    p,
                    "config file",
                    snowpipe_emulator::option_file::MAX_SMALL_FILE_BYTES,
                )?;
                Self::parse(&text).with_context(|| format!("in config file {}", p.display()))
            }
        }
    }

    /// Parses Java-properties text (`key=value` or `key: value`, `#` / `!` comments). Unknown
    /// keys are ignored with a warning, so a file shared with the official SDK works.
    ///
    /// # Errors
    /// When a known key has an invalid value.
    pub(super) fn parse(text: &str) -> Result<Self> {
        let mut s = Self::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                bail!("line {}: expected key=value, found {line:?}", n + 1);
            };
            let (key, value) = (key.trim(), value.trim());
            let number = || -> Result<u64> {
                match value.parse::<u64>() {
                    Ok(v) if v > 0 => Ok(v),
                    _ => bail!(
                        "line {}: {key} must be a whole number above 0, found {value:?}",
                        n + 1
                    ),
                }
            };
            match key {
                "orders.batch.size" => s.orders_batch_size = number()?,
                "max.client.lag" => {
                    let secs = number()?;
                    if secs > 600 {
                        bail!(
                            "line {}: max.client.lag is in seconds and at most 600, found {secs}",
                            n + 1
                        );
                    }
                    s.max_client_lag = Duration::from_secs(secs);
                }
                "num.orders.per.batch" => s.default_orders = number()?,
                other => tracing::warn!(key = other, "config: unknown key ignored"),
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_the_default() {
        let shipped = Settings::parse(include_str!("config.properties")).unwrap();
        assert_eq!(shipped, Settings::default());
    }

    #[test]
    fn parses_the_seed_keys_and_rejects_bad_values() {
        let s = Settings::parse(
            "# comment\norders.batch.size = 500\nmax.client.lag=60\nnum.orders.per.batch: 7\nother=1\n",
        )
        .unwrap();
        assert_eq!(s.orders_batch_size, 500);
        assert_eq!(s.max_client_lag, Duration::from_secs(60));
        assert_eq!(s.default_orders, 7);
        let err = Settings::parse("orders.batch.size=ten").unwrap_err();
        assert!(err.to_string().contains("orders.batch.size"), "{err}");
        assert!(Settings::parse("orders.batch.size=0").is_err());
        assert!(Settings::parse("max.client.lag=601").is_err());
        assert!(Settings::parse("just words").is_err());
    }
}
