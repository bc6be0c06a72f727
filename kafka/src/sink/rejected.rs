//! Which message a row the server rejected was: the server names a rejected row only by its
//! request, whose end token is the status's `last_error_offset_upper_bound`, and (the
//! emulator, in its message) its place there, `row N of the request`. The SDK adds the
//! request's first token (`RowErrorEvent::request_first_token`), and each worker keeps the
//! offsets it appended as runs ([`AppendedRuns`], at most [`MOST_RUNS`], far more than the
//! appends in flight), so the N-th offset appended from the request's first on is the
//! message. A request of one row needs no place. A report that counts several rows names
//! only the last (the server's status carries one message); the others are named by their
//! request's offsets, `first..=last`, and counted.
//!
//! The message is logged (a warning with its topic, partition and offset), listed in the
//! closing report (`rejected_offsets`, the first [`MOST_LISTED`]) and, with a dead-letter
//! topic, read again from Kafka and dead-lettered (`refetch.rs`: its bytes were the SDK's
//! once appended, and are gone by the time the server reports).

use std::collections::VecDeque;

use snowpipe_streaming::RowErrorEvent;

/// Runs of appended offsets kept per partition.
pub(crate) const MOST_RUNS: usize = 4096;
/// Rejected offsets listed in the closing report per partition.
pub(crate) const MOST_LISTED: usize = 100;

/// The offsets a worker appended, as runs of consecutive offsets `(first, last)`, oldest first.
#[derive(Debug, Default)]
pub(crate) struct AppendedRuns {
    runs: VecDeque<(i64, i64)>,
}

impl AppendedRuns {
    /// Rows at `offsets` (increasing) were appended.
    pub(crate) fn appended(&mut self, offsets: &[u64]) {
        for &o in offsets {
            let Ok(o) = i64::try_from(o) else { continue };
            match self.runs.back_mut() {
                Some((_, last)) if *last + 1 == o => *last = o,
                _ => {
                    if self.runs.len() == MOST_RUNS {
                        self.runs.pop_front();
                    }
                    self.runs.push_back((o, o));
                }
            }
        }
    }

    /// The `n`-th (from 1) offset appended at or after `first`, if it is at most `end`.
    pub(crate) fn nth_from(&self, first: i64, n: u64, end: i64) -> Option<i64> {
        let mut left = n.checked_sub(1)?;
        for &(a, b) in &self.runs {
            if b < first {
                continue;
            }
            let a = a.max(first);
            let len = u64::try_from(b - a).ok()? + 1;
            if left < len {
                let o = a + i64::try_from(left).ok()?;
                return (o <= end).then_some(o);
            }
            left -= len;
        }
        None
    }
}

/// Where a report of rejected rows puts them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Located {
    /// The offset of the message the report's message is about, when known.
    pub offset: Option<i64>,
    /// The offsets of the request the last rejected row was in, when known.
    pub request: Option<(i64, i64)>,
}

/// Where `e`'s rows are, by `runs`.
pub(crate) fn locate(e: &RowErrorEvent, runs: &AppendedRuns) -> Located {
    let token = |t: Option<&snowpipe_streaming::OffsetToken>| {
        t.and_then(|t| t.as_str().parse::<i64>().ok())
    };
    let end = token(e.offset_upper_bound.as_ref());
    let first = token(e.request_first_token.as_ref());
    let request = first.zip(end).filter(|(a, b)| a <= b);
    let offset = request.and_then(|(a, b)| {
        if a == b {
            return Some(a);
        }
        let n = row_in_request(e.last_error_message.as_deref()?)?;
        runs.nth_from(a, n, b)
    });
    Located { offset, request }
}

/// The place (from 1) the server's `message` gives its row in its request
/// (`row N of the request`), if it gives one.
fn row_in_request(message: &str) -> Option<u64> {
    let at = message.find("row ")? + 4;
    let rest = &message[at..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !rest[digits..].starts_with(" of the request") {
        return None;
    }
    rest[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use snowpipe_streaming::OffsetToken;

    fn event(first: u64, end: u64, message: &str) -> RowErrorEvent {
        let mut e = RowErrorEvent::new("c", 1, 1).with_last_error(message, OffsetToken::from(end));
        e.request_first_token = Some(OffsetToken::from(first));
        e
    }

    #[test]
    fn a_rows_place_in_its_request_names_its_offset_across_gaps() {
        let mut runs = AppendedRuns::default();
        // 10..=14, then 17 (15 and 16 were dead letters), then 20..=22.
        runs.appended(&[10, 11, 12, 13, 14]);
        runs.appended(&[17, 20, 21, 22]);
        let at = |first, end, n: u64| {
            locate(
                &event(first, end, &format!("row {n} of the request: bad")),
                &runs,
            )
        };
        assert_eq!(at(12, 21, 1).offset, Some(12));
        assert_eq!(at(12, 21, 4).offset, Some(17));
        assert_eq!(at(12, 21, 6).offset, Some(21));
        assert_eq!(at(12, 21, 6).request, Some((12, 21)));
        assert_eq!(at(12, 21, 7).offset, None, "past the request's end");
        assert_eq!(at(12, 21, 0).offset, None);
        let one = locate(&event(17, 17, "Numeric value 'x' is not recognized"), &runs);
        assert_eq!(one.offset, Some(17), "a request of one row");
        let unnamed = locate(&event(10, 14, "Numeric value 'x' is not recognized"), &runs);
        assert_eq!((unnamed.offset, unnamed.request), (None, Some((10, 14))));
    }

    #[test]
    fn runs_are_bounded() {
        let mut runs = AppendedRuns::default();
        for o in 0..(MOST_RUNS as u64 + 10) {
            runs.appended(&[o * 2]);
        }
        assert_eq!(runs.runs.len(), MOST_RUNS);
        assert_eq!(
            runs.nth_from(0, 1, 100),
            Some(20),
            "the oldest runs are forgotten"
        );
    }
}
