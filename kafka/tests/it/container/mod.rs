//! The image (`kafka/Containerfile`, `kafka/docs/image.md`).
//!
//! Always: the image's files agree with the crate (version, entrypoint, port, the image name
//! the Kubernetes manifests use, the licence) and the variable the image sets is the sink's.
//!
//! Opt-in (`SNOWPIPE_CONTAINER_TEST=1`; root, podman and runc, see
//! `kafka/container/setup-podman.sh`): the image, built by `kafka/container/build-image.sh` (or
//! `SNOWPIPE_CONTAINER_IMAGE`), runs with `--network host` against the lab (librdkafka's mock
//! cluster and the emulator, on loopback), configured only through its environment. It is
//! SIGKILLed mid-stream (`podman kill -s KILL`) and started again, answers `/healthz`,
//! `/readyz` and `/metrics` on its port, exits 0 on `podman stop` (SIGTERM: channels handed
//! over), and a last run with `SNOWPIPE_KAFKA_UNTIL_IDLE` finds nothing left: every row landed
//! exactly once. Every shared library in the image has its package's copyright file
//! ([`licences`]).
//!
//! `SNOWPIPE_CONTAINER_TEST=1 cargo test -p snowpipe-kafka --test it container:: -- --nocapture`
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};

use crate::common::{bin, lab, produce_events, wait_landed};

mod builder_context;
mod licences;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;
const GROUP: &str = "image";
/// The port the image serves `/metrics`, `/healthz` and `/readyz` on.
const IMAGE_PORT: u16 = 9102;
/// The image's name without its version: the contract with `deploy/kubernetes/`.
const IMAGE_NAME: &str = "ghcr.io/snowpipe-streaming/snowpipe-kafka";
/// The build command of the binary, the same in the Containerfile and the script.
const CARGO_BUILD: &str = "cargo build --release --locked -p snowpipe-kafka --features tls";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kafka/ is in the repository")
        .to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Containerfile, the build script and the licence say what the crate says.
