//! A row too large to send (a 16 MiB text value is a valid value, but a row larger than one
//! request goes only alone, compressed into one request, and at most 64 MiB): measured before
//! its append by the SDK's own rule ([`Channel::check_row`]), so it becomes a dead letter
//! naming its largest column and the sizes, and the replay or `follow` goes on. An append
//! that failed on it would stop the stream at that row on every start.

use serde_json::{Map, Value as Json};
use snowpipe_streaming::{Channel, Error};

use crate::common::thousands;
use crate::table_replay::schema::SourceTable;

/// What a page's text is first sized by, per row: a snapshot row of a dozen columns.
pub(crate) const ROW_BYTES_GUESS: usize = 256;

/// Rows whose JSON is surely under this many bytes are not measured: far below the SDK's
/// limit on a row (3,984,119 bytes), so no row that could be refused is passed over.
const SURELY_FITS: usize = 1 << 20;

/// `Ok` when `channel` can send the row `text` (a row of `table`, its columns named `names`,
/// made of `values`; its JSON text from its `{`, without the closing `}`), else why not: a
/// dead letter's reason ([`reason`]). A row whose JSON is surely small (`bound`, from
/// `values`) is not measured: measuring parses the row back and writes it once more.
///
/// # Errors
/// The reason, when the SDK would refuse the row.
pub(crate) fn check(
    channel: &Channel,
    table: &SourceTable,
    names: &[String],
    values: &[mysql_async::Value],
    text: &[u8],
) -> Result<(), String> {
    if bound(names, values) < SURELY_FITS {
        return Ok(());
    }
    let mut whole = String::from_utf8_lossy(text).into_owned();
    whole.push('}');
    let unreadable =
        |e| format!("the row's JSON does not read back ({e}): a bug, please report it");
    // Sent as written: not parsed unless it is refused (the reason names its largest column).
    let raw = serde_json::value::RawValue::from_string(whole).map_err(unreadable)?;
    match channel.check_row(&raw) {
        Ok(_) => Ok(()),
        Err(Error::RowTooLarge { size, max, .. }) => {
            let object: Map<String, Json> = serde_json::from_str(raw.get()).map_err(unreadable)?;
            Err(reason(table, names, &object, size, max))
        }
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

/// At least as many bytes as the JSON of a row of `values` named `names` takes, with its
/// change metadata: each name and text escaped at worst (`\u00XX`, 6 bytes a byte), a
/// number or a date at most 64 bytes, and 1 KiB for the metadata columns.
fn bound(names: &[String], values: &[mysql_async::Value]) -> usize {
    let values: usize = values
        .iter()
        .map(|v| match v {
            mysql_async::Value::Bytes(b) => b.len().saturating_mul(6).saturating_add(2),
            _ => 64,
        })
        .fold(0, usize::saturating_add);
    let names: usize = names
        .iter()
        .map(|n| n.len().saturating_mul(6).saturating_add(4))
        .fold(0, usize::saturating_add);
    values.saturating_add(names).saturating_add(1024)
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

    /// The bound is never under the row's JSON (text of every byte value, escapes at worst),
    /// and a large value is measured.
    #[test]
    fn the_bound_is_never_under_the_rows_json() {
        use mysql_async::Value;
        let names = vec!["ID".to_owned(), "NOTE".to_owned(), "\u{1}".to_owned()];
        for (i, text) in ["", "plain", "\u{1}\u{1f}\"\\", "é€😀"].iter().enumerate() {
            let values = vec![
                Value::Int(i64::MIN),
                Value::Bytes(text.repeat(50).into_bytes()),
                Value::Double(-1.0e-300),
            ];
            let mut object = Map::new();
            object.insert(names[0].clone(), Json::from(i64::MIN));
            object.insert(names[1].clone(), Json::from(text.repeat(50)));
            object.insert(names[2].clone(), Json::from(-1.0e-300));
            object.insert("_COMMIT_TS".into(), Json::from("2026-01-01T00:00:00+00:00"));
            assert!(bound(&names, &values) >= json_len(&object), "case {i}");
        }
        let big = vec![mysql_async::Value::Bytes(vec![1u8; 200_000])];
        assert!(
            bound(&names[..1], &big) >= SURELY_FITS,
            "a 200 KB control run is measured"
        );
    }

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
