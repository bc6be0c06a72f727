//! `throughput --lanes N`: the harness's rows as one logical stream over N lanes (the SDK's
//! `LaneStream`) land whole: the run exits 0 only once every lane committed the last position
//! appended to it, and its JSON line counts every row.

#[test]
fn a_stream_over_four_lanes_lands_every_row() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_throughput"))
        .args([
            "--lanes", "4", "--rows", "20000", "--pool", "2000", "--batch", "500",
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("run throughput");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("a JSON line: {stdout}"));
    assert_eq!(json["rows"], 20_000, "{json}");
    assert_eq!(json["lanes"], 4, "{json}");
    assert!(stdout.contains("one stream over 4 lanes"), "{stdout}");
}
