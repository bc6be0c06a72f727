//! Client-side validation on a partition's worker (`snowflake.validation=client_side`): the
//! rows of a batch, once made (and normalized), checked against the table's columns
//! (`connector/table_columns.rs`, the rules in `rows/validate/`) before they are appended:
//! rewritten rows replace theirs, refused ones go to the dead letters with v4's reason (and the
//! topic, partition and offset headers), while the batch still holds their messages. A refused
//! row never stops the partition: the rows after it are appended as usual.

use std::collections::HashMap;
use std::sync::Arc;

use crate::connector::table_columns::TableCheck;
use crate::formats::connect_type::FieldTypes;
use crate::rows::batch::Batch;
use crate::rows::layout::LayoutKind;
use crate::rows::normalize;
use crate::rows::KafkaOffset;
use crate::sink::commits::InFlight;
use crate::sink::partition::{Halt, Worker};

impl Worker {
    /// A batch of JSON rows (`keep`: the messages that are rows) checked, then appended.
    pub(super) async fn append_checked(
        &self,
        check: &TableCheck,
        batch: Batch,
        keep: &[bool],
        last: &mut KafkaOffset,
        sent: &mut InFlight,
    ) -> Result<(), Halt> {
        let mut ndjson = Vec::new();
        let mut tokens = Vec::new();
        for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            if let Some(row) = batch.row(i) {
                ndjson.extend_from_slice(row);
                ndjson.push(b'\n');
                tokens.push(batch.offset(i).token());
            }
        }
        let ndjson = self.normalized(&ndjson).unwrap_or(ndjson);
        let (ndjson, tokens) = self.checked(check, &batch, ndjson, tokens, &[]).await;
        // The batch's charge is held until the SDK has the rows.
        let rows = batch.into_rows(keep);
        let appended = self.send_rows(ndjson.into(), tokens, last, sent).await;
        drop(rows);
        appended.map_err(Halt::End)
    }

    /// `ndjson` (rows of `batch` with offset `tokens`; `types`: each row's Connect field types,
    /// from its Schema Registry value's schema, or empty) checked: the rows to append and their
    /// tokens; the refused ones dead-lettered. With `--normalize-columns` the fields are
    /// looked up by their normalized names, as v4 normalizes the schema's
    /// (`SnowflakeSinkRecord.normalizeSchemaFieldNames`).
    pub(super) async fn checked(
        &self,
        check: &TableCheck,
        batch: &Batch,
        ndjson: Vec<u8>,
        tokens: Vec<u64>,
        types: &[Option<Arc<FieldTypes>>],
    ) -> (Vec<u8>, Vec<u64>) {
        let layout = self.rows.layout;
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
        let checked = check.rows(&ndjson, &tokens, &fields).await;
        if !checked.dead.is_empty() {
            let tokens = (0..batch.len()).map(|i| batch.offset(i).token());
            let dead = dead_indices(tokens, checked.dead);
            self.dead_letter(batch, &dead).await;
        }
        match checked.ndjson {
            Some(rows) => (rows, checked.offsets),
            None => (ndjson, tokens),
        }
    }
}

/// Each refused row's index in its batch (`tokens`: the batch's offset tokens, in order), with
/// its reason: one pass over the batch and one lookup per refused row (issue 81: a scan of the
/// batch per refused row was quadratic in the refused rows). A token the batch does not hold
/// is skipped; a token held twice names its first row.
fn dead_indices(
    tokens: impl Iterator<Item = u64>,
    dead: Vec<(u64, String)>,
) -> Vec<(usize, Option<String>)> {
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (i, t) in tokens.enumerate() {
        at.entry(t).or_insert(i);
    }
    dead.into_iter()
        .filter_map(|(t, why)| Some((*at.get(&t)?, Some(why))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::dead_indices;

    /// Every row of a 20,000-row batch refused: the batch is read once (20,000 tokens), where
    /// the scan per refused row read 200 million.
    #[test]
    fn dead_rows_are_found_in_one_pass() {
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
        let found = dead_indices(tokens, dead);
        assert_eq!(read.get(), rows);
        assert_eq!(found.len(), rows as usize);
        for (k, (i, why)) in found.iter().enumerate() {
            let expected = rows as usize - 1 - k;
            assert_eq!(*i, expected);
            assert_eq!(why.as_deref(), Some(format!("row {expected}").as_str()));
        }
    }

    #[test]
    fn a_token_held_twice_names_its_first_row() {
        let found = dead_indices([5, 6, 5].into_iter(), vec![(5, "x".into())]);
        assert_eq!(found, vec![(0, Some("x".to_owned()))]);
    }
}
