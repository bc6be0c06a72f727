//! `--connector-config FILE`: Snowflake's Kafka connector's own configuration read as this
//! sink's options, so a team points the sink at the file it already runs the connector with
//! (a Kafka Connect JSON document `{"name": …, "config": {…}}`, the bare `config` object, or a
//! `.properties` file).
//!
//! The file's keys become command-line options, placed after the user's: where the command
//! line gives an option, it wins. The Snowflake connection (URL, user, key, passphrase, role)
//! never becomes an option: it goes to the client builder ([`Connection`], redacted in `Debug`),
//! and the registry's `basic.auth.user.info`, parsed, to the sink's settings as they are
//! (`SinkArgs::registry_auth`, a [`BasicAuth`] whose `Debug` shows no secret), or, with
//! `basic.auth.credentials.source=SASL_INHERIT`, the word to take the Kafka login's
//! (`SinkArgs::registry_auth_inherit`). A `.properties` file is read as Java reads it
//! (escapes, continued lines: `parse_properties`). Every key not taken is listed once, by name, at
//! start (never its value). Key names and values are the connector's (`shared/kafka-connector.md`,
//! the connector's `Utils.java` and `SnowflakeSinkConnectorConfig.java`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::connector::topic_table::{default_pipe, TopicTableMap};
use crate::formats::registry::BasicAuth;

/// The Snowflake connection a connector configuration names. `Debug` shows no key material.
#[derive(Clone, Default)]
pub struct Connection {
    /// `snowflake.url.name`, as an `https://` URL (or the `http(s)://` URL given).
    pub url: Option<String>,
    /// The account: the URL host's first label.
    pub account: Option<String>,
    /// `snowflake.user.name`.
    pub user: Option<String>,
    /// `snowflake.private.key` as a PEM document.
    pub private_key_pem: Option<String>,
    /// `snowflake.private.key.passphrase`.
    pub passphrase: Option<String>,
    /// `snowflake.role.name`.
    pub role: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("account", &self.account)
            .field("user", &self.user)
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("role", &self.role)
            .finish()
    }
}

impl Connection {
    /// `builder` with what the configuration names (the rest stays the profile's or the
    /// environment's).
    pub fn apply(
        &self,
        mut builder: snowpipe_streaming::ClientBuilder,
    ) -> snowpipe_streaming::ClientBuilder {
        if let Some(v) = &self.url {
            builder = builder.url(v);
        }
        if let Some(v) = &self.account {
            builder = builder.account(v);
        }
        if let Some(v) = &self.user {
            builder = builder.user(v);
        }
        if let Some(v) = &self.private_key_pem {
            builder = builder.private_key_pem(v);
        }
        if let Some(v) = &self.passphrase {
            builder = builder.private_key_passphrase(v);
        }
        if let Some(v) = &self.role {
            builder = builder.role(v);
        }
        builder
    }
}

/// A connector configuration, translated. `Debug` shows no secret.
#[derive(Default)]
pub struct ConnectorConfig {
    /// Command-line options (`--flag`, then its value when it takes one).
    pub args: Vec<(String, Option<String>)>,
    pub connection: Connection,
    /// The registry's credentials (`value.converter.basic.auth.user.info`).
    pub registry_auth: Option<BasicAuth>,
    /// `value.converter.basic.auth.credentials.source=SASL_INHERIT`: the registry's
    /// credentials are the Kafka login's (`sasl.username`, `sasl.password`).
    pub registry_auth_inherit: bool,
    /// Keys this sink has no equivalent for (names only).
    pub ignored: Vec<String>,
    /// How a taken key's meaning differs here (logged once at start).
    pub notes: Vec<String>,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("args", &self.args)
            .field("connection", &self.connection)
            .field("registry_auth", &self.registry_auth)
            .field("registry_auth_inherit", &self.registry_auth_inherit)
            .field("ignored", &self.ignored)
            .field("notes", &self.notes)
            .finish()
    }
}

