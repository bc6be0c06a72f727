//! librdkafka properties the user gives: `-X KEY=VALUE` on the command line and
//! `--kafka-config FILE` (a Java-style `client.properties` file, as kcat's `-F` reads).
//!
//! Secrets (`sasl.password`, key passwords, OAuth client secrets, inline keys) belong in the
//! file: a command line is readable by every user of the machine (`ps`), and so is a file
//! whose mode lets group or others read it (both draw a warning). Their values never reach
//! `Debug` output, logs or errors:
//!
//! * every property is checked against librdkafka alone, before any client is made
//!   ([`check`]), and a refusal names the key and librdkafka's reason with every quoted
//!   part taken out ([`redact`]): librdkafka quotes the value it refuses, truncated or not;
//! * keys of Java Kafka clients that librdkafka does not have (`sasl.jaas.config`,
//!   `basic.auth.*`, Java keystores) are refused with the librdkafka equivalent, since a
//!   Confluent Cloud `client.properties` has them and their values carry passwords;
//! * an error librdkafka gives when a client is made has every property's value cut out
//!   ([`scrub`]).

use std::fmt;
use std::path::Path;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use crate::error::{fail, Context, Error, Result};

/// One librdkafka property. `Debug` hides the value of a secret one.
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    /// The librdkafka name, e.g. `security.protocol`.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.key.is_empty() || is_secret(&self.key) {
            "<redacted>"
        } else {
            &self.value
        };
        write!(f, "{}={value}", self.key)
    }
}

/// Whether `key` holds a secret: passwords, client secrets, inline private keys, JAAS
/// configurations (which carry passwords). The same rule splits `SNOWPIPE_KAFKA_PROPERTIES`
/// (`snowpipe_cli_support::env`: a secret's value is never cut at a comma).
pub(crate) fn is_secret(key: &str) -> bool {
    snowpipe_cli_support::env::is_secret_key(key)
}

/// Keys of Java Kafka clients that librdkafka does not have, and what to write instead.
const JAVA_ONLY: &[(&str, &str)] = &[
    (
        "sasl.jaas.config",
        "librdkafka has no JAAS: write the login as sasl.mechanisms (PLAIN, SCRAM-SHA-256, \
         SCRAM-SHA-512), sasl.username and sasl.password (the username and password of the \
         JAAS line)",
    ),
    (
        "basic.auth.user.info",
        "it is a Schema Registry setting, not a Kafka one, and snowpipe-kafka reads JSON \
         messages with no Schema Registry: remove it",
    ),
    (
        "basic.auth.credentials.source",
        "it is a Schema Registry setting, not a Kafka one: remove it",
    ),
    (
        "schema.registry.url",
        "it is a Schema Registry setting, not a Kafka one: remove it",
    ),
    (
        "ssl.truststore.location",
        "librdkafka reads PEM, not Java trust stores: set ssl.ca.location to the CA \
         certificate (PEM), or leave it out to use the system's",
    ),
    (
        "ssl.truststore.password",
        "librdkafka reads PEM, not Java trust stores: set ssl.ca.location instead",
    ),
    (
        "ssl.truststore.type",
        "librdkafka reads PEM, not Java trust stores: set ssl.ca.location instead",
    ),
    (
        "ssl.keystore.type",
        "librdkafka reads a PKCS#12 key store (ssl.keystore.location, \
         ssl.keystore.password) or PEM (ssl.certificate.location, ssl.key.location)",
    ),
    (
        "key.deserializer",
        "a Java deserializer: snowpipe-kafka reads values as JSON; remove it",
    ),
    (
        "value.deserializer",
        "a Java deserializer: snowpipe-kafka reads values as JSON; remove it",
    ),
];

/// Checks each property alone against librdkafka, and refuses Java-only keys.
///
/// # Errors
/// The first property refused: its key, librdkafka's reason without any value
/// ([`redact`]), and the fix for a Java-only key. Never the value. A `-X` that is not
/// `KEY=VALUE` ([`parse`]), without repeating it.
pub(crate) fn check(properties: &[Property]) -> Result<()> {
    if properties.iter().any(|p| p.key.is_empty()) {
        fail!(
            Config,
            "a -X is not KEY=VALUE (no '=', or nothing before it): write a librdkafka property \
             as -X key=value, e.g. -X session.timeout.ms=6000 (what was given is not shown: it \
             may hold a secret)"
        );
    }
    for p in properties {
        if let Some((_, fix)) = JAVA_ONLY
            .iter()
            .find(|(k, _)| p.key.eq_ignore_ascii_case(k))
        {
            fail!(
                Config,
                "{} is a setting of Java Kafka clients that librdkafka does not have: {fix}",
                p.key
            );
        }
        let mut one = ClientConfig::new();
        one.set(&p.key, &p.value);
        if let Err(e) = one.create_native_config() {
            let why = match &e {
                KafkaError::ClientConfig(_, description, _, _) => redact(description, &p.key),
                other => redact(&other.to_string(), &p.key),
            };
            fail!(
                Config,
                "librdkafka refuses the property {}: {why} (the value is not shown; librdkafka's \
                 properties: CONFIGURATION.md of librdkafka 2.12)",
                p.key
            );
        }
    }
    Ok(())
}

