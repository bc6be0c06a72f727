//! The `ski_resort` example binary for tests that run it as a process.
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
    BIN.get_or_init(|| {
        // Tests run from target/<profile>/deps/<test>-<hash>.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--example", "ski_resort"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build --example ski_resort");
        assert!(status.success(), "cargo build --example ski_resort failed");
        let bin = profile_dir
            .join("examples")
            .join(format!("ski_resort{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.exists(),
            "{} not found after building it",
            bin.display()
        );
        bin
    })
}
