//! Row types for the three quickstart tables, serialized exactly as they land in Snowflake.
//!
//! Column names are upper case (the pipes use `MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE`, and the
//! emulator's tables are declared upper case). Timestamps are `TIMESTAMP_NTZ` strings
//! `YYYY-MM-DD HH:MM:SS.ffffff`, dates `YYYY-MM-DD`, `PRICE_USD` a JSON number with at most two
//! decimals, and the two `VARIANT` columns JSON objects.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the three streamed tables. The order is the display order everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Table {
    /// Day tickets bought for one resort.
    ResortTicket,
    /// Season passes valid at every resort.
    SeasonPass,
    /// One scan at a lift gate.
    LiftRide,
}

impl Table {
    /// All tables, in display order.
    pub(super) const ALL: [Table; 3] = [Table::ResortTicket, Table::SeasonPass, Table::LiftRide];

    /// The Snowflake table name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Table::ResortTicket => "RESORT_TICKET",
            Table::SeasonPass => "SEASON_PASS",
            Table::LiftRide => "LIFT_RIDE",
        }
    }

    /// The quickstart's pipe for this table.
    pub(super) fn pipe(self) -> String {
        format!("{}_PIPE", self.name())
    }

    /// Index into `[_; 3]` arrays kept per table.
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Table {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        Table::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown table {s:?}: expected RESORT_TICKET, SEASON_PASS or LIFT_RIDE"
                )
            })
    }
}

/// A postal address, stored in the `ADDRESS` variant column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Address {
    /// House number and street.
    pub street_address: String,
    /// City.
    pub city: String,
    /// Two-letter US state code.
    pub state: String,
    /// Five-digit ZIP code.
    pub postalcode: String,
}

/// The `EMERGENCY_CONTACT` variant column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct EmergencyContact {
    /// Full name.
    pub name: String,
    /// Phone number.
    pub phone: String,
}

/// The customer fields shared by tickets and passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(super) struct Customer {
    /// Full name.
    pub name: String,
    /// Postal address (VARIANT).
    pub address: Address,
    /// Phone number.
    pub phone: String,
    /// E-mail address.
    pub email: String,
    /// Emergency contact (VARIANT).
    pub emergency_contact: EmergencyContact,
}

/// A row of `RESORT_TICKET`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct ResortTicket {
    /// Unique transaction id (UUID).
    pub txid: String,
    /// RFID of the card the ticket is loaded on.
    pub rfid: String,
    /// The resort the ticket is valid at.
    pub resort: String,
    /// Purchase time, `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub purchase_time: String,
    /// Price in US dollars, two decimals.
    pub price_usd: f64,
    /// Last valid day, `YYYY-MM-DD`.
    pub expiration_time: String,
    /// Number of ski days on the ticket.
    pub days: u32,
    /// The buyer.
    #[serde(flatten)]
    pub customer: Customer,
}

/// A row of `SEASON_PASS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct SeasonPass {
    /// Unique transaction id (UUID).
    pub txid: String,
    /// RFID of the pass.
    pub rfid: String,
    /// Purchase time, `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub purchase_time: String,
    /// Price in US dollars, two decimals.
    pub price_usd: f64,
    /// Last valid day (end of season), `YYYY-MM-DD`.
    pub expiration_time: String,
    /// The buyer.
    #[serde(flatten)]
    pub customer: Customer,
}

/// A row of `LIFT_RIDE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct LiftRide {
    /// Unique transaction id (UUID).
    pub txid: String,
    /// RFID scanned at the gate: always one of an earlier ticket or pass.
    pub rfid: String,
    /// Resort of the lift.
    pub resort: String,
    /// Lift name.
    pub lift: String,
    /// Scan time, `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub ride_time: String,
    /// How many distinct days this RFID has been used, including today (1 on the first day).
    pub activation_day_count: u32,
}

/// One generated row of any table.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Row {
    /// A `RESORT_TICKET` row.
    Ticket(ResortTicket),
    /// A `SEASON_PASS` row.
    Pass(SeasonPass),
    /// A `LIFT_RIDE` row.
    Ride(LiftRide),
}

impl Row {
    /// The table this row belongs to.
    pub(super) fn table(&self) -> Table {
        match self {
            Row::Ticket(_) => Table::ResortTicket,
            Row::Pass(_) => Table::SeasonPass,
            Row::Ride(_) => Table::LiftRide,
        }
    }

