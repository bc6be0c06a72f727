//! CSV records as JSON objects, with Snowflake's file format options where they mean the same
//! (`FIELD_DELIMITER`, `FIELD_OPTIONALLY_ENCLOSED_BY`, `ESCAPE`, `SKIP_HEADER`, `NULL_IF`,
//! `EMPTY_FIELD_AS_NULL`, `TRIM_SPACE`). Values go as JSON strings (Snowflake converts text
//! per column, as it does for a staged CSV file), NULLs as `null`.

use anyhow::{bail, Result};
use csv::ByteRecord;

use crate::cli::CsvArgs;

/// The CSV options, checked.
#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    delimiter: u8,
    quote: Option<u8>,
    escape: Option<u8>,
    /// Records skipped before the header (or the data).
    pub skip: u64,
    /// Whether the first record after the skipped ones names the columns.
    pub header: bool,
    /// Column names given on the command line.
    pub columns: Vec<String>,
    null_if: Vec<Vec<u8>>,
    empty_as_null: bool,
    trim: bool,
}

fn one_byte(flag: &str, value: &str, none: bool) -> Result<Option<u8>> {
    if none && value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let value = match value {
        "\\t" => "\t",
        v => v,
    };
    match value.as_bytes() {
        [b] => Ok(Some(*b)),
        _ => bail!(
            "{flag} {value:?} is not one byte: give one ASCII character (\\t for a tab{})",
            if none { ", NONE for none" } else { "" }
        ),
    }
}

impl CsvOptions {
    /// The options of the command line.
    ///
    /// # Errors
    /// When a delimiter, quote or escape is not one byte.
    pub(crate) fn new(args: &CsvArgs) -> Result<Self> {
        let delimiter = one_byte("--csv-delimiter", &args.csv_delimiter, false)?.unwrap_or(b',');
        Ok(Self {
            delimiter,
            quote: one_byte("--csv-quote", &args.csv_quote, true)?,
            escape: one_byte("--csv-escape", &args.csv_escape, true)?,
            skip: args.csv_skip_header,
            header: !args.csv_no_header,
            columns: args.csv_columns.clone(),
            null_if: if args.csv_null_if.is_empty() {
                vec![b"\\N".to_vec()]
            } else {
                args.csv_null_if
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect()
            },
            empty_as_null: args.csv_empty_field_as_null,
            trim: args.csv_trim_space,
        })
    }

    /// A reader of these options over `input` (no header handling: records only).
    pub(crate) fn reader<R: std::io::Read>(&self, input: R) -> csv::Reader<R> {
        let mut b = csv::ReaderBuilder::new();
        b.delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .escape(self.escape)
            .double_quote(self.escape.is_none())
            .trim(if self.trim {
                csv::Trim::All
            } else {
                csv::Trim::None
            });
        match self.quote {
            Some(q) => b.quote(q),
            None => b.quoting(false),
        };
        b.buffer_capacity(256 * 1024).from_reader(input)
    }

    /// `csv-core`'s parser with these options (to read past a record too long to hold:
    /// `csv_long.rs`).
    pub(crate) fn core_reader(&self) -> csv_core::Reader {
        let mut b = csv_core::ReaderBuilder::new();
        b.delimiter(self.delimiter)
            .escape(self.escape)
            .double_quote(self.escape.is_none());
        match self.quote {
            Some(q) => b.quote(q),
            None => b.quoting(false),
        };
        b.build()
    }

    /// Whether `raw` (a record's bytes) closes every quote it opens: a record cut by the end of
    /// a file still being written does not.
    pub(crate) fn quotes_closed(&self, raw: &[u8]) -> bool {
        let Some(q) = self.quote else { return true };
        let mut open = false;
        let mut escaped = false;
        for &b in raw {
            if escaped {
                escaped = false;
            } else if open && Some(b) == self.escape {
                escaped = true;
            } else if b == q {
                open = !open;
            }
        }
        !open
    }

    /// `record` as a JSON object of `columns` into `out`.
    ///
    /// # Errors
    /// A message for the dead-letter file: the wrong number of fields, or text that is not
    /// UTF-8.
    pub(crate) fn write_json(
        &self,
        columns: &[String],
        record: &ByteRecord,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        if record.len() != columns.len() {
            return Err(format!(
                "{} fields where the header has {} columns",
                record.len(),
                columns.len()
            ));
        }
        let start = out.len();
        out.push(b'{');
        for (i, (name, field)) in columns.iter().zip(record.iter()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, name).map_err(|e| e.to_string())?;
            out.push(b':');
            let null = (self.empty_as_null && field.is_empty())
                || self.null_if.iter().any(|n| n.as_slice() == field);
            if null {
                out.extend_from_slice(b"null");
                continue;
            }
            let Ok(text) = std::str::from_utf8(field) else {
                out.truncate(start);
                return Err(format!("field {} ({name}) is not UTF-8", i + 1));
            };
            serde_json::to_writer(&mut *out, text).map_err(|e| e.to_string())?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// The first two columns of `names` that are one column to Snowflake (equal without regard
/// to ASCII case: a header's `id` loads into `ID`), as their 0-based positions.
pub(crate) fn duplicate(names: &[String]) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if let Some(&first) = seen.get(&name.to_ascii_uppercase()) {
            return Some((first, i));
        }
        seen.insert(name.to_ascii_uppercase(), i);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> CsvOptions {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            csv: CsvArgs,
        }
        let mut argv = vec!["t"];
        argv.extend_from_slice(args);
        CsvOptions::new(&T::parse_from(argv).csv).unwrap()
    }

    fn rows(o: &CsvOptions, data: &str) -> Vec<Result<String, String>> {
        let mut r = o.reader(data.as_bytes());
        let cols = vec!["A".to_owned(), "B".to_owned()];
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while r.read_byte_record(&mut rec).unwrap() {
            let mut buf = Vec::new();
            out.push(
                o.write_json(&cols, &rec, &mut buf)
                    .map(|()| String::from_utf8(buf).unwrap()),
            );
        }
        out
    }

    #[test]
    fn quotes_newlines_nulls_and_field_counts() {
        let o = opts(&["--csv-null-if", "NULL"]);
        let got = rows(&o, "1,\"x, \"\"y\"\"\nz\"\n,NULL\n1,2,3\n");
        assert_eq!(got[0].as_deref(), Ok(r#"{"A":"1","B":"x, \"y\"\nz"}"#));
        assert_eq!(got[1].as_deref(), Ok(r#"{"A":null,"B":null}"#));
        assert!(got[2].as_ref().unwrap_err().contains("3 fields"));
    }

    #[test]
    fn empty_fields_stay_strings_when_asked_and_spaces_are_trimmed() {
        let o = opts(&[
            "--csv-empty-field-as-null",
            "false",
            "--csv-trim-space",
            "--csv-delimiter",
            "|",
        ]);
        assert_eq!(
            rows(&o, " a | \n").remove(0).unwrap(),
            r#"{"A":"a","B":""}"#
        );
        assert!(!o.quotes_closed(b"1,\"abc\n"));
        assert!(o.quotes_closed(b"1,\"a\"\"bc\"\n"));
    }

    #[test]
    fn columns_named_twice_are_found_without_regard_to_case() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(duplicate(&names(&["id", "name", "note"])), None);
        assert_eq!(duplicate(&names(&["id", "name", "ID", "id"])), Some((0, 2)));
    }
}
