//! Compiles the spawn helper (`spawn/main.rs`, the standard library alone) with the same
//! `rustc` into `OUT_DIR`; `src/run.rs` finds it by `SNOWPIPE_HOSTILE_SPAWN`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "spawn/main.rs";
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let exe = out.join("hostile-spawn");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition=2021",
            "-O",
            "--crate-name",
            "hostile_spawn",
            "-o",
        ])
        .arg(&exe)
        .arg(source)
        .status()
        .expect("run rustc for the spawn helper");
    assert!(status.success(), "rustc failed on {source}: {status}");
    println!("cargo:rustc-env=SNOWPIPE_HOSTILE_SPAWN={}", exe.display());
}
