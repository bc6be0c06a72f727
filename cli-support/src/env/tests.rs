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
    assert_eq!(split_list(" a ,b,,c", false).unwrap(), ["a", "b", "c"]);
    assert_eq!(split_list("x=1,2,y=3", true).unwrap(), ["x=1,2", "y=3"]);
    assert_eq!(split_list("x=1,2,y=3", false).unwrap(), ["x=1", "2", "y=3"]);
}

/// Issue 81 item 19: a secret's value is never cut at a comma, and no part of it reaches an
/// error. `\,` writes a comma inside a value and `\\` a backslash.
#[test]
fn a_secret_is_never_cut_and_no_part_of_it_is_shown() {
    assert_eq!(
        split_list(r"acks=1,sasl.password=Hq7z\,Wx9p=Kd3\\", true).unwrap(),
        ["acks=1", r"sasl.password=Hq7z,Wx9p=Kd3\"]
    );
    assert_eq!(
        split_list(r"client.id=a\,b,acks=1", true).unwrap(),
        ["client.id=a,b", "acks=1"]
    );
    // Any other backslash stays as written (a Windows path).
    assert_eq!(
        split_list(r"ssl.ca.location=C:\certs\ca.pem", true).unwrap(),
        [r"ssl.ca.location=C:\certs\ca.pem"]
    );
    // A secret's value is taken exactly as written, spaces included.
    assert_eq!(
        split_list("acks=1, sasl.password= Hq7z ", true).unwrap(),
        ["acks=1", "sasl.password= Hq7z "]
    );
    // An unescaped comma after a secret's start: where the secret ends cannot be told (the
    // rest may be part of it), so the variable is refused naming the key and the rule.
    for (value, key) in [
        ("sasl.password=Hq7z,Wx9p=Kd3", "sasl.password"),
        ("acks=1,sasl.password=Hq7z,acks=all", "sasl.password"),
        ("ssl.key.password=Hq7z,Wx9p", "ssl.key.password"),
        (
            "sasl.oauthbearer.client.secret=Hq7z,Wx9p=Kd3",
            "sasl.oauthbearer.client.secret",
        ),
    ] {
        let e = split_list(value, true).unwrap_err();
        assert!(e.contains(key) && e.contains(r"\,"), "{e}");
        for piece in ["Hq7z", "Wx9p", "Kd3"] {
            assert!(!e.contains(piece), "{piece} shown: {e}");
        }
    }
    // Through the parser: the error names the variable, never a piece of the value.
    let p = "T_FIVE_";
    set(
        p,
        &[
            ("BROKERS", "h:9092"),
            ("TOPIC", "a"),
            (
                "PROPERTIES",
                "session.timeout.ms=6000,sasl.password=Hq7z,Wx9p=Kd3",
            ),
        ],
    );
    let e = try_parse::<Cli>(p, argv(""), &[]).unwrap_err().to_string();
    assert!(
        e.contains("T_FIVE_PROPERTIES") && e.contains("sasl.password"),
        "{e}"
    );
    for piece in ["Hq7z", "Wx9p", "Kd3"] {
        assert!(!e.contains(piece), "{piece} shown: {e}");
    }
    set(
        p,
        &[(
            "PROPERTIES",
            r"session.timeout.ms=6000,sasl.password=Hq7z\,Wx9p=Kd3",
        )],
    );
    let run = try_parse::<Cli>(p, argv(""), &[]).unwrap().run.unwrap();
    assert_eq!(
        run.properties,
        ["session.timeout.ms=6000", "sasl.password=Hq7z,Wx9p=Kd3"]
    );
}
