//! What a message must hold to become a `SENSOR_READINGS` row, and the row.
//!
//! The publishers are not ours: the sensor system sends the seed's format,
//! `{"sensorId": 8, "currentTemperature": 59, "status": "WARN"}`, with no time in it. Decoding is
//! lenient where a VARIANT-friendly pipeline would be and strict only where no row can be made:
//!
//! | field | rule |
//! | --- | --- |
//! | `sensorId` | required: an integer (or a string of one) |
//! | `currentTemperature` | required: a number (or a numeric string) |
//! | `status` | optional: a string; missing or `null` is SQL NULL |
//! | `eventTime` | optional: an RFC 3339 timestamp; missing or `null`: the message's JetStream timestamp |
//! | any other field | ignored |
//!
//! A message that breaks a rule (not JSON, not an object, empty, a required field missing, a
//! field of the wrong type) is a [`BadRecord`]: dead-lettered, never a row. Values the table's
//! types cannot hold (a 10-character status in `VARCHAR(8)`, a sensor id beyond `NUMBER(4,0)`)
//! are dead letters too, checked by the consumer before the append (`columns.rs`): the server
//! would reject those rows after their offset tokens committed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Number, Value};

/// Longest quote of a bad value in a reason.
const QUOTE_MAX: usize = 60;

/// The columns of a reading that every readings table has (`SENSOR_READINGS`, and
/// `KINESIS_READINGS` of the Kinesis path): what the sensor sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The sensor.
    #[serde(rename = "SENSOR_ID")]
    pub sensor_id: i64,
    /// The temperature it read, as sent (the server converts it to the column's type).
    #[serde(rename = "CURRENT_TEMPERATURE")]
    pub current_temperature: Number,
    /// Its status; `None` when the reading has none.
    #[serde(rename = "STATUS")]
    pub status: Option<String>,
    /// The event time, `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
    #[serde(rename = "EVENT_TIME")]
    pub event_time: String,
}

/// One `SENSOR_READINGS` row (column names as in `sql/setup.sql`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Reading {
    /// What the sensor sent.
    #[serde(flatten)]
    pub measurement: Measurement,
    /// The shard (subject `sensors.<shard>`).
    #[serde(rename = "SHARD")]
    pub shard: u32,
    /// The JetStream stream sequence.
    #[serde(rename = "STREAM_SEQ")]
    pub stream_seq: u64,
    /// The row's offset token: its own stream sequence, or the last sequence of the dead letters
    /// that follow it in the same append (so that committing it moves past them). Not a column.
    #[serde(skip)]
    pub token: u64,
}

/// Why a message cannot become a row: one line, for the dead-letter header and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord(String);

impl BadRecord {
    /// A bad record for `reason` (one line).
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        BadRecord(reason.into())
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadRecord {}

impl Reading {
    /// Decodes a message's payload into the row for `shard` at `stream_seq`; `published_ms` (the
    /// message's JetStream timestamp) is the event time when the payload has none. Also returns
    /// the event time in milliseconds since the epoch.
    ///
    /// # Errors
    /// A [`BadRecord`] saying what is wrong when the payload cannot become a row (see the
    /// module docs for the rules).
    pub(super) fn decode(
        payload: &[u8],
        shard: u32,
        stream_seq: u64,
        published_ms: i64,
    ) -> Result<(Self, i64), BadRecord> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(BadRecord::new("empty payload"));
        }
        let value: Value = serde_json::from_slice(payload)
            .map_err(|e| BadRecord::new(format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(BadRecord::new(format!(
                "not a JSON object but {}",
                crate::common::json_type_name(&value)
            )));
        };
        let sensor_id = sensor_id(&fields)?;
        let current_temperature = temperature(&fields)?;
        let status = match field(&fields, "status") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(wrong_type("status", "a string", other)),
        };
        let event_time = match field(&fields, "eventTime") {
            None => DateTime::from_timestamp_millis(published_ms).ok_or_else(|| {
                BadRecord::new(format!(
                    "no eventTime and the message's timestamp ({published_ms} ms) is out of range"
                ))
            })?,
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map_err(|_| wrong_type("eventTime", "an RFC 3339 timestamp", &Value::from(&**s)))?
                .with_timezone(&Utc),
            Some(other) => return Err(wrong_type("eventTime", "an RFC 3339 timestamp", other)),
        };
        Ok((
            Reading {
                measurement: Measurement {
                    sensor_id,
                    current_temperature,
                    status,
                    event_time: event_time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                },
                shard,
                stream_seq,
                token: stream_seq,
            },
            event_time.timestamp_millis(),
        ))
    }
}

/// A field that is present and not `null`.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn sensor_id(fields: &Map<String, Value>) -> Result<i64, BadRecord> {
    let v = field(fields, "sensorId").ok_or_else(|| BadRecord::new("no sensorId"))?;
    let id = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    id.ok_or_else(|| wrong_type("sensorId", "an integer", v))
}

fn temperature(fields: &Map<String, Value>) -> Result<Number, BadRecord> {
    let v = field(fields, "currentTemperature")
        .ok_or_else(|| BadRecord::new("no currentTemperature"))?;
    let n = match v {
        Value::Number(n) => Some(n.clone()),
        // JSON's number grammar: no NaN, no infinity, no hex.
        Value::String(s) => serde_json::from_str::<Number>(s.trim()).ok(),
        _ => None,
    };
    n.ok_or_else(|| wrong_type("currentTemperature", "a number", v))
}

