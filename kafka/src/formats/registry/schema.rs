//! The schema kinds a registry gives ([`Registered`]: Avro, JSON Schema, Protobuf), and an
//! answer read ([`parse_envelope`]) then compiled ([`compile_answer`]).

use crate::formats::avro::AvroSchema;
use crate::formats::json_schema::JsonSchema;
use crate::formats::protobuf::ProtoSchema;

/// What a parsed Avro or Protobuf schema is taken to weigh for each byte of its answer:
/// parsed, a schema holds several times its text (parsing a 0.9 MB Avro schema peaked at
/// 72 MB, measured). A JSON Schema is weighed by what it holds ([`JsonSchema::weight`]).
pub(super) const SCHEMA_WEIGHT_PER_BYTE: usize = 24;

/// A schema as the registry gave it, parsed.
#[derive(Debug)]
pub enum Registered {
    /// An Avro schema.
    Avro(Box<AvroSchema>),
    /// A JSON Schema, compiled to the Connect schema payloads are read with.
    Json(Box<JsonSchema>),
    /// A Protobuf schema, compiled.
    Protobuf(ProtoSchema),
}

impl Registered {
    /// What it is taken to weigh in the cache, parsed from an answer of `answer` bytes: a JSON
    /// Schema what it holds, counted as it was compiled; an Avro or Protobuf schema
    /// [`SCHEMA_WEIGHT_PER_BYTE`] times its answer (their parsers' structures are not ours to
    /// count).
    pub fn weight(&self, answer: usize) -> usize {
        match self {
            Self::Json(s) => s.weight(),
            Self::Avro(_) | Self::Protobuf(_) => answer.saturating_mul(SCHEMA_WEIGHT_PER_BYTE),
        }
        .saturating_add(1024)
    }

    /// The registry's name of its type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Avro(_) => "AVRO",
            Self::Json(_) => "JSON",
            Self::Protobuf(_) => "PROTOBUF",
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct Answer {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

/// Why a successful answer gives no schema.
#[cfg(test)]
#[derive(Debug)]
pub(super) enum BadAnswer {
    /// It is not a registry's answer (`{"schema": "…"}`): not the message's fault.
    NotAnAnswer(String),
    /// The schema it holds cannot be used: the message's fault.
    Schema(String),
}

/// The registry's answer, read (not compiled: [`compile_answer`]).
///
/// # Errors
/// An answer that is not `{"schema": "…"}` (not the message's fault: a wrong URL, a proxy).
pub(super) fn parse_envelope(body: &[u8]) -> Result<Answer, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("something that is not {{\"schema\": \"…\"}} ({e})"))
}

/// The schema of a registry's answer, compiled: as long as the schema takes (bounded by each
/// parser's limits), so never on an async worker.
///
/// # Errors
/// A schema with references, an unknown schema type, a schema that does not parse or compile.
pub(super) fn compile_answer(answer: Answer) -> Result<Registered, String> {
    if !answer.references.is_empty() {
        return Err(
            "the schema references other schemas, which this sink does not resolve yet".into(),
        );
    }
    match answer.schema_type.as_deref().unwrap_or("AVRO") {
        "AVRO" => AvroSchema::parse(&answer.schema).map(|s| Registered::Avro(Box::new(s))),
        "JSON" => JsonSchema::parse(&answer.schema).map(|s| Registered::Json(Box::new(s))),
        "PROTOBUF" => ProtoSchema::parse(&answer.schema).map(Registered::Protobuf),
        other => Err(format!("the schema type {other:?} is unknown")),
    }
}

/// The registry's answer, read and compiled.
#[cfg(test)]
pub(super) fn parse_answer(body: &[u8]) -> Result<Registered, BadAnswer> {
    compile_answer(parse_envelope(body).map_err(BadAnswer::NotAnAnswer)?).map_err(BadAnswer::Schema)
}