/// `text` with every double-quoted part replaced by `"…"`, except the quoted `key`
/// (librdkafka quotes the value it refuses, and may cut it short, leaving the quote open).
pub(crate) fn redact(text: &str, key: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('"') {
            Some(close) if &after[..close] == key => {
                out.push('"');
                out.push_str(key);
                out.push('"');
                rest = &after[close + 1..];
            }
            Some(close) => {
                out.push_str("\"…\"");
                rest = &after[close + 1..];
            }
            None => {
                out.push_str("\"…");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` (an error librdkafka gave when a client was made) with every property's value cut
/// out, secret or not (a value of one or two characters is left: it cannot be told from the
/// rest of the text).
pub(crate) fn scrub(text: &str, properties: &[Property]) -> String {
    let mut out = text.to_owned();
    let mut values: Vec<&str> = properties
        .iter()
        .map(|p| p.value.as_str())
        .filter(|v| v.len() > 2)
        .collect();
    // The longest first: a value that contains a shorter one is cut whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        out = out.replace(v, "<value>");
    }
    out
}

/// Warns when `path`, a file of secrets that `flag` names (`--kafka-config`), can be read by
/// group or others.
pub(crate) fn warn_if_readable_by_others(path: &Path, flag: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "{flag} {} can be read by group or others (mode {mode:o}) and holds \
                     secrets: chmod 600 {}",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, flag);
}

/// `-X`'s value parser: `KEY=VALUE`. Text that is not (no `=`, or nothing before it) is kept
/// as a property without a key, which [`check`] refuses: the command-line parser would
/// repeat the whole text in its error, and a typo such as `-X sasl.password:…` holds a
/// secret.
///
/// # Errors
/// None (the signature is the command-line parser's).
pub(crate) fn parse(s: &str) -> Result<Property, String> {
    Ok(match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Property {
            key: k.trim().to_owned(),
            value: v.to_owned(),
        },
        _ => Property {
            key: String::new(),
            value: s.to_owned(),
        },
    })
}

/// The properties of a `client.properties` text: `KEY=VALUE` lines; blank lines and lines
/// starting with `#` or `!` are skipped; spaces around the key and the value are trimmed.
///
/// # Errors
/// A line that is not `KEY=VALUE`, naming its line number (never its value).
pub(crate) fn parse_file_text(text: &str) -> Result<Vec<Property>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => out.push(Property {
                key: k.trim().to_owned(),
                value: v.trim().to_owned(),
            }),
            _ => fail!(
                Config,
                "line {} is not KEY=VALUE (e.g. security.protocol=SASL_SSL)",
                n + 1
            ),
        }
    }
    Ok(out)
}

/// The properties of `--kafka-config FILE`, whose `text` the caller read (at most the 4 MiB
/// any configuration file may hold: `connector::config_file::read_text`), warning when the
/// file can be read by group or others.
///
/// # Errors
/// A line is not `KEY=VALUE`.
pub(crate) fn read_file(path: &Path, text: &str) -> Result<Vec<Property>> {
    warn_if_readable_by_others(path, "--kafka-config");
    parse_file_text(text).with_context(Error::Config, || {
        format!("--kafka-config {}", path.display())
    })
}

/// The secret keys among `-X` properties, to warn about.
pub fn secrets_on_command_line(properties: &[Property]) -> Vec<&str> {
    properties
        .iter()
        .filter(|p| is_secret(&p.key))
        .map(|p| p.key.as_str())
        .collect()
}

/// When `security.protocol` asks for TLS and this build has none: the error, with the fix.
pub(crate) fn tls_unavailable(properties: &[Property]) -> Option<String> {
    if cfg!(feature = "tls") {
        return None;
    }
    let protocol = properties
        .iter()
        .rev()
        .find(|p| p.key == "security.protocol")?;
    let wants_tls = matches!(
        protocol.value.to_ascii_lowercase().as_str(),
        "ssl" | "sasl_ssl"
    );
    wants_tls.then(|| {
        format!(
            "security.protocol={} needs TLS, and this build of snowpipe-kafka has none (librdkafka's \
             TLS needs OpenSSL, left out of the default build): build it with the `tls` feature, \
             e.g. `cargo install snowpipe-kafka --features tls` or `cargo build -p snowpipe-kafka \
             --release --features tls`",
            protocol.value
        )
    })
}

