//! A `snowpipe-emulator` child process, to measure what an attack costs the process alone
//! (its peak RSS and CPU time from `/proc`).

use std::time::Duration;

use serde_json::json;

use super::pipe_path;

/// A child `snowpipe-emulator` (or the binary `SNOWPIPE_EMULATOR_BIN` names, to measure
/// another build) on 127.0.0.1 with `ddl`, any bearer accepted, and `args`.
#[cfg(target_os = "linux")]
pub(crate) struct ChildEmulator {
    pub child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

#[cfg(target_os = "linux")]
impl ChildEmulator {
    pub(crate) fn start(ddl: &str, args: &[&str]) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let ddl_file = dir.path().join("ddl.sql");
        std::fs::write(&ddl_file, ddl).unwrap();
        let bin = std::env::var("SNOWPIPE_EMULATOR_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_snowpipe-emulator").to_owned());
        let mut child = std::process::Command::new(bin)
            .args([
                "--port",
                "0",
                "--accept-any-key",
                "--commit-delay",
                "0",
                "--ddl",
            ])
            .arg(&ddl_file)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut url = None;
        for line in std::io::BufReader::new(stdout).lines() {
            if let Some(u) = line.unwrap().strip_prefix("listening on ") {
                url = Some(u.to_owned());
                break;
            }
        }
        let url = url.expect("the emulator printed its URL");
        Self {
            child,
            url,
            _dir: dir,
        }
    }

    /// Fields of `/proc/<pid>/status` and `/proc/<pid>/stat`: peak resident memory (bytes)
    /// and CPU time used so far (user + system).
    pub(crate) fn peak_rss_and_cpu(&self) -> (u64, Duration) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        let cpu = snowpipe_cli_support::process::usage(pid).unwrap().cpu;
        (kb * 1024, cpu)
    }

    /// Opens `channel` on `pipe` of `DB.SCH`; its continuation token.
    pub(crate) async fn open(&self, pipe: &str, channel: &str) -> String {
        let r = reqwest::Client::new()
            .put(format!(
                "{}{}/channels/{channel}",
                self.url,
                pipe_path(pipe)
            ))
            .bearer_auth("any")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        v["next_continuation_token"].as_str().unwrap().to_owned()
    }
}

#[cfg(target_os = "linux")]
impl Drop for ChildEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
