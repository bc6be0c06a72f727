//! `deploy/kubernetes/` checked against the sink it deploys, without a cluster or a broker:
//! every YAML document parses; each variable and flag the Deployment sets is one the binary's
//! `--help` names (`SNOWPIPE_KAFKA_*`) or the SDK reads (`SNOWFLAKE_*`); the key comes from a
//! Secret, never the ConfigMap, and the ConfigMap's connector file is accepted by the sink's
//! own reader with the key from the environment; the probes and the scrape are the paths and
//! port the sink serves (asked of its metrics server); the image is the one
//! `kafka/container/build-image.sh` tags; the grace period outlasts a hand-over; the memory
//! limit is above the budget; KEDA scales this Deployment on the lag of a recording rule that pauses during a stall.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Parser as _;
use serde::Deserialize as _;
use snowpipe_kafka::{parse_bytes, parse_duration, SinkArgs};
use snowpipe_streaming::{ClientBuilder, ConfigKey};
use yaml_serde::Value;

use crate::common::bin;

/// The sink's variables.
const PREFIX: &str = "SNOWPIPE_KAFKA_";
/// Variables the Deployment may set that are neither the sink's options nor the SDK's
/// connection: the log filter and an extra trusted CA (the SDK's and librdkafka's).
const OTHER_VARS: &[&str] = &["RUST_LOG", "SSL_CERT_FILE"];
/// The consumer thread waits this long past `--hand-over-timeout` for the hand-over's answer
/// (`kafka/src/source/consumer.rs`, `hand_over`).
const REVOKE_SLACK: Duration = Duration::from_secs(5);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

fn manifests_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// Every YAML document under `deploy/kubernetes`, with its file (relative to it).
fn documents() -> &'static [(String, Value)] {
    static DOCS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut files = Vec::new();
        collect_yaml(&manifests_dir(), &mut files);
        files.sort();
        assert!(
            !files.is_empty(),
            "no YAML under {}",
            manifests_dir().display()
        );
        let mut docs = Vec::new();
        for file in files {
            let name = file
                .strip_prefix(manifests_dir())
                .expect("under the directory")
                .display()
                .to_string();
            let text = std::fs::read_to_string(&file).expect("read a manifest");
            for doc in yaml_serde::Deserializer::from_str(&text) {
                let value = Value::deserialize(doc)
                    .unwrap_or_else(|e| panic!("deploy/kubernetes/{name} is not YAML: {e}"));
                if !value.is_null() {
                    docs.push((name.clone(), value));
                }
            }
        }
        docs
    })
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read deploy/kubernetes") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The one document of `kind`.
fn one(kind: &str) -> &'static Value {
    let found: Vec<_> = documents()
        .iter()
        .filter(|(_, d)| d["kind"].as_str() == Some(kind))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in deploy/kubernetes");
    found[0]
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

fn deployment() -> &'static Value {
    one("Deployment")
}

/// The sink's container (the Deployment's only one).
fn container() -> &'static Value {
    let containers = deployment()["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container: the sink");
    &containers[0]
}

/// The container's variables: name → literal value (`None` when it comes from elsewhere).
fn env() -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for var in container()["env"].as_sequence().expect("env") {
        let name = text(&var["name"], "an env name").to_owned();
        let value = var["value"].as_str().map(str::to_owned);
        assert!(
            out.insert(name.clone(), value).is_none(),
            "{name} is set twice"
        );
    }
    out
}

fn env_value(name: &str) -> Option<String> {
    env().get(name).cloned().flatten()
}

/// The binary's `--help`.
fn help() -> &'static str {
    static HELP: OnceLock<String> = OnceLock::new();
    HELP.get_or_init(|| {
        let out = std::process::Command::new(bin())
            .arg("--help")
            .output()
            .expect("run snowpipe-kafka --help");
        assert!(out.status.success(), "--help failed: {out:?}");
        String::from_utf8(out.stdout).expect("UTF-8 help")
    })
}