/// Reads `path`: JSON when it starts with `{`, else `.properties`.
///
/// # Errors
/// A file that cannot be read or parsed, or a key whose value this sink cannot honour
/// ([`translate`]).
pub fn read(path: &Path) -> Result<ConnectorConfig> {
    // It may hold the private key and its passphrase.
    crate::kafka::properties::warn_if_readable_by_others(path);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --connector-config {}", path.display()))?;
    let keys = parse(&text).with_context(|| format!("--connector-config {}", path.display()))?;
    translate(&keys).with_context(|| format!("--connector-config {}", path.display()))
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
    let doc: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let Some(top) = doc.as_object() else {
        bail!("the JSON is not an object: write {{\"name\": …, \"config\": {{…}}}}");
    };
    let mut out = BTreeMap::new();
    let config = match top.get("config") {
        Some(serde_json::Value::Object(c)) => {
            if let Some(name) = top.get("name").and_then(serde_json::Value::as_str) {
                out.insert("name".to_owned(), name.to_owned());
            }
            c
        }
        Some(_) => bail!("\"config\" is not an object of connector properties"),
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

/// A `.properties` text read as Java's `Properties.load` reads it: lines end at `\n`, `\r\n`
/// or `\r`; a line ending in an odd number of backslashes goes on on the next (whose leading
/// whitespace is dropped); blank lines and lines starting with `#` or `!` are skipped; the key
/// ends at the first unescaped `=`, `:` or whitespace, and the whitespace and one `=` or `:`
/// after it are skipped; in keys and values `\t`, `\n`, `\r`, `\f` and `\uXXXX` are those
/// characters and a backslash before any other character stands for that character (`\\` is a
/// backslash, `\=` an `=`). The value keeps its trailing whitespace, as Java's does (the keys
/// this sink reads are trimmed by [`translate`]).
///
/// # Errors
/// A malformed `\uXXXX`, or a line that is a key alone (Java reads it as an empty value; here
/// it is most likely not a properties file at all), naming the line, never its text.
fn parse_properties(text: &str) -> Result<BTreeMap<String, String>> {
    const WHITE: [char; 3] = [' ', '\t', '\x0c'];
    let lines: Vec<&str> = natural_lines(text);
    let mut out = BTreeMap::new();
    let mut next = 0;
    while next < lines.len() {
        let number = next + 1;
        let mut line = lines[next].trim_start_matches(WHITE);
        next += 1;
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = String::new();
        loop {
            let trailing = line.len() - line.trim_end_matches('\\').len();
            if trailing % 2 == 0 {
                logical.push_str(line);
                break;
            }
            logical.push_str(&line[..line.len() - 1]);
            let Some(more) = lines.get(next) else {
                break;
            };
            next += 1;
            line = more.trim_start_matches(WHITE);
        }
        let (key, value) = split_entry(&logical).with_context(|| format!("line {number}"))?;
        out.insert(key, value);
    }
    Ok(out)
}

/// `text`'s lines, ended by `\n`, `\r\n` or `\r` (as Java's `Properties` reads them).
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(end) => {
                lines.push(&rest[..end]);
                let skip = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// A logical line's key and value, unescaped (Java's `Properties.load0` and `loadConvert`).
fn split_entry(line: &str) -> Result<(String, String)> {
    let chars: Vec<char> = line.chars().collect();
    let white = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let mut key_end = chars.len();
    let mut value_start = chars.len();
    let mut separated = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if !escaped && (c == '=' || c == ':') {
            (key_end, value_start, separated) = (i, i + 1, true);
            break;
        }
        if !escaped && white(c) {
            (key_end, value_start) = (i, i + 1);
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while let Some(&c) = chars.get(value_start) {
        if !white(c) {
            if separated || (c != '=' && c != ':') {
                break;
            }
            separated = true;
        }
        value_start += 1;
    }
    if !separated && value_start >= chars.len() {
        bail!("no `=` (write key=value)");
    }
    Ok((
        unescape(&chars[..key_end])?,
        unescape(&chars[value_start.min(chars.len())..])?,
    ))
}

/// Java's `Properties` escapes taken out of `text`.
fn unescape(text: &[char]) -> Result<String> {
    let mut units: Vec<u16> = Vec::with_capacity(text.len());
    let mut rest = text.iter();
    let mut buf = [0u16; 2];
    while let Some(&c) = rest.next() {
        let c = if c == '\\' {
            match rest.next() {
                // A backslash that ends the text (a continued last line): nothing.
                None => break,
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\x0c',
                Some('u') => {
                    let hex: String = rest.by_ref().take(4).collect();
                    let unit = u16::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .ok_or_else(|| {
                            anyhow::anyhow!("malformed \\uXXXX escape (four hex digits expected)")
                        })?;
                    units.push(unit);
                    continue;
                }
                Some(&other) => other,
            }
        } else {
            c
        };
        units.extend_from_slice(c.encode_utf16(&mut buf));
    }
    String::from_utf16(&units)
        .map_err(|_| anyhow::anyhow!("a \\uXXXX escape is half a surrogate pair"))
}

/// Keys of Kafka Connect itself, taken as they are (nothing to do here).
const FRAMEWORK: &[&str] = &["connector.class", "tasks.max", "name"];

/// The connector's keys → this sink's options.
///
/// # Errors
/// A key whose value this sink cannot honour without writing other rows than the connector
/// (e.g. JSON with inline schemas, v3 table-name sanitization with `topics.regex`), or a
/// `snowflake.topic2table.map` the connector refuses too, naming the fix.
pub fn translate(keys: &BTreeMap<String, String>) -> Result<ConnectorConfig> {
    let mut c = ConnectorConfig::default();
    let mut taken: Vec<&str> = FRAMEWORK.to_vec();
    let get = |k: &str| keys.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let flag = |c: &mut ConnectorConfig, f: &str, v: Option<&str>| {
        c.args.push((f.to_owned(), v.map(str::to_owned)));
    };
    // The connector reads its flags with `Boolean.parseBoolean`: `true` in any case is true,
    // any other value false. `is_off`: a flag that defaults to true and is given otherwise.
    let is_true = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let is_off = |k: &str| get(k).is_some_and(|v| !v.eq_ignore_ascii_case("true"));

    let name = get("name");
    if let Some(name) = name {
        flag(&mut c, "--connector-name", Some(name));
        flag(&mut c, "--group", Some(&format!("snowpipe-kafka-{name}")));
    }
    taken.extend([
        "topics",
        "topics.regex",
        "snowflake.topic2table.map",
        "snowflake.topic2table.map.regex.replacement",
    ]);
    let map_text = get("snowflake.topic2table.map");
    let replacement = is_true("snowflake.topic2table.map.regex.replacement");
    let map = TopicTableMap::parse(map_text.unwrap_or(""), replacement)
        .context("snowflake.topic2table.map")?;
    let sanitize = is_true("snowflake.compatibility.enable.autogenerated.table.name.sanitization");
    taken.push("snowflake.compatibility.enable.autogenerated.table.name.sanitization");
    for topic in get("topics")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let table = match map.table_of(topic).context("snowflake.topic2table.map")? {
            Some(table) => table,
            // No map: v4 takes the topic as it is, quoted; v3's rule sanitizes it.
            None if sanitize => crate::connector::naming::sanitize(topic, true),
            None => format!("\"{topic}\""),
        };
        flag(&mut c, "--topic", Some(topic));
        flag(&mut c, "--pipe", Some(&default_pipe(&table)));
    }
    // Topics found at run time get their table from the map when their partitions are
    // assigned, else v4's default (the topic, quoted).
    if let Some(regex) = get("topics.regex") {
        if sanitize {
            bail!(
                "topics.regex with snowflake.compatibility.enable.autogenerated.table.name.\
                 sanitization=true is not supported: the sanitized (v3) table names of topics \
                 found at run time are not derived here; list the topics in `topics`, or map \
                 them in snowflake.topic2table.map and drop the sanitization key"
            );
        }
        flag(&mut c, "--topic-regex", Some(regex));
        if let Some(m) = map_text {
            flag(&mut c, "--topic2table-map", Some(m));
            if replacement {
                flag(&mut c, "--topic2table-regex-replacement", None);
            }
        }
    }
    // The connector creates a missing table unless told `none` (its default is `snowflake`):
    // so does the sink, after the same existence check (`create_tables`). `--no-create-tables`
    // on the command line turns it off.
    taken.push("snowflake.autocreate.table.type");
    match get("snowflake.autocreate.table.type")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("none") => {}
        None | Some("snowflake") => flag(&mut c, "--create-tables", None),
        Some(other) => bail!(
            "snowflake.autocreate.table.type={other} is not supported: this sink creates \
             standard tables only (snowflake), or none; create the Iceberg table yourself and \
             drop the key"
        ),
    }
    // v3 → v4 offsets (`migrate_v3`).
    taken.extend([
        "snowflake.streaming.classic.offset.migration",
        "snowflake.streaming.classic.offset.migration.include.connector.name",
    ]);
    if let Some(v) = get("snowflake.streaming.classic.offset.migration") {
        let mode = crate::connector::migrate_v3::Mode::of_connector(v)?;
        if mode != crate::connector::migrate_v3::Mode::Skip {
            let value = clap::ValueEnum::to_possible_value(&mode)
                .map(|p| p.get_name().to_owned())
                .unwrap_or_default();
            flag(&mut c, "--migrate-v3-offsets", Some(&value));
            if is_true("snowflake.streaming.classic.offset.migration.include.connector.name") {
                flag(&mut c, "--migrate-v3-include-connector-name", None);
            }
        }
    }
    for (key, f) in [
        ("snowflake.database.name", "--database"),
        ("snowflake.schema.name", "--schema"),
        ("errors.deadletterqueue.topic.name", "--dead-letter-topic"),
    ] {
        taken.push(key);
        if let Some(v) = get(key) {
            flag(&mut c, f, Some(v));
        }
    }

    // Rows.
    taken.push("snowflake.enable.schematization");
    if is_off("snowflake.enable.schematization") {
        flag(&mut c, "--layout", Some("record-content"));
    }
    taken.push("snowflake.metadata.all");
    let metadata = !is_off("snowflake.metadata.all");
    if metadata {
        flag(&mut c, "--metadata", None);
    }
    // The per-field flags (the connector's `SnowflakeMetadataConfig`, `Boolean.parseBoolean`).
    for (key, option) in crate::rows::metadata_fields::MetadataFields::CONNECTOR_KEYS {
        taken.push(key);
        if is_off(key) && metadata {
            flag(&mut c, option, None);
        }
    }
    taken.push("snowflake.streaming.metadata.connectorPushTime");
    if is_off("snowflake.streaming.metadata.connectorPushTime") {
        flag(&mut c, "--no-push-time", None);
    }
    taken.push("snowflake.feature.structured.headers");
    if is_true("snowflake.feature.structured.headers") {
        flag(&mut c, "--structured-headers", None);
    }
    taken.push("snowflake.compatibility.enable.column.identifier.normalization");
    if is_true("snowflake.compatibility.enable.column.identifier.normalization") {
        flag(&mut c, "--normalize-columns", None);
    }
    taken.push("snowflake.validation");
    match get("snowflake.validation")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("server_side") => {}
        Some("client_side") => flag(&mut c, "--client-side-validation", None),
        Some(other) => bail!(
            "snowflake.validation={other}: the connector knows server_side (its default) and \
             client_side"
        ),
    }
    // Single message transforms run in the worker, before the connector: the rows depend on
    // them, and this sink runs none.
    taken.push("transforms");
    if let Some(t) = get("transforms") {
        bail!(
            "transforms={t}: Kafka Connect's single message transforms change each record before \
             the connector sees it, and this sink does not run them, so its rows would differ \
             (a field a transform drops would land). Apply the transforms upstream (a stream \
             processor writing another topic) and drop the transforms keys"
        );
    }
    taken.push("errors.deadletterqueue.context.headers.enable");
    if is_true("errors.deadletterqueue.context.headers.enable") {
        c.notes.push(
            "errors.deadletterqueue.context.headers.enable=true: dead letters carry this sink's \
             snowpipe.error, snowpipe.topic, snowpipe.partition and snowpipe.offset headers, not \
             Kafka Connect's __connect.errors.* ones"
                .into(),
        );
    }
    taken.push("behavior.on.null.values");
    match get("behavior.on.null.values")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("DEFAULT") => {}
        Some("IGNORE") => flag(&mut c, "--on-null-value", Some("skip")),
        Some(other) => {
            bail!("behavior.on.null.values={other}: the connector knows DEFAULT and IGNORE")
        }
    }
    taken.push("errors.tolerance");
    if get("errors.tolerance").is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        c.notes.push(
            "errors.tolerance=none: the connector's task stops at a bad record; this sink never \
             does: it dead-letters the record (errors.deadletterqueue.topic.name) or skips and \
             counts it"
                .into(),
        );
    }
    taken.extend(["errors.log.enable", "errors.log.include.messages"]);

    // Converters.
    taken.extend([
        "value.converter",
        "value.converter.schemas.enable",
        "value.converter.schema.registry.url",
        "value.converter.basic.auth.user.info",
        "value.converter.basic.auth.credentials.source",
    ]);
    // No `value.converter`: the Connect worker's, which this sink reads as JSON (its default).
    let format = get("value.converter")
        .map(|v| value_format_of("value.converter", v))
        .transpose()?;
    // The key means something only to the JSON converter; with no converter named, the
    // worker's is most often that one, with the envelope on.
    if format.is_none_or(|f| f == "json") && is_true("value.converter.schemas.enable") {
        bail!(
            "value.converter.schemas.enable=true (JSON with an inline schema envelope) is not \
             supported: the rows would be the envelope; produce plain JSON or Schema Registry \
             JSON Schema{}",
            if format.is_none() {
                " (no value.converter is named, so the Connect worker's JSON one is assumed: \
                 name yours if it is another)"
            } else {
                ""
            }
        );
    }
    if let Some(format) = format.filter(|f| *f != "json") {
        flag(&mut c, "--value-format", Some(format));
    }
    if let Some(url) = get("value.converter.schema.registry.url") {
        flag(&mut c, "--schema-registry-url", Some(url));
    }
    // Where the converter's registry credentials come from (Confluent's
    // `basic.auth.credentials.source`, `USER_INFO` by default).
    match get("value.converter.basic.auth.credentials.source")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("USER_INFO") => {
            if let Some(auth) = get("value.converter.basic.auth.user.info") {
                let auth = BasicAuth::parse(auth)
                    .map_err(|e| anyhow::anyhow!("value.converter.basic.auth.user.info: {e}"))?;
                c.registry_auth = Some(auth);
            }
        }
        // The Kafka client's SASL login: here the sink's own Kafka properties (librdkafka has
        // no JAAS, so `sasl.username`/`sasl.password` stand for the JAAS line's).
        Some("SASL_INHERIT") => {
            c.registry_auth_inherit = true;
            if get("value.converter.basic.auth.user.info").is_some() {
                c.notes.push(
                    "value.converter.basic.auth.user.info is not used: \
                     value.converter.basic.auth.credentials.source=SASL_INHERIT takes the \
                     registry's credentials from the Kafka login (sasl.username, sasl.password)"
                        .into(),
                );
            }
        }
        Some("URL") => bail!(
            "value.converter.basic.auth.credentials.source=URL (credentials in the registry's \
             URL) is not supported: this sink keeps credentials out of URLs; take them out of \
             value.converter.schema.registry.url and write them as \
             value.converter.basic.auth.user.info=USER:PASSWORD (or give \
             --schema-registry-basic-auth), with the source USER_INFO"
        ),
        Some(other) => bail!(
            "value.converter.basic.auth.credentials.source={other}: the sink knows USER_INFO \
             (value.converter.basic.auth.user.info) and SASL_INHERIT (the Kafka login's \
             sasl.username and sasl.password)"
        ),
    }
    taken.extend([
        "key.converter",
        "key.converter.schemas.enable",
        "key.converter.schema.registry.url",
        "key.converter.basic.auth.user.info",
        "key.converter.basic.auth.credentials.source",
    ]);
    let key = match get("key.converter") {
        // The worker's, which the file does not say: the StringConverter is assumed.
        None => {
            c.notes.push(
                "no key.converter: keys are read as the StringConverter reads them (UTF-8 text); \
                 name the worker's key.converter if it is another"
                    .into(),
            );
            "string"
        }
        Some("org.apache.kafka.connect.converters.ByteArrayConverter") => "bytes",
        Some(conv) => value_format_of("key.converter", conv)?,
    };
    // A JsonConverter reads `{"schema", "payload"}` envelopes unless its `schemas.enable` is
    // false (its default is true), and this sink reads none.
    let plain_json = |converter: &str, what: &str| -> Result<()> {
        let key = format!("{converter}.schemas.enable");
        if get(&key).is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            return Ok(());
        }
        bail!(
            "{converter} is the JsonConverter with schemas.enable (its default): {what} would be \
             read as {{\"schema\", \"payload\"}} envelopes, which this sink does not read; set \
             {key}=false if they are plain JSON"
        )
    };
    if key == "json" {
        plain_json("key.converter", "keys")?;
    }
    if matches!(key, "avro" | "protobuf" | "json-schema") {
        let urls = (
            get("key.converter.schema.registry.url"),
            get("value.converter.schema.registry.url"),
        );
        if let (Some(k), Some(v)) = urls {
            if k != v {
                // A URL may carry credentials: shown redacted, as the registry client shows it.
                let (k, v) = (
                    crate::formats::registry::redact_url(k),
                    crate::formats::registry::redact_url(v),
                );
                bail!(
                    "key.converter.schema.registry.url ({k}) is not value.converter's ({v}): this \
                     sink reads one Schema Registry for keys and values"
                );
            }
        }
    }
    flag(&mut c, "--key-converter", Some(key));
    taken.extend(["header.converter", "header.converter.schemas.enable"]);
    let header = match get("header.converter") {
        None | Some("org.apache.kafka.connect.storage.SimpleHeaderConverter") => "simple",
        Some("org.apache.kafka.connect.storage.StringConverter") => "string",
        Some("org.apache.kafka.connect.converters.ByteArrayConverter") => "bytes",
        Some("org.apache.kafka.connect.json.JsonConverter") => {
            plain_json("header.converter", "header values")?;
            "json"
        }
        Some(other) => bail!(
            "header.converter={other} is not one this sink reads: Kafka Connect's \
             SimpleHeaderConverter (the default), StringConverter, JsonConverter or \
             ByteArrayConverter"
        ),
    };
    flag(&mut c, "--header-converter", Some(header));

    // The Snowflake connection.
    taken.extend([
        "snowflake.url.name",
        "snowflake.user.name",
        "snowflake.private.key",
        "snowflake.private.key.passphrase",
        "snowflake.role.name",
    ]);
    if let Some(url) = get("snowflake.url.name") {
        let full = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("https://{url}")
        };
        let host = full.split("://").nth(1).unwrap_or_default();
        if get("snowflake.private.key").is_none() && !is_snowflake_or_loopback(&full) {
            // The key would come from the environment (`SNOWFLAKE_PRIVATE_KEY`): a file that
            // names another host would have the operator's key sign a token for it.
            bail!(
                "snowflake.url.name names {:?}, which is not a Snowflake host \
                 (*.snowflakecomputing.com) or this machine, and the file has no \
                 snowflake.private.key: the sink would sign with the key of its environment \
                 and send the token there. Put the key in the same file, or give the URL as \
                 SNOWFLAKE_URL",
                host.split('/').next().unwrap_or_default()
            );
        }
        let account = host.split(['.', ':', '/']).next().unwrap_or_default();
        c.connection.url = Some(full.clone());
        if !account.is_empty()
            && account.parse::<std::net::Ipv4Addr>().is_err()
            && account != "localhost"
        {
            c.connection.account = Some(account.to_ascii_uppercase());
        }
    }
    c.connection.user = get("snowflake.user.name").map(str::to_owned);
    c.connection.role = get("snowflake.role.name").map(str::to_owned);
    c.connection.passphrase = get("snowflake.private.key.passphrase").map(str::to_owned);
    if let Some(key) = get("snowflake.private.key") {
        c.connection.private_key_pem = Some(pem_of(key, c.connection.passphrase.is_some()));
    }

    c.ignored = keys
        .keys()
        .filter(|k| !taken.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(c)
}

