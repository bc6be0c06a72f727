//! Progress on stderr. With `--log-format text`, a bar (files, rows, bytes, rate) when stderr
//! is a terminal, else a plain line every 5 s while rows go in and one as each file ends. With
//! `--log-format json`, no bar: an `INFO` event of target `snowpipe_load::progress`
//! (`fields.message` `progress`) as each file ends and every 5 s for each file rows went into
//! since the last, with the figures as fields: `elapsed_s`, `file` (its name, escaped),
//! `file_index` (1-based) of `files`, `file_rows` and `file_bytes` (this file's, in this run),
//! `rows` and `bytes` (the run's), `total_bytes` (the inputs' sizes), `file_done`. Files load
//! at once on many channels: each file's figures are its own, kept apart by its index.

use std::collections::BTreeMap;
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
    files: Mutex<Files>,
}

/// The files being loaded, by their 1-based index, and when the last periodic lines went out.
#[derive(Debug)]
struct Files {
    count: usize,
    loading: BTreeMap<usize, FileNow>,
    last: Instant,
}

/// One file being loaded.
#[derive(Debug)]
struct FileNow {
    name: String,
    rows: u64,
    bytes: u64,
    /// Rows or bytes went in since its last line.
    moved: bool,
}

impl Progress {
    /// A bar over `total_bytes` when stderr is a terminal and `enabled` (text format); JSON
    /// events when `enabled` and the log format is JSON.
    pub(crate) fn new(enabled: bool, total_bytes: u64) -> Self {
        let json = snowpipe_cli_support::log::format() == LogFormat::Json;
        let terminal = std::io::stderr().is_terminal();
        // Lines (JSON, or plain text off a terminal), else a bar on a terminal.
        let events = enabled && (json || !terminal);
        let bar = (enabled && !events).then(|| {
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
            files: Mutex::new(Files {
                count: 0,
                loading: BTreeMap::new(),
                last: now,
            }),
        }
    }

    /// File `index` (1-based) of `files` starts loading.
    pub(crate) fn file(&self, index: usize, files: usize, name: &str) {
        if let Ok(mut f) = self.files.lock() {
            f.count = files;
            f.loading.entry(index).or_insert_with(|| FileNow {
                name: name.to_owned(),
                rows: 0,
                bytes: 0,
                moved: false,
            });
        }
        if let Some(bar) = &self.bar {
            bar.set_prefix(format!("file {index}/{files} {name}"));
            let rows = self.rows.load(Ordering::Relaxed);
            bar.set_message(format!("{}, {rows} rows", bar.prefix()));
        }
    }

    /// `rows` rows of `bytes` input bytes of file `index` appended.
    pub(crate) fn add(&self, index: usize, rows: u64, bytes: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{}, {total} rows", bar.prefix()));
        }
        if let Ok(mut f) = self.files.lock() {
            if let Some(file) = f.loading.get_mut(&index) {
                file.rows += rows;
                file.bytes += bytes;
                file.moved = true;
            }
            if self.events && f.last.elapsed() >= EVERY {
                f.last = Instant::now();
                let count = f.count;
                for (&i, file) in f.loading.iter_mut().filter(|(_, file)| file.moved) {
                    file.moved = false;
                    self.line(i, count, file, false);
                }
            }
        }
    }

    /// File `index` is done (loaded, failed or stopped): its last line.
    pub(crate) fn file_done(&self, index: usize) {
        if let Ok(mut f) = self.files.lock() {
            let count = f.count;
            if let (true, Some(file)) = (self.events, f.loading.remove(&index)) {
                self.line(index, count, &file, true);
            }
        }
    }

    /// Writes a progress line of file `index` and the run.
    fn line(&self, index: usize, files: usize, f: &FileNow, done: bool) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let (rows, bytes) = (
            self.rows.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        );
        let fields = json!({
            "elapsed_s": (elapsed * 10.0).round() / 10.0,
            "file": f.name,
            "file_index": index,
            "files": files,
            "file_rows": f.rows,
            "file_bytes": f.bytes,
            "file_done": done,
            "rows": rows,
            "bytes": bytes,
            "total_bytes": self.total_bytes,
        });
        let fields: Map<_, _> = fields.as_object().cloned().unwrap_or_default();
        snowpipe_cli_support::log::progress("snowpipe_load::progress", fields, || {
            format!(
                "[{elapsed:>6.1}s] file {index}/{files} {}{}: {} rows, {:.1} MiB | run: {rows} \
                 rows, {:.1}/{:.1} MiB",
                f.name,
                if done { " (done)" } else { "" },
                f.rows,
                mib(f.bytes),
                mib(bytes),
                mib(self.total_bytes)
            )
        });
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes in MiB, for the text line.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// One file's handle on the run's progress: what its lanes append is counted as its own.
#[derive(Debug, Clone)]
pub(crate) struct FileProgress {
    run: std::sync::Arc<Progress>,
    index: usize,
}

impl FileProgress {
    /// The handle of file `index` (1-based).
    pub(crate) fn new(run: std::sync::Arc<Progress>, index: usize) -> Self {
        Self { run, index }
    }

    /// `rows` rows of `bytes` input bytes of this file appended.
    pub(crate) fn add(&self, rows: u64, bytes: u64) {
        self.run.add(self.index, rows, bytes);
    }
}
