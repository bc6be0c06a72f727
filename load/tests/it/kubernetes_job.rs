//! `deploy/kubernetes/load-job.yaml`, the Indexed Job that runs `snowpipe load --shard`,
//! checked against the binary without a cluster: it is an Indexed Job whose pods each get
//! `SNOWPIPE_LOAD_SHARD=<completion index>/<completions>` (the index from the downward API,
//! defined before the variable that names it); every `SNOWPIPE_LOAD_*` variable and flag it
//! sets is one `snowpipe load --help` names; the key comes from a Secret; and the binary run
//! once per completion index with the Job's variables, over one set of files, loads every
//! row once.
#![cfg(unix)]

use std::path::{Path, PathBuf};

use yaml_serde::Value;

use crate::common::{ndjson, Lab, Run};

fn job() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/load-job.yaml");
    let text = std::fs::read_to_string(&path).expect("read load-job.yaml");
    yaml_serde::from_str(&text).expect("load-job.yaml is YAML")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string: {v:?}"))
}

/// The container's variables in order: (name, value or `None` when from a source).
fn env(job: &Value) -> Vec<(String, Option<String>)> {
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| {
            (
                text(&e["name"]).to_owned(),
                e["value"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn help() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe"))
        .args(["load", "--help"])
        .output()
        .expect("run --help");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_job_is_indexed_and_each_pod_gets_its_share() {
    let job = job();
    assert_eq!(text(&job["kind"]), "Job");
    assert_eq!(text(&job["spec"]["completionMode"]), "Indexed");
    let completions = job["spec"]["completions"].as_u64().expect("completions");
    let env = env(&job);
    let at = |name: &str| env.iter().position(|(n, _)| n == name);
    let index = at("JOB_COMPLETION_INDEX").expect("JOB_COMPLETION_INDEX set");
    let shard = at("SNOWPIPE_LOAD_SHARD").expect("SNOWPIPE_LOAD_SHARD set");
    assert!(
        index < shard,
        "$(JOB_COMPLETION_INDEX) expands only when defined before"
    );
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let source = &container["env"][index]["valueFrom"]["fieldRef"]["fieldPath"];
    assert_eq!(
        text(source),
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    assert_eq!(
        env[shard].1.as_deref(),
        Some(format!("$(JOB_COMPLETION_INDEX)/{completions}").as_str()),
        "N of --shard is the Job's completions"
    );
    let help = help();
    for (name, _) in &env {
        if let Some(flag) = name.strip_prefix("SNOWPIPE_LOAD_") {
            let flag = format!("--{}", flag.to_lowercase().replace('_', "-"));
            assert!(help.contains(&flag), "{name}: --help names no {flag}");
        }
    }
    for arg in container["args"].as_sequence().expect("args") {
        let arg = text(arg);
        if arg.starts_with("--") {
            assert!(help.contains(arg), "--help names no {arg}");
        }
    }
    // Round six: bad records of objects on a volume that outlives the pod.
    let dead = env[at("SNOWPIPE_LOAD_DEAD_LETTERS").expect("SNOWPIPE_LOAD_DEAD_LETTERS set")]
        .1
        .clone()
        .expect("a path");
    let mount = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| text(&m["mountPath"]) == dead)
        .unwrap_or_else(|| panic!("nothing is mounted at {dead}"));
    let volume = job["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    assert!(
        volume["emptyDir"].is_null() && volume["persistentVolumeClaim"]["claimName"].is_string(),
        "dead letters on an emptyDir vanish with the pod: {volume:?}"
    );
    let key = &container["env"][at("SNOWFLAKE_PRIVATE_KEY").expect("the key")]["valueFrom"];
    assert!(
        key["secretKeyRef"]["name"].is_string(),
        "the key from a Secret"
    );
}

#[test]
fn the_jobs_pods_load_every_row_once() {
    let job = job();
    let completions = job["spec"]["completions"].as_u64().unwrap();
    let shard = env(&job)
        .into_iter()
        .find(|(n, _)| n == "SNOWPIPE_LOAD_SHARD")
        .and_then(|(_, v)| v)
        .unwrap();
    let lab = Lab::new();
    let paths: Vec<PathBuf> = (0..16u64)
        .map(|f| {
            let p = lab.path(&format!("part-{f:02}.ndjson"));
            std::fs::write(&p, ndjson(f * 100..(f + 1) * 100)).unwrap();
            p
        })
        .collect();
    let inputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let pods: Vec<_> = (0..completions)
        .map(|i| {
            let value = shard.replace("$(JOB_COMPLETION_INDEX)", &i.to_string());
            lab.command(&inputs, &[])
                .env("SNOWPIPE_LOAD_SHARD", value)
                .spawn()
                .unwrap()
        })
        .collect();
    let mut files = 0;
    for pod in pods {
        files += Run::from(pod.wait_with_output().unwrap()).ok()["files"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(files, 16, "each file in one pod's share");
    assert_eq!(lab.counts(), (1600, 1600));
}
