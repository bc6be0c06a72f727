//! Each test sets variables under a prefix of its own: tests run on parallel threads of one
//! process, which share its environment.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

use super::{is_set, split_list, try_parse};

#[derive(Debug, Parser)]
#[command(name = "t", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: Option<Run>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    Check(Run),
    Lab {
        #[arg(long)]
        brokers: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
struct Run {
    #[arg(long)]
    brokers: String,
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    properties: Vec<String>,
    #[arg(long)]
    create_tables: bool,
    #[arg(long, default_value = "1s")]
    lag: String,
}

fn argv(s: &str) -> Vec<OsString> {
    std::iter::once("t")
        .chain(s.split_whitespace())
        .map(OsString::from)
        .collect()
}

fn set(prefix: &str, vars: &[(&str, &str)]) {
    for (k, v) in vars {
        std::env::set_var(format!("{prefix}{k}"), v);
    }
}

#[test]
fn every_flag_comes_from_its_variable_and_the_command_line_wins() {
    let p = "T_ONE_";
    set(
        p,
        &[
            ("BROKERS", "h:9092"),
            ("TOPIC", "a, b"),
            ("PROPERTIES", "bootstrap.servers=h1:9092,h2:9092,acks=all"),
            ("CREATE_TABLES", "yes"),
        ],
    );
    let run = try_parse::<Cli>(p, argv(""), &["lab"])
        .unwrap()
        .run
        .unwrap();
    assert_eq!(run.brokers, "h:9092");
    assert_eq!(run.topics, ["a", "b"]);
    assert_eq!(
        run.properties,
        ["bootstrap.servers=h1:9092,h2:9092", "acks=all"]
    );
    assert!(run.create_tables);
    assert_eq!(run.lag, "1s");
    // The command line wins, for a single value and for a repeated flag alike.
    let run = try_parse::<Cli>(p, argv("--brokers x:1 --topic c -X a=b"), &[])
        .unwrap()
        .run
        .unwrap();
    assert_eq!(run.brokers, "x:1");
    assert_eq!(run.topics, ["c"]);
    assert_eq!(run.properties, ["a=b"]);
}

#[test]
fn a_subcommand_takes_the_variables_unless_skipped() {
    let p = "T_TWO_";
    set(p, &[("BROKERS", "h:9092"), ("TOPIC", "a")]);
    match try_parse::<Cli>(p, argv("check"), &["lab"])
        .unwrap()
        .command
    {
        Some(Sub::Check(run)) => {
            assert_eq!((run.brokers.as_str(), run.topics.len()), ("h:9092", 1));
        }
        other => panic!("{other:?}"),
    }
    // A skipped subcommand sees none, and the top level's do not conflict with it.
    match try_parse::<Cli>(p, argv("lab"), &["lab"]).unwrap().command {
        Some(Sub::Lab { brokers }) => assert_eq!(brokers, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_value_in_a_variable_is_refused_and_named() {
    let p = "T_THREE_";
    set(
        p,
        &[
            ("BROKERS", "h:9092"),
            ("TOPIC", "a"),
            ("CREATE_TABLES", "maybe"),
        ],
    );
    let e = try_parse::<Cli>(p, argv(""), &[]).unwrap_err().to_string();
    assert!(e.contains("maybe"), "{e}");
    assert!(is_set(p, "--create-tables") && !is_set(p, "--lag"));
}

#[test]
fn help_names_each_variable_and_no_value() {
    let p = "T_FOUR_";
    set(p, &[("BROKERS", "secret-host:9092")]);
    let e = try_parse::<Cli>(p, argv("--help"), &[]).unwrap_err();
    let help = e.to_string();
    for var in [
        "T_FOUR_BROKERS",
        "T_FOUR_TOPIC",
        "T_FOUR_PROPERTIES",
        "T_FOUR_CREATE_TABLES",
    ] {
        assert!(help.contains(var), "{var} missing from\n{help}");
    }
    assert!(!help.contains("secret-host"), "{help}");
}

#[test]
fn lists_split_on_commas_and_key_values_keep_theirs() {
    assert_eq!(split_list(" a ,b,,c", false), ["a", "b", "c"]);
    assert_eq!(split_list("x=1,2,y=3", true), ["x=1,2", "y=3"]);
    assert_eq!(split_list("x=1,2,y=3", false), ["x=1", "2", "y=3"]);
}