fn wrong_type(name: &str, want: &str, got: &Value) -> BadRecord {
    let mut quoted = got.to_string();
    if quoted.chars().count() > QUOTE_MAX {
        quoted = quoted.chars().take(QUOTE_MAX).collect::<String>() + "…";
    }
    BadRecord::new(format!("{name} is not {want}: {quoted}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor_stream::event::SensorEvent;

    const PUBLISHED_MS: i64 = 1_795_338_962_456; // 2026-11-22 09:16:02.456 UTC

    fn decode(payload: &str) -> Result<(Reading, i64), BadRecord> {
        Reading::decode(payload.as_bytes(), 1, 9, PUBLISHED_MS)
    }

    #[test]
    fn our_published_event_decodes_with_its_own_event_time() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T09:16:02.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = SensorEvent {
            sensor_id: 6,
            current_temperature: 64,
            status: "OK".into(),
            event_time: at,
        };
        let json = serde_json::to_vec(&event).unwrap();
        assert!(String::from_utf8_lossy(&json)
            .starts_with(r#"{"sensorId":6,"currentTemperature":64,"status":"OK","eventTime":"#));
        let (row, ms) = Reading::decode(&json, 2, 41, PUBLISHED_MS).unwrap();
        assert_eq!(ms, at.timestamp_millis());
        assert_eq!(row.measurement.event_time, "2026-11-22 09:16:02.123");
        assert_eq!((row.shard, row.stream_seq, row.token), (2, 41, 41));
        assert_eq!(
            (row.measurement.sensor_id, row.measurement.status.as_deref()),
            (6, Some("OK"))
        );
    }

    #[test]
    fn the_seed_format_takes_its_time_from_the_broker() {
        let (row, ms) =
            decode(r#"{"sensorId": 8, "currentTemperature": 59, "status": "WARN"}"#).unwrap();
        assert_eq!(ms, PUBLISHED_MS);
        assert_eq!(row.measurement.event_time, "2026-11-22 09:16:02.456");
        assert_eq!(
            serde_json::to_value(&row).unwrap(),
            serde_json::json!({"SENSOR_ID": 8, "CURRENT_TEMPERATURE": 59, "STATUS": "WARN",
                "EVENT_TIME": "2026-11-22 09:16:02.456", "SHARD": 1, "STREAM_SEQ": 9}),
            "the token is not a column"
        );
    }

    #[test]
    fn optional_fields_may_be_missing_or_null_and_extra_fields_are_ignored() {
        let (row, _) = decode(r#"{"sensorId": 8, "currentTemperature": 59}"#).unwrap();
        assert_eq!(row.measurement.status, None);
        let (row, ms) = decode(
            r#"{"sensorId": "8", "currentTemperature": "59.5", "status": null, "eventTime": null,
                "battery": 0.93, "site": {"plant": 7}}"#,
        )
        .unwrap();
        assert_eq!(
            (row.measurement.sensor_id, row.measurement.status, ms),
            (8, None, PUBLISHED_MS)
        );
        assert_eq!(row.measurement.current_temperature.as_f64(), Some(59.5));
        let (row, _) = decode(r#"{"sensorId": 8, "currentTemperature": -12.25}"#).unwrap();
        assert_eq!(row.measurement.current_temperature.as_f64(), Some(-12.25));
    }

    #[test]
    fn what_cannot_become_a_row_says_why() {
        let cases = [
            ("", "empty payload"),
            ("  \n", "empty payload"),
            (
                "sensor 8 59 WARN",
                "not JSON: expected value at line 1 column 1",
            ),
            (r#"{"sensorId": 8,"#, "not JSON: EOF while parsing"),
            (r#"[8, 59, "WARN"]"#, "not a JSON object but an array"),
            (r#""8,59,WARN""#, "not a JSON object but a string"),
            ("59", "not a JSON object but a number"),
            ("null", "not a JSON object but null"),
            (r#"{"currentTemperature": 59}"#, "no sensorId"),
            (
                r#"{"sensorId": null, "currentTemperature": 59}"#,
                "no sensorId",
            ),
            (r#"{"sensorId": 8}"#, "no currentTemperature"),
            (
                r#"{"sensorId": "eight", "currentTemperature": 59}"#,
                r#"sensorId is not an integer: "eight""#,
            ),
            (
                r#"{"sensorId": 8.5, "currentTemperature": 59}"#,
                "sensorId is not an integer: 8.5",
            ),
            (
                r#"{"sensorId": 8, "currentTemperature": "hot"}"#,
                r#"currentTemperature is not a number: "hot""#,
            ),
            (
                r#"{"sensorId": 8, "currentTemperature": true}"#,
                "currentTemperature is not a number: true",
            ),
            (
                r#"{"sensorId": 8, "currentTemperature": 59, "status": 3}"#,
                "status is not a string: 3",
            ),
            (
                r#"{"sensorId": 8, "currentTemperature": 59, "eventTime": "yesterday"}"#,
                r#"eventTime is not an RFC 3339 timestamp: "yesterday""#,
            ),
        ];
        for (payload, want) in cases {
            let err = decode(payload).unwrap_err();
            assert!(
                err.reason().starts_with(want),
                "{payload:?}: {err} (want {want})"
            );
            assert!(!err.reason().contains('\n'), "one line: {err:?}");
        }
        let long = format!(
            r#"{{"sensorId": 8, "currentTemperature": "{}"}}"#,
            "x".repeat(500)
        );
        assert!(decode(&long).unwrap_err().reason().len() < 120);
        assert!(Reading::decode(&[0xff, 0xfe], 0, 1, PUBLISHED_MS).is_err());
    }
}
