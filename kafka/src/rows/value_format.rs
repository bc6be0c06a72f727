//! `--value-format`: message values in the Confluent Schema Registry wire format, decoded into
//! the JSON text of their rows.
//!
//! The wire format is the magic byte `0`, the schema id (4 bytes, big-endian), then the body:
//! Avro binary (`avro`, [`crate::formats::avro`]), JSON text (`json-schema`) or Protobuf message indexes
//! and binary (`protobuf`, [`crate::formats::protobuf`]). The schema comes from the
//! registry by its id ([`crate::formats::registry`]). With a registry format the poll thread copies each
//! value as it is (it never waits on the registry); the partition's worker decodes the batch
//! ([`Decoder::rows`]) into NDJSON rows, in either `--layout` and with `RECORD_METADATA` as for
//! JSON values (the decoded JSON is written as a JSON value would be, so tombstones follow
//! `--on-null-value` and `RECORD_CONTENT` holds the decoded value: the connector's
//! `records/SnowflakeSinkRecord.java` `wrapValueAsRecordContent` converts the value with the
//! same `records/KafkaRecordConverter.java` rules in both layouts), and every
//! message that cannot be decoded by its own fault — no header, an id the registry does not
//! know, a schema that cannot be used, a body that does not match its schema — is a dead letter
//! whose reason says which, and the partition goes on. A registry that cannot answer for now is
//! nobody's message's fault: the batch waits for it ([`Registry::schema`] retries until it
//! answers; the worker ends the wait by dropping [`Decoder::rows`] when told to stop), and
//! nothing after the waiting message is read meanwhile. A registry that refuses the sink's
//! credentials stops the sink ([`Decoder::rows`]' error).
//!
//! A JSON Schema message's payload is read through its schema as connector v4 reads it
//! ([`crate::formats::json_schema`]: undeclared properties dropped, required ones enforced, numbers as
//! Connect's types); it is not otherwise validated against its schema (Confluent's JSON Schema
//! deserializer does not either unless told to).

use clap::ValueEnum;

use std::sync::Arc;

use crate::error::{err, fail, Context, Error, Result};
use crate::formats::connect_type::FieldTypes;
use crate::formats::registry::{BasicAuth, Failure, Registered, Registry};
pub(crate) use crate::formats::ValueFormat;
use crate::rows::batch::Batch;
use crate::rows::layout::LayoutKind;
use crate::rows::offset::KafkaOffset;
use crate::rows::record::{self, Record, RowOptions};
use crate::rows::row::{self, Written};
use crate::rows::TopicPartition;

/// The largest single Avro allocation (a string, bytes or an array's length) a body may ask for:
/// a garbage length fails instead of allocating gigabytes.
const MAX_AVRO_ALLOCATION: usize = 16 << 20;

/// The value-format options of the command line (`--value-format`, `--schema-registry-url`,
/// `--schema-registry-basic-auth`: see `cli::args::SinkArgs`).
#[derive(Debug, Clone)]
pub struct FormatArgs {
    /// `--value-format`.
    pub value_format: ValueFormat,
    /// `--schema-registry-url`.
    pub schema_registry_url: Option<String>,
    /// `--schema-registry-basic-auth`: `env:NAME` or `file:PATH`.
    pub schema_registry_basic_auth: Option<String>,
    /// The credentials `--connector-config` named (`value.converter.basic.auth.user.info`),
    /// used when `--schema-registry-basic-auth` is not given.
    pub registry_auth: Option<BasicAuth>,
    /// `--connector-config`'s `value.converter.basic.auth.credentials.source=SASL_INHERIT`:
    /// the credentials are `kafka_login` (unless `--schema-registry-basic-auth` is given).
    pub registry_auth_inherit: bool,
    /// The Kafka login (`sasl.username`, `sasl.password`:
    /// [`crate::source::properties::kafka_login`]).
    pub kafka_login: Option<BasicAuth>,
}

