//! The functions an SQL API statement may call: an allow-list of SQLite's portable built-ins
//! (scalar, aggregate, window, math, date and JSON functions, and the `->`/`->>` operators the
//! path rewrite produces). Anything else, such as `sqlite_version()`, `sqlite_source_id()`,
//! `sqlite_compileoption_used()`/`_get()` (they reveal the build), `load_extension`,
//! `fts3_tokenizer` (a pointer into the process), `changes()`/`last_insert_rowid()` (the
//! connection's state) or a function an SQLite build adds later, is refused while the
//! statement is prepared.
//!
//! SQLite asks the authorizer about each function by its canonical lower-case name, whatever
//! case the statement uses.

/// Functions a statement may call, by SQLite's lower-case name, sorted (binary search).
const ALLOWED: &[&str] = &[
    "->",
    "->>",
    "abs",
    "acos",
    "acosh",
    "array_size",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "avg",
    "ceil",
    "ceiling",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "cos",
    "cosh",
    "count",
    "cume_dist",
    "current_date",
    "current_time",
    "current_timestamp",
    "date",
    "datetime",
    "degrees",
    "dense_rank",
    "exp",
    "first_value",
    "floor",
    "format",
    "glob",
    "group_concat",
    "hex",
    "if",
    "ifnull",
    "iif",
    "instr",
    "is_object",
    "json",
    "json_array",
    "json_array_length",
    "json_error_position",
    "json_extract",
    "json_group_array",
    "json_group_object",
    "json_insert",
    "json_object",
    "json_patch",
    "json_pretty",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_set",
    "json_type",
    "json_valid",
    "julianday",
    "lag",
    "last_value",
    "lead",
    "length",
    "like",
    "likelihood",
    "likely",
    "ln",
    "log",
    "log10",
    "log2",
    "lower",
    "ltrim",
    "max",
    "min",
    "mod",
    "nth_value",
    "ntile",
    "nullif",
    "object_keys",
    "octet_length",
    "percent_rank",
    "pi",
    "pow",
    "power",
    "printf",
    "quote",
    "radians",
    "random",
    "randomblob",
    "rank",
    "replace",
    "round",
    "row_number",
    "rtrim",
    "sign",
    "sin",
    "sinh",
    "soundex",
    "sqrt",
    "strftime",
    "string_agg",
    "substr",
    "substring",
    "sum",
    "tan",
    "tanh",
    "time",
    "timediff",
    "total",
    "trim",
    "trunc",
    "typeof",
    "unhex",
    "unicode",
    "unixepoch",
    "unlikely",
    "upper",
    "zeroblob",
];

/// Whether a statement may call `function` (any case).
pub(super) fn allowed(function: &str) -> bool {
    ALLOWED
        .binary_search(&function.to_ascii_lowercase().as_str())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_lower_case() {
        assert!(
            ALLOWED.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        assert!(ALLOWED.iter().all(|f| f.to_ascii_lowercase() == *f));
    }

    #[test]
    fn portable_functions_pass_and_build_revealing_ones_do_not() {
        for f in [
            "COUNT",
            "json_extract",
            "->>",
            "substr",
            "Max",
            "row_number",
        ] {
            assert!(allowed(f), "{f}");
        }
        for f in [
            "sqlite_version",
            "sqlite_source_id",
            "sqlite_compileoption_used",
            "sqlite_compileoption_get",
            "load_extension",
            "fts3_tokenizer",
            "last_insert_rowid",
            "changes",
            "readfile",
        ] {
            assert!(!allowed(f), "{f}");
        }
    }
}
