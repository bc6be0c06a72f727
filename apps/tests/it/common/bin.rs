//! The application binaries for tests that run them as processes (cargo builds a package's
//! binaries before its integration tests and names them in `CARGO_BIN_EXE_<name>`), and the
//! helpers that run them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `ski_resort` binary.
pub fn ski_resort_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ski_resort"))
}

/// The output of `ski_resort report --json` over the queue file `queue` and the emulator data
/// directory `data_dir`.
pub fn ski_resort_report(queue: &Path, data_dir: &Path) -> std::process::Output {
    Command::new(ski_resort_bin())
        .args(["report", "--json", "--queue"])
        .arg(queue)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

/// The `sensor_stream` binary.
pub fn sensor_stream_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sensor_stream"))
}

/// The `table_replay` binary.
pub fn table_replay_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_table_replay"))
}

/// The `ecommerce` binary.
pub fn ecommerce_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ecommerce"))
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

/// Starts `<app> emulator` (`bin`: one of the application binaries) on a free port with its
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