impl FormatArgs {
    /// The decoder these options ask for (`None`: JSON values, read as they are).
    ///
    /// # Errors
    /// A registry format without `--schema-registry-url` (or the other way round),
    /// a `--schema-registry-basic-auth` that is not `env:NAME` / `file:PATH` or whose secret
    /// cannot be read, `SASL_INHERIT` (`registry_auth_inherit`) without a Kafka login, a URL
    /// that is not `http(s)://` or holds credentials.
    pub fn decoder(&self) -> Result<Option<Decoder>> {
        match (self.value_format, &self.schema_registry_url) {
            (ValueFormat::Json | ValueFormat::String, None) => {
                if self.schema_registry_basic_auth.is_some()
                    || self.registry_auth.is_some()
                    || self.registry_auth_inherit
                {
                    fail!(
                        Config,
                        "--schema-registry-basic-auth (or --connector-config's \
                         value.converter.basic.auth.user.info or .credentials.source) needs \
                         --value-format avro, \
                         json-schema or protobuf"
                    );
                }
                return Ok(None);
            }
            (ValueFormat::Json | ValueFormat::String, Some(_)) => fail!(
                Config,
                "--schema-registry-url is only read with --value-format avro, json-schema or protobuf \
                 (the values are read as JSON objects now)"
            ),
            (f, None) => fail!(
                Config,
                "--value-format {} needs --schema-registry-url URL (the schemas come from \
                 the registry by the id in each message)",
                f.to_possible_value()
                    .map_or("?".into(), |v| v.get_name().to_owned())
            ),
            (_, Some(_)) => {}
        }
        let auth = match &self.schema_registry_basic_auth {
            Some(source) => Some(read_auth(source)?),
            None if self.registry_auth_inherit => Some(self.kafka_login.clone().context(
                Error::Config,
                "--connector-config's value.converter.basic.auth.credentials.source=SASL_INHERIT \
                 takes the Schema Registry credentials from the Kafka login, but the Kafka \
                 properties (--kafka-config FILE, -X) have no sasl.username and sasl.password: \
                 set them, or give the registry's USER:PASSWORD with \
                 value.converter.basic.auth.user.info (source USER_INFO) or \
                 --schema-registry-basic-auth",
            )?),
            None => self.registry_auth.clone(),
        };
        let url = self.schema_registry_url.as_deref().unwrap_or_default();
        let registry = Registry::new(url, auth).map_err(|e| err!(Config, "{e}"))?;
        apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
        Ok(Some(Decoder {
            format: self.value_format,
            registry,
        }))
    }
}

/// The most a `--schema-registry-basic-auth file:PATH` may hold: one `USER:PASSWORD` line.
const MAX_AUTH_FILE_BYTES: u64 = 64 << 10;

/// The credentials `source` (`env:NAME` or `file:PATH`, read within [`MAX_AUTH_FILE_BYTES`])
/// points at.
fn read_auth(source: &str) -> Result<BasicAuth> {
    let text = if let Some(name) = source.strip_prefix("env:") {
        std::env::var(name).with_context(Error::Config, || {
            format!(
                "--schema-registry-basic-auth env:{name}: the variable is not set (or not UTF-8)"
            )
        })?
    } else if let Some(path) = source.strip_prefix("file:") {
        let text = snowpipe_cli_support::bounded_file::read_text(
            std::path::Path::new(path),
            "USER:PASSWORD file",
            MAX_AUTH_FILE_BYTES,
        )
        .with_context(Error::Config, || {
            format!("--schema-registry-basic-auth: cannot read {path}")
        })?;
        return BasicAuth::parse(&text).map_err(|e| {
            err!(
                Config,
                "--schema-registry-basic-auth: the file {path} does not hold USER:PASSWORD: {e}"
            )
        });
    } else {
        fail!(
            Config,
            "--schema-registry-basic-auth takes env:NAME or file:PATH, where USER:PASSWORD is \
             (never the secret itself: a command line is visible to other users)"
        );
    };
    BasicAuth::parse(&text).map_err(|e| err!(Config, "--schema-registry-basic-auth: {e}"))
}

