//! The example binaries (`ski_resort`, `table_replay`) for tests that run them as processes.
//!
//! `cargo test` builds the example as a test harness (it has `test = true` in Cargo.toml, to
//! run its unit tests), not as the binary these tests need, so the binary is built here, once
//! per test binary, with the cargo that runs the tests and the same profile: never stale,
//! never missing on a fresh checkout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The path of `target/<profile>/examples/ski_resort`, built on first use.
pub fn ski_resort_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_example("ski_resort"))
}

/// The path of `target/<profile>/examples/table_replay`, built on first use.
pub fn table_replay_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_example("table_replay"))
}

/// Builds example `name` with the cargo and profile running the tests; returns its path.
fn build_example(name: &str) -> PathBuf {
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
    bin
}
