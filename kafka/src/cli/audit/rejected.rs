//! Rows the server rejected, from the table's error table (`ERROR_LOGGING = TRUE`, as the
//! connector creates its tables): each rejected row is there with the line as it was sent
//! (`ERROR_DATA:"$1"`), whose `RECORD_METADATA` (written first, `topic`, `offset` and
//! `partition` leading it) names its message. So an offset absent from the table because the
//! server refused its row is told apart from a gap (a row the writer never sent), and every
//! rejected row is named by its own partition and offset, however many one request held.
//!
//! Only the head of each line is read ([`HEAD`] characters: the row may be megabytes), at most
//! [`MOST`] rows a table; a line whose head names no topic, partition and offset (a row
//! written without `RECORD_METADATA`) is counted, not placed.

use std::collections::{BTreeMap, BTreeSet};

use snowpipe_streaming::sql::SqlClient;

use crate::error::{Context, Error, Result};

use super::{Audit, Gap};

/// The most rejected rows read per table.
pub(super) const MOST: usize = 10_000;
/// The characters of each rejected line read.
const HEAD: usize = 4_096;

/// The rejected rows of a table's error table, by (topic, partition).
#[derive(Debug, Default)]
struct Rejected {
    /// Offsets per (topic, partition).
    pub by_partition: BTreeMap<(String, i32), BTreeSet<i64>>,
    /// Lines whose head names no topic, partition and offset.
    pub unplaced: u64,
    /// More than [`MOST`] rows: only the first were read.
    pub more: bool,
}

/// The offsets of `topics`' rows `table`'s error table holds, by (topic, partition); what
/// the reading could not do goes into `report`: a note when the table has no error table or
/// lines were left unread or unplaced, a problem when the SQL API refused the reading.
///
/// # Cancellation
/// Dropping the future abandons the reading; nothing is changed.
pub(super) async fn offsets(
    sql: &SqlClient,
    table: &str,
    topics: &[String],
    report: &mut Audit,
) -> BTreeMap<(String, i32), BTreeSet<i64>> {
    match read(sql, table, topics).await {
        Ok(Some(r)) => {
            if r.more {
                report.notes.push(format!(
                    "table {table}: more than {MOST} rows in its error table: only the first \
                     were read"
                ));
            }
            if r.unplaced > 0 {
                report.notes.push(format!(
                    "table {table}: {} rejected rows in its error table name no topic, \
                     partition and offset (written without RECORD_METADATA)",
                    r.unplaced
                ));
            }
            r.by_partition
        }
        Ok(None) => {
            report.notes.push(format!(
                "table {table} has no error table this role may read (ERROR_LOGGING = \
                 FALSE): a row the server rejected is counted as a gap"
            ));
            BTreeMap::new()
        }
        Err(e) => {
            report.problems.push(format!(
                "table {table}: its error table cannot be read: {e:#}"
            ));
            BTreeMap::new()
        }
    }
}

/// The rejected rows of `topics` in `table`'s error table; `None` when the table has none
/// (no error logging, or this role may not read it).
///
/// # Errors
/// Any other refusal of the SQL API.
async fn read(sql: &SqlClient, table: &str, topics: &[String]) -> Result<Option<Rejected>> {
    let statement = format!(
        "SELECT SUBSTR(ERROR_DATA:\"$1\"::STRING, 1, {HEAD}) FROM ERROR_TABLE({table}) \
         WHERE ERROR_METADATA:service::STRING = 'snowpipe_streaming' LIMIT {}",
        MOST + 1
    );
    let answer = match sql.query(&statement).await {
        Ok(a) => a,
        Err(snowpipe_streaming::Error::Sql(e)) if e.code.as_deref() == Some("002003") => {
            return Ok(None)
        }
        Err(e) => return Err(e).context(Error::Snowflake, "reading the table's error table"),
    };
    let mut out = Rejected {
        more: answer.rows.len() > MOST,
        ..Rejected::default()
    };
    for row in answer.rows.iter().take(MOST) {
        let head = row.first().cloned().flatten().unwrap_or_default();
        match place(&head) {
            Some((topic, partition, offset)) if topics.contains(&topic) => {
                out.by_partition
                    .entry((topic, partition))
                    .or_default()
                    .insert(offset);
            }
            Some(_) => {}
            None => out.unplaced += 1,
        }
    }
    Ok(Some(out))
}