/// Whether `url` names a Snowflake account host or this machine (the SDK's rule,
/// [`snowpipe_streaming::is_loopback`]); a URL that does not parse names neither.
fn is_snowflake_or_loopback(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        let snowflake = u.domain().is_some_and(|d| {
            let d = d.trim_end_matches('.');
            d.ends_with(".snowflakecomputing.com") || d.ends_with(".snowflakecomputing.cn")
        });
        snowflake || snowpipe_streaming::is_loopback(&u)
    })
}

/// The `--value-format` (or `--key-converter`) of the converter class `key` names: the
/// fully qualified class, as the worker loads it.
fn value_format_of(key: &str, converter: &str) -> Result<&'static str> {
    Ok(match converter {
        "org.apache.kafka.connect.json.JsonConverter" => "json",
        "org.apache.kafka.connect.storage.StringConverter" => "string",
        "io.confluent.connect.avro.AvroConverter" => "avro",
        "io.confluent.connect.json.JsonSchemaConverter" => "json-schema",
        "io.confluent.connect.protobuf.ProtobufConverter" => "protobuf",
        "org.apache.kafka.connect.converters.ByteArrayConverter" => bail!(
            "{key}=org.apache.kafka.connect.converters.ByteArrayConverter is not supported: the \
             connector would write each value's bytes as base64; produce JSON, text or a Schema \
             Registry format"
        ),
        other => bail!(
            "{key}={other} is not one this sink reads: org.apache.kafka.connect.json.\
             JsonConverter, org.apache.kafka.connect.storage.StringConverter, or Confluent's \
             io.confluent.connect.avro.AvroConverter, io.confluent.connect.json.\
             JsonSchemaConverter and io.confluent.connect.protobuf.ProtobufConverter (the \
             fully qualified class; raw Protobuf without a registry and the v3 Snowflake \
             converters are not read)"
        ),
    })
}

