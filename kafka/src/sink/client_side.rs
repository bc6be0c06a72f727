//! Client-side validation on a partition's worker (`snowflake.validation=client_side`): the
//! rows of a batch, once made (and normalized), checked against the table's columns
//! (`connector/table_columns.rs`, the rules in `rows/validate/`) before they are appended:
//! rewritten rows replace theirs, refused ones go to the dead letters with v4's reason (and the
//! topic, partition and offset headers), from the messages the rows keep (`Rows::letters`). A refused
//! row never stops the partition: the rows after it are appended as usual.

use std::sync::Arc;

use crate::connector::table_columns::TableCheck;
use crate::formats::connect_type::FieldTypes;
use crate::rows::layout::LayoutKind;
use crate::rows::normalize;
use crate::sink::partition::Worker;

impl Worker {
    /// The rows `ndjson` (with offset `tokens`; `types`: each row's Connect field types, from
    /// its Schema Registry value's schema, or empty) checked: rewritten rows replace theirs
    /// (`ndjson` and `tokens` become the rows to append); the refused rows' tokens are
    /// returned with their reasons, for the dead letters. With `--normalize-columns` the
    /// fields are looked up by their normalized names, as v4 normalizes the schema's
    /// (`SnowflakeSinkRecord.normalizeSchemaFieldNames`).
    pub(super) async fn checked(
        &self,
        check: &TableCheck,
        ndjson: &mut bytes::Bytes,
        tokens: &mut Vec<u64>,
        types: &[Option<Arc<FieldTypes>>],
    ) -> Vec<(u64, String)> {
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
        let checked = check.rows(ndjson, tokens, &fields).await;
        if let Some(rows) = checked.ndjson {
            *ndjson = rows.into();
            *tokens = checked.offsets;
        }
        checked.dead
    }
}
