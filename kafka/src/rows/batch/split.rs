//! A batch split for its append, in one call ([`Batch::split`]): the rows to append (checked
//! in place, normalized as the row layout says) and the dead letters (each message that is no
//! row, with its reason, copied out of the batch), so that a partition's worker needs nothing
//! else of the batch. With client-side validation the same call ([`Batch::split_checked`])
//! also checks the rows against the table's columns ([`check_rows`], the rules in
//! `rows/validate/`; the connector supplies the columns and evolves the table,
//! [`TableColumns`]): rewritten rows replace theirs, and refused ones join the dead letters
//! through [`TakenRows::letters`], from the rows' messages the [`TakenRows`] keep until they
//! are appended. A refused row never stops the partition: the rows after it are appended.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Batch, Kept, Msg, TakenRows};
use crate::formats::connect_type::FieldTypes;
use crate::rows::layout::{Layout, LayoutKind};
use crate::rows::normalize;
use crate::rows::offset::KafkaOffset;
use crate::rows::record::{Record, RowOptions, TimestampKind};
use crate::rows::validate::table::{off_workers, TableColumns, AFTER_EVOLUTION, DISABLED};
use crate::rows::validate::{self, Columns, Outcome};
use crate::rows::TopicPartition;

/// A batch split: its rows to append and its dead letters.
pub(crate) struct Split {
    /// The rows, normalized when the row layout says (`Layout::normalized`).
    pub(crate) rows: TakenRows,
    /// The messages that are not rows (a skipped tombstone is neither), in offset order.
    pub(crate) dead: Vec<Letter>,
}

/// A message that is not a row, with the reason: its parts copied out of its batch (dead
/// letters are few, and owned they outlive the batch).
#[derive(Debug, Clone)]
pub(crate) struct Letter {
    /// Its offset.
    pub(crate) offset: KafkaOffset,
    timestamp: Option<(TimestampKind, i64)>,
    key: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    value: Option<Vec<u8>>,
    /// Why it is not a row.
    pub(crate) reason: String,
}

impl Letter {
    /// Message `m`, not a row because of `reason`.
    fn of(m: &Msg<'_>, reason: String) -> Self {
        Self {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key.map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect(),
            value: m.value().map(std::borrow::Cow::into_owned),
            reason,
        }
    }

    /// Its headers in order, for [`record`](Self::record).
    pub(crate) fn headers(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect()
    }

    /// The message as a [`Record`] of `part`, with the `headers` from
    /// [`headers`](Self::headers).
    pub(crate) fn record<'a>(
        &'a self,
        part: &'a TopicPartition,
        headers: &'a [(&'a [u8], Option<&'a [u8]>)],
    ) -> Record<'a> {
        Record {
            topic: &part.topic,
            partition: part.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp: self.timestamp,
            headers,
        }
    }
}

impl Batch {
    /// Splits the batch for its append: each message after `last` checked as a row in place
    /// (`row::finish`), the rows taken together ([`TakenRows`], normalized as `options.layout`
    /// says), and every other message a [`Letter`] with its reason (`row::reason`) — except
    /// a skipped tombstone, which is neither. `last` moves to the last message's offset; a
    /// message at or before it is dropped (already in).
    pub(crate) fn split(
        mut self,
        part: &TopicPartition,
        last: &mut KafkaOffset,
        options: &RowOptions,
    ) -> Split {
        let mut keep = Vec::with_capacity(self.len());
        let mut dead = Vec::new();
        for i in 0..self.len() {
            let offset = self.offset(i);
            if offset <= *last {
                keep.push(false);
                continue;
            }
            *last = offset;
            let row = self.finish(i, options.max_row_bytes);
            if !row && !self.skipped(i) {
                dead.push(self.letter(part, i, None, options));
            }
            keep.push(row);
        }
        let mut rows = self.into_taken(&keep);
        if let Some(normalized) = options.layout.normalized(&rows.ndjson) {
            rows.ndjson = normalized.into();
        }
        Split { rows, dead }
    }

    /// [`Batch::split`], then, with `table` (client-side validation), the rows checked against
    /// its columns ([`check_rows`]): the refused ones join the dead letters, which stay in
    /// offset order.
    pub(crate) async fn split_checked<T: TableColumns>(
        self,
        part: &TopicPartition,
        last: &mut KafkaOffset,
        options: &RowOptions,
        table: Option<&T>,
    ) -> Split {
        let mut split = self.split(part, last, options);
        if let Some(table) = table {
            let Split { rows, dead } = &mut split;
            let ndjson = (&mut rows.ndjson, &mut rows.tokens);
            let refused = check_rows(table, options.layout, ndjson, &[]).await;
            dead.extend(rows.letters(refused));
            dead.sort_by_key(|l| l.offset);
        }
        split
    }

