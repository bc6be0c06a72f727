//! A row too large to send (a 16 MiB text value is a valid value, but a row larger than one
//! request goes only alone, compressed into one request, and at most 64 MiB): measured before
//! its append by the SDK's own rule ([`Channel::check_row`]), so it becomes a dead letter
//! naming its largest column and the sizes, and the replay or `follow` goes on. An append
//! that failed on it would stop the stream at that row on every start.

use serde_json::{Map, Value as Json};
use snowpipe_streaming::{Channel, Error};

use crate::common::thousands;
use crate::table_replay::schema::SourceTable;

/// `Ok` when `channel` can send `object` (a row of `table`, its columns named `names`),
/// else why not: a dead letter's reason ([`reason`]).
///
/// # Errors
/// The reason, when the SDK would refuse the row.
pub(crate) fn check(
    channel: &Channel,
    table: &SourceTable,
    names: &[String],
    object: &Map<String, Json>,
) -> Result<(), String> {
    match channel.check_row(object) {
        Ok(_) => Ok(()),
        Err(Error::RowTooLarge { size, max, .. }) => Err(reason(table, names, object, size, max)),
        Err(e) => Err(format!("the row cannot be sent: {e}")),
    }
}

/// Why `object` cannot be sent, from the SDK's `size` and `max` (the row's JSON bytes over the
/// limit, or its compressed bytes over one request): its largest column with that column's
/// JSON size, the row's JSON size, and the limit.
pub(crate) fn reason(
    table: &SourceTable,
    names: &[String],
    object: &Map<String, Json>,
    size: usize,
    max: usize,
) -> String {
    let row = json_len(object);
    let largest = table
        .columns
        .iter()
        .zip(names)
        .filter_map(|(c, n)| object.get(n).map(|v| (c, json_len(v))))
        .max_by_key(|(_, len)| *len);
    let column = largest.map_or_else(String::new, |(c, len)| {
        format!(
            "column {} ({}) is {} bytes as JSON; ",
            c.name,
            c.column_type,
            thousands(len as u64)
        )
    });
    let past = if size == row {
        format!("past the {}-byte limit on a row", thousands(max as u64))
    } else {
        format!(
            "{} compressed, past the {}-byte request",
            thousands(size as u64),
            thousands(max as u64)
        )
    };
    format!(
        "row too large to send: {column}the row is {} bytes as JSON, {past} (a row larger \
         than one request goes alone only when it compresses into one, and is at most 64 MiB): \
         store the value in smaller parts, or elsewhere",
        thousands(row as u64)
    )
}

/// The bytes of `value` as compact JSON, counted without keeping them.
fn json_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter never fails; a map of JSON values always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_replay::schema::{Kind, SourceColumn};

    #[test]
    fn the_reason_names_the_largest_column_the_sizes_and_the_limit() {
        let col = |name: &str, column_type: &str| SourceColumn {
            name: name.into(),
            column_type: column_type.into(),
            kind: Kind::Text { max_chars: None },
            nullable: true,
            charset: None,
        };
        let table = SourceTable {
            name: "t".into(),
            columns: vec![col("id", "int"), col("a", "text"), col("b", "longtext")],
            key: 0,
            keys: vec![0],
        };
        let names = vec!["ID".to_owned(), "A".to_owned(), "B".to_owned()];
        let mut object = Map::new();
        object.insert("ID".into(), Json::from(1));
        object.insert("A".into(), Json::from("x".repeat(10)));
        // A control byte is 6 bytes as JSON (\u0001).
        object.insert("B".into(), Json::from("\u{1}".repeat(1000)));
        let row = json_len(&object);
        assert_eq!(row, r#"{"ID":1,"A":"","B":""}"#.len() + 10 + 6000);
        let r = reason(&table, &names, &object, row, 4000);
        assert!(
            r.contains("column b (longtext) is 6,002 bytes as JSON; the row is 6,032 bytes as JSON, past the 4,000-byte limit on a row"),
            "{r}"
        );
        let r = reason(&table, &names, &object, 4100, 4000);
        assert!(
            r.contains("6,032 bytes as JSON, 4,100 compressed, past the 4,000-byte request"),
            "{r}"
        );
    }
}
