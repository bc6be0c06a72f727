//! Which rows a row error stands for: the server reports a rejected row only by its channel's
//! cumulative count, its last message and the end token of the request it was in
//! (`last_error_offset_upper_bound`, `docs/protocol-semantics.md` §6.2). The actor remembers the
//! first token of each request the server accepted, by its end token, for the last
//! [`MOST_SPANS`] requests (with the in-flight bound far below, a request's row error is
//! reported long before its span is forgotten); the poller puts the span into the
//! [`RowErrorEvent`](super::RowErrorEvent) as its `request_first_token`, so an application
//! whose tokens name its records (a Kafka offset each) knows which records the failing
//! request held.

use std::collections::VecDeque;

use crate::OffsetToken;

/// Requests whose spans are remembered.
pub(crate) const MOST_SPANS: usize = 1024;

/// Recent requests' first tokens, by their end tokens, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RequestSpans {
    spans: VecDeque<(OffsetToken, Option<OffsetToken>)>,
}

impl RequestSpans {
    /// A request with tokens `start..=end` was accepted (a request without an end token is
    /// not remembered: no row error names it).
    pub(crate) fn accepted(&mut self, start: Option<&OffsetToken>, end: Option<&OffsetToken>) {
        let Some(end) = end else { return };
        if self.spans.len() == MOST_SPANS {
            self.spans.pop_front();
        }
        self.spans.push_back((end.clone(), start.cloned()));
    }

    /// The first token of the newest accepted request that ended at `end`.
    pub(crate) fn first_of(&self, end: &OffsetToken) -> Option<OffsetToken> {
        self.spans
            .iter()
            .rev()
            .find(|(e, _)| e == end)
            .and_then(|(_, start)| start.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_request_ending_at_a_token_names_its_first_and_old_ones_are_forgotten() {
        let mut spans = RequestSpans::default();
        let t = |n: u64| OffsetToken::from(n);
        spans.accepted(Some(&t(1)), Some(&t(4)));
        spans.accepted(None, None);
        spans.accepted(Some(&t(5)), Some(&t(9)));
        assert_eq!(spans.first_of(&t(4)), Some(t(1)));
        assert_eq!(spans.first_of(&t(9)), Some(t(5)));
        assert_eq!(spans.first_of(&t(7)), None);
        for n in 0..MOST_SPANS as u64 {
            spans.accepted(Some(&t(100 + n)), Some(&t(100 + n)));
        }
        assert_eq!(spans.first_of(&t(4)), None, "forgotten past the bound");
        assert_eq!(spans.spans.len(), MOST_SPANS);
    }
}
