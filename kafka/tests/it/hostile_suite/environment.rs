//! `hostile_environment`: `SNOWPIPE_KAFKA_PROPERTIES` holding a hostile password, never
//! printed.

use std::time::Duration;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{attempt, check, Input, Rng, Suite};
use snowpipe_kafka_lab::demo::{DATABASE, PIPE, SCHEMA};

use super::{limits, TABLE_DDL};
use crate::common::{bin, lab_with_tables};

/// A secret of `class` for `SNOWPIPE_KAFKA_PROPERTIES`: random pieces (each unique, 8+
/// characters, so finding one in the output is no accident) joined by what a splitter might
/// cut at. Returns (the variable's value, the pieces that must never be printed).
fn secret(class: Class, rng: &mut Rng) -> (std::ffi::OsString, Vec<String>) {
    use std::os::unix::ffi::OsStringExt as _;
    let piece = |rng: &mut Rng| -> String {
        (0..12)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect()
    };
    let n = match class {
        Class::Count => rng.range(100, 2_000),
        Class::Size => rng.range(5_000, 20_000),
        _ => rng.range(2, 6),
    };
    let pieces: Vec<String> = (0..n).map(|_| piece(rng)).collect();
    if class == Class::Claim {
        // Pieces that look like properties themselves: `…=abcdefgh=ijklmnop,qrstuvwx=yzabcdef`;
        // neither half may be printed.
        let halves: Vec<String> = pieces
            .iter()
            .flat_map(|p| [p[..6].to_owned(), p[6..].to_owned()])
            .collect();
        let value = pieces
            .iter()
            .map(|p| format!("{}={}", &p[..6], &p[6..]))
            .collect::<Vec<_>>();
        let text = format!("sasl.password={}", value.join(","));
        return (std::ffi::OsString::from(text), halves);
    }
    let sep: &str = match class {
        Class::Reserved => ",bootstrap.servers=",
        Class::Depth => ",[{",
        Class::Number => ",1e400,",
        Class::Encoding => "\\,",
        _ => ",",
    };
    let mut value = format!("sasl.password={}", pieces.join(sep)).into_bytes();
    if class == Class::Encoding {
        value.extend_from_slice(gen::invalid_utf8(rng));
        value.extend_from_slice(b",");
        value.extend_from_slice(piece(rng).as_bytes());
    }
    (std::ffi::OsString::from_vec(value), pieces)
}

/// `SNOWPIPE_KAFKA_PROPERTIES` holding a password with commas, `=`, escapes, property-like
/// pieces (item 19): the sink runs or refuses, and no piece of the value is ever printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_environment() {
    let topic = "hostile.env";
    let lab = lab_with_tables(&[(topic, 1)], TABLE_DDL).await;
    let suite = Suite::from_env("environment", Class::ALL.len());
    let mut failures = Vec::new();
    for mut case in suite.cases(&Class::ALL) {
        let (value, pieces) = secret(case.class, &mut case.rng);
        // No `-X` on the command line: a flag there would win over the variable.
        let mut cmd = std::process::Command::new(bin());
        lab.connect(&mut cmd)
            .args([
                "--brokers",
                &lab.brokers(),
                "--topic",
                topic,
                "--pipe",
                PIPE,
            ])
            .args([
                "--group",
                &format!("env{}", case.index),
                "--database",
                DATABASE,
            ])
            .args(["--schema", SCHEMA, "--until-idle", "2s"])
            .env("SNOWPIPE_KAFKA_PROPERTIES", &value);
        // A run takes 5 s (2 s idle); 20 s means it is stuck.
        let mut l = limits();
        l.wall = Duration::from_secs(20);
        let o = tokio::task::spawn_blocking(move || {
            snowpipe_hostile::run(cmd, Input::Null, &l).unwrap()
        })
        .await
        .unwrap();
        eprintln!(
            "hostile environment case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary()
        );
        failures.extend(
            attempt(|| {
                check::no_crash(&case, &o);
                let printed = format!("{}{}", o.stdout_text(), o.stderr_text());
                if let Some(p) = pieces.iter().find(|p| printed.contains(p.as_str())) {
                    case.fail(format!(
                        "a piece of the password ({} characters) is printed: {}",
                        p.len(),
                        o.summary()
                    ));
                }
            })
            .err(),
        );
    }
    suite.finish(failures);
}