/// Splits a wire-format value into its schema id and body.
///
/// # Errors
/// A value too short for the header or without the magic byte (the reason says what it
/// starts with, and which option to check).
pub(crate) fn split_header(value: &[u8]) -> Result<(u32, &[u8]), String> {
    match value {
        [0, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [first, ..] if *first != 0 => Err(format!(
            "the value does not start with the Schema Registry magic byte 0 (it starts with \
             0x{first:02x}{}): it was not written by a Schema Registry serializer; check \
             --value-format",
            if first.is_ascii_graphic() {
                format!(" {:?}", char::from(*first))
            } else {
                String::new()
            }
        )),
        _ => Err(format!(
            "the value is {} bytes, shorter than the Schema Registry header (magic byte 0 and a \
             4-byte schema id)",
            value.len()
        )),
    }
}

/// A batch's messages decoded into rows (see [`Decoder::rows`]).
#[derive(Debug, Default)]
pub struct Decoded {
    /// One row per line.
    pub ndjson: Vec<u8>,
    /// Each row's offset token ([`KafkaOffset::token`]), in order, as the SDK takes them.
    pub tokens: Vec<u64>,
    /// Messages (their index in the batch) that are not rows, and why.
    pub dead: Vec<(usize, String)>,
    /// Each row's Connect field types (its value's schema's), in order: what schema evolution
    /// types new columns by (`None`: from the values).
    pub types: Vec<Option<Arc<FieldTypes>>>,
}

/// Decodes Schema Registry values into rows.
#[derive(Debug)]
pub struct Decoder {
    format: ValueFormat,
    registry: Registry,
}

impl Decoder {
    /// The Schema Registry client the decoder asks.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The JSON text of the row `value` (wire format) is: with `layout`
    /// [`LayoutKind::Columns`] a JSON object (its keys are columns), with
    /// [`LayoutKind::RecordContent`] any JSON value (`RECORD_CONTENT`).
    ///
    /// # Errors
    /// [`Failure::Dead`] with the dead-letter reason: no header, an id the registry does not
    /// know or whose schema cannot be used, a schema of another format, a body that does not
    /// decode with its schema or (columns) is no JSON object. [`Failure::Refused`]: the registry
    /// refuses the sink's credentials.
    ///
    /// # Cancellation
    /// Waits while the registry cannot answer ([`Registry::schema`]); dropping the future ends
    /// the wait, with nothing cached or lost.
    pub async fn to_json(
        &self,
        value: &[u8],
        layout: LayoutKind,
        max_len: usize,
    ) -> Result<String, Failure> {
        self.json_as(self.format, value, layout, max_len).await
    }

    /// [`Self::to_json`], with the Connect types of the value's top-level fields (its
    /// schema's, worked out once per schema: `None` for a schema that gives none yet).
    ///
    /// # Errors
    /// As [`Self::to_json`].
    ///
    /// # Cancellation
    /// As [`Self::to_json`].
    async fn typed_json(
        &self,
        value: &[u8],
        layout: LayoutKind,
        max_len: usize,
    ) -> Result<(String, Option<Arc<FieldTypes>>), Failure> {
        let (id, body) = split_header(value).map_err(Failure::Dead)?;
        let schema = self.registry.schema(id).await?;
        let json =
            Self::decode(self.format, id, body, &schema, layout, max_len).map_err(Failure::Dead)?;
        Ok((json, field_types(&schema, body)))
    }

    /// [`Self::to_json`] for bytes of `format` (a key's, `--key-converter`).
    ///
    /// # Errors
    /// As [`Self::to_json`].
    ///
    /// # Cancellation
    /// As [`Self::to_json`].
    async fn json_as(
        &self,
        format: ValueFormat,
        value: &[u8],
        layout: LayoutKind,
        max_len: usize,
    ) -> Result<String, Failure> {
        let (id, body) = split_header(value).map_err(Failure::Dead)?;
        let schema = self.registry.schema(id).await?;
        Self::decode(format, id, body, &schema, layout, max_len).map_err(Failure::Dead)
    }

    /// `body` (of a message with schema `id`) decoded with `schema`, as [`Self::to_json`].
    fn decode(
        format: ValueFormat,
        id: u32,
        body: &[u8],
        schema: &Registered,
        layout: LayoutKind,
        max_len: usize,
    ) -> Result<String, String> {
        let any = layout == LayoutKind::RecordContent;
        match (format, schema) {
            (ValueFormat::Avro, Registered::Avro(s)) => {
                let json = if any {
                    s.value_to_json(body)
                } else {
                    s.to_json(body)
                };
                json.map_err(|e| format!("schema id {id}: {e}"))
            }
            (ValueFormat::Protobuf, Registered::Protobuf(s)) => s
                .to_json(body, max_len)
                .map_err(|e| format!("schema id {id}: {e}")),
            (ValueFormat::JsonSchema, Registered::Json(s)) => {
                let text = std::str::from_utf8(body).map_err(|e| {
                    format!("schema id {id}: the JSON Schema payload is not UTF-8 ({e})")
                })?;
                s.to_json(text, any, max_len)
                    .map_err(|e| format!("schema id {id}: {e}"))
            }
            (format, other) => Err(format!(
                "schema id {id} is a {} schema, not {}: check --value-format",
                other.type_name(),
                match format {
                    ValueFormat::Avro => "AVRO",
                    ValueFormat::JsonSchema => "JSON",
                    ValueFormat::Protobuf => "PROTOBUF",
                    ValueFormat::Json | ValueFormat::String => "plain JSON",
                }
            )),
        }
    }

    /// The rows of `batch`'s messages (of partition `part`) after offset `last` (moved to
    /// the last one read), in `options`' layout, with `RECORD_METADATA` when `options` say, and
    /// the messages that are not rows with their reasons. A decoded value is written as a JSON
    /// value of `--value-format json` would be ([`crate::rows::row::write_row`]): a tombstone —
    /// no value, or a value that decodes to `null` (the converters' null: the connector's
    /// `SnowflakeSinkRecord.from` takes `record.value() == null` as a tombstone in either
    /// layout) — is a row of metadata, skipped or a dead letter as `--on-null-value` says.
    ///
    /// # Errors
    /// The registry refuses the sink's credentials: the reason the sink stops (no row of the
    /// batch is kept).
    ///
    /// # Cancellation
    /// Waits while the registry cannot answer for a message's schema (nothing after that
    /// message is read meanwhile). Dropping the future ends the wait; `last` may have moved by
    /// then, so the caller must append nothing more of this partition (it hands over and the
    /// next owner reads the batch again from the committed token).
    pub async fn rows(
        &self,
        batch: &Batch,
        part: &TopicPartition,
        options: RowOptions,
        last: &mut KafkaOffset,
    ) -> Result<Decoded, String> {
        let mut out = Decoded::default();
        let mut scratch = Vec::new();
        for i in 0..batch.len() {
            let m = batch.get(i);
            if m.offset <= *last {
                continue;
            }
            *last = m.offset;
            let headers: Vec<_> = m.headers().collect();
            let value = m.value();
            let record = m.record(&part.topic, part.partition, &headers, value.as_deref());
            let mut types = None;
            let json = match record.value {
                None => None,
                Some(bytes) => match self
                    .typed_json(bytes, options.layout.kind, options.max_row_bytes)
                    .await
                {
                    // A value that decodes to null is Kafka Connect's tombstone.
                    Ok((json, _)) if json.trim() == "null" => None,
                    Ok((json, fields)) => {
                        // Only columns are typed by them (`RECORD_CONTENT` is a VARIANT).
                        types = fields.filter(|_| options.layout.kind == LayoutKind::Columns);
                        Some(json)
                    }
                    Err(Failure::Dead(why)) => {
                        out.dead.push((i, why));
                        continue;
                    }
                    Err(Failure::Refused(why)) => return Err(why),
                },
            };
            // A key of a Schema Registry converter, decoded as the worker's key converter does.
            let key_format = options.layout.key_converter.registry_format();
            let key = match (record.key, key_format.filter(|_| options.metadata)) {
                (Some(k), Some(format)) => {
                    match self
                        .json_as(format, k, LayoutKind::RecordContent, options.max_row_bytes)
                        .await
                    {
                        Ok(json) => Some(json),
                        Err(Failure::Dead(why)) => {
                            out.dead.push((i, format!("the key: {why}")));
                            continue;
                        }
                        Err(Failure::Refused(why)) => return Err(why),
                    }
                }
                _ => None,
            };
            let metadata =
                match record::metadata_with_key(&record, options, key.as_deref(), &mut scratch) {
                    Ok(with) => with.then_some(&scratch[..]),
                    Err(why) => {
                        out.dead.push((i, why));
                        continue;
                    }
                };
            let before = out.ndjson.len();
            let decoded = Record {
                value: json.as_deref().map(str::as_bytes),
                ..record
            };
            match row::write_row(decoded.value, metadata, &options, &mut out.ndjson) {
                Written::Skip => continue,
                Written::Row(c) => {
                    let end = out.ndjson.len() - 1;
                    let row = &mut out.ndjson[c.start..end];
                    if row::finish(row, c.rest - c.start, c.shape, options.max_row_bytes) {
                        out.tokens.push(m.offset.token());
                        out.types.push(types);
                        continue;
                    }
                    out.ndjson.truncate(before);
                }
                Written::NotRow => {}
            }
            let why = row::reason(&decoded, options)
                .unwrap_or_else(|| "the decoded row could not be built".to_owned());
            out.dead.push((
                i,
                if decoded.value.is_some() {
                    format!("decoded: {why}")
                } else {
                    why
                },
            ));
        }
        Ok(out)
    }
}

/// The Connect types of the top-level fields of the value whose body (after the 5-byte
/// header) is `body`, as the converters make them: worked out once per schema (a Protobuf
/// schema's once per message, which the body's message indexes name).
fn field_types(schema: &Registered, body: &[u8]) -> Option<Arc<FieldTypes>> {
    match schema {
        Registered::Avro(s) => Some(Arc::clone(s.field_types())),
        Registered::Protobuf(s) => s.field_types(body),
        Registered::Json(s) => Some(Arc::clone(s.field_types())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_magic_byte_zero_and_a_big_endian_id() {
        assert_eq!(
            split_header(b"\x00\x00\x00\x01\x02body").unwrap(),
            (258, &b"body"[..])
        );
        assert_eq!(
            split_header(b"\x00\x00\x00\x00\x07").unwrap(),
            (7, &b""[..])
        );
        let cases: &[(&[u8], &str)] = &[
            (b"{\"a\":1}", "starts with 0x7b '{'"),
            (b"\x01\x00\x00\x00\x07", "starts with 0x01)"),
            (
                b"\x00\x00\x07",
                "3 bytes, shorter than the Schema Registry header",
            ),
            (b"", "0 bytes"),
        ];
        for (value, why) in cases {
            let err = split_header(value).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
        }
    }

    fn args(format: ValueFormat, url: Option<&str>, auth: Option<&str>) -> FormatArgs {
        FormatArgs {
            value_format: format,
            schema_registry_url: url.map(str::to_owned),
            schema_registry_basic_auth: auth.map(str::to_owned),
            registry_auth: None,
            registry_auth_inherit: false,
            kafka_login: None,
        }
    }

    #[test]
    fn options_that_do_not_fit_together_are_refused_and_the_secret_is_never_echoed() {
        let url = Some("http://127.0.0.1:8081");
        assert!(args(ValueFormat::Json, None, None)
            .decoder()
            .unwrap()
            .is_none());
        assert!(args(ValueFormat::Avro, url, None)
            .decoder()
            .unwrap()
            .is_some());
        let cases = [
            (
                args(ValueFormat::Avro, None, None),
                "needs --schema-registry-url",
            ),
            (
                args(ValueFormat::JsonSchema, None, None),
                "json-schema needs",
            ),
            (
                args(ValueFormat::Json, url, None),
                "only read with --value-format",
            ),
            (
                args(ValueFormat::Protobuf, None, None),
                "protobuf needs --schema-registry-url",
            ),
            (
                args(ValueFormat::Avro, url, Some("user:s3cret")),
                "takes env:NAME or file:PATH",
            ),
            (
                args(
                    ValueFormat::Avro,
                    url,
                    Some("env:SNOWPIPE_KAFKA_TEST_UNSET_VAR"),
                ),
                "is not set",
            ),
            (
                args(ValueFormat::Avro, url, Some("file:/nonexistent/sr-auth")),
                "cannot read /nonexistent/sr-auth",
            ),
        ];
        for (a, why) in cases {
            let err = format!("{:#}", a.decoder().unwrap_err());
            assert!(err.contains(why), "{a:?}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth");
        std::fs::write(&file, "user:s3cret\n").unwrap();
        let source = format!("file:{}", file.display());
        assert!(args(ValueFormat::Avro, url, Some(&source))
            .decoder()
            .unwrap()
            .is_some());
    }
}
