//! Live progress lines (stderr) and the per-instance stream summary.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::common::say::say;
use crate::common::{format_table, thousands};
use crate::ecommerce::streamer::InstanceStats;

/// One progress line over all instances.
pub(super) fn line(stats: &[Arc<InstanceStats>], elapsed: Duration, rows_per_s: f64) -> String {
    let (mut orders, mut orders_total, mut items, mut items_total) = (0, 0, 0, 0);
    let (mut ms, mut n) = (0, 0);
    for s in stats {
        orders += s.orders_committed.load(Ordering::Relaxed);
        orders_total += s.orders_total;
        items += s.items_committed.load(Ordering::Relaxed);
        items_total += s.items_total;
        ms += s.commit_ms_sum.load(Ordering::Relaxed);
        n += s.commit_count.load(Ordering::Relaxed);
    }
    let mut out = format!(
        "[{:>6.1}s] committed orders {}/{} items {}/{} | {} rows/s | commit avg {} ms",
        elapsed.as_secs_f64(),
        thousands(orders),
        thousands(orders_total),
        thousands(items),
        thousands(items_total),
        thousands(rows_per_s as u64),
        ms.checked_div(n).map_or("-".into(), thousands),
    );
    if stats.len() > 1 {
        out.push_str(" | per instance");
        for s in stats {
            let done = s.orders_committed.load(Ordering::Relaxed)
                + s.items_committed.load(Ordering::Relaxed);
            let total = (s.orders_total + s.items_total).max(1);
            let _ = write!(out, " {}:{}%", s.instance, done * 100 / total);
        }
    } else if let Some(s) = stats.first() {
        let _ = write!(out, " | instance {}", s.instance);
    }
    out
}

/// Prints a progress line to stderr every `every` until `stop` turns true.
pub(super) fn spawn(
    stats: Vec<Arc<InstanceStats>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let rows: u64 = stats.iter().map(|s| s.rows_committed_this_run()).sum();
            let dt = last.0.elapsed().as_secs_f64().max(1e-3);
            let rate = rows.saturating_sub(last.1) as f64 / dt;
            last = (Instant::now(), rows);
            say!("{}", line(&stats, started.elapsed(), rate));
        }
    })
}

/// Totals of a run: (orders, rows) committed by this run, and the slowest instance's time.
pub(super) fn totals(stats: &[Arc<InstanceStats>]) -> (u64, u64) {
    let orders = stats
        .iter()
        .map(|s| {
            s.orders_committed
                .load(Ordering::Relaxed)
                .saturating_sub(s.orders_at_start.load(Ordering::Relaxed))
        })
        .sum();
    let rows = stats.iter().map(|s| s.rows_committed_this_run()).sum();
    (orders, rows)
}

/// The per-instance summary table and a totals line.
pub(super) fn summary(stats: &[Arc<InstanceStats>], elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            let n = s.commit_count.load(Ordering::Relaxed);
            let took = s.finished_ms.load(Ordering::Relaxed) as f64 / 1000.0;
            let took = if took > 0.0 { took } else { secs };
            vec![
                s.instance.to_string(),
                thousands(s.orders_committed.load(Ordering::Relaxed)),
                thousands(s.items_committed.load(Ordering::Relaxed)),
                thousands(s.rows_committed_this_run()),
                thousands(s.rows_sent.load(Ordering::Relaxed)),
                thousands((s.rows_committed_this_run() as f64 / took) as u64),
                s.commit_ms_sum
                    .load(Ordering::Relaxed)
                    .checked_div(n)
                    .map_or("-".into(), thousands),
                thousands(s.commit_ms_max.load(Ordering::Relaxed)),
                s.sessions.load(Ordering::Relaxed).to_string(),
            ]
        })
        .collect();
    let (orders, all_rows) = totals(stats);
    let mut out = format_table(
        &[
            "INSTANCE",
            "ORDERS",
            "ITEMS",
            "ROWS_THIS_RUN",
            "SENT",
            "ROWS/S",
            "COMMIT_AVG_MS",
            "COMMIT_MAX_MS",
            "SESSIONS",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "  total: {} orders and {} rows committed in {:.2} s: {} orders/s, {} rows/s",
        thousands(orders),
        thousands(all_rows),
        secs,
        thousands((orders as f64 / secs) as u64),
        thousands((all_rows as f64 / secs) as u64),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_every_instance() {
        let stats: Vec<_> = (0..2)
            .map(|i| {
                let s = InstanceStats {
                    instance: i,
                    orders_total: 10,
                    items_total: 30,
                    ..Default::default()
                };
                s.orders_committed.store(5, Ordering::Relaxed);
                s.items_committed.store(15, Ordering::Relaxed);
                Arc::new(s)
            })
            .collect();
        let l = line(&stats, Duration::from_secs(2), 1500.0);
        assert!(l.contains("orders 10/20 items 30/60"), "{l}");
        assert!(l.contains("0:50% 1:50%"), "{l}");
        assert!(l.contains("1,500 rows/s"), "{l}");
    }
}