/// The Kafka client's SASL login among `properties` (`sasl.username` and `sasl.password`, the
/// last of each winning as in librdkafka), for `SASL_INHERIT`.
pub(crate) fn kafka_login(properties: &[Property]) -> Option<crate::formats::registry::BasicAuth> {
    let last = |key: &str| {
        properties
            .iter()
            .rev()
            .find(|p| p.key.eq_ignore_ascii_case(key))
            .map(|p| p.value.as_str())
    };
    Some(crate::formats::registry::BasicAuth::new(
        last("sasl.username")?,
        last("sasl.password")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_properties_are_key_equals_value() {
        let p = parse("session.timeout.ms=6000").unwrap();
        assert_eq!(
            (p.key.as_str(), p.value.as_str()),
            ("session.timeout.ms", "6000")
        );
        assert_eq!(parse("a=b=c").unwrap().value, "b=c");
        for typo in ["sasl.password:hunter2", "=hunter2"] {
            let p = parse(typo).unwrap();
            assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
            let err = format!("{:#}", check(&[parse("a=b").unwrap(), p]).unwrap_err());
            assert!(err.contains("a -X is not KEY=VALUE"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn a_properties_file_skips_comments_and_trims() {
        let text = "# Confluent Cloud\n\n! also a comment\nsecurity.protocol = SASL_SSL\n\
                    sasl.mechanisms=PLAIN\r\nsasl.password=p=w\n";
        let props = parse_file_text(text).unwrap();
        let pairs: Vec<_> = props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", "PLAIN"),
                ("sasl.password", "p=w")
            ]
        );
        let err = parse_file_text("a=b\nsasl.password hunter2\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(
            !msg.contains("hunter2"),
            "the error repeats the line: {msg}"
        );
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.jaas.config",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            let p = parse(&format!("{key}=hunter2")).unwrap();
            let shown = format!("{p:?} {:?}", vec![p.clone()]);
            assert!(!shown.contains("hunter2"), "{key}: {shown}");
            assert!(shown.contains(key), "{shown}");
            assert_eq!(secrets_on_command_line(&[p]), [key]);
        }
        let p = parse("sasl.username=alice").unwrap();
        assert_eq!(format!("{p:?}"), "sasl.username=alice");
        assert!(secrets_on_command_line(&[p]).is_empty());
    }

    #[test]
    fn refusals_name_the_key_and_the_fix_never_the_value() {
        let cases = [
            ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username='u' password='hunter2';", "sasl.username and sasl.password"),
            ("basic.auth.user.info", "KEY:hunter2", "Schema Registry"),
            ("ssl.truststore.location", "/etc/hunter2.jks", "ssl.ca.location"),
            ("session.timeout.ms", "hunter2", "session.timeout.ms"),
            ("sasl.pasword", "hunter2", "sasl.pasword"),
            ("compression.codec", "hunter2-hunter2-hunter2", "compression.codec"),
        ];
        for (key, value, names) in cases {
            let err = check(&[Property {
                key: key.into(),
                value: value.into(),
            }])
            .unwrap_err();
            let msg = format!("{err:#} {err:?}");
            assert!(!msg.contains("hunter2"), "{key}: {msg}");
            assert!(msg.contains(names), "{key}: {msg}");
        }
        assert!(check(&[parse("session.timeout.ms=6000").unwrap()]).is_ok());
        assert_eq!(
            redact(
                r#"Invalid value "hunt" for configuration property "k""#,
                "k"
            ),
            r#"Invalid value "…" for configuration property "k""#
        );
        assert_eq!(redact(r#"cut "hunter"#, "k"), r#"cut "…"#);
        let props = [
            parse("sasl.password=hunter2").unwrap(),
            parse("acks=1").unwrap(),
        ];
        assert_eq!(
            scrub("failed: hunter2 rejected, acks=1", &props),
            "failed: <value> rejected, acks=1"
        );
    }

    /// librdkafka itself: TLS and SCRAM exist exactly when the `tls` feature is on.
    #[test]
    fn librdkafka_speaks_tls_exactly_with_the_feature() {
        use rdkafka::config::ClientConfig;
        use rdkafka::consumer::BaseConsumer;
        let made = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("group.id", "g")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", "u")
            .set("sasl.password", "p")
            .create::<BaseConsumer>();
        assert_eq!(made.is_ok(), cfg!(feature = "tls"), "{:?}", made.err());
    }

    #[test]
    fn tls_without_the_feature_is_refused_with_the_fix() {
        let props = [parse("security.protocol=SASL_SSL").unwrap()];
        let refused = tls_unavailable(&props);
        if cfg!(feature = "tls") {
            assert_eq!(refused, None);
        } else {
            let msg = refused.expect("refused");
            assert!(msg.contains("--features tls"), "{msg}");
        }
        assert_eq!(
            tls_unavailable(&[parse("security.protocol=SASL_PLAINTEXT").unwrap()]),
            None
        );
        assert_eq!(tls_unavailable(&[]), None);
    }
}
