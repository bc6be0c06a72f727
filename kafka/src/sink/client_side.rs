//! Client-side validation on a partition's worker (`snowflake.validation=client_side`): the
//! rows of a batch, once made (and normalized), checked against the table's columns
//! (`connector/table_columns.rs`, the rules in `rows/validate/`) before they are appended:
//! rewritten rows replace theirs, refused ones go to the dead letters with v4's reason (and the
//! topic, partition and offset headers), while the batch still holds their messages. A refused
//! row never stops the partition: the rows after it are appended as usual.

use std::sync::Arc;

use crate::connector::normalize;
use crate::connector::table_columns::TableCheck;
use crate::formats::connect_type::FieldTypes;
use crate::rows::batch::Batch;
use crate::rows::layout::LayoutKind;
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
            let dead: Vec<(usize, Option<String>)> = checked
                .dead
                .into_iter()
                .filter_map(|(token, why)| {
                    let i = (0..batch.len()).find(|&i| batch.offset(i).token() == token)?;
                    Some((i, Some(why)))
                })
                .collect();
            self.dead_letter(batch, &dead).await;
        }
        match checked.ndjson {
            Some(rows) => (rows, checked.offsets),
            None => (ndjson, tokens),
        }
    }
}