    /// Message `i` of `part` as a dead letter, with the reason `given` or else the one
    /// `row::reason` finds.
    pub(crate) fn letter(
        &self,
        part: &TopicPartition,
        i: usize,
        given: Option<String>,
        options: &RowOptions,
    ) -> Letter {
        let m = self.get(i);
        let reason = given.unwrap_or_else(|| {
            let headers: Vec<_> = m.headers().collect();
            let value = m.value();
            let record = m.record(&part.topic, part.partition, &headers, value.as_deref());
            crate::rows::row::reason(&record, *options)
                .unwrap_or_else(|| "the row could not be built".to_owned())
        });
        Letter::of(&m, reason)
    }

    /// The messages of the offset tokens `refused` names, as dead letters with their reasons
    /// (a token the batch does not hold is left out; one held twice names its first message).
    pub(crate) fn letters(&self, refused: Vec<(u64, String)>) -> Vec<Letter> {
        let tokens = (0..self.len()).map(|i| self.offset(i).token());
        found(tokens, refused)
            .into_iter()
            .map(|(i, why)| Letter::of(&self.get(i), why))
            .collect()
    }
}

impl TakenRows {
    /// The rows of the offset tokens `refused` names (rows refused after the split, such as
    /// by client-side validation), as dead letters with their reasons, from the messages as
    /// they came (a token not among the rows is left out).
    pub(crate) fn letters(&self, refused: Vec<(u64, String)>) -> Vec<Letter> {
        let Kept {
            messages,
            headers,
            side,
            rows,
        } = &self.kept;
        let tokens = messages.iter().map(|m| m.offset.token());
        found(tokens, refused)
            .into_iter()
            .map(|(i, why)| Letter::of(&Msg::of(&messages[i], headers, &side.buf, rows), why))
            .collect()
    }

    /// The rows for the SDK's append: the NDJSON and its tokens, and the charge to hold until
    /// the append returns. The rows' messages are let go (their side buffer back to the pool).
    pub(crate) fn into_parts(self) -> (bytes::Bytes, Vec<u64>, super::Charge) {
        let Self {
            ndjson,
            tokens,
            charge,
            kept,
        } = self;
        drop(kept);
        (ndjson, tokens, charge)
    }
}

/// Checks the rows `ndjson` (one a line, at offset `tokens`; `types`: each row's Connect
/// field types, from its Schema Registry value's schema, or empty) against `table`'s columns
/// (`rows/validate/`): rewritten rows replace theirs (`ndjson` and `tokens` become the rows to
/// append); the refused rows leave them and are returned, each token with its reason, for the
/// dead letters. A row off for its columns has the table evolved for it first (by `table`,
/// which is handed only the columns it lacks), and is checked again. With
/// `--normalize-columns` the fields are looked up by their normalized names, as v4 normalizes
/// the schema's (`SnowflakeSinkRecord.normalizeSchemaFieldNames`). A row is never held back:
/// what cannot land is a dead letter.
pub(crate) async fn check_rows<T: TableColumns>(
    table: &T,
    layout: Layout,
    (ndjson, tokens): (&mut bytes::Bytes, &mut Vec<u64>),
    types: &[Option<Arc<FieldTypes>>],
) -> Vec<(u64, String)> {
    let normalize = layout.normalize_columns && layout.kind == LayoutKind::Columns;
    let fields: Vec<Option<&FieldTypes>> = types
        .iter()
        .map(|t| {
            t.as_deref().map(|f| {
                if normalize {
                    f.renamed(|name| normalize::identifier(name).into_owned())
                } else {
                    f
                }
            })
        })
        .collect();
    let lines: Vec<&[u8]> = ndjson
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let check = |line: &[u8], i: usize, columns: &Columns| {
        let typed = fields.get(i).copied().flatten();
        validate::typed_row(line, columns, table.normalize_time(), typed)
    };
    // Checking is CPU alone (a map into a text column is written again key by key): off the
    // async workers when the rows are large.
    let columns = table.columns();
    let first: Vec<Outcome> = off_workers(ndjson.len(), || {
        let each = lines.iter().zip(tokens.iter()).enumerate();
        each.map(|(i, (line, _))| check(line, i, &columns))
            .collect()
    });
    let (mut rows, mut kept, mut dead) = (Vec::with_capacity(ndjson.len()), Vec::new(), Vec::new());
    let mut changed = false;
    for (i, ((line, &token), mut outcome)) in lines.iter().zip(tokens.iter()).zip(first).enumerate()
    {
        // An earlier row's evolution may have given this one its columns.
        let now = table.columns();
        if matches!(outcome, Outcome::Structural(_)) && !Arc::ptr_eq(&columns, &now) {
            outcome = off_workers(line.len(), || check(line, i, &now));
        }
        if let Outcome::Structural(s) = &outcome {
            outcome = match table.evolve(s).await {
                Ok(()) => match off_workers(line.len(), || check(line, i, &table.columns())) {
                    Outcome::Structural(s) => Outcome::Refused(s.reason(AFTER_EVOLUTION)),
                    other => other,
                },
                Err(why) => Outcome::Refused(why),
            };
        }
        match outcome {
            Outcome::Same => rows.extend_from_slice(line),
            Outcome::Rewritten(new) => {
                changed = true;
                rows.extend_from_slice(&new);
            }
            Outcome::Refused(why) => {
                changed = true;
                dead.push((token, why));
                continue;
            }
            Outcome::Structural(s) => {
                changed = true;
                dead.push((token, s.reason(DISABLED)));
                continue;
            }
        }
        rows.push(b'\n');
        kept.push(token);
    }
    if changed {
        *ndjson = rows.into();
        *tokens = kept;
    }
    dead
}

