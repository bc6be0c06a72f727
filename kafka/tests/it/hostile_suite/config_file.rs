//! `hostile_connector_file`: hostile connector files through `snowpipe-kafka check`.

use std::time::Duration;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{attempt, check, Rng, Suite};
use snowpipe_kafka_lab::demo::{DATABASE, SCHEMA};

use super::{limits, TABLE_DDL};
use crate::common::{bin, hostile_file, lab_with_tables};

/// A connector file of `class` (`.properties`, or JSON for depth), around a valid base that
/// holds a passphrase which must never be printed. Returns the file's bytes.
fn connector_text(class: Class, rng: &mut Rng, topic: &str, secret: &str) -> Vec<u8> {
    let base = format!(
        "name=hostile\ntopics={topic}\nsnowflake.topic2table.map={topic}:HOSTILE_V\n\
         snowflake.private.key.passphrase={secret}\n"
    );
    let mut v = base.clone().into_bytes();
    match class {
        // Past the 4 MiB the file may hold.
        Class::Size => {
            v.extend_from_slice(b"comment=");
            gen::long_run(&mut v, (4 << 20) + rng.range(1, 1 << 20) as usize, b'x');
            v.push(b'\n');
        }
        Class::Depth => {
            v.clear();
            v.extend_from_slice(
                format!(
                    r#"{{"name":"hostile","config":{{"topics":"{topic}","snowflake.private.key.passphrase":"{secret}","x":"#
                )
                .as_bytes(),
            );
            gen::nested_json(&mut v, rng.range(1_000, 100_000) as usize, rng);
            v.extend_from_slice(b"}}");
        }
        Class::Count => {
            for i in 0..rng.range(10_000, 100_000) {
                v.extend_from_slice(format!("k{i}=v{i}\n").as_bytes());
            }
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            for key in ["tasks.max", "buffer.count.records", "buffer.flush.time"] {
                v.extend_from_slice(format!("{key}={n}\n").as_bytes());
            }
        }
        Class::Encoding => {
            v.splice(0..0, gen::BOM.iter().copied());
            v.extend_from_slice(b"comment=a");
            v.extend_from_slice(gen::control_chars(rng));
            v.push(b'\n');
            if rng.one_in(2) {
                v.extend_from_slice(b"other=");
                v.extend_from_slice(gen::invalid_utf8(rng));
                v.push(b'\n');
            }
        }
        // Claims that disagree: a map naming a topic the file does not list, a continuation
        // line that never ends.
        Class::Claim => {
            v.extend_from_slice(b"snowflake.topic2table.map=other:OTHER\nlast=a\\\n");
        }
        // Keys the sink reserves, given twice: the name, the passphrase, the topics.
        Class::Reserved => {
            v.extend_from_slice(
                format!("name=other\nsnowflake.private.key.passphrase={secret}x\ntopics=\n")
                    .as_bytes(),
            );
        }
    }
    v
}

/// The connector file (`--connector-config`, `.properties` or JSON) through `snowpipe-kafka
/// check` (issue 81, item 21): sizes past its limit, depth, many keys, edge numbers,
/// encodings, disagreeing claims, reserved keys twice. Each run exits 0 or refuses naming
/// the file, within the memory budget, and never prints the passphrase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connector_file() {
    let topic = "hostile.file";
    let lab = lab_with_tables(&[(topic, 1)], TABLE_DDL).await;
    let suite = Suite::from_env("connector_file", Class::ALL.len());
    let mut failures = Vec::new();
    for mut case in suite.cases(&Class::ALL) {
        let secret = hostile_file::secret(&mut case.rng);
        let file = lab.dir().join(format!("hostile-{}.properties", case.index));
        let text = connector_text(case.class, &mut case.rng, topic, &secret);
        hostile_file::write_private(&file, &text);
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("check")
            .args(["--brokers", &lab.brokers(), "--group", "file"])
            .args(["--database", DATABASE, "--schema", SCHEMA])
            .arg("--connector-config")
            .arg(&file);
        lab.connect(&mut cmd);
        let mut l = limits();
        l.wall = Duration::from_secs(30);
        let limits_here = l;
        let o = hostile_file::run_case(cmd, l, "connector file", &case).await;
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        failures.extend(
            attempt(|| {
                check::no_crash(&case, &o);
                check::rss_within(&case, &o, &limits_here);
                if o.code != Some(0) {
                    check::names(&case, "stderr", &o.stderr_text(), &name);
                }
                let printed = format!("{}{}", o.stdout_text(), o.stderr_text());
                if printed.contains(&secret) {
                    case.fail(format!("the passphrase is printed: {}", o.summary()));
                }
            })
            .err(),
        );
    }
    suite.finish(failures);
}
