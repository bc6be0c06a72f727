//! What the reading columns of `SENSOR_READINGS` (NATS) and `KINESIS_READINGS` (Kinesis) hold
//! (`sql/setup.sql`, the same types in both): a reading whose values they cannot hold is a dead
//! letter before it is appended, on both paths (one owner of the rule).
//!
//! The server rejects such a row after the append, as a row error of the channel, and the
//! row's offset token still commits: the record was skipped as handled and lost — no row, no
//! dead letter (found by `hostile_lambda_events` on the Kinesis path, a 9-character `status`,
//! and by `hostile_nats_messages` on the NATS path, whose consumer only counted the row
//! error). Checking the types here keeps "every message a row or a dead letter, once" exact.
//! A deployment that widens a column must widen it here.

use serde_json::Number;

use crate::sensor_stream::reading::{BadRecord, Measurement};

/// `SENSOR_ID NUMBER(4,0)`.
pub const SENSOR_ID_DIGITS: u32 = 4;
/// `CURRENT_TEMPERATURE NUMBER(5,0)`.
pub const TEMPERATURE_DIGITS: u32 = 5;
/// `STATUS VARCHAR(8)` (characters).
pub const STATUS_CHARS: usize = 8;

/// Whether `m` fits the reading columns of `SENSOR_READINGS` and `KINESIS_READINGS`.
///
/// # Errors
/// A `BadRecord` naming the column, its type and the value's size.
pub fn check(m: &Measurement) -> Result<(), BadRecord> {
    let max_id = 10i64.pow(SENSOR_ID_DIGITS) - 1;
    if m.sensor_id.unsigned_abs() > max_id as u64 {
        return Err(BadRecord::new(format!(
            "sensorId {} does not fit SENSOR_ID NUMBER({SENSOR_ID_DIGITS},0) (at most {max_id})",
            m.sensor_id
        )));
    }
    if !fits_digits(&m.current_temperature, TEMPERATURE_DIGITS) {
        let mut shown = m.current_temperature.to_string();
        if shown.len() > 40 {
            shown = format!("{}… ({} characters)", &shown[..40], shown.len());
        }
        return Err(BadRecord::new(format!(
            "currentTemperature {shown} does not fit CURRENT_TEMPERATURE \
             NUMBER({TEMPERATURE_DIGITS},0) once rounded"
        )));
    }
    if let Some(status) = &m.status {
        let chars = status.chars().count();
        if chars > STATUS_CHARS {
            return Err(BadRecord::new(format!(
                "status of {chars} characters does not fit STATUS VARCHAR({STATUS_CHARS})"
            )));
        }
    }
    Ok(())
}

/// Whether `n`, rounded half away from zero to an integer (as the server converts it to a
/// scale of 0), has at most `digits` digits. Through `f64`: a value within its rounding of a
/// boundary may be refused, never one past it taken.
fn fits_digits(n: &Number, digits: u32) -> bool {
    let Some(v) = n.as_f64() else {
        return false;
    };
    let max = 10f64.powi(digits as i32) - 1.0;
    // NaN and infinities fail the comparison.
    v.abs().round() <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: i64, t: &str, status: Option<&str>) -> Measurement {
        Measurement {
            sensor_id: id,
            current_temperature: serde_json::from_str(t).unwrap(),
            status: status.map(str::to_owned),
            event_time: "2026-11-27 09:00:00.000".into(),
        }
    }

    #[test]
    fn values_past_the_columns_are_named_and_the_rest_fit() {
        for ok in [
            m(9999, "99999", Some("12345678")),
            m(-9999, "-99999.4", Some("éééééééé")),
            m(0, "-0", None),
            m(1, "1e4", Some("")),
        ] {
            check(&ok).unwrap();
        }
        let refused = |r: Measurement, says: &str| {
            let e = check(&r).unwrap_err().to_string();
            assert!(e.contains(says), "{says:?} not in {e}");
        };
        refused(m(10_000, "1", None), "SENSOR_ID NUMBER(4,0)");
        refused(m(i64::MIN, "1", None), "at most 9999");
        refused(m(1, "99999.5", None), "CURRENT_TEMPERATURE NUMBER(5,0)");
        refused(m(1, "18446744073709551616", None), "NUMBER(5,0)");
        refused(m(1, "-1e300", None), "NUMBER(5,0)");
        refused(m(1, "1", Some("123456789")), "status of 9 characters");
        refused(m(1, "1", Some(&"x".repeat(500_000))), "VARCHAR(8)");
    }
}