/// Each refused token's index among `tokens` (in order), with its reason: one pass over the
/// tokens and one lookup per refused one (issue 81: a scan per refused row was quadratic in
/// the refused rows). A token not among them is skipped; a token held twice names its first
/// index.
fn found(tokens: impl Iterator<Item = u64>, refused: Vec<(u64, String)>) -> Vec<(usize, String)> {
    if refused.is_empty() {
        return Vec::new();
    }
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (i, t) in tokens.enumerate() {
        at.entry(t).or_insert(i);
    }
    refused
        .into_iter()
        .filter_map(|(t, why)| Some((*at.get(&t)?, why)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::found;
    use crate::rows::batch::tests::{push, record, META};
    use crate::rows::batch::{Batch, Budget, Pool};
    use crate::rows::{KafkaOffset, TopicPartition};

    /// One call gives the rows and the dead letters: what a producer wrote that is no row is
    /// a letter with its value as written and its reason; offsets already in are neither; a
    /// row refused after the split (moved in the buffer past a dead letter) is a letter with
    /// its own value, key and headers.
    #[test]
    fn a_split_gives_rows_and_dead_letters_as_the_producer_wrote_them() {
        let (pool, budget) = (Arc::new(Pool::default()), Arc::new(Budget::new(64 << 20)));
        let held = Arc::new(AtomicUsize::new(0));
        let mut b = Batch::new(16 << 10, 4 << 10, &pool, &budget, &held);
        let h: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"v"))];
        let values: [&[u8]; 5] = [b"{\"a\":1}", b"{\"a\":", b"[1]", b"{\"b\":2}", b"{\"c\":3}"];
        for (i, v) in values.iter().enumerate() {
            push(&mut b, &record(10 + i as i64, Some(v), h));
        }
        let part = TopicPartition::new("t", 0);
        let mut last = KafkaOffset::new(10);
        let split = b.split(&part, &mut last, &META);
        assert_eq!(last, KafkaOffset::new(14));
        assert_eq!(split.rows.tokens, [13, 14], "10 was in already");
        let dead: Vec<_> = split.dead.iter().map(|l| l.offset.get()).collect();
        assert_eq!(dead, [11, 12]);
        for (letter, value) in split.dead.iter().zip([values[1], values[2]]) {
            let headers = letter.headers();
            let r = letter.record(&part, &headers);
            assert_eq!(r.value, Some(value));
            assert_eq!(r.key, Some(&b"k"[..]));
            assert_eq!(r.headers, h);
            assert!(!letter.reason.is_empty());
        }
        let refused = split
            .rows
            .letters(vec![(14, "refused".into()), (99, "gone".into())]);
        assert_eq!(refused.len(), 1);
        let headers = refused[0].headers();
        let r = refused[0].record(&part, &headers);
        assert_eq!((r.offset.get(), r.value), (14, Some(values[4])));
        assert_eq!(refused[0].reason, "refused");
        let (ndjson, tokens, charge) = split.rows.into_parts();
        assert_eq!(ndjson.iter().filter(|b| **b == b'\n').count(), tokens.len());
        drop((ndjson, charge));
        assert_eq!(budget.used(), 0);
    }

    /// Every row of a 20,000-row batch refused: the batch is read once (20,000 tokens), where
    /// the scan per refused row read 200 million.
    #[test]
    fn refused_rows_are_found_in_one_pass() {
        let rows = 20_000u64;
        let read = Cell::new(0u64);
        let tokens = (0..rows).map(|i| {
            read.set(read.get() + 1);
            1_000 + 3 * i
        });
        // Refused in reverse order, plus a token the batch does not hold.
        let mut dead: Vec<(u64, String)> = (0..rows)
            .rev()
            .map(|i| (1_000 + 3 * i, format!("row {i}")))
            .collect();
        dead.push((7, "not in the batch".into()));
        let found = found(tokens, dead);
        assert_eq!(read.get(), rows);
        assert_eq!(found.len(), rows as usize);
        for (k, (i, why)) in found.iter().enumerate() {
            let expected = rows as usize - 1 - k;
            assert_eq!(*i, expected);
            assert_eq!(why, &format!("row {expected}"));
        }
    }

    #[test]
    fn a_token_held_twice_names_its_first_row() {
        let found = found([5, 6, 5].into_iter(), vec![(5, "x".into())]);
        assert_eq!(found, vec![(0, "x".to_owned())]);
    }
}