/// The variables `--help` names (`[env: NAME=…]`).
fn help_vars() -> BTreeSet<String> {
    help()
        .match_indices("[env: ")
        .map(|(i, m)| {
            help()[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// The long flags `--help` names.
fn help_flags() -> BTreeSet<String> {
    help()
        .match_indices("--")
        .map(|(i, _)| {
            help()[i..]
                .chars()
                .skip(2)
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|f| !f.is_empty())
        .map(|f| format!("--{f}"))
        .collect()
}

/// The flag a variable stands for (the contract: `--hand-over-timeout` ↔
/// `SNOWPIPE_KAFKA_HAND_OVER_TIMEOUT`).
fn flag_of(var: &str) -> Option<String> {
    var.strip_prefix(PREFIX)
        .map(|f| format!("--{}", f.to_ascii_lowercase().replace('_', "-")))
}

/// A duration the Deployment gives the sink, else its default.
fn duration_var(name: &str, default: &str) -> Duration {
    let text = env_value(name).unwrap_or_else(|| default.to_owned());
    parse_duration(&text).unwrap_or_else(|e| panic!("{name}={text}: {e}"))
}

/// The port of `SNOWPIPE_KAFKA_METRICS_ADDR` (the Deployment's, else the image's).
fn metrics_addr() -> SocketAddr {
    let addr = env_value("SNOWPIPE_KAFKA_METRICS_ADDR")
        .or_else(|| containerfile_env("SNOWPIPE_KAFKA_METRICS_ADDR"))
        .expect("SNOWPIPE_KAFKA_METRICS_ADDR in the Deployment or the Containerfile");
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("SNOWPIPE_KAFKA_METRICS_ADDR={addr}: {e}"));
    assert!(
        addr.ip().is_unspecified(),
        "the kubelet and Prometheus reach the pod's IP: bind 0.0.0.0, not {addr}"
    );
    addr
}

/// A container port given by name or number, as a number.
fn port_of(port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).expect("a port");
    }
    let name = text(port, "a port");
    container()["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| {
        panic!("{path}: {e} (the image's build files; the manifests must name what they make)")
    })
}

/// `ENV NAME=VALUE` of kafka/Containerfile.
fn containerfile_env(name: &str) -> Option<String> {
    read_repo_file("kafka/Containerfile").lines().find_map(|l| {
        l.trim()
            .strip_prefix("ENV ")?
            .trim()
            .strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

/// The ConfigMap's connector file and where the Deployment points the sink at it.
fn connector_file() -> &'static str {
    let path = env_value("SNOWPIPE_KAFKA_CONNECTOR_CONFIG")
        .expect("SNOWPIPE_KAFKA_CONNECTOR_CONFIG: the connector's file");
    let path = Path::new(&path);
    let (dir, key) = (
        path.parent().expect("a directory").to_str().expect("UTF-8"),
        path.file_name().expect("a file").to_str().expect("UTF-8"),
    );
    let mount = container()["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(dir))
        .unwrap_or_else(|| panic!("nothing is mounted at {dir}"));
    let volume = deployment()["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    let map_name = text(&volume["configMap"]["name"], "the volume's ConfigMap");
    let map = one("ConfigMap");
    assert_eq!(
        text(&map["metadata"]["name"], "the ConfigMap's name"),
        map_name
    );
    text(&map["data"][key], "the ConfigMap's connector file")
}

/// The connector file's keys, as the sink reads them.
fn connector_keys() -> BTreeMap<String, String> {
    snowpipe_kafka::parse_connector_config(connector_file()).expect("the connector file parses")
}

/// The group the sink joins: `SNOWPIPE_KAFKA_GROUP` wins over the file's
/// (`snowpipe-kafka-<name>`).
fn group() -> String {
    env_value("SNOWPIPE_KAFKA_GROUP").unwrap_or_else(|| {
        let name = connector_keys().get("name").cloned().expect("a group");
        format!("snowpipe-kafka-{name}")
    })
}

/// Bytes of a Kubernetes quantity (`640Mi`, `1Gi`, `512M`, `1000`).
fn quantity_bytes(q: &str) -> u64 {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("quantity {q}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => panic!("quantity {q}: unit {unit} not read here"),
    }
}

#[test]
fn every_manifest_parses_and_the_kustomization_applies_them_but_the_example_secret() {
    let kinds: BTreeSet<&str> = documents()
        .iter()
        .map(|(file, d)| {
            assert!(
                d["apiVersion"].is_string() && d["kind"].is_string(),
                "{file}: a document without apiVersion and kind"
            );
            text(&d["kind"], "kind")
        })
        .collect();
    for kind in [
        "Kustomization",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "ScaledObject",
        "Secret",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }
    let listed: Vec<&str> = one("Kustomization")["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| text(r, "a resource"))
        .collect();
    for file in &listed {
        assert!(
            manifests_dir().join(file).is_file(),
            "kustomization.yaml lists {file}, which does not exist"
        );
    }
    // Applying a placeholder would overwrite the real key.
    for (file, d) in documents() {
        if d["kind"].as_str() == Some("Secret") {
            assert!(
                !listed.contains(&file.as_str()),
                "kustomization.yaml applies {file}, a placeholder Secret"
            );
        }
    }
}

#[test]
fn each_variable_and_flag_of_the_deployment_is_one_the_sink_reads() {
    let vars = help_vars();
    let flags = help_flags();
    assert!(
        container()["command"].is_null(),
        "no command: the image's entrypoint is the sink"
    );
    if let Some(args) = container()["args"].as_sequence() {
        for arg in args {
            let arg = text(arg, "an argument");
            if let Some(flag) = arg.strip_prefix("--") {
                let flag = format!("--{}", flag.split('=').next().unwrap_or_default());
                assert!(flags.contains(&flag), "args: {flag} is not in --help");
            }
        }
    }
    let sdk: BTreeSet<&str> = ConfigKey::ALL.iter().filter_map(|k| k.env_var()).collect();
    let mut sink_vars = 0;
    for (name, value) in env() {
        if name.starts_with(PREFIX) {
            sink_vars += 1;
            assert!(
                vars.contains(&name),
                "{name} is not a variable `snowpipe-kafka --help` names ([env: …]); it names: \
                 {vars:?}"
            );
            let flag = flag_of(&name).expect("a sink variable");
            assert!(
                flags.contains(&flag),
                "{name}: its flag {flag} is not in --help"
            );
            assert!(value.is_some(), "{name}: give it a value");
        } else if name.starts_with("SNOWFLAKE_") {
            assert!(
                sdk.contains(name.as_str()),
                "{name} is not a variable the SDK reads (ConfigKey::env_var): {sdk:?}"
            );
        } else {
            assert!(
                OTHER_VARS.contains(&name.as_str()),
                "{name}: neither the sink's nor the SDK's"
            );
        }
    }
    assert!(
        sink_vars > 0,
        "the Deployment configures the sink by its variables"
    );
}

#[test]
fn the_key_comes_from_a_secret_and_never_from_the_configmap() {
    let secret = one("Secret");
    let secret_name = text(&secret["metadata"]["name"], "the Secret's name");
    let mut from_secret = 0;
    for var in container()["env"].as_sequence().expect("env") {
        let name = text(&var["name"], "an env name");
        if !name.starts_with("SNOWFLAKE_PRIVATE_KEY") {
            continue;
        }
        assert!(
            var["value"].is_null(),
            "{name}: a literal key in the manifest"
        );
        let reference = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(
            text(&reference["name"], "the secretKeyRef's name"),
            secret_name,
            "{name}: the example Secret's name"
        );
        let key = text(&reference["key"], "the secretKeyRef's key");
        let optional = reference["optional"].as_bool() == Some(true);
        assert!(
            optional
                || secret["stringData"].get(key).is_some()
                || secret["data"].get(key).is_some(),
            "{name}: the example Secret has no {key}"
        );
        from_secret += 1;
    }
    assert!(
        env().contains_key("SNOWFLAKE_PRIVATE_KEY")
            || env().contains_key("SNOWFLAKE_PRIVATE_KEY_FILE"),
        "the Snowflake key: SNOWFLAKE_PRIVATE_KEY (or _FILE) from the Secret"
    );
    assert!(from_secret > 0);
    let keys = connector_keys();
    for key in ["snowflake.private.key", "snowflake.private.key.passphrase"] {
        assert!(!keys.contains_key(key), "the ConfigMap holds {key}");
    }
}

/// The ConfigMap's connector file, merged with the Deployment's variables as the binary merges
/// them (a variable wins over the file's key), is a configuration the sink starts with; and
/// with the key only in the environment (the Secret), the Snowflake connection resolves.
#[test]
fn the_connector_file_is_accepted_with_the_key_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("connector.properties");
    std::fs::write(&file, connector_file()).expect("write");
    let mut argv: Vec<std::ffi::OsString> = vec!["snowpipe-kafka".into()];
    for (name, value) in env() {
        let (Some(flag), Some(value)) = (flag_of(&name), value) else {
            continue;
        };
        match (flag.as_str(), value.as_str()) {
            // The binary's own flag, not the sink's options.
            ("--log-format", _) => {}
            ("--connector-config", _) => {
                argv.push(flag.into());
                argv.push(file.clone().into());
            }
            (_, "true") => argv.push(flag.into()),
            (_, "false") => {}
            _ => {
                argv.push(flag.into());
                argv.push(value.into());
            }
        }
    }
    let (argv, connector) =
        snowpipe_kafka::expand_connector_config(argv).expect("the connector file");
    let connector = connector.expect("--connector-config read");
    assert!(
        connector.ignored.is_empty(),
        "keys the sink does not take (a warning at every start): {:?}",
        connector.ignored
    );
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sink: SinkArgs,
    }
    let mut args = Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .sink;
    assert_eq!(args.group, group(), "the group KEDA watches");
    args.load_kafka_config().expect("--kafka-config");
    args.load_topic_map().expect("--topic-map");
    args.validate().expect("the options");
    args.row_layout().expect("the layout");
    args.routes().expect("topics and pipes");

    // The file names the account, user and role; the key is the Secret's, in
    // SNOWFLAKE_PRIVATE_KEY, which `ClientBuilder::from_env` sets as this does.
    let pem = std::fs::read_to_string(repo().join("tests/fixtures/test_key.p8")).expect("key");
    let with_key = ClientBuilder::new()
        .with_config(ConfigKey::PrivateKey, pem)
        .expect("the key");
    connector
        .connection
        .apply(with_key)
        .build_sql()
        .expect("the file's connection with the environment's key");
    let without = connector.connection.apply(ClientBuilder::new()).build_sql();
    assert!(
        without.is_err(),
        "no key anywhere, yet the connection resolved: the Secret would not be needed"
    );
}

#[test]
fn the_image_is_the_one_the_build_tags() {
    let script = read_repo_file("kafka/container/build-image.sh");
    let default = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("IMAGE=\"${IMAGE:-"))
        .and_then(|rest| rest.strip_suffix("}\""))
        .expect("build-image.sh: an IMAGE=\"${IMAGE:-…}\" line");
    let built = default.replace("$VERSION", env!("CARGO_PKG_VERSION"));
    let image = text(&container()["image"], "the image");
    assert_eq!(image, built, "the image build-image.sh tags by default");
    // The image's user, so that runAsNonRoot holds and the files it owns are its.
    let user = read_repo_file("kafka/Containerfile")
        .lines()
        .find_map(|l| l.trim().strip_prefix("USER ").map(str::to_owned))
        .expect("a USER in kafka/Containerfile");
    let pod = &deployment()["spec"]["template"]["spec"]["securityContext"];
    let uid = pod["runAsUser"].as_u64().expect("runAsUser");
    assert_eq!(user.split(':').next(), Some(uid.to_string().as_str()));
    assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true));
    let own = &container()["securityContext"];
    assert_eq!(own["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(own["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(own["capabilities"]["drop"][0].as_str(), Some("ALL"));
}

/// Probes and scrape point at the port the sink listens on, and the paths are the ones its
/// metrics server answers (asked of a running one).
#[tokio::test]
async fn probes_and_scrape_are_the_paths_and_port_the_sink_serves() {
    let port = metrics_addr().port();
    if let Some(image_addr) = containerfile_env("SNOWPIPE_KAFKA_METRICS_ADDR") {
        assert_eq!(
            image_addr.parse::<SocketAddr>().map(|a| a.port()),
            Ok(port),
            "the image's SNOWPIPE_KAFKA_METRICS_ADDR"
        );
    }
    let readiness = &container()["readinessProbe"]["httpGet"];
    let liveness = &container()["livenessProbe"]["httpGet"];
    assert_eq!(port_of(&readiness["port"]), port, "readinessProbe's port");
    assert_eq!(port_of(&liveness["port"]), port, "livenessProbe's port");
    let annotations = &deployment()["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str())
    );
    let (ready, live, scrape) = (
        text(&readiness["path"], "readinessProbe's path"),
        text(&liveness["path"], "livenessProbe's path"),
        text(&annotations["prometheus.io/path"], "the scrape path"),
    );

    let health = Arc::new(snowpipe_kafka::Health::default());
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let (addr, server) = snowpipe_kafka::serve_metrics(
        "127.0.0.1:0".parse().expect("addr"),
        handle,
        Arc::clone(&health),
    )
    .await
    .expect("the metrics server");
    assert_eq!(get(addr, live).await, 200, "{live} of a live sink");
    assert_eq!(
        get(addr, ready).await,
        503,
        "{ready} before the group's assignment"
    );
    health.joined();
    assert_eq!(
        get(addr, ready).await,
        200,
        "{ready} once joined, channels open"
    );
    health.stopping();
    assert_eq!(get(addr, ready).await, 503, "{ready} while handing over");
    assert_eq!(get(addr, scrape).await, 200, "{scrape}");
    assert_eq!(
        get(addr, "/nothing-here").await,
        404,
        "a path it does not serve"
    );
    server.abort();
}

/// The status code of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: {answer}"))
}

#[test]
fn the_grace_period_outlasts_a_hand_over() {
    let hand_over = duration_var("SNOWPIPE_KAFKA_HAND_OVER_TIMEOUT", "30s");
    let lag = duration_var("SNOWPIPE_KAFKA_MAX_CLIENT_LAG", "1s");
    let grace = deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .map(Duration::from_secs)
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > hand_over,
        "{grace:?} <= the hand-over timeout {hand_over:?}"
    );
    assert!(
        grace >= hand_over + lag + REVOKE_SLACK,
        "{grace:?}: a hand-over may take {hand_over:?} + {lag:?} (client lag) + \
         {REVOKE_SLACK:?} before the sink leaves its group"
    );
}

#[test]
fn the_memory_limit_is_above_the_budget() {
    let budget = env_value("SNOWPIPE_KAFKA_MEMORY_BUDGET").unwrap_or_else(|| "512MiB".into());
    let budget = parse_bytes(&budget).expect("--memory-budget").bytes() as u64;
    let resources = &container()["resources"];
    let limit = quantity_bytes(text(&resources["limits"]["memory"], "the memory limit"));
    let request = quantity_bytes(text(&resources["requests"]["memory"], "the memory request"));
    // The process itself (about 35 MiB), idle batch buffers (15 MiB), one fetch past the
    // prefetch: kafka/README.md, "Memory".
    assert!(
        limit >= budget + (64 << 20),
        "limit {limit} B: the budget {budget} B and 64 MiB for what is outside it"
    );
    assert_eq!(
        request, limit,
        "request what the limit is: a SIGKILL has no hand-over"
    );
}

#[test]
fn keda_scales_on_the_groups_lag_and_pauses_during_a_stall() {
    let scaled = one("ScaledObject");
    let spec = &scaled["spec"];
    assert_eq!(
        spec["scaleTargetRef"]["name"],
        deployment()["metadata"]["name"],
        "scaleTargetRef names the Deployment"
    );
    let triggers = spec["triggers"].as_sequence().expect("triggers");
    assert_eq!(
        triggers.len(),
        1,
        "one trigger: the HPA takes the largest of several, so a second would scale during a stall"
    );
    let trigger = &triggers[0];
    assert_eq!(trigger["type"].as_str(), Some("prometheus"));
    let metadata = trigger["metadata"].as_mapping().expect("metadata");
    // KEDA's CRD takes strings only (`additionalProperties: {type: string}`).
    for (key, value) in metadata {
        assert!(
            value.is_string(),
            "metadata.{key:?} must be a string: {value:?}"
        );
    }
    let meta = |k: &str| trigger["metadata"][k].as_str().map(str::to_owned);
    // The query is a recording rule of the rules file, which pauses scaling during a stall
    // (its promtool test shows it empty then).
    let query = meta("query").expect("a query");
    let rules = read_repo_file("deploy/prometheus/snowpipe-kafka.rules.yml");
    assert!(
        rules.contains(&format!("- record: {query}\n")),
        "{query} is not a recording rule of deploy/prometheus/snowpipe-kafka.rules.yml"
    );
    assert_eq!(
        meta("ignoreNullValues").as_deref(),
        Some("false"),
        "an empty answer (a stall) must pause scaling, not read as 0"
    );
    assert!(meta("threshold").is_some_and(|t| t.parse::<u64>().is_ok_and(|t| t > 0)));
    assert!(meta("serverAddress").is_some_and(|a| a.starts_with("http")));
    let min = spec["minReplicaCount"].as_u64().expect("minReplicaCount");
    let max = spec["maxReplicaCount"].as_u64().expect("maxReplicaCount");
    assert!(min >= 1 && max >= min, "min {min}, max {max}");
}

#[test]
fn the_disruption_budget_covers_the_deployments_pods() {
    let labels = deployment()["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    let selects = |selector: &Value, what: &str| {
        let wanted = selector["matchLabels"].as_mapping().expect("matchLabels");
        assert!(!wanted.is_empty(), "{what}: an empty selector");
        for (k, v) in wanted {
            assert_eq!(
                labels.get(k),
                Some(v),
                "{what}: the pods have no {k:?}={v:?}"
            );
        }
    };
    selects(
        &deployment()["spec"]["selector"],
        "the Deployment's selector",
    );
    let pdb = one("PodDisruptionBudget");
    selects(&pdb["spec"]["selector"], "the PodDisruptionBudget");
    assert_eq!(
        pdb["spec"]["maxUnavailable"].as_u64(),
        Some(1),
        "one instance (one rebalance) at a time"
    );
    // During a Snowflake stall every pod is unready: the default policy (IfHealthyBudget)
    // would block every drain until Snowflake recovered.
    assert_eq!(
        pdb["spec"]["unhealthyPodEvictionPolicy"].as_str(),
        Some("AlwaysAllow"),
        "a stall must not block node drains"
    );
}
