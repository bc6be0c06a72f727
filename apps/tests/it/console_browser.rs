//! The emulator's browser console and the ski_resort dashboard, loaded in a real browser
//! (headless Chromium): the console's rendered DOM follows the channels as rows stream, and
//! screenshots of both pages are written to `target/console.png` and
//! `target/ski_dashboard.png`.
//!
//! Without Chromium the tests print how to install it and pass, except under `CI=true`,
//! where they fail (`.ci/run` installs it).

use snowpipe_streaming::{Positions, Rows};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use snowpipe_cli_support::server_start;
use snowpipe_streaming::emulator::Emulator;
use snowpipe_streaming::OffsetToken;

use crate::common;

/// The browser, or `None` (after saying how to install it) when the test should skip.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let how = "install it with `apt-get install chromium` (Debian/Ubuntu) to run the browser \
               tests";
    server_start::require_or_skip(false, "headless Chromium", how);
    None
}

/// `target/` of this build (tests run from `target/<profile>/deps/`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Runs headless Chromium on `url` with `args` (e.g. `--dump-dom`), a fresh profile, and
/// `budget_ms` of virtual time for the page's timers; returns its stdout.
fn run_chromium(browser: &Path, url: &str, args: &[String], budget_ms: u32) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader")
}

/// The console's channel rows in a dumped DOM: `(channel, committed token, rows)`.
fn channel_rows(dom: &str) -> Vec<(String, String, u64)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].to_string())
    };
    dom.match_indices("<tr ")
        .filter_map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>')?];
            Some((
                attr(tag, "data-channel")?,
                attr(tag, "data-token").unwrap_or_default(),
                attr(tag, "data-rows")?.parse().ok()?,
            ))
        })
        .collect()
}

/// The text of the element with `id`.
fn text_of(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let start = at + dom[at..].find('>')? + 1;
    let end = start + dom[start..].find('<')?;
    Some(dom[start..end].to_string())
}

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
}

