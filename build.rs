//! Records the compiler's version for the `User-Agent` (`RUST/<version>`, the language part of
//! the shape the official SDKs send; docs/protocol.md "Headers").

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // `rustc 1.85.0 (4d91de4e4 2025-02-17)` → `1.85.0`; unknown when it cannot be run.
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .filter(|v| {
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SNOWPIPE_RUSTC_VERSION={version}");
}
