//! The progress bar on stderr (files, rows, bytes, rate), only when stderr is a terminal.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of the whole run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    rows: AtomicU64,
}

impl Progress {
    /// A bar over `total_bytes` when stderr is a terminal and `enabled`.
    pub fn new(enabled: bool, total_bytes: u64) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
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
        Self {
            bar,
            rows: AtomicU64::new(0),
        }
    }

    /// Now on file `index` (1-based) of `files`.
    pub fn file(&self, index: usize, files: usize, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(format!("file {index}/{files} {name}"));
            let rows = self.rows.load(Ordering::Relaxed);
            bar.set_message(format!("{}, {rows} rows", bar.prefix()));
        }
    }

    /// `rows` rows of `bytes` input bytes appended.
    pub fn add(&self, rows: u64, bytes: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{}, {total} rows", bar.prefix()));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
