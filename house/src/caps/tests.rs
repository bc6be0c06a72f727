use std::path::Path;

use super::{
    caps_rows, flag_failures, has_row_with_generator, row_covers, value_flags, variable_failures,
    ValueFlag,
};
use crate::caps_tables::Allowed;

const PAGE: &str = "# Security\n\n## Caps: every outside input and its limits\n\n\
    | input | bytes | test |\n| --- | --- | --- |\n\
    | Files (`--config`) | 4 MiB | `hostile_config` |\n\
    | Names (`--table`, `SNOWPIPE_X`) | none | `names_are_checked` |\n\n\
    ## Next\n\n| `--later` | x | `hostile_later` |\n";

fn flag(name: &str) -> ValueFlag {
    ValueFlag {
        command: "prog run".into(),
        program: "prog".into(),
        name: name.into(),
    }
}

/// A row counts only inside the caps section and only with a `hostile_` test; a flag is a
/// whole word (`--config` is not `--config-dir`).
#[test]
fn a_flag_is_covered_only_by_a_caps_row_with_a_generator() {
    let rows = caps_rows(PAGE);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(has_row_with_generator(&rows, "--config"));
    assert!(!has_row_with_generator(&rows, "--config-dir"));
    assert!(!has_row_with_generator(&rows, "--table"), "no generator");
    assert!(!has_row_with_generator(&rows, "--later"), "another section");
}

/// The check names the flag without a row and the fix, lets a listed one pass, and names a
/// listed flag that has its row since (the list must not outlive the gap).
#[test]
fn the_check_names_a_flag_without_its_row_and_a_listed_flag_that_has_one() {
    let rows = caps_rows(PAGE);
    let table = [Allowed {
        programs: &["prog"],
        names: &["--seed", "--config"],
        reason: "a number",
    }];
    let failures = flag_failures(
        &rows,
        &[flag("--config"), flag("--table"), flag("--seed")],
        &table,
    );
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(failures[0].contains("`prog run --config` has its caps row"));
    assert!(failures[1].contains("`prog run --table` takes a value"));
    assert!(failures[1].contains("house/src/caps_tables.rs"));
}

/// Value flags are read from clap's option lines; a switch and a closed set are told apart.
#[test]
fn value_flags_are_read_from_the_help_with_their_closed_sets() {
    let help = "Options:\n  -c, --config <PATH>\n          A file\n\n      --verbose\n          \
        Louder\n\n      --format <F>\n          How\n\n          Possible values:\n          - a: A\n\n\
      --level <L>  Level [possible values: x, y]\n";
    assert_eq!(
        value_flags(help),
        vec![
            ("--config".to_owned(), false),
            ("--format".to_owned(), true),
            ("--level".to_owned(), true)
        ]
    );
}

/// Every environment variable the workspace's code reads by name has its caps row with a
/// generator, or its reason in `caps_tables::VARIABLES`.
#[test]
fn every_variable_read_has_its_caps_row() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let failures = variable_failures(root);
    assert!(
        failures.is_empty(),
        "{} variables without their caps row:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Issue 81's caps audit, item 4: a row whose input names its binary covers that binary's
/// flag only; a row naming no binary covers the flag of any.
#[test]
fn a_row_naming_its_binary_covers_no_other_binarys_flag_of_that_name() {
    let page = "## Caps: every outside input and its limits\n\n| input | test |\n| --- | --- |\n\
        | `snowpipe-kafka --events-file` | `hostile_events` |\n\
        | Configuration files (`--config`) | `hostile_config` |\n";
    let rows = caps_rows(page);
    assert!(row_covers(&rows, "snowpipe-kafka", "--events-file"));
    assert!(!row_covers(&rows, "throughput", "--events-file"));
    assert!(row_covers(&rows, "throughput", "--config"));
    assert!(row_covers(&rows, "snowpipe", "--config"));
    assert!(has_row_with_generator(&rows, "--events-file"));
}
