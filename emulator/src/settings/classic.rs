//! Snowpipe Streaming Classic (SSV1) channels, seeded for `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET`.
//!
//! The emulator implements only the high-performance service, so a classic channel exists
//! only as a committed offset token given at start (`--classic-channel TABLE/CHANNEL=OFFSET`,
//! [`EmulatorConfig::classic_channels`](crate::EmulatorConfig::classic_channels)). The SQL
//! API's `SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET(...)` reads them (docs/protocol-types-and-sql.md
//! "Classic channel offset migration").

use std::fmt;
use std::str::FromStr;

/// A classic channel and its committed offset token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicChannel {
    /// The table: `TABLE`, or `DATABASE.SCHEMA.TABLE` to tell apart tables of the same name
    /// in different schemas. Compared ignoring case.
    pub table: String,
    /// The classic channel's name. Compared ignoring case (Snowflake upper-cases it).
    pub channel: String,
    /// The committed offset token; `None` for a channel that committed nothing.
    pub offset: Option<i64>,
}

impl ClassicChannel {
    /// Whether this is the channel `channel` of the table `name` in `database.schema`.
    pub(crate) fn matches(&self, database: &str, schema: &str, name: &str, channel: &str) -> bool {
        let qualified = format!("{database}.{schema}.{name}");
        (self.table.eq_ignore_ascii_case(name) || self.table.eq_ignore_ascii_case(&qualified))
            && self.channel.eq_ignore_ascii_case(channel)
    }
}

impl fmt::Display for ClassicChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}=", self.table, self.channel)?;
        match self.offset {
            Some(o) => write!(f, "{o}"),
            None => Ok(()),
        }
    }
}

impl FromStr for ClassicChannel {
    type Err = String;

    /// Parses `TABLE/CHANNEL=OFFSET` (an empty `OFFSET`: a channel with no committed token).
    ///
    /// # Errors
    /// A message naming the expected form for a missing `/` or `=`, an empty table or
    /// channel, or an offset that is not a non-negative integer.
    fn from_str(s: &str) -> Result<Self, String> {
        let form = "expected TABLE/CHANNEL=OFFSET (e.g. ORDERS/orders_0=41)";
        let (table, rest) = s
            .split_once('/')
            .ok_or_else(|| format!("classic channel {s:?}: no '/'; {form}"))?;
        let (channel, offset) = rest
            .rsplit_once('=')
            .ok_or_else(|| format!("classic channel {s:?}: no '='; {form}"))?;
        if table.is_empty() || channel.is_empty() {
            return Err(format!(
                "classic channel {s:?}: empty table or channel; {form}"
            ));
        }
        let offset = match offset {
            "" => None,
            o => Some(o.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| {
                format!("classic channel {s:?}: offset {o:?} is not a non-negative integer; {form}")
            })?),
        };
        Ok(Self {
            table: table.to_owned(),
            channel: channel.to_owned(),
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_name_the_form() {
        for (spec, parsed) in [
            ("T/t_0=41", Some(("T", "t_0", Some(41)))),
            ("D.S.T/a=b_0=7", Some(("D.S.T", "a=b_0", Some(7)))),
            ("T/c=", Some(("T", "c", None))),
            ("T/c", None),
            ("Tc=1", None),
            ("/c=1", None),
            ("T/=1", None),
            ("T/c=-1", None),
            ("T/c=x", None),
        ] {
            let got = spec.parse::<ClassicChannel>();
            match parsed {
                Some((table, channel, offset)) => assert_eq!(
                    got.unwrap(),
                    ClassicChannel {
                        table: table.into(),
                        channel: channel.into(),
                        offset
                    },
                    "{spec}"
                ),
                None => assert!(got.unwrap_err().contains("TABLE/CHANNEL=OFFSET"), "{spec}"),
            }
        }
    }

    #[test]
    fn tables_and_channels_match_ignoring_case() {
        let c: ClassicChannel = "orders/Orders_0=1".parse().unwrap();
        assert!(c.matches("D", "S", "ORDERS", "ORDERS_0"));
        let q: ClassicChannel = "d.s.orders/o_0=1".parse().unwrap();
        assert!(q.matches("D", "S", "ORDERS", "O_0"));
        assert!(!q.matches("D", "OTHER", "ORDERS", "O_0"));
        assert!(!c.matches("D", "S", "ORDERS", "ORDERS_1"));
    }
}
