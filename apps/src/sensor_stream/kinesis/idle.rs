//! When a shard's reader is idle (`consume --source kinesis --until-idle`): only after a
//! `GetRecords` page that is empty *at the shard's tip* (`MillisBehindLatest` 0), and only once
//! the window has passed since the last page that was not (one with records, or one that says
//! the shard holds more: Kinesis may return empty pages while a reader is behind, e.g. across a
//! stretch of the shard with no records). The clock restarts after a page is written, not
//! before: a slow write is not quiet time.
//!
//! The stream is idle, not a shard: a reader whose shard is idle goes on reading until every
//! running reader's is (`idle_board.rs`), so readings coming to one shard while another is still
//! busy are read before the exit (a reader that stopped alone gave up its shard: exit 0 with
//! readings written before it unread). The NATS consumer (`../consume.rs`) uses the same board.
//!
//! A page without `MillisBehindLatest` (Kinesis always sends it; kinesalite too) counts as at
//! the tip when empty, so a server that omits it cannot keep the reader from ever being idle.

use std::time::{Duration, Instant};

/// A shard reader's idle clock.
#[derive(Debug, Clone)]
pub struct IdleClock {
    window: Option<Duration>,
    last_new: Instant,
    at_tip: bool,
}

impl IdleClock {
    /// A clock for `window` (`None`: never idle) starting at `now` (a session's start).
    pub fn new(window: Option<Duration>, now: Instant) -> Self {
        IdleClock {
            window,
            last_new: now,
            at_tip: false,
        }
    }

    /// A page of `records` records with `millis_behind` (`MillisBehindLatest`) was written,
    /// finishing at `now`.
    pub fn page(&mut self, records: usize, millis_behind: Option<i64>, now: Instant) {
        let behind = millis_behind.is_some_and(|m| m > 0);
        self.at_tip = records == 0 && !behind;
        if !self.at_tip {
            self.last_new = now;
        }
    }

    /// Whether the reader is idle at `now`: the last page was empty at the tip, nothing
    /// appended waits for its commit (`pending`), and the window has passed since the last
    /// page that was not at the tip (or the session's start).
    pub fn idle(&self, pending: bool, now: Instant) -> bool {
        self.window.is_some_and(|d| {
            self.at_tip && !pending && now.saturating_duration_since(self.last_new) >= d
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake shard: pages of (records, `MillisBehindLatest`), one every `poll`, fed to the
    /// clock; returns the index of the page after which the reader is idle, if any.
    fn idle_after(
        pages: &[(usize, Option<i64>)],
        window: Duration,
        poll: Duration,
    ) -> Option<usize> {
        let start = Instant::now();
        let mut clock = IdleClock::new(Some(window), start);
        pages
            .iter()
            .enumerate()
            .find_map(|(i, &(records, behind))| {
                let now = start + poll * (i as u32 + 1);
                clock.page(records, behind, now);
                clock.idle(false, now).then_some(i)
            })
    }

    #[test]
    fn empty_pages_while_behind_are_not_idle() {
        let (window, poll) = (Duration::from_secs(3), Duration::from_millis(200));
        // 40 empty pages (8 s, past the window) of a reader 90 s behind, then the backlog's
        // records, then the tip.
        let mut pages = vec![(0, Some(90_000)); 40];
        pages.extend([(500, Some(60_000)), (500, Some(0))]);
        let first_tip = pages.len();
        pages.extend(vec![(0, Some(0)); 30]);
        let idle = idle_after(&pages, window, poll).expect("idle at the tip at last");
        // Idle only 3 s (15 polls) after the last page that was not at the tip.
        assert_eq!(idle, first_tip + 14, "{idle}");
    }

    #[test]
    fn a_page_of_records_restarts_the_window_and_so_does_being_behind() {
        let (window, poll) = (Duration::from_secs(1), Duration::from_millis(100));
        let mut pages = vec![(0, Some(0)); 8];
        pages.push((3, Some(0)));
        pages.extend(vec![(0, Some(0)); 5]);
        pages.push((0, Some(1))); // empty, but behind
        let restart = pages.len();
        pages.extend(vec![(0, Some(0)); 20]);
        assert_eq!(idle_after(&pages, window, poll), Some(restart + 9));
    }

    #[test]
    fn never_idle_without_a_window_or_with_rows_waiting_for_their_commit() {
        let start = Instant::now();
        let mut never = IdleClock::new(None, start);
        never.page(0, Some(0), start);
        assert!(!never.idle(false, start + Duration::from_secs(3600)));
        let mut clock = IdleClock::new(Some(Duration::from_secs(1)), start);
        clock.page(0, Some(0), start);
        let later = start + Duration::from_secs(5);
        assert!(clock.idle(false, later));
        assert!(!clock.idle(true, later), "rows appended and not committed");
        clock.page(0, None, later);
        assert!(
            clock.idle(false, later),
            "no MillisBehindLatest, empty: at the tip"
        );
    }
}
