//! Which of a row's keys fills which column, for the default pipe and `MATCH_BY_COLUMN_NAME`:
//! a key equal to a column's name fills it (wherever it stands in the row); otherwise, when
//! case is ignored, a key fills the first column whose name is the key's ignoring case, unless
//! an earlier key did.
//!
//! Small rows and tables compare each key with the columns. Past [`INDEX_FROM`] comparisons
//! the column names are indexed first (as written, and upper-cased), so a row of 100,000 keys
//! on a table of 2,000 columns costs their sum, not their product (docs/SECURITY.md).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::catalog::{same_name_ignoring_case, Column};

/// Keys × columns from which the names are indexed.
const INDEX_FROM: usize = 4_096;

/// The value each column gets from `row` (`None`: the row does not name it).
pub(super) fn slots<'r>(
    columns: &[Column],
    row: &'r Map<String, Value>,
    ignore_case: bool,
) -> Vec<Option<&'r Value>> {
    if row.len().saturating_mul(columns.len()) < INDEX_FROM {
        by_comparison(columns, row, ignore_case)
    } else {
        by_index(columns, row, ignore_case)
    }
}

fn by_comparison<'r>(
    columns: &[Column],
    row: &'r Map<String, Value>,
    ignore_case: bool,
) -> Vec<Option<&'r Value>> {
    let mut slots: Vec<Option<&Value>> = vec![None; columns.len()];
    for (key, value) in row {
        // Each key is compared with every column at most twice.
        #[cfg(test)]
        tests::count_work(columns.len());
        if let Some(i) = columns.iter().position(|c| c.name == *key) {
            slots[i] = Some(value);
        } else if let Some(i) = columns
            .iter()
            .position(|c| ignore_case && same_name_ignoring_case(&c.name, key))
        {
            // An exact match (before or after) wins; else the first case-insensitive one.
            if slots[i].is_none() {
                slots[i] = Some(value);
            }
        }
    }
    slots
}

/// [`by_comparison`]'s answer through two maps. `same_name_ignoring_case` is equality of
/// `to_uppercase` (for ASCII names, `eq_ignore_ascii_case`, the same thing), so the
/// upper-cased name is the key of the second map; each map keeps a name's first column.
fn by_index<'r>(
    columns: &[Column],
    row: &'r Map<String, Value>,
    ignore_case: bool,
) -> Vec<Option<&'r Value>> {
    let mut exact: HashMap<&str, usize> = HashMap::with_capacity(columns.len());
    let mut folded: HashMap<String, usize> = HashMap::new();
    #[cfg(test)]
    tests::count_work(columns.len() + row.len());
    for (i, c) in columns.iter().enumerate() {
        exact.entry(c.name.as_str()).or_insert(i);
        if ignore_case {
            folded.entry(c.name.to_uppercase()).or_insert(i);
        }
    }
    let mut slots: Vec<Option<&Value>> = vec![None; columns.len()];
    for (key, value) in row {
        if let Some(&i) = exact.get(key.as_str()) {
            slots[i] = Some(value);
        } else if ignore_case {
            if let Some(&i) = folded.get(&key.to_uppercase()) {
                if slots[i].is_none() {
                    slots[i] = Some(value);
                }
            }
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    thread_local! {
        /// Key-column comparisons and index operations on this thread (the work is counted,
        /// not timed).
        pub(super) static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Adds `n` to this thread's [`WORK`].
    pub(super) fn count_work(n: usize) {
        WORK.with(|w| w.set(w.get() + n));
    }

    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::catalog::ColumnType;

    fn column(name: &str) -> Column {
        Column {
            name: name.to_owned(),
            ty: ColumnType::Variant,
            nullable: true,
            default: None,
        }
    }

    /// Both ways give the same slots, on names built to collide: case variants, non-ASCII
    /// letters whose upper case is ASCII (`ı`, `ſ`), exact and folded twins in one row.
    #[test]
    fn the_index_answers_as_the_comparisons_do() {
        let seed = std::env::var("MATCHING_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(56);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let alphabet = ["a", "A", "s", "S", "ſ", "i", "I", "ı", "é", "É", "_"];
        let name = |rng: &mut rand::rngs::StdRng| -> String {
            (0..rng.gen_range(1..=3))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        };
        for round in 0..2_000 {
            let columns: Vec<Column> = (0..rng.gen_range(0..12))
                .map(|_| column(&name(&mut rng)))
                .collect();
            let mut row = Map::new();
            for k in 0..rng.gen_range(0..12) {
                row.insert(name(&mut rng), Value::from(k));
            }
            for ignore_case in [false, true] {
                assert_eq!(
                    by_index(&columns, &row, ignore_case),
                    by_comparison(&columns, &row, ignore_case),
                    "seed {seed} round {round}: columns {:?} row {row:?} ignore_case {ignore_case}",
                    columns.iter().map(|c| &c.name).collect::<Vec<_>>()
                );
            }
        }
    }

    /// 100,000 keys on 2,000 columns: 2·10^8 key-column comparisons, upper-casing non-ASCII
    /// names each time, before the index; now one index entry a column and one lookup a key.
    /// The work is counted, not timed.
    #[test]
    fn a_wide_row_on_a_wide_table_costs_the_sum_not_the_product() {
        let columns: Vec<Column> = (0..2_000).map(|i| column(&format!("CÖL{i}"))).collect();
        let mut row = Map::new();
        for i in 0..100_000 {
            row.insert(format!("köy{i}"), Value::from(i));
        }
        row.insert("cöl7".into(), Value::from("seven"));
        WORK.with(|w| w.set(0));
        let slots = slots(&columns, &row, true);
        let work = WORK.with(std::cell::Cell::get);
        let sum = columns.len() + row.len();
        assert!(work <= sum, "{work} steps for {sum} columns and keys");
        assert_eq!(slots[7], Some(&Value::from("seven")));
        assert_eq!(slots.iter().flatten().count(), 1);
    }
}
