//! Continuing Snowflake's Kafka connector: its channel names (`--connector-name`,
//! `--connector-naming`), so `snowpipe-kafka` opens the very channels the connector wrote and
//! resumes each partition at the connector's committed offset token + 1.
//!
//! The connector (`snowflakedb/snowflake-kafka-connector`) names a partition's channel:
//!
//! * **v4** (Snowpipe Streaming, high-performance architecture): `<NAME'>_<topic>_<partition>`
//!   (`internal/streaming/v2/service/PartitionChannelManager.java`, `makeChannelName`), where
//!   `NAME'` is the connector's `name` after `Utils.convertAppName`, which always applies the
//!   table-name rule with upper-casing (`Utils.java`, `deriveTableName(appName, true)`):
//!   `snowflake-sink` → `SNOWFLAKE_SINK_1996731346`.
//! * **v3** (Snowpipe Streaming Classic): `<topic>_<partition>`, or `<NAME'>_<topic>_<partition>`
//!   with `snowflake.streaming.channel.name.include.connector.name=true`
//!   (`SnowflakeSinkServiceV2.partitionChannelKey`, tag `v3.5.4`). v3's `convertAppName`
//!   applies the same rule *without* upper-casing (`Utils.generateValidNameFromMap`).
//!
//! The rule ([`sanitize`]): a valid identifier (`^[_a-zA-Z][_$a-zA-Z0-9]+$`, so at least two
//! characters) is kept (v4: upper-cased). Anything else: remove every `.*`; prefix `_` when
//! the first UTF-16 unit is not a letter or `_`; replace each UTF-16 unit outside
//! `[_$a-zA-Z0-9]` with `_` (a character outside the BMP is two units, so two `_`); append `_`
//! and `Math.abs(String.hashCode(name))` of the name as given (Java's hash over UTF-16 units,
//! wrapping 32-bit; `Math.abs(Integer.MIN_VALUE)` stays negative); v4 upper-cases the result
//! (ASCII only: nothing else is left).
//!
//! v3's channels belong to Snowpipe Streaming Classic, a different service from the
//! high-performance one this sink writes through: a v3 name opens a *new* channel on the pipe,
//! which has a committed token only once `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` copied the
//! classic channel's token into it (`--migrate-v3-offsets`, [`crate::connector::migrate_v3`]; kafka/README.md,
//! "From connector v3").

use std::fmt;

use clap::ValueEnum;

/// Which connector version's channel names `--connector-name` continues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Naming {
    /// Connector v4: `<sanitized, upper-cased NAME>_<topic>_<partition>`.
    #[default]
    V4,
    /// Connector v3 (classic channels, after `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET`):
    /// `<topic>_<partition>`.
    V3,
    /// Connector v3 with `snowflake.streaming.channel.name.include.connector.name=true`:
    /// `<sanitized NAME>_<topic>_<partition>` (v3's rule: not upper-cased).
    V3WithName,
}

/// A connector's `name`, as given in its configuration (`--connector-name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorName(String);

impl ConnectorName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as the connector's `naming` version uses it in channel names (`None` for v3,
    /// which leaves it out).
    pub fn prefix(&self, naming: Naming) -> Option<String> {
        match naming {
            Naming::V4 => Some(sanitize(&self.0, true)),
            Naming::V3 => None,
            Naming::V3WithName => Some(sanitize(&self.0, false)),
        }
    }

    /// The channel of `topic`/`partition` as the connector's `naming` version names it.
    pub fn channel_name(&self, naming: Naming, topic: &str, partition: i32) -> String {
        match self.prefix(naming) {
            Some(prefix) => format!("{prefix}_{topic}_{partition}"),
            None => format!("{topic}_{partition}"),
        }
    }

    /// The Kafka Connect consumer group of the connector (`connect-<name>`), which this sink
    /// never needs: it starts every partition from Snowflake's committed token.
    pub fn connect_group(&self) -> String {
        format!("connect-{}", self.0)
    }
}

impl fmt::Display for ConnectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `--connector-name`: the connector's `name` as written in its configuration.
///
/// # Errors
/// An empty name, or one that is empty once every `.*` is removed: the connector refuses both
/// (`SnowflakeErrors.ERROR_0020`, or a failure at start), so no channel was ever named after
/// them.
pub(crate) fn parse_name(s: &str) -> Result<ConnectorName, String> {
    if s.is_empty() {
        return Err(
            "the connector name is empty: give the connector's `name`, as in its \
                    configuration (e.g. --connector-name snowflake-sink)"
                .into(),
        );
    }
    if !is_identifier(s) && s.replace(".*", "").is_empty() {
        return Err(format!(
            "{s:?} is empty once `.*` is removed, and the connector fails to start with such a \
             name: give the connector's `name`, as in its configuration"
        ));
    }
    Ok(ConnectorName(s.to_owned()))
}