    /// The row's transaction id.
    pub(super) fn txid(&self) -> &str {
        match self {
            Row::Ticket(r) => &r.txid,
            Row::Pass(r) => &r.txid,
            Row::Ride(r) => &r.txid,
        }
    }

    /// The row as one line of JSON (no trailing newline).
    pub(super) fn to_json(&self) -> String {
        let result = match self {
            Row::Ticket(r) => serde_json::to_string(r),
            Row::Pass(r) => serde_json::to_string(r),
            Row::Ride(r) => serde_json::to_string(r),
        };
        // Serializing plain structs of strings and numbers cannot fail.
        result.expect("row serializes to JSON")
    }
}

/// Formats a price in cents as the JSON number Snowflake stores in `NUMBER(7,2)`.
pub(super) fn cents_to_usd(cents: u32) -> f64 {
    // Shortest round-trip formatting of cents / 100 is always the exact two-decimal value.
    f64::from(cents) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Customer {
        Customer {
            name: "Ada Lovelace".into(),
            address: Address {
                street_address: "12 Aspen Ln".into(),
                city: "Denver".into(),
                state: "CO".into(),
                postalcode: "80202".into(),
            },
            phone: "303-555-0100".into(),
            email: "ada@example.com".into(),
            emergency_contact: EmergencyContact {
                name: "Charles Babbage".into(),
                phone: "303-555-0101".into(),
            },
        }
    }

    #[test]
    fn ticket_serializes_with_quickstart_columns() {
        let row = Row::Ticket(ResortTicket {
            txid: "t1".into(),
            rfid: "0xabc".into(),
            resort: "Vail".into(),
            purchase_time: "2025-12-20 08:01:02.000003".into(),
            price_usd: cents_to_usd(23_450),
            expiration_time: "2025-12-21".into(),
            days: 2,
            customer: customer(),
        });
        let v: serde_json::Value = serde_json::from_str(&row.to_json()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "ADDRESS",
                "DAYS",
                "EMAIL",
                "EMERGENCY_CONTACT",
                "EXPIRATION_TIME",
                "NAME",
                "PHONE",
                "PRICE_USD",
                "PURCHASE_TIME",
                "RESORT",
                "RFID",
                "TXID"
            ]
        );
        assert_eq!(v["PRICE_USD"].to_string(), "234.5");
        assert_eq!(v["ADDRESS"]["city"], "Denver");
        assert_eq!(v["EMERGENCY_CONTACT"]["phone"], "303-555-0101");
    }

    #[test]
    fn season_pass_and_ride_columns() {
        let pass = Row::Pass(SeasonPass {
            txid: "p".into(),
            rfid: "r".into(),
            purchase_time: "2025-12-20 08:00:00.000000".into(),
            price_usd: cents_to_usd(98_200),
            expiration_time: "2026-04-19".into(),
            customer: customer(),
        });
        let v: serde_json::Value = serde_json::from_str(&pass.to_json()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 10);
        assert_eq!(v["PRICE_USD"].to_string(), "982.0");
        let ride = Row::Ride(LiftRide {
            txid: "x".into(),
            rfid: "r".into(),
            resort: "Vail".into(),
            lift: "Gondola One".into(),
            ride_time: "2025-12-20 09:00:00.000000".into(),
            activation_day_count: 1,
        });
        let v: serde_json::Value = serde_json::from_str(&ride.to_json()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 6);
        assert_eq!(v["ACTIVATION_DAY_COUNT"], 1);
        assert_eq!(ride.table(), Table::LiftRide);
    }

    #[test]
    fn every_cent_value_prints_exactly() {
        for cents in (0..1_000_000u32).step_by(7) {
            let s = serde_json::to_string(&cents_to_usd(cents)).unwrap();
            let back: f64 = s.parse().unwrap();
            assert_eq!((back * 100.0).round() as u32, cents, "{s}");
            let decimals = s.split('.').nth(1).map_or(0, str::len);
            assert!(decimals <= 2, "{s}");
        }
    }

    #[test]
    fn table_names_round_trip() {
        for t in Table::ALL {
            assert_eq!(t.name().parse::<Table>().unwrap(), t);
        }
        assert_eq!(Table::LiftRide.pipe(), "LIFT_RIDE_PIPE");
        assert!("NOPE".parse::<Table>().is_err());
    }
}