#[test]
fn the_image_files_agree_with_the_crate() {
    let containerfile = read("kafka/Containerfile");
    let lines: Vec<&str> = containerfile.lines().map(str::trim).collect();
    let version = env!("CARGO_PKG_VERSION");
    for line in [
        format!("ARG VERSION={version}"),
        "USER 65532:65532".to_owned(),
        format!("ENV SNOWPIPE_KAFKA_METRICS_ADDR=0.0.0.0:{IMAGE_PORT}"),
        format!("EXPOSE {IMAGE_PORT}"),
        "STOPSIGNAL SIGTERM".to_owned(),
        r#"ENTRYPOINT ["/usr/local/bin/snowpipe-kafka"]"#.to_owned(),
    ] {
        assert!(
            lines.contains(&line.as_str()),
            "kafka/Containerfile has no line {line:?}"
        );
    }
    assert!(containerfile.contains(r#"org.opencontainers.image.licenses="Apache-2.0""#));
    assert!(containerfile.contains(&format!("RUN {CARGO_BUILD}")));
    // `runtime-prebuilt` before the builder (a builder that cannot skip stages never reaches
    // it); the default target, the last stage, builds from source.
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .filter_map(|l| l.split(" AS ").nth(1))
        .collect();
    assert_eq!(
        stages,
        [
            "certs",
            "runtime-common",
            "runtime-prebuilt",
            "builder",
            "runtime"
        ]
    );

    let script = read("kafka/container/build-image.sh");
    assert!(
        script.contains(&format!(r#"IMAGE="${{IMAGE:-{IMAGE_NAME}:$VERSION}}""#)),
        "build-image.sh's default IMAGE is not {IMAGE_NAME}:$VERSION"
    );
    assert!(script.contains(&CARGO_BUILD.replacen("cargo", r#""${CARGO:-cargo}""#, 1)));
    assert!(read(".dockerignore")
        .lines()
        .any(|l| l == "!target/container/snowpipe-kafka"));
    assert_eq!(
        read("kafka/LICENSE"),
        read("LICENSE"),
        "kafka/LICENSE is a copy of the repository's LICENSE"
    );

    // The variable the image sets is the sink's.
    let help = Command::new(bin()).arg("--help").output().expect("--help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("SNOWPIPE_KAFKA_METRICS_ADDR"),
        "--help names no SNOWPIPE_KAFKA_METRICS_ADDR: {help}"
    );
}

/// Issue 81 item 20: `snowpipe-emulator keygen` writes its key pair into the working directory
/// by default; neither git nor the image's build context (the builder stage copies the whole
/// tree) takes the files, at any depth. Every base image is pinned by a digest that has no
/// default, so a build that does not give it fails at that `FROM`; the build script and the
/// documentation give it.
#[test]
fn key_files_stay_out_of_git_and_the_image_and_bases_are_pinned_by_digest() {
    let dockerignore = read(".dockerignore");
    for name in [
        snowpipe_emulator::KeyFiles::PRIVATE_KEY,
        snowpipe_emulator::KeyFiles::PUBLIC_KEY,
    ] {
        for path in [
            name.to_owned(),
            format!("kafka/{name}"),
            format!("a/b/{name}"),
        ] {
            let ignored = Command::new("git")
                .args(["check-ignore", "--quiet", "--no-index", &path])
                .current_dir(repo_root())
                .status()
                .expect("git check-ignore");
            assert!(ignored.success(), ".gitignore does not ignore {path}");
        }
        assert!(
            dockerignore
                .lines()
                .any(|l| l.trim() == format!("**/{name}")),
            ".dockerignore does not exclude **/{name}"
        );
    }

    // Round six: the credentials a user keeps beside the sources, whatever their name.
    for pattern in [
        "**/*.p8",
        "**/*.pem",
        "**/*.key",
        "**/profile.json",
        "**/connections.toml",
        "**/.env",
        "**/.env.*",
    ] {
        assert!(
            dockerignore.lines().any(|l| l.trim() == pattern),
            ".dockerignore does not exclude {pattern}"
        );
    }

    let containerfile = read("kafka/Containerfile");
    let lines: Vec<&str> = containerfile.lines().map(str::trim).collect();
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .filter_map(|l| l.split(" AS ").nth(1))
        .collect();
    let mut digests = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with("FROM ")) {
        let image = line.split_whitespace().nth(1).expect("FROM IMAGE");
        if stages.contains(&image) {
            continue;
        }
        let digest = image
            .split_once("}@${")
            .and_then(|(_, d)| d.strip_suffix('}'))
            .filter(|d| d.ends_with("_DIGEST"))
            .unwrap_or_else(|| {
                panic!("{line:?} is not pinned: write FROM ${{IMAGE}}@${{…_DIGEST}}")
            });
        assert!(
            lines.contains(&format!("ARG {digest}").as_str()),
            "{digest} must be an ARG without a default (an unset digest fails the build)"
        );
        digests.push(digest.to_owned());
    }
    digests.sort();
    digests.dedup();
    assert_eq!(digests, ["RUNTIME_DIGEST", "RUST_DIGEST"]);
    let script = read("kafka/container/build-image.sh");
    assert!(
        script.contains("--build-arg RUNTIME_DIGEST="),
        "build-image.sh"
    );
    let doc = read("kafka/docs/image.md");
    for digest in &digests {
        assert!(
            doc.contains(digest.as_str()),
            "kafka/docs/image.md names no {digest}"
        );
    }
    assert!(
        doc.contains("## Pinned bases"),
        "kafka/docs/image.md: how to update them"
    );
}

/// Issue 82 item 5: `kafka/docs/image.md` gives the grace period the Kubernetes manifest uses
/// and justifies, wherever it names one (`stop -t N`, `terminationGracePeriodSeconds: N`).
#[test]
fn the_image_doc_gives_the_manifests_grace_period() {
    let manifest = read("deploy/kubernetes/deployment.yaml");
    let number_after = |text: &str, key: &str| -> Vec<u64> {
        text.match_indices(key)
            .map(|(i, _)| {
                let digits: String = text[i + key.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits
                    .parse()
                    .unwrap_or_else(|_| panic!("{key} without a number"))
            })
            .collect()
    };
    let grace = number_after(&manifest, "terminationGracePeriodSeconds: ");
    assert_eq!(grace.len(), 1, "one grace period in the manifest");
    let doc = read("kafka/docs/image.md");
    let named: Vec<u64> = ["stop -t ", "terminationGracePeriodSeconds: "]
        .iter()
        .flat_map(|key| number_after(&doc, key))
        .collect();
    assert!(
        named.len() >= 3,
        "image.md names the grace period: {named:?}"
    );
    assert!(
        named.iter().all(|n| *n == grace[0]),
        "kafka/docs/image.md says {named:?} s, the manifest {} s",
        grace[0]
    );
}

/// The opt-in tests' image, or `None` (skipped, said why) unless `SNOWPIPE_CONTAINER_TEST=1`;
/// built once for every test of the process.
fn image_or_skip() -> Option<String> {
    static IMAGE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(build_or_skip).clone()
}

/// [`image_or_skip`]'s work.
fn build_or_skip() -> Option<String> {
    if std::env::var("SNOWPIPE_CONTAINER_TEST").as_deref() != Ok("1") {
        eprintln!(
            "skipped: the container test runs with SNOWPIPE_CONTAINER_TEST=1 (as root, with \
             podman and runc: kafka/container/setup-podman.sh)"
        );
        return None;
    }
    assert!(
        Command::new("podman")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "SNOWPIPE_CONTAINER_TEST=1 but podman does not run: kafka/container/setup-podman.sh \
         installs and configures it"
    );
    if let Some(image) = std::env::var("SNOWPIPE_CONTAINER_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        eprintln!("the image: {image} (SNOWPIPE_CONTAINER_IMAGE)");
        return Some(image);
    }
    let started = Instant::now();
    let out = Command::new(repo_root().join("kafka/container/build-image.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run kafka/container/build-image.sh");
    assert!(
        out.status.success(),
        "kafka/container/build-image.sh failed ({})",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let image = stdout.lines().last().expect("the image's name").to_owned();
    assert!(image.starts_with(IMAGE_NAME), "{image}");
    eprintln!("the image: {image}, built in {:?}", started.elapsed());
    Some(image)
}

/// `podman --runtime runc ARGS`, its output captured; `env`: podman's own environment (the
/// values of `-e NAME` without `=`, so secrets are not on a command line).
async fn podman(args: Vec<String>, env: Vec<(String, String)>, limit: Duration) -> Output {
    let what = args.join(" ");
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("podman")
            .args(["--runtime", "runc"])
            .args(&args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn podman");
        // Read both pipes while waiting, so a chatty command cannot block on a full pipe.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stdout.read_to_end(&mut b);
            b
        });
        let err = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stderr.read_to_end(&mut b);
            b
        });
        let until = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for podman") {
                break status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                panic!("podman {what} still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        }
    })
    .await
    .expect("podman task")
}

/// As [`podman`], asserting it succeeded: its stdout.
async fn podman_ok(args: &[&str]) -> String {
    let out = podman(
        args.iter().map(|s| (*s).to_owned()).collect(),
        Vec::new(),
        Duration::from_secs(180),
    )
    .await;
    assert!(
        out.status.success(),
        "podman {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container removed when dropped (whatever the test did to it).
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["--runtime", "runc", "rm", "-f", "-t", "0", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The port to serve the probes on: the image's own when it is free on this machine (then
/// the image's `SNOWPIPE_KAFKA_METRICS_ADDR` is used as it is), else a free one.
fn probe_port() -> u16 {
    if TcpListener::bind(("0.0.0.0", IMAGE_PORT)).is_ok() {
        return IMAGE_PORT;
    }
    let port = TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    eprintln!("port {IMAGE_PORT} is taken on this machine: the probes on {port}");
    port
}

/// `podman run` arguments (after `run`) of the sink in `image` against `lab`, configured by
/// environment variables alone (no argument after the image), and podman's own environment
/// (the private key, passed by name).
fn run_args(
    lab: &Lab,
    image: &str,
    name: Option<&str>,
    port: u16,
    extra_env: &[(&str, &str)],
) -> (Vec<String>, Vec<(String, String)>) {
    let mut env: Vec<(String, String)> = vec![
        ("SNOWPIPE_KAFKA_BROKERS".into(), lab.brokers()),
        ("SNOWPIPE_KAFKA_TOPIC".into(), TOPIC.into()),
        ("SNOWPIPE_KAFKA_GROUP".into(), GROUP.into()),
        ("SNOWPIPE_KAFKA_DATABASE".into(), DATABASE.into()),
        ("SNOWPIPE_KAFKA_SCHEMA".into(), SCHEMA.into()),
        ("SNOWPIPE_KAFKA_PIPE".into(), PIPE.into()),
        ("SNOWPIPE_KAFKA_METADATA".into(), "true".into()),
        // Not quiet, as `kafka/docs/image.md` runs it: the progress report is a JSON line too.
        ("SNOWPIPE_KAFKA_LOG_FORMAT".into(), "json".into()),
        // `-X` (the group notices the killed member within 6 s, not librdkafka's 45).
        (
            "SNOWPIPE_KAFKA_PROPERTIES".into(),
            "session.timeout.ms=6000,heartbeat.interval.ms=500".into(),
        ),
        ("RUST_LOG".into(), "info".into()),
        ("SNOWFLAKE_URL".into(), lab.emulator().url().to_string()),
        ("SNOWFLAKE_ACCOUNT".into(), "DEMO".into()),
        ("SNOWFLAKE_USER".into(), "KAFKA".into()),
    ];
    if port != IMAGE_PORT {
        env.push((
            "SNOWPIPE_KAFKA_METRICS_ADDR".into(),
            format!("127.0.0.1:{port}"),
        ));
    }
    env.extend(extra_env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let mut args: Vec<String> = ["run", "--pull=never", "--network", "host"]
        .map(str::to_owned)
        .into();
    // As a locked-down pod runs it: nothing written outside /tmp, no capabilities.
    args.extend(
        [
            "--read-only",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--log-driver",
            "k8s-file",
        ]
        .map(str::to_owned),
    );
    match name {
        Some(n) => args.extend(["-d".to_owned(), "--name".to_owned(), n.to_owned()]),
        None => args.push("--rm".to_owned()),
    }
    for (k, v) in &env {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    // The secret by name: podman takes its value from its own environment.
    args.extend([
        "-e".into(),
        "SNOWFLAKE_PRIVATE_KEY".into(),
        image.to_owned(),
    ]);
    let key = std::fs::read_to_string(lab.key_path()).expect("the lab's key");
    (args, vec![("SNOWFLAKE_PRIVATE_KEY".into(), key)])
}

/// `GET path` on 127.0.0.1:`port`: the status and the body, or `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Waits until `GET path` answers 200, at most `limit`: its body.
async fn wait_ok(port: u16, path: &'static str, limit: Duration) -> String {
    let until = Instant::now() + limit;
    loop {
        let last = match tokio::task::spawn_blocking(move || http_get(port, path))
            .await
            .expect("probe task")
        {
            Some((200, body)) => return body,
            other => other,
        };
        assert!(
            Instant::now() < until,
            "{path} on port {port}: no 200 within {limit:?} (last: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Events `ids` on the topic, recorded as (partition, offset) → id.
async fn produce(lab: &Lab, ids: std::ops::Range<i64>, produced: &mut BTreeMap<(i32, i64), i64>) {
    let producer = lab.producer().expect("producer");
    let landed = produce_events(&producer, TOPIC, ids.clone()).await;
    for (id, (_, p, o)) in ids.zip(landed) {
        produced.insert((p, o), id);
    }
}

/// `podman inspect`'s `{{.State.ExitCode}}` of `name` once it stopped.
async fn exit_code(name: &str) -> i32 {
    let out = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", name]).await;
    out.trim().parse().expect("an exit code")
}

/// Every stderr line of the container is one JSON object (`SNOWPIPE_KAFKA_LOG_FORMAT=json`);
/// how many are progress reports.
fn assert_json_logs(stderr: &str, what: &str) -> usize {
    let mut progress = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: a log line that is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{what}: {line}");
        if v["fields"]["message"] == "progress" {
            assert!(v["fields"]["partitions"].is_array(), "{what}: {line}");
            progress += 1;
        }
    }
    progress
}

/// Rows of the closing line `{"consumed": {"<topic>/<partition>": {"rows": n, …}}}`.
fn consumed_rows(report: &serde_json::Value) -> u64 {
    report["consumed"]
        .as_object()
        .unwrap_or_else(|| panic!("no \"consumed\" in {report}"))
        .values()
        .map(|p| p["rows"].as_u64().expect("rows"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_configured_by_its_environment_lands_every_row_once_through_a_kill() {
    let Some(image) = image_or_skip() else {
        return;
    };
    let started = Instant::now();
    let lab = lab(&[(TOPIC, PARTITIONS)]).await;
    let port = probe_port();
    let name = format!("snowpipe-kafka-it-{}", std::process::id());
    let container = Container(name.clone());
    let mut produced = BTreeMap::new();

    produce(&lab, 0..2_000, &mut produced).await;
    let (args, env) = run_args(&lab, &image, Some(&name), port, &[]);
    let out = podman(args, env, Duration::from_secs(60)).await;
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Live, then ready (joined, its channels open), then streaming.
    wait_ok(port, "/healthz", Duration::from_secs(60)).await;
    wait_ok(port, "/readyz", Duration::from_secs(60)).await;
    wait_landed(&lab, 500, Duration::from_secs(60)).await;

    // Killed mid-stream: while messages are produced and rows wait to be sent or committed.
    let at_kill = {
        let more = produce(&lab, 2_000..5_000, &mut produced);
        tokio::pin!(more);
        let produced_all = tokio::select! {
            () = &mut more => true,
            () = tokio::time::sleep(Duration::from_millis(300)) => false,
        };
        podman_ok(&["kill", "-s", "KILL", &name]).await;
        let at_kill = lab.landed().expect("table").len();
        if !produced_all {
            more.await;
        }
        at_kill
    };
    assert_eq!(exit_code(&name).await, 137, "SIGKILL's exit");
    eprintln!(
        "killed with {at_kill} of {} rows landed, after {:?}",
        produced.len(),
        started.elapsed()
    );
    assert!(
        at_kill < produced.len(),
        "the kill came after every row had landed: not mid-stream"
    );

    // Started again: it resumes each partition at its channel's committed offset.
    podman_ok(&["start", &name]).await;
    wait_ok(port, "/healthz", Duration::from_secs(60)).await;
    produce(&lab, 5_000..6_000, &mut produced).await;
    wait_landed(&lab, produced.len(), Duration::from_secs(180)).await;
    wait_ok(port, "/readyz", Duration::from_secs(60)).await;
    let metrics = wait_ok(port, "/metrics", Duration::from_secs(10)).await;
    assert!(
        metrics.contains("snowpipe_kafka_rows_appended_total"),
        "/metrics: {metrics}"
    );

    // SIGTERM (`podman stop`, the image's STOPSIGNAL): channels handed over, exit 0, the
    // closing line.
    podman_ok(&["stop", "-t", "90", &name]).await;
    assert_eq!(exit_code(&name).await, 0, "the exit on SIGTERM");
    let logs = podman(
        vec!["logs".into(), name.clone()],
        Vec::new(),
        Duration::from_secs(30),
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr),
    );
    let last = stdout.lines().last().expect("a closing line on stdout");
    let report: serde_json::Value = serde_json::from_str(last).expect("the closing line is JSON");
    eprintln!("closing line after SIGTERM: {report}");
    assert!(
        consumed_rows(&report) >= 1_000,
        "the restarted container consumed the last 1000 at least: {report}"
    );
    assert!(
        assert_json_logs(&stderr, "the stopped container") > 0,
        "no progress report in the container's log:\n{stderr}"
    );
    drop(container);

    // Nothing left for the group: a new container (`SNOWPIPE_KAFKA_UNTIL_IDLE`) consumes
    // nothing and exits 0.
    let (args, env) = run_args(
        &lab,
        &image,
        None,
        port,
        &[("SNOWPIPE_KAFKA_UNTIL_IDLE", "5s")],
    );
    let out = podman(args, env, Duration::from_secs(120)).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "the until-idle run: {stderr}");
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a closing line"))
            .expect("the closing line is JSON");
    assert_eq!(consumed_rows(&report), 0, "rows consumed twice: {report}");
    assert_json_logs(&stderr, "the until-idle run");

    lab.emulator().commit_now().await;
    let landed = lab.landed().expect("table");
    let mut seen: BTreeMap<(i32, i64), Vec<i64>> = BTreeMap::new();
    for (id, p, o) in &landed {
        seen.entry((*p, *o)).or_default().push(*id);
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(duplicated.is_empty(), "landed twice: {duplicated:?}");
    let lost: Vec<_> = produced.keys().filter(|k| !seen.contains_key(k)).collect();
    assert!(lost.is_empty(), "never landed: {lost:?}");
    for (k, id) in &produced {
        assert_eq!(seen[k], [*id], "the row of {k:?}");
    }
    assert_eq!(landed.len(), produced.len());
    eprintln!(
        "{} rows, each once, through a SIGKILL, a restart and a SIGTERM: {:?}",
        landed.len(),
        started.elapsed()
    );
}