pub(crate) use crate::rows::normalize::fold_unquoted;

/// The connector's name rule (`Utils.java`); `upper`: v4's upper-casing.
///
/// `s` must not be empty once `.*` is removed unless it is a valid identifier (see
/// [`parse_name`]); such a name gives just `_<hash>`.
pub(crate) fn sanitize(s: &str, upper: bool) -> String {
    if is_identifier(s) {
        return if upper {
            s.to_ascii_uppercase()
        } else {
            s.to_owned()
        };
    }
    let hash = java_string_hash(s).wrapping_abs();
    let stripped = s.replace(".*", "");
    let units: Vec<u16> = stripped.encode_utf16().collect();
    let mut out = String::with_capacity(units.len() + 12);
    let ascii = |u: u16| u8::try_from(u).ok().filter(u8::is_ascii).map(char::from);
    let mut rest = &units[..];
    match units.first().copied().and_then(ascii) {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {
            out.push(c);
            rest = &units[1..];
        }
        _ => out.push('_'),
    }
    for &u in rest {
        match ascii(u) {
            Some(c) if c == '_' || c == '$' || c.is_ascii_alphanumeric() => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('_');
    out.push_str(&hash.to_string());
    if upper {
        out.make_ascii_uppercase();
    }
    out
}

/// `^[_a-zA-Z][_$a-zA-Z0-9]+$` (`Utils.isValidSnowflakeObjectIdentifier`).
fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && (b[0] == b'_' || b[0].is_ascii_alphabetic())
        && b[1..]
            .iter()
            .all(|&c| c == b'_' || c == b'$' || c.is_ascii_alphanumeric())
}

/// Java's `String.hashCode`: `s[0]·31^(n−1) + … + s[n−1]` over UTF-16 code units, in wrapping
/// 32-bit arithmetic.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// How the sink names a partition's channel: `<prefix>_<topic>_<partition>` (the prefix is
/// `--channel-prefix`, else the group), or the connector's name for it (`--connector-name`).
#[derive(Debug, Clone)]
pub enum ChannelNames {
    /// `<prefix>_<topic>_<partition>`.
    Prefixed(String),
    /// The channels of the connector of this name, as its version named them.
    Connector(ConnectorName, Naming),
}

impl ChannelNames {
    /// The channel of `topic`/`partition`.
    pub fn channel_name(&self, topic: &str, partition: i32) -> String {
        match self {
            Self::Prefixed(prefix) => format!("{prefix}_{topic}_{partition}"),
            Self::Connector(connector, naming) => connector.channel_name(*naming, topic, partition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name | v4 prefix | v3 prefix`, a case a line (`#`: a comment). The first five are from
    /// the connector's `UtilsTest.testConvertAppName` and its log (`SNOWFLAKE_SINK_1996731346`),
    /// the rest computed by the connector's `deriveTableName` / v3 `generateValidNameFromMap`
    /// run on a JVM (OpenJDK 17).
    const NAMES: &str = "\
snowflake-sink | SNOWFLAKE_SINK_1996731346 | snowflake_sink_1996731346
_aA1 | _AA1 | _aA1
-_aA1 | ___AA1_44483871 | ___aA1_44483871
_aA1- | _AA1__90688251 | _aA1__90688251
testApp.snowflake-connector | TESTAPP_SNOWFLAKE_CONNECTOR_36242259 | testApp_snowflake_connector_36242259
# Valid identifiers: only upper-cased (v3: unchanged).
orders_sink | ORDERS_SINK | orders_sink
MySink | MYSINK | MySink
A1 | A1 | A1
sink$1 | SINK$1 | sink$1
polygenelubricants | POLYGENELUBRICANTS | polygenelubricants
# One character is no identifier (the rule wants two).
a | A_97 | a_97
# Leading digit or `$`: a `_` before it.
1234 | _1234_1509442 | _1234_1509442
9lives | _9LIVES_1734846574 | _9lives_1734846574
$sink | _$SINK_36777143 | _$sink_36777143
# `.*` removed, but hashed with it.
orders.* | ORDERS_1234322273 | orders_1234322273
bird.* | BIRD_1388847051 | bird_1388847051
sink.*.v2 | SINK_V2_1439084229 | sink_v2_1439084229
..** | ____1415936 | ____1415936
my sink | MY_SINK_1450863751 | my_sink_1450863751
# Non-ASCII: one `_` per UTF-16 unit (two for a character outside the BMP).
Ünïcödé-sink | __N_C_D__SINK_177201803 | __n_c_d__sink_177201803
日本語 | _____25921943 | _____25921943
snow🚀sink | SNOW__SINK_1385088569 | snow__sink_1385088569
# hashCode = Integer.MIN_VALUE: Math.abs keeps it negative.
DESIGNING WORKHOUSES | DESIGNING_WORKHOUSES_-2147483648 | DESIGNING_WORKHOUSES_-2147483648
";

    #[test]
    fn names_are_sanitized_as_the_connector_does() {
        let cases = NAMES.lines().filter(|l| !l.starts_with('#'));
        for case in cases {
            let [name, v4, v3] = <[&str; 3]>::try_from(case.split(" | ").collect::<Vec<_>>())
                .unwrap_or_else(|_| panic!("{case:?} is not `name | v4 | v3`"));
            let n = parse_name(name).expect(name);
            assert_eq!(n.prefix(Naming::V4).as_deref(), Some(v4), "v4 {name:?}");
            assert_eq!(
                n.prefix(Naming::V3WithName).as_deref(),
                Some(v3),
                "v3 {name:?}"
            );
        }
    }

    #[test]
    fn java_hashes_wrap_over_utf16_units() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("snowflake-sink"), -1_996_731_346);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // U+1F680 is the surrogate pair D83D DE80.
        assert_eq!(
            java_string_hash("🚀"),
            0xD83D_i32.wrapping_mul(31).wrapping_add(0xDE80)
        );
    }

    #[test]
    fn channel_names_per_connector_version() {
        let n = parse_name("snowflake-sink").unwrap();
        let table = [
            (Naming::V4, "SNOWFLAKE_SINK_1996731346_orders_3"),
            (Naming::V3, "orders_3"),
            (Naming::V3WithName, "snowflake_sink_1996731346_orders_3"),
        ];
        for (naming, want) in table {
            assert_eq!(n.channel_name(naming, "orders", 3), want, "{naming:?}");
        }
        // The topic is kept as is.
        assert_eq!(
            n.channel_name(Naming::V4, "clicks.v2-eu", 0),
            "SNOWFLAKE_SINK_1996731346_clicks.v2-eu_0"
        );
        assert_eq!(n.connect_group(), "connect-snowflake-sink");
    }

    fn parse(extra: &str) -> Result<crate::cli::args::SinkArgs, clap::Error> {
        let base = "x --brokers h:9092 --topic orders --pipe P --database D --schema S";
        crate::cli::args::parse_args(format!("{base} {extra}").split_whitespace())
    }

    #[test]
    fn the_command_line_names_the_connectors_channels() {
        let table = [
            ("--group g", "g_orders_3"),
            ("--group g --channel-prefix p", "p_orders_3"),
            (
                "--group new --connector-name snowflake-sink",
                "SNOWFLAKE_SINK_1996731346_orders_3",
            ),
            (
                "--group new --connector-name snowflake-sink --connector-naming v4",
                "SNOWFLAKE_SINK_1996731346_orders_3",
            ),
            (
                "--group new --connector-name snowflake-sink --connector-naming v3",
                "orders_3",
            ),
            (
                "--group new --connector-name snowflake-sink --connector-naming v3-with-name",
                "snowflake_sink_1996731346_orders_3",
            ),
        ];
        for (args, want) in table {
            let sink = parse(args).expect(args);
            assert_eq!(sink.channel_name("orders", 3), want, "{args}");
        }
        let refused = [
            (
                "--group g --connector-name s --channel-prefix p",
                "--channel-prefix",
            ),
            ("--group g --connector-naming v3", "--connector-name"),
            ("--group g --connector-name .*", "connector"),
        ];
        for (args, why) in refused {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(why), "{args}: {e}");
        }
    }

    #[test]
    fn names_the_connector_refuses_are_refused() {
        for bad in ["", ".*", ".*.*"] {
            let e = parse_name(bad).unwrap_err();
            assert!(e.contains("connector"), "{bad:?}: {e}");
        }
    }
}
