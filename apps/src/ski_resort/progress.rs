//! Live progress: one line per table (indicatif) on a terminal, plain periodic lines otherwise.
//!
//! Generated and committed totals come from the queue's ledger (so they include earlier runs
//! and other processes); sent, in-flight and commit lag come from this process's streamer.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::ski_resort::model::Table;
use crate::ski_resort::queue::Queue;
use crate::ski_resort::streamer::Stats;

/// One table's numbers at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TableSnapshot {
    /// Rows generated (ledger).
    pub generated: u64,
    /// Rows appended by this process.
    pub sent: u64,
    /// Rows committed (ledger).
    pub committed: u64,
    /// Rows sent and not yet committed.
    pub in_flight: u64,
    /// Records moved to the queue's dead_letters table (ledger).
    pub dead_lettered: u64,
    /// Commit lag in ms.
    pub lag_ms: u64,
    /// Committed rows per second over the last interval.
    pub rows_per_s: f64,
}

use crate::common::thousands;

/// Renders one table's line (shared by both modes).
pub(super) fn describe(s: &TableSnapshot) -> String {
    format!(
        "gen {:>9}  sent {:>9}  committed {:>9}  {:>7} rows/s  lag {:>5} ms  in flight {:>6}  dead {:>4}",
        thousands(s.generated),
        thousands(s.sent),
        thousands(s.committed),
        thousands(s.rows_per_s.round() as u64),
        s.lag_ms,
        thousands(s.in_flight),
        thousands(s.dead_lettered),
    )
}

/// Spawns the display task; it runs until `stop` changes, then draws a final frame.
///
/// # Cancellation
/// Dropping the returned handle does not stop the task; send on `stop` instead.
pub(super) fn spawn(
    queue: PathBuf,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let fancy = std::io::stdout().is_terminal();
        let interval = if fancy {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        let bars = fancy.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10));
            let style =
                ProgressStyle::with_template("{prefix:>13.bold} [{bar:20.cyan/blue}] {msg}")
                    .expect("valid template")
                    .progress_chars("=> ");
            let bars = Table::ALL.map(|t| {
                let bar = multi.add(
                    ProgressBar::new(1)
                        .with_style(style.clone())
                        .with_prefix(t.name()),
                );
                bar.enable_steady_tick(Duration::from_millis(500));
                bar
            });
            (multi, bars)
        });
        let started = Instant::now();
        let mut last = (Instant::now(), [0u64; 3]);
        let mut reader: Option<Queue> = None;
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                _ = stop.changed() => true,
            };
            if reader.is_none() {
                reader = Queue::open_read_only(&queue).ok();
            }
            let Some(ledger) = reader
                .as_ref()
                .and_then(|q| tokio::task::block_in_place(|| q.ledger()).ok())
            else {
                if stopping {
                    break;
                }
                continue;
            };
            let dt = last.0.elapsed().as_secs_f64().max(1e-3);
            let snaps = Table::ALL.map(|t| {
                let i = t.index();
                let st = &stats.tables[i];
                TableSnapshot {
                    generated: ledger[i].generated,
                    sent: st.sent.load(Ordering::Relaxed),
                    committed: ledger[i].committed,
                    in_flight: st.in_flight.load(Ordering::Relaxed),
                    dead_lettered: ledger[i].dead_lettered,
                    lag_ms: st.commit_lag_ms.load(Ordering::Relaxed),
                    rows_per_s: ledger[i].committed.saturating_sub(last.1[i]) as f64 / dt,
                }
            });
            last = (Instant::now(), ledger.map(|l| l.committed));
            match &bars {
                Some((_, bars)) => {
                    for (bar, s) in bars.iter().zip(&snaps) {
                        bar.set_length(s.generated.max(1));
                        bar.set_position(s.committed);
                        bar.set_message(describe(s));
                    }
                }
                None => {
                    let line = Table::ALL
                        .iter()
                        .zip(&snaps)
                        .map(|(t, s)| {
                            format!(
                                "{t} gen={} sent={} committed={} rate={:.0}/s lag={}ms dead={}",
                                s.generated,
                                s.sent,
                                s.committed,
                                s.rows_per_s,
                                s.lag_ms,
                                s.dead_lettered
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" | ");
                    println!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
                }
            }
            if stopping {
                break;
            }
        }
        // Leave the last frame on screen.
        if let Some((_multi, bars)) = bars {
            for bar in bars {
                bar.finish();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_shows_every_counter() {
        let line = describe(&TableSnapshot {
            generated: 1200,
            sent: 1100,
            committed: 1000,
            in_flight: 100,
            dead_lettered: 3,
            lag_ms: 250,
            rows_per_s: 512.4,
        });
        for part in [
            "1,200",
            "1,100",
            "1,000",
            "512 rows/s",
            "250 ms",
            "100",
            "dead    3",
        ] {
            assert!(line.contains(part), "{line:?} lacks {part:?}");
        }
    }
}
