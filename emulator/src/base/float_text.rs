//! How the emulator prints a float as text: one printer per output, each named by the output
//! it serves, because the three outputs print floats differently and each must stay as it is:
//!
//! - a pipe transform's value as text ([`float_text_for_pipe_transform`]): Rust's shortest
//!   decimal without an exponent (`1`, `0.5`, `100000000000000000000`);
//! - the SQL API's `REAL` values ([`float_text_for_sql_api`]): Rust's shortest round-trip text,
//!   which keeps `.0` and writes large and small values with an exponent (`1.0`, `1e20`);
//! - the sandbox's replacements of SQLite functions ([`float_text_for_sqlite_functions`]): SQLite's own
//!   `CAST(f AS TEXT)`, so a replacement sees the argument text the built-in would (`1.0`,
//!   `1.0e+20`).
//!
//! The first two print NaN as `NaN` and the infinities as `inf` and `-inf`.

thread_local! {
    /// A private in-memory connection that turns a float into SQLite's text of it.
    static SQLITE: Option<rusqlite::Connection> = rusqlite::Connection::open_in_memory().ok();
}

/// `NaN`, `inf` or `-inf` for a float that is not finite.
fn not_finite(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        None
    }
}

/// A pipe transform's float as text (a VARCHAR result, a key that is not a JSON number):
/// Rust's `Display` of `f`.
pub(crate) fn float_text_for_pipe_transform(f: f64) -> String {
    not_finite(f).unwrap_or_else(|| f.to_string())
}

/// A `REAL` value in a SQL API result: Rust's `Debug` of `f` (shortest round-trip text).
pub(crate) fn float_text_for_sql_api(f: f64) -> String {
    not_finite(f).unwrap_or_else(|| format!("{f:?}"))
}

/// SQLite's text of `f` (`CAST(f AS TEXT)`), from the same SQLite library: how the sandbox's
/// replacement functions read a float argument as text.
///
/// # Errors
/// When SQLite cannot print it (it cannot open an in-memory database).
pub(crate) fn float_text_for_sqlite_functions(f: f64) -> rusqlite::Result<String> {
    SQLITE.with(|conn| match conn {
        Some(conn) => conn
            .prepare_cached("SELECT CAST(?1 AS TEXT)")?
            .query_row([f], |r| r.get(0)),
        None => Err(rusqlite::Error::UserFunctionError(
            "cannot open SQLite to print a float".into(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_output_prints_floats_its_own_way() {
        let all = |f: f64| {
            [
                float_text_for_pipe_transform(f),
                float_text_for_sql_api(f),
                float_text_for_sqlite_functions(f).unwrap(),
            ]
        };
        assert_eq!(all(1.0), ["1", "1.0", "1.0"]);
        assert_eq!(all(0.5), ["0.5", "0.5", "0.5"]);
        assert_eq!(all(1e20), ["100000000000000000000", "1e20", "1.0e+20"]);
        assert_eq!(float_text_for_pipe_transform(f64::NAN), "NaN");
        assert_eq!(float_text_for_sql_api(f64::NEG_INFINITY), "-inf");
        assert_eq!(float_text_for_pipe_transform(f64::INFINITY), "inf");
    }
}