/// `absent` less the offsets in `rejected`, and those offsets (in order).
pub(super) fn split(absent: Vec<Gap>, rejected: &BTreeSet<i64>) -> (Vec<Gap>, Vec<i64>) {
    let (mut left, mut taken) = (Vec::new(), Vec::new());
    for g in absent {
        let mut from = g.from;
        for &o in rejected.range(g.from..=g.to) {
            if o > from {
                left.push(Gap { from, to: o - 1 });
            }
            taken.push(o);
            from = o + 1;
        }
        if from <= g.to {
            left.push(Gap { from, to: g.to });
        }
    }
    (left, taken)
}

/// The topic, partition and offset the head of a line names: a JSON object whose first member
/// is `RECORD_METADATA`, an object whose members before its first object or array value hold
/// `topic` (a string), `partition` and `offset` (integers). `None` otherwise.
pub(super) fn place(head: &str) -> Option<(String, i32, i64)> {
    let mut s = Scanner {
        rest: head.trim_start(),
    };
    s.eat('{')?;
    if s.string()? != "RECORD_METADATA" {
        return None;
    }
    s.eat(':')?;
    s.eat('{')?;
    let (mut topic, mut partition, mut offset) = (None, None, None);
    loop {
        let key = s.string()?;
        s.eat(':')?;
        match s.peek()? {
            '"' => {
                let v = s.string()?;
                if key == "topic" {
                    topic = Some(v);
                }
            }
            '{' | '[' => break,
            _ => {
                let n = s.integer()?;
                match key.as_str() {
                    "partition" => partition = i32::try_from(n).ok(),
                    "offset" => offset = Some(n),
                    _ => {}
                }
            }
        }
        if topic.is_some() && partition.is_some() && offset.is_some() {
            break;
        }
        if s.eat(',').is_none() {
            break;
        }
    }
    Some((topic?, partition?, offset?))
}

/// A cursor over compact JSON text (white space allowed between tokens).
struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<char> {
        self.rest = self.rest.trim_start();
        self.rest.chars().next()
    }

    fn eat(&mut self, c: char) -> Option<()> {
        (self.peek()? == c).then(|| self.rest = &self.rest[c.len_utf8()..])
    }

    /// A JSON string, unescaped.
    fn string(&mut self) -> Option<String> {
        if self.peek()? != '"' {
            return None;
        }
        let bytes = self.rest.as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    let text = serde_json::from_str(&self.rest[..=i]).ok()?;
                    self.rest = &self.rest[i + 1..];
                    return Some(text);
                }
                _ => i += 1,
            }
        }
        None
    }

    /// A JSON integer (a number with a fraction or exponent is none).
    fn integer(&mut self) -> Option<i64> {
        self.peek()?;
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(self.rest.len());
        if self.rest[end..].starts_with(['.', 'e', 'E']) {
            return None;
        }
        let n = self.rest[..end].parse().ok()?;
        self.rest = &self.rest[end..];
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::{place, split, Gap};

    #[test]
    fn rejected_offsets_are_taken_out_of_the_absent_ones() {
        let absent = vec![Gap { from: 3, to: 9 }, Gap { from: 12, to: 12 }];
        let rejected = [3, 5, 6, 9, 12, 40].into_iter().collect();
        let (left, taken) = split(absent, &rejected);
        assert_eq!(left, vec![Gap { from: 4, to: 4 }, Gap { from: 7, to: 8 }]);
        assert_eq!(taken, vec![3, 5, 6, 9, 12]);
    }

    #[test]
    fn a_lines_head_names_its_message() {
        let line = r#"{"RECORD_METADATA":{"topic":"or\"ders","offset":41,"partition":2,"CreateTime":1,"key":"k","headers":{}},"ID":"x"}"#;
        assert_eq!(place(line), Some(("or\"ders".into(), 2, 41)));
        // Cut in the middle of what follows: the head still names it.
        assert_eq!(place(&line[..66]), Some(("or\"ders".into(), 2, 41)));
        let spaced =
            r#" { "RECORD_METADATA" : { "partition" : 0 , "topic" : "t" , "offset" : 7 } }"#;
        assert_eq!(place(spaced), Some(("t".into(), 0, 7)));
    }

    #[test]
    fn a_line_that_does_not_name_its_message_is_not_placed() {
        for line in [
            r#"{"ID":"x","RECORD_METADATA":{"topic":"t","offset":1,"partition":0}}"#,
            r#"{"RECORD_METADATA":{"topic":"t","key":{"a":1},"offset":1,"partition":0}}"#,
            r#"{"RECORD_METADATA":{"topic":"t","offset":1.5,"partition":0}}"#,
            r#"{"RECORD_METADATA":{"topic":"t","offset":1}}"#,
            r#"{"RECORD_METADATA":{"topic":"t","offs"#,
            "not json",
            "",
        ] {
            assert_eq!(place(line), None, "{line}");
        }
    }
}