fn rows(from: u64, to: u64) -> impl Iterator<Item = Row> {
    (from..=to).map(|id| Row {
        id,
        name: format!("row {id}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_follows_streaming_channels_in_a_browser() {
    const DB: &str = "DB";
    const SCHEMA: &str = "SCH";
    const TABLE: &str = "T";
    // Commits 100 ms after each append, so the page has a commit latency to show.
    let emu = Emulator::builder()
        .ddl("CREATE DATABASE DB; CREATE SCHEMA SCH; CREATE TABLE T (ID NUMBER NOT NULL, NAME VARCHAR(20));")
        .commit_delay(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let builder = emu.client_builder();
    let url = format!("{}/", emu.url());

    // The JSON answer is unchanged for clients that do not ask for HTML.
    let http = reqwest::Client::new();
    for accept in [None, Some("application/json")] {
        let mut req = http.get(&url);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let res = req.send().await.unwrap();
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "accept {accept:?}"
        );
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["emulator"], "snowpipe-emulator");
    }
    // A browser gets the page, with every asset served by the emulator itself.
    let page = http
        .get(&url)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<script src=\"/console/console.js\">"),
        "{page}"
    );
    assert!(!page.contains("http://") && !page.contains("https://"));

    let Some(browser) = chromium() else {
        emu.shutdown().await;
        return;
    };

    // Arrange: three channels with known committed tokens, and one that keeps streaming.
    let client = builder
        .retry(common::fast_retry())
        .max_client_lag(Duration::from_millis(20))
        .commit_poll_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let mut fixed = Vec::new();
    for (name, last) in [("alpha", 99u64), ("bravo", 149), ("charlie", 199)] {
        let ch = client
            .table_pipe(DB, SCHEMA, TABLE)
            .open_channel(name)
            .await
            .unwrap();
        ch.append(
            Rows::serde(rows(0, last)),
            Positions::at(OffsetToken::from(last)),
        )
        .await
        .unwrap();
        fixed.push((ch, last));
    }
    let live = client
        .table_pipe(DB, SCHEMA, TABLE)
        .open_channel("live")
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) {
                live.append(
                    Rows::serde(rows(next, next + 9)),
                    Positions::at(OffsetToken::from(next + 9)),
                )
                .await
                .unwrap();
                next += 10;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            live.close().await.unwrap();
        })
    };
    for (ch, last) in &fixed {
        ch.wait_for_commit(&OffsetToken::from(*last), Duration::from_secs(20))
            .await
            .unwrap();
    }

    // Act 1: load the console.
    let dump = |budget| {
        let (browser, url) = (browser.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            run_chromium(&browser, &url, &["--dump-dom".to_string()], budget)
        })
    };
    let first = dump(2500).await.unwrap();
    let rows1 = channel_rows(&first);
    let token = |rows: &[(String, String, u64)], name: &str| {
        rows.iter()
            .find(|r| r.0 == name)
            .map(|r| (r.1.clone(), r.2))
            .unwrap_or_else(|| panic!("channel {name} not in the console: {rows:?}"))
    };
    assert_eq!(text_of(&first, "channel-count").as_deref(), Some("4"));
    assert_eq!(token(&rows1, "alpha"), ("99".to_string(), 100));
    assert_eq!(token(&rows1, "bravo"), ("149".to_string(), 150));
    assert_eq!(token(&rows1, "charlie"), ("199".to_string(), 200));
    let (live1, live_rows1) = token(&rows1, "live");
    assert_eq!(text_of(&first, "live").as_deref(), Some("live"));

    // Act 2: more channels, more rows, a row the table refuses (NAME is VARCHAR(20)) and an
    // injected 503 on one append.
    let fault = "append_rows:status=503,code=INJECTED_503,message=injected fault INJECTED_503";
    emu.add_fault(&format!("{fault},channel=echo,times=1"))
        .unwrap();
    for (name, last) in [("delta", 49u64), ("echo", 74)] {
        let ch = client
            .table_pipe(DB, SCHEMA, TABLE)
            .open_channel(name)
            .await
            .unwrap();
        let mut batch: Vec<Row> = rows(0, last).collect();
        if name == "delta" {
            batch[last as usize].name = "a name much longer than twenty characters".into();
        }
        ch.append(Rows::serde(batch), Positions::at(OffsetToken::from(last)))
            .await
            .unwrap();
        fixed.push((ch, last));
    }
    let (alpha, _) = &fixed[0];
    alpha
        .append(
            Rows::serde(rows(100, 299)),
            Positions::at(OffsetToken::from(299u64)),
        )
        .await
        .unwrap();
    fixed[0].1 = 299;
    for (ch, last) in &fixed {
        ch.wait_for_commit(&OffsetToken::from(*last), Duration::from_secs(20))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = dump(2500).await.unwrap();
    let rows2 = channel_rows(&second);

    // Assert: the counts and tokens moved on the rendered page.
    assert_eq!(text_of(&second, "channel-count").as_deref(), Some("6"));
    assert_eq!(token(&rows2, "alpha"), ("299".to_string(), 300));
    assert_eq!(token(&rows2, "delta"), ("49".to_string(), 49));
    assert!(
        second.contains(
            "data-channel=\"delta\" data-token=\"49\" data-rows=\"49\" data-errors=\"1\""
        ),
        "delta's row error counted"
    );
    assert_eq!(token(&rows2, "echo"), ("74".to_string(), 75));
    let (live2, live_rows2) = token(&rows2, "live");
    let n = |t: &str| t.parse::<u64>().unwrap_or(0);
    assert!(
        n(&live2) > n(&live1) && live_rows2 > live_rows1,
        "the streaming channel's token advanced: {live1} ({live_rows1} rows) then {live2} ({live_rows2} rows)"
    );
    // The injected fault, the request log and the table preview are on the page too.
    assert_eq!(text_of(&second, "fault-total").as_deref(), Some("1"));
    assert_eq!(text_of(&second, "error-total").as_deref(), Some("1"));
    assert!(second.contains("POST append_rows"), "requests listed");
    assert!(second.contains("data-table=\"DB.SCH.T\""), "table preview");
    assert!(
        second.contains("<th>NAME</th>") && second.contains(">row "),
        "latest rows previewed"
    );

    // A screenshot for the README (docs/images/console.png is a copy).
    let png = target_dir().join("console.png");
    let _ = std::fs::remove_file(&png);
    let (b, u, p) = (browser.clone(), url.clone(), png.clone());
    tokio::task::spawn_blocking(move || {
        run_chromium(
            &b,
            &u,
            &[
                format!("--screenshot={}", p.display()),
                "--window-size=1400,1250".to_string(),
            ],
            2500,
        )
    })
    .await
    .unwrap();
    assert!(
        std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000),
        "screenshot written to {}",
        png.display()
    );
    eprintln!("console screenshot: {}", png.display());

    stop.store(true, Ordering::Relaxed);
    streamer.await.unwrap();
    for (ch, _) in fixed {
        ch.close().await.unwrap();
    }
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[test]
fn ski_resort_dashboard_draws_the_quickstart_views() {
    let Some(browser) = chromium() else {
        return;
    };
    // Arrange: an all-in-one run kept on disk (20 simulated days).
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("run");
    let bin = common::bin::ski_resort_bin();
    let out = Command::new(&bin)
        .args([
            "--events",
            "6000",
            "--events-per-day",
            "300",
            "--rate",
            "0",
            "--seed",
            "7",
            "--commit-delay",
            "20ms",
            "--keep",
        ])
        .arg(&keep)
        .env_remove("SNOWFLAKE_ACCOUNT")
        .env_remove("SNOWFLAKE_URL")
        .output()
        .expect("run ski_resort");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Act: draw the dashboard from the kept emulator data, through the SQL API.
    let html_path = target_dir().join("ski_dashboard.html");
    let out = Command::new(&bin)
        .arg("dashboard")
        .arg("--data-dir")
        .arg(&keep)
        .arg("--out")
        .arg(&html_path)
        .output()
        .expect("run ski_resort dashboard");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Assert: four charts with data, drawn without any script or network.
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(!html.contains("no rows yet"), "every chart has data");
    assert!(!html.contains("<script"));
    // Two series over two weeks or more, 10 lifts, 2 products.
    assert!(
        html.matches("class=\"bar\"").count() >= 2 * 14 + 10 + 2,
        "bars drawn"
    );
    assert!(html.contains("Season pass") && html.contains("Day ticket"));
    let png = target_dir().join("ski_dashboard.png");
    let _ = std::fs::remove_file(&png);
    let dom = run_chromium(
        &browser,
        &format!("file://{}", html_path.display()),
        &["--dump-dom".to_string()],
        500,
    );
    assert!(dom.contains("Ski resort dashboard") && dom.contains("Busiest lifts"));
    run_chromium(
        &browser,
        &format!("file://{}", html_path.display()),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1300,1060".to_string(),
        ],
        500,
    );
    assert!(
        std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000),
        "screenshot written to {}",
        png.display()
    );
    eprintln!("dashboard screenshot: {}", png.display());
}
