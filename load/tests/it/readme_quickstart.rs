//! The root README's "Loading files" lines, run as a reader runs them: the `printf` writes the
//! file, the `snowpipe load` line (taken from the README, not copied here) loads it into the
//! embedded emulator, and the summary says both rows landed and committed. A README edit that
//! breaks the lines fails here.

use std::process::Command;

/// The README's `sh` block under "Loading files: `snowpipe load`".
fn readme_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the root README");
    let section = readme
        .split("## Loading files: `snowpipe load`")
        .nth(1)
        .expect("the README's Loading files section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block in the section");
    block.lines().map(str::to_owned).collect()
}

#[test]
fn the_readme_lines_load_two_rows_into_the_embedded_emulator() {
    let lines = readme_lines();
    let printf = lines
        .iter()
        .find(|l| l.starts_with("printf "))
        .expect("the printf line");
    let load = lines
        .iter()
        .find(|l| l.starts_with("snowpipe load "))
        .expect("the snowpipe load line");
    let dir = tempfile::tempdir().unwrap();
    let sh = |line: &str, bin: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir.path())
            // The embedded emulator, as for a reader with no account configured.
            .env_remove("SNOWFLAKE_ACCOUNT")
            .env_remove("SNOWFLAKE_URL")
            .env(
                "PATH",
                format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
            )
            .output()
            .unwrap()
    };
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_snowpipe"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let wrote = sh(printf, &bin_dir);
    assert!(wrote.status.success(), "{wrote:?}");
    let out = sh(load, &bin_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{load}\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a summary line")).unwrap();
    assert_eq!(summary["rows"], 2, "{summary}");
}
