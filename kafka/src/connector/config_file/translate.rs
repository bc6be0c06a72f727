//! The connector's keys translated into this sink's options ([`ConnectorConfig`]): each key the
//! sink takes becomes its option, the Snowflake connection goes to the client builder
//! ([`Connection`]), and the keys not taken are listed by name.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use snowpipe_streaming::default_pipe_name;

use crate::connector::topic_table::TopicTableMap;
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
        flag(&mut c, "--pipe", Some(&default_pipe_name(&table)));
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