/// `snowflake.private.key` (the key's base64 body, as the connector takes it, or a whole PEM
/// document) as a PEM document.
fn pem_of(key: &str, encrypted: bool) -> String {
    if key.contains("-----BEGIN") {
        return key.to_owned();
    }
    let body: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    let label = if encrypted {
        "ENCRYPTED PRIVATE KEY"
    } else {
        "PRIVATE KEY"
    };
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The command line with `--connector-config FILE`'s options added after the user's (an
/// option the user gave is not added again; topics and pipes go together), and the
/// translated file. Without `--connector-config`, the command line as it is.
///
/// # Errors
/// As [`read`].
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
    let Some(path) = path else {
        return Ok((argv, None));
    };
    let config = read(Path::new(&path))?;
    let given: Vec<String> = text
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or_default().to_owned())
        .collect();
    let has = |f: &str| given.iter().any(|g| g == f);
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
mod tests {

    /// Issue 56: a connector file that names a host other than Snowflake's (or this
    /// machine's) without its own key is refused: the key of the sink's environment would
    /// sign a token for that host. With the key in the file, or a Snowflake or loopback host,
    /// it is used.
    #[test]
    fn a_file_cannot_send_the_environments_key_to_another_host() {
        let keys = |url: &str, key: bool| {
            let mut m = BTreeMap::new();
            m.insert("snowflake.url.name".to_owned(), url.to_owned());
            if key {
                m.insert("snowflake.private.key".to_owned(), "MIIB".to_owned());
            }
            m
        };
        for evil in [
            "https://myorg-acct.evil.example",
            "myorg-acct.snowflakecomputing.com.evil.example:443",
            "https://evil.example/myorg.snowflakecomputing.com",
        ] {
            let e = format!("{:#}", translate(&keys(evil, false)).unwrap_err());
            assert!(e.contains("not a Snowflake host"), "{evil}: {e}");
            assert!(
                translate(&keys(evil, true)).is_ok(),
                "{evil} with the file's key"
            );
        }
        for fine in [
            "myorg-acct.snowflakecomputing.com",
            "https://MYORG-ACCT.privatelink.snowflakecomputing.com:443",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(translate(&keys(fine, false)).is_ok(), "{fine}");
        }
    }
    use super::*;

    /// The options a file becomes, without the converters' defaults (`--key-converter string
    /// --header-converter simple`, which every file gets unless it names others: see
    /// `converters_and_flags_are_the_connectors`).
    fn args_of(c: &ConnectorConfig) -> Vec<String> {
        let defaults = [
            ("--key-converter", "string"),
            ("--header-converter", "simple"),
        ];
        c.args
            .iter()
            .filter(|(f, v)| !defaults.contains(&(f.as_str(), v.as_deref().unwrap_or(""))))
            .flat_map(|(f, v)| std::iter::once(f.clone()).chain(v.clone()))
            .collect()
    }

    #[test]
    fn converters_and_flags_are_the_connectors() {
        let args = |text: &str| {
            let c = translate(&parse(text).unwrap()).unwrap();
            c.args
                .iter()
                .flat_map(|(f, v)| std::iter::once(f.clone()).chain(v.clone()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        // No converter named: the worker's String key and Simple header converters.
        assert!(args("topics=t").ends_with("--key-converter string --header-converter simple"));
        let a = args(
            "key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=false\n\
             header.converter=org.apache.kafka.connect.converters.ByteArrayConverter",
        );
        assert!(
            a.contains("--key-converter json --header-converter bytes"),
            "{a}"
        );
        let a = args(
            "value.converter=io.confluent.connect.protobuf.ProtobufConverter\n\
             value.converter.schema.registry.url=http://r:8081\n\
             key.converter=io.confluent.connect.protobuf.ProtobufConverter\n\
             header.converter=org.apache.kafka.connect.storage.StringConverter",
        );
        assert!(
            a.contains("--key-converter protobuf --header-converter string"),
            "{a}"
        );
        // Flags as `Boolean.parseBoolean` reads them: anything but `true` is false.
        let a = args(
            "snowflake.enable.schematization=no\nsnowflake.metadata.all=yes\n\
             snowflake.compatibility.enable.column.identifier.normalization=TRUE\n\
             snowflake.validation=client_side",
        );
        assert!(a.contains("--layout record-content"), "{a}");
        assert!(!a.contains("--metadata"), "{a}");
        assert!(
            a.contains("--normalize-columns --client-side-validation"),
            "{a}"
        );
        let a =
            args("snowflake.metadata.topic=no\nsnowflake.streaming.metadata.connectorPushTime=0");
        assert!(
            a.contains("--metadata --no-metadata-topic --no-push-time"),
            "{a}"
        );
    }

    const KEY_BODY: &str = "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAsecretsecret";

    /// A v4 connector's JSON file: every key the sink takes becomes its option or the
    /// connection; the others are listed by name; no secret reaches an option or `Debug`.
    #[test]
    fn a_connector_file_becomes_the_sinks_options() {
        let json = format!(
            r#"{{"name": "snowflake-sink", "config": {{
                "connector.class": "com.snowflake.kafka.connector.SnowflakeStreamingSinkConnector",
                "tasks.max": "4",
                "topics": "orders, clicks,Mixed.Topic",
                "snowflake.topic2table.map": "orders:events,clicks:\"Click Log\"",
                "snowflake.url.name": "myorg-myacct.snowflakecomputing.com:443",
                "snowflake.user.name": "KAFKA",
                "snowflake.private.key": "{KEY_BODY}",
                "snowflake.role.name": "LOADER",
                "snowflake.database.name": "DB",
                "snowflake.schema.name": "PUBLIC",
                "snowflake.enable.schematization": "false",
                "snowflake.streaming.metadata.connectorPushTime": false,
                "behavior.on.null.values": "IGNORE",
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": "dlq",
                "value.converter": "io.confluent.connect.avro.AvroConverter",
                "value.converter.schema.registry.url": "http://registry:8081",
                "value.converter.basic.auth.user.info": "sr-user:sr-secret",
                "buffer.count.records": "10000",
                "snowflake.metadata.createtime": "false"
            }}}}"#
        );
        let c = translate(&parse(&json).unwrap()).unwrap();
        assert_eq!(
            args_of(&c),
            [
                "--connector-name",
                "snowflake-sink",
                "--group",
                "snowpipe-kafka-snowflake-sink",
                "--topic",
                "orders",
                "--pipe",
                "EVENTS-STREAMING",
                "--topic",
                "clicks",
                "--pipe",
                "\"Click Log-STREAMING\"",
                "--topic",
                "Mixed.Topic",
                "--pipe",
                "\"Mixed.Topic-STREAMING\"",
                "--create-tables",
                "--database",
                "DB",
                "--schema",
                "PUBLIC",
                "--dead-letter-topic",
                "dlq",
                "--layout",
                "record-content",
                "--metadata",
                "--no-metadata-createtime",
                "--no-push-time",
                "--on-null-value",
                "skip",
                "--value-format",
                "avro",
                "--schema-registry-url",
                "http://registry:8081",
            ]
        );
        assert_eq!(c.ignored, ["buffer.count.records"]);
        assert!(
            c.notes.iter().all(|n| n.starts_with("no key.converter")),
            "{:?}",
            c.notes
        );
        assert!(c.registry_auth.is_some());
        let conn = &c.connection;
        assert_eq!(
            conn.url.as_deref(),
            Some("https://myorg-myacct.snowflakecomputing.com:443")
        );
        assert_eq!(conn.account.as_deref(), Some("MYORG-MYACCT"));
        assert_eq!(
            (conn.user.as_deref(), conn.role.as_deref()),
            (Some("KAFKA"), Some("LOADER"))
        );
        let pem = conn.private_key_pem.as_deref().unwrap();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\nMIIBVQ")
                && pem.ends_with("-----END PRIVATE KEY-----\n")
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secretsecret") && !shown.contains("sr-secret"),
            "{shown}"
        );
        assert!(!args_of(&c).iter().any(|a| a.contains("secret")));
    }

    /// The same keys in a `.properties` file (comments, `:` separators, continued lines);
    /// the connector's defaults where keys are absent (schematized rows with metadata, JSON).
    #[test]
    fn a_properties_file_reads_the_same_and_defaults_are_the_connectors() {
        let text =
            "# connector\nname=snowflake-sink\n! also a comment\ntopics: orders,\\\n  clicks\n\
                    snowflake.database.name = DB\nsnowflake.schema.name=S\n";
        let c = translate(&parse(text).unwrap()).unwrap();
        assert_eq!(
            args_of(&c),
            [
                "--connector-name",
                "snowflake-sink",
                "--group",
                "snowpipe-kafka-snowflake-sink",
                "--topic",
                "orders",
                "--pipe",
                "\"orders-STREAMING\"",
                "--topic",
                "clicks",
                "--pipe",
                "\"clicks-STREAMING\"",
                "--create-tables",
                "--database",
                "DB",
                "--schema",
                "S",
                "--metadata",
            ]
        );
        // v3's sanitized table names on request.
        let c = translate(&parse("topics=orders,my-topic\nsnowflake.compatibility.enable.autogenerated.table.name.sanitization=true").unwrap()).unwrap();
        let pipes: Vec<_> = c
            .args
            .iter()
            .filter(|(f, _)| f == "--pipe")
            .filter_map(|(_, v)| v.clone())
            .collect();
        assert_eq!(pipes[0], "ORDERS-STREAMING");
        assert!(
            pipes[1].starts_with("MY_TOPIC_") && pipes[1].ends_with("-STREAMING"),
            "{pipes:?}"
        );
    }

    /// The per-field metadata flags become `--no-metadata-…` options; with
    /// `snowflake.metadata.all=false` there is no metadata to trim.
    #[test]
    fn per_field_metadata_flags_become_options() {
        let text =
            "snowflake.metadata.topic=FALSE\nsnowflake.metadata.offset.and.partition=false\n\
                    snowflake.metadata.createtime=true\n";
        let c = translate(&parse(text).unwrap()).unwrap();
        assert_eq!(
            args_of(&c),
            [
                "--create-tables",
                "--metadata",
                "--no-metadata-topic",
                "--no-metadata-offset-and-partition"
            ]
        );
        assert!(c.ignored.is_empty(), "{c:?}");
        let c = translate(
            &parse("snowflake.metadata.all=false\nsnowflake.metadata.topic=false").unwrap(),
        )
        .unwrap();
        assert_eq!(
            args_of(&c),
            ["--create-tables"],
            "no metadata option: {c:?}"
        );
    }

    /// The registry's credentials reach the sink's settings parsed, never as an option, an
    /// environment variable or in `Debug`; the decoder takes them.
    #[test]
    fn registry_credentials_are_handed_over_parsed_and_never_shown() {
        let text = "name=n\ntopics=t\nsnowflake.database.name=D\nsnowflake.schema.name=S\n\
                    value.converter=io.confluent.connect.avro.AvroConverter\n\
                    value.converter.schema.registry.url=http://127.0.0.1:8081\n\
                    value.converter.basic.auth.user.info=sr-user:sr-secret\n";
        let c = translate(&parse(text).unwrap()).unwrap();
        let argv = ["x", "--brokers", "b"]
            .into_iter()
            .map(str::to_owned)
            .chain(args_of(&c));
        let mut sink = crate::cli::args::parse_args(argv).unwrap();
        assert!(sink.schema_registry_basic_auth.is_none());
        sink.registry_auth = c.registry_auth;
        let shown = format!("{sink:?}");
        assert!(
            shown.contains("registry_auth: Some(BasicAuth(***))") && !shown.contains("sr-secret"),
            "{shown}"
        );
        let format = crate::rows::value_format::FormatArgs {
            value_format: sink.value_format,
            schema_registry_url: sink.schema_registry_url.clone(),
            schema_registry_basic_auth: None,
            registry_auth: sink.registry_auth.clone(),
            registry_auth_inherit: false,
            kafka_login: None,
        };
        assert!(format.decoder().unwrap().is_some());
        assert!(std::env::vars().all(|(_, v)| !v.contains("sr-secret")));
        // A JSON value converter with registry credentials: the credentials would be unused.
        let json = crate::rows::value_format::FormatArgs {
            value_format: crate::formats::ValueFormat::Json,
            schema_registry_url: None,
            ..format
        };
        let err = json.decoder().unwrap_err().to_string();
        assert!(err.contains("needs --value-format avro"), "{err}");
    }

    /// `snowflake.autocreate.table.type=snowflake`, or the key left out (the connector's
    /// default), becomes `--create-tables`; `none` nothing (`iceberg` is refused: see the next
    /// test). `--no-create-tables` on the command line keeps the file's `--create-tables` out.
    #[test]
    fn autocreate_table_type_snowflake_becomes_create_tables() {
        let c = translate(&parse("topics=t").unwrap()).unwrap();
        assert!(args_of(&c).contains(&"--create-tables".to_owned()), "{c:?}");
        let dir = std::env::temp_dir().join(format!("autocreate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.properties");
        std::fs::write(
            &file,
            "topics=t\nsnowflake.database.name=D\nsnowflake.schema.name=S\n",
        )
        .unwrap();
        for (extra, created) in [(None, true), (Some("--no-create-tables"), false)] {
            let mut argv: Vec<OsString> =
                vec!["x".into(), "--connector-config".into(), file.clone().into()];
            argv.extend(extra.map(OsString::from));
            let (out, _) = expand(argv).unwrap();
            let has = out.iter().any(|a| a == "--create-tables");
            assert_eq!(has, created, "{extra:?}: {out:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let c = translate(&parse("snowflake.autocreate.table.type=SNOWFLAKE").unwrap()).unwrap();
        assert_eq!(args_of(&c), ["--create-tables", "--metadata"]);
        let c = translate(&parse("snowflake.autocreate.table.type=none").unwrap()).unwrap();
        assert_eq!(args_of(&c), ["--metadata"]);
        assert!(c.ignored.is_empty(), "{c:?}");
    }

    /// `snowflake.streaming.classic.offset.migration` becomes `--migrate-v3-offsets` (with
    /// `…include.connector.name=true`, `--migrate-v3-include-connector-name`); `skip` nothing;
    /// another value is refused naming the three.
    #[test]
    fn classic_offset_migration_becomes_migrate_v3_offsets() {
        let key = "snowflake.streaming.classic.offset.migration";
        for (text, args) in [
            (
                format!("{key}=best_effort"),
                vec!["--migrate-v3-offsets", "best-effort"],
            ),
            (
                format!("{key}=STRICT\n{key}.include.connector.name=true"),
                vec![
                    "--migrate-v3-offsets",
                    "strict",
                    "--migrate-v3-include-connector-name",
                ],
            ),
            (
                format!("{key}=skip\n{key}.include.connector.name=true"),
                vec![],
            ),
        ] {
            let c = translate(&parse(&text).unwrap()).unwrap();
            let mut expected: Vec<&str> = vec!["--create-tables"];
            expected.extend(args);
            expected.push("--metadata");
            assert_eq!(args_of(&c), expected, "{text}");
            assert!(c.ignored.is_empty(), "{c:?}");
        }
        let e = translate(&parse(&format!("{key}=sometimes")).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("skip, best_effort and strict"), "{e}");
    }

    /// What the sink cannot honour without writing other rows is refused, naming the key.
    #[test]
    fn what_would_change_the_rows_is_refused_naming_the_key() {
        for (text, needle) in [
            ("topics.regex=orders.*\nsnowflake.compatibility.enable.autogenerated.table.name.sanitization=true", "sanitization"),
            ("topics=a\nsnowflake.topic2table.map=a:T,a:U", "twice"),
            ("topics=a\nsnowflake.topic2table.map=a.*:T,ab:U", "overlap"),
            ("topics=a\nsnowflake.topic2table.map=a", "':' expected"),
            ("value.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter.schemas.enable=true", "inline schema"),
            // No converter named: the worker's, JSON by default, envelope and all.
            ("value.converter.schemas.enable=true", "no value.converter is named"),
            ("value.converter=com.example.MyConverter", "MyConverter"),
            ("behavior.on.null.values=FAIL", "DEFAULT and IGNORE"),
            ("value.converter.basic.auth.user.info=sr-secret", "not USER:PASSWORD"),
            ("transforms=drop\ntransforms.drop.type=x", "transforms=drop"),
            ("value.converter=org.apache.kafka.connect.converters.ByteArrayConverter", "base64"),
            ("value.converter=com.snowflake.kafka.connector.records.SnowflakeJsonConverter", "fully qualified"),
            ("value.converter=com.blueapron.connect.protobuf.ProtobufConverter", "raw Protobuf"),
            ("key.converter=org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable=false"),
            ("header.converter=org.apache.kafka.connect.json.JsonConverter", "header.converter.schemas.enable=false"),
            ("header.converter=com.example.H", "SimpleHeaderConverter"),
            ("snowflake.validation=both", "server_side"),
            ("key.converter=io.confluent.connect.avro.AvroConverter\nkey.converter.schema.registry.url=http://u:sr-secret@a\nvalue.converter=io.confluent.connect.avro.AvroConverter\nvalue.converter.schema.registry.url=http://b", "one Schema Registry"),
            ("snowflake.autocreate.table.type=iceberg", "Iceberg"),
            ("[1,2]", "no `=`"),
        ] {
            let err = parse(text).and_then(|k| translate(&k)).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{text}: {err:#}");
            assert!(!format!("{err:#}").contains("sr-secret"), "{err:#}");
        }
        assert!(parse("[1]\n").is_err());
        // The key means nothing to other converters: taken, not refused.
        let text = "value.converter=org.apache.kafka.connect.storage.StringConverter\n\
                    value.converter.schemas.enable=true";
        let c = translate(&parse(text).unwrap()).unwrap();
        assert!(c.ignored.is_empty(), "{c:?}");
    }

    /// `topics.regex` and a regex map pass through (the tables of topics found at run time are
    /// resolved then); listed topics are resolved through the map's regexes now.
    #[test]
    fn topics_regex_and_regex_maps_pass_through() {
        // As Java reads the file: `\\` is one backslash.
        let text = "topics.regex=orders\\\\..*\n\
                    snowflake.topic2table.map=orders\\\\.(.*):orders_$1\n\
                    snowflake.topic2table.map.regex.replacement=true\n";
        let c = translate(&parse(text).unwrap()).unwrap();
        assert_eq!(
            args_of(&c),
            [
                "--topic-regex",
                "orders\\..*",
                "--topic2table-map",
                "orders\\.(.*):orders_$1",
                "--topic2table-regex-replacement",
                "--create-tables",
                "--metadata",
            ]
        );
        assert!(c.ignored.is_empty(), "{:?}", c.ignored);
        // Listed topics: a regex entry names the table (without replacement, as written).
        let c = translate(
            &parse("topics=orders.eu,clicks\nsnowflake.topic2table.map=orders\\\\..*:all_orders")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            args_of(&c),
            [
                "--topic",
                "orders.eu",
                "--pipe",
                "ALL_ORDERS-STREAMING",
                "--topic",
                "clicks",
                "--pipe",
                "\"clicks-STREAMING\"",
                "--create-tables",
                "--metadata",
            ]
        );
    }

    /// The command line wins over the file, topics and pipes together.
    #[test]
    fn the_command_line_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("snowpipe-kafka-cc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.properties");
        std::fs::write(
            &file,
            "name=x\ntopics=a\nsnowflake.database.name=DB\nsnowflake.schema.name=S\n",
        )
        .unwrap();
        let argv: Vec<OsString> = [
            "snowpipe-kafka",
            "--brokers",
            "b:9092",
            "--group",
            "mine",
            "--topic",
            "t",
            "--pipe",
            "P",
            "--connector-config",
        ]
        .iter()
        .map(OsString::from)
        .chain([file.clone().into_os_string()])
        .collect();
        let (out, config) = expand(argv).unwrap();
        let out: Vec<String> = out
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(config.is_some());
        assert_eq!(out.iter().filter(|a| *a == "--group").count(), 1);
        assert!(out.contains(&"mine".to_owned()) && !out.contains(&"snowpipe-kafka-x".to_owned()));
        assert_eq!(out.iter().filter(|a| *a == "--topic").count(), 1, "{out:?}");
        assert!(
            out.ends_with(&[
                "--database".into(),
                "DB".into(),
                "--schema".into(),
                "S".into(),
                "--metadata".into(),
                "--key-converter".into(),
                "string".into(),
                "--header-converter".into(),
                "simple".into()
            ]),
            "{out:?}"
        );
        std::fs::remove_dir_all(&dir).ok();
        let (same, none) = expand(vec!["snowpipe-kafka".into(), "--brokers".into()]).unwrap();
        assert!(none.is_none() && same.len() == 2);
    }

    /// A `.properties` file with Java's escapes, continued lines and separators reads as
    /// Java's `Properties.load` reads it (the expected map is what OpenJDK printed for this
    /// text).
    #[test]
    fn a_properties_file_reads_as_java_reads_it() {
        let text = r#"topics.regex=orders\\..*
# a comment \
not.continued=1
  ! another comment
snowflake.topic2table.map = orders\\.(.*):orders_$1 ,\
     clicks:"Click\u0020Log"
key\ with\ spaces:va\lue\:x\=y
tabs\t=a\tb\nc\rd\fe
   spaced    value with trailing   
colon:: second colon kept
eq==second eq kept
white   =   after white
odd\\\
   next=v
even\\=w
last=\u00e9\u263a\uD83D\uDE00
empty=
sep.only.whitespace value here
winline=a\r
cont.at.end=x\"#;
        let keys = parse(text).unwrap();
        let expected: BTreeMap<String, String> = [
            ("colon", ": second colon kept"),
            ("cont.at.end", "x"),
            ("empty", ""),
            ("eq", "=second eq kept"),
            ("even\\", "w"),
            ("key with spaces", "value:x=y"),
            ("last", "\u{e9}\u{263a}\u{1f600}"),
            ("not.continued", "1"),
            ("odd\\next", "v"),
            ("sep.only.whitespace", "value here"),
            (
                "snowflake.topic2table.map",
                "orders\\.(.*):orders_$1 ,clicks:\"Click Log\"",
            ),
            ("spaced", "value with trailing   "),
            ("tabs\t", "a\tb\nc\rd\x0ce"),
            ("topics.regex", "orders\\..*"),
            ("white", "after white"),
            ("winline", "a\r"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(keys, expected);
        // Lines end at \r\n and at a lone \r too.
        let keys = parse("a=b\r\nc=d\re=f\n").unwrap();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(keys["c"], "d");
        // The regex reaches the option as Java's connector would read it.
        let c = translate(&parse("topics.regex=orders\\\\..*\n").unwrap()).unwrap();
        assert_eq!(args_of(&c)[..2], ["--topic-regex", "orders\\..*"]);
        // What Java refuses is refused naming the line, never its text.
        for (text, why) in [
            ("a=1\nb=\\u12G4s3cret", "line 2: malformed \\uXXXX"),
            ("a=1\n\nb=\\u12", "line 3: malformed"),
            ("a=1\n[1,2]", "line 2: no `=`"),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(why), "{text}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    /// `value.converter.basic.auth.credentials.source`: SASL_INHERIT takes the Kafka login's
    /// credentials (the decoder gets them, or refuses to start without them, naming the fix);
    /// URL and unknown sources are refused naming the alternative.
    #[test]
    fn sasl_inherit_takes_the_kafka_login_and_other_sources_are_refused() {
        let base = "value.converter=io.confluent.connect.avro.AvroConverter\n\
                    value.converter.schema.registry.url=http://127.0.0.1:8081\n";
        let text = format!(
            "{base}value.converter.basic.auth.credentials.source=SASL_INHERIT\n\
             value.converter.basic.auth.user.info=sr-user:sr-secret\n"
        );
        let c = translate(&parse(&text).unwrap()).unwrap();
        assert!(
            c.registry_auth_inherit && c.registry_auth.is_none(),
            "{c:?}"
        );
        assert!(c.ignored.is_empty(), "{c:?}");
        assert!(
            c.notes[0].contains("user.info is not used"),
            "{:?}",
            c.notes
        );
        let properties: Vec<_> = ["sasl.username=kafka-user", "sasl.password=k-s3cret"]
            .iter()
            .map(|p| crate::kafka::properties::parse(p).unwrap())
            .collect();
        let login = crate::kafka::properties::kafka_login(&properties);
        assert!(!format!("{login:?}").contains("s3cret"));
        let format = |kafka_login| crate::rows::value_format::FormatArgs {
            value_format: crate::formats::ValueFormat::Avro,
            schema_registry_url: Some("http://127.0.0.1:8081".into()),
            schema_registry_basic_auth: None,
            registry_auth: c.registry_auth.clone(),
            registry_auth_inherit: c.registry_auth_inherit,
            kafka_login,
        };
        assert!(format(login).decoder().unwrap().is_some());
        let err = format!("{:#}", format(None).decoder().unwrap_err());
        assert!(
            err.contains("SASL_INHERIT") && err.contains("no sasl.username and sasl.password"),
            "{err}"
        );
        for (source, why) in [
            ("URL", "value.converter.basic.auth.user.info=USER:PASSWORD"),
            ("TOKEN", "the sink knows USER_INFO"),
        ] {
            let text = format!("{base}value.converter.basic.auth.credentials.source={source}\n");
            let err = format!("{:#}", translate(&parse(&text).unwrap()).unwrap_err());
            assert!(err.contains(why), "{source}: {err}");
        }
        let text = format!("{base}value.converter.basic.auth.credentials.source=user_info\n");
        assert!(
            !translate(&parse(&text).unwrap())
                .unwrap()
                .registry_auth_inherit
        );
    }
}
