//! Progress on stderr. With `--log-format text`, a bar (files, rows, bytes, rate) only when
//! stderr is a terminal. With `--log-format json`, no bar: an `INFO` event of target
//! `snowpipe_load::progress` (`fields.message` `progress`) at the end of each file and every
//! 5 s while rows go in, with the figures as fields: `elapsed_s`, `file` (its name, escaped),
//! `file_index` (1-based) of `files`, `file_rows` and `file_bytes` (this file's, in this run),
//! `rows` and `bytes` (the run's), `total_bytes` (the inputs' sizes), `file_done`.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map};
use snowpipe_cli_support::log::LogFormat;

/// How often a JSON progress event is written while rows go in.
const EVERY: Duration = Duration::from_secs(5);

/// Progress of the whole run.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    /// JSON events (`--log-format json`, progress enabled).
    events: bool,
    started: Instant,
    total_bytes: u64,
    rows: AtomicU64,
    bytes: AtomicU64,
    file: Mutex<FileNow>,
}

/// The file being loaded.
#[derive(Debug)]
struct FileNow {
    index: usize,
    files: usize,
    name: String,
    rows: u64,
    bytes: u64,
    /// When the last JSON event was written.
    last: Instant,
}

impl Progress {
    /// A bar over `total_bytes` when stderr is a terminal and `enabled` (text format); JSON
    /// events when `enabled` and the log format is JSON.
    pub(crate) fn new(enabled: bool, total_bytes: u64) -> Self {
        let events = enabled && snowpipe_cli_support::log::format() == LogFormat::Json;
        let bar = (enabled && !events && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total_bytes);
            let style = ProgressStyle::with_template(
                "{spinner} {msg} {wide_bar} {binary_bytes}/{binary_total_bytes} \
                 {binary_bytes_per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            events,
            started: now,
            total_bytes,
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            file: Mutex::new(FileNow {
                index: 0,
                files: 0,
                name: String::new(),
                rows: 0,
                bytes: 0,
                last: now,
            }),
        }
    }

    /// Now on file `index` (1-based) of `files`.
    pub(crate) fn file(&self, index: usize, files: usize, name: &str) {
        if let Ok(mut f) = self.file.lock() {
            (f.index, f.files, f.name) = (index, files, name.to_owned());
            (f.rows, f.bytes) = (0, 0);
        }
        if let Some(bar) = &self.bar {
            bar.set_prefix(format!("file {index}/{files} {name}"));
            let rows = self.rows.load(Ordering::Relaxed);
            bar.set_message(format!("{}, {rows} rows", bar.prefix()));
        }
    }

    /// `rows` rows of `bytes` input bytes appended.
    pub(crate) fn add(&self, rows: u64, bytes: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{}, {total} rows", bar.prefix()));
        }
        if let Ok(mut f) = self.file.lock() {
            f.rows += rows;
            f.bytes += bytes;
            if self.events && f.last.elapsed() >= EVERY {
                self.event(&mut f, false);
            }
        }
    }

    /// The current file is done (loaded, failed or stopped): its JSON event.
    pub(crate) fn file_done(&self) {
        if let (true, Ok(mut f)) = (self.events, self.file.lock()) {
            self.event(&mut f, true);
        }
    }

    /// Writes a JSON progress event of the file `f` and the run.
    fn event(&self, f: &mut FileNow, done: bool) {
        f.last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let fields = json!({
            "elapsed_s": (elapsed * 10.0).round() / 10.0,
            "file": f.name,
            "file_index": f.index,
            "files": f.files,
            "file_rows": f.rows,
            "file_bytes": f.bytes,
            "file_done": done,
            "rows": self.rows.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "total_bytes": self.total_bytes,
        });
        let fields: Map<_, _> = fields.as_object().cloned().unwrap_or_default();
        snowpipe_cli_support::log::progress("snowpipe_load::progress", fields, String::new);
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
