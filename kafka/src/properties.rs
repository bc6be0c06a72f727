//! librdkafka properties the user gives: `-X KEY=VALUE` on the command line and
//! `--kafka-config FILE` (a Java-style `client.properties` file, as kcat's `-F` reads).
//!
//! Secrets (`sasl.password`, key passwords, OAuth client secrets, inline keys) belong in the
//! file: a command line is readable by every user of the machine (`ps`). Their values never
//! reach `Debug` output, logs or errors, and a secret given with `-X` draws a warning.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};

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
        let value = if is_secret(&self.key) {
            "<redacted>"
        } else {
            &self.value
        };
        write!(f, "{}={value}", self.key)
    }
}

/// Whether `key` holds a secret: passwords, client secrets, inline private keys, JAAS
/// configurations (which carry passwords).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("jaas")
        || key == "ssl.key.pem"
        || key == "ssl_key"
        || key.starts_with("sasl.oauthbearer.config")
}

/// `-X`'s value parser: `KEY=VALUE`.
///
/// # Errors
/// No `=`, or an empty key.
pub fn parse(s: &str) -> Result<Property, String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok(Property {
            key: k.trim().to_owned(),
            value: v.to_owned(),
        }),
        _ => Err(format!(
            "{:?} is not KEY=VALUE (a librdkafka property, e.g. session.timeout.ms=6000)",
            s.split_once('=').map_or(s, |(k, _)| k)
        )),
    }
}

/// The properties of a `client.properties` text: `KEY=VALUE` lines; blank lines and lines
/// starting with `#` or `!` are skipped; spaces around the key and the value are trimmed.
///
/// # Errors
/// A line that is not `KEY=VALUE`, naming its line number (never its value).
pub fn parse_file_text(text: &str) -> Result<Vec<Property>> {
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
            _ => bail!(
                "line {} is not KEY=VALUE (e.g. security.protocol=SASL_SSL)",
                n + 1
            ),
        }
    }
    Ok(out)
}

/// Reads `--kafka-config FILE`.
///
/// # Errors
/// The file cannot be read, or a line is not `KEY=VALUE`.
pub fn read_file(path: &Path) -> Result<Vec<Property>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --kafka-config {}", path.display()))?;
    parse_file_text(&text).with_context(|| format!("--kafka-config {}", path.display()))
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
pub fn tls_unavailable(properties: &[Property]) -> Option<String> {
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
        assert!(parse("novalue").is_err());
        assert!(parse("=x").is_err());
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
