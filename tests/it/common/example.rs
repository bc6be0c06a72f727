//! The example binaries for tests that run them as processes.
//!
//! `cargo test` builds the examples as test harnesses (they have `test = true` in Cargo.toml,
//! to run their unit tests), not as the binaries these tests need, so a binary is built here,
//! once per test binary, with the cargo that runs the tests and the same profile: never stale,
//! never missing on a fresh checkout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The path of `target/<profile>/examples/ski_resort`, built on first use.
pub fn ski_resort_bin() -> PathBuf {
    example_bin("ski_resort")
}

/// The path of `target/<profile>/examples/sensor_stream`, built on first use.
pub fn sensor_stream_bin() -> PathBuf {
    example_bin("sensor_stream")
}

/// The path of `target/<profile>/examples/table_replay`, built on first use.
pub fn table_replay_bin() -> PathBuf {
    example_bin("table_replay")
}

/// The path of `target/<profile>/examples/ecommerce`, built on first use.
pub fn ecommerce_bin() -> PathBuf {
    example_bin("ecommerce")
}

/// The path of `target/<profile>/examples/<name>`, built on first use.
pub fn example_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(bin) = built.get(name) {
        return bin.clone();
    }
    // Tests run from target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // Cargo gives the test process this package's CARGO_PKG_*, CARGO_MANIFEST_DIR, ... Some
    // build scripts (ring's) rerun when those change, so passing them on would rebuild half the
    // tree here and again at the next plain `cargo test`: build with the caller's environment.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let per_package = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_CFG_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&k.as_ref());
        if per_package {
            cmd.env_remove(&key);
        }
    }
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(status.success(), "cargo build --example {name} failed");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found after building it",
        bin.display()
    );
    built.insert(name.to_string(), bin.clone());
    bin
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct Guard(pub std::process::Child);

impl Guard {
    /// Waits up to `limit` for the process to exit; panics naming `what` when it does not.
    pub fn wait_within(
        &mut self,
        limit: std::time::Duration,
        what: &str,
    ) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} did not finish within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `<example> emulator` (`bin`: one of the example binaries) on a free port with its
/// data in `data_dir` and a new key written to `key`; returns it with the URL it printed.
pub fn start_emulator(bin: &Path, data_dir: &Path, key: &Path) -> (Guard, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(bin)
        .args(["emulator", "--commit-delay", "100ms", "--data-dir"])
        .arg(data_dir)
        .arg("--new-key")
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn emulator");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("emulator did not print `listening on URL`");
    (Guard(child), url)
}
