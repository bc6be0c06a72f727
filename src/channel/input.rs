//! [`Positions`]: the second value [`Channel::append`](super::Channel::append) takes, beside
//! its [`Rows`].
//!
//! Positions come in one of five forms (none, one token for the whole append, a span
//! `start..=end`, one token per row, one number per row), and every form of rows takes every
//! form of positions. How they are divided when an append is split across requests is
//! decided by [`OffsetToken`]'s one rule (see `tokens`).

use std::ops::RangeInclusive;

use super::raw_rows::TokenRun;
use super::tokens::Tokens;
use super::RawRows;
use crate::rows::{Rows, RowsKind};
use crate::{OffsetToken, Result};

/// The offset tokens of one append's rows: where the rows stand in the application's source.
/// The server stores the last committed row's token as the channel's committed token; replay
/// the source from after it. See [`OffsetToken`] for how tokens order.
///
/// | Positions | Made with | An append larger than one request |
/// | --- | --- | --- |
/// | none | [`Positions::none`] | splits freely (no position to keep) |
/// | one token for the whole append | [`Positions::at`], `OffsetToken` `.into()` | refused (unless `at_least_once_splits`) |
/// | the first and last row's tokens | [`Positions::span`], `(start..=end).into()` | splits exactly when the span names one token per row: numbers with one prefix, `end − start + 1 == rows` (`"order_1"..="order_500"` for 500 rows); else refused |
/// | one token per row | [`Positions::per_row`] | splits exactly (each request carries its rows' first and last) |
/// | one number per row | [`Positions::numbered`], [`RawRows::into_append`] | splits exactly, no token string per row |
///
/// ```
/// use snowpipe_streaming::{channel::Positions, OffsetToken};
/// let span = Positions::span(OffsetToken::new("order_1")?..=OffsetToken::new("order_500")?);
/// let per_row = Positions::per_row([OffsetToken::new("a")?, OffsetToken::new("c")?]);
/// let numbered = Positions::numbered([41, 42, 45])?; // gaps allowed, strictly increasing
/// let one = Positions::at(OffsetToken::from(7u64));
/// # let _ = (span, per_row, numbered, one);
/// # Ok::<(), snowpipe_streaming::Error>(())
/// ```
#[derive(Debug)]
pub struct Positions(pub(super) Tokens);

impl Positions {
    /// The last row's position (the append's end token), if it has one.
    pub(crate) fn last_token(&self) -> Option<OffsetToken> {
        self.0.last()
    }

    /// Rows without positions (nothing to resume from; at-least-once).
    pub fn none() -> Self {
        Self::from_span(None, None)
    }

    /// One token for the whole append, its last row's: the committed token becomes `token`
    /// once they are all committed. It is sent as the request's end token only, so appends of
    /// several rows each at a number (`at(9)` for rows 0–9, then `at(19)`) may share a request
    /// without naming a span of numbers the rows do not fill. An append larger than one
    /// request cannot be split exactly with it.
    pub fn at(token: OffsetToken) -> Self {
        Self::from_span(None, Some(token))
    }

    /// The first and the last row's tokens. Numbers with one prefix naming more than one row
    /// (`start < end`) must name at least as many rows as the append has.
    pub fn span(range: RangeInclusive<OffsetToken>) -> Self {
        let (start, end) = range.into_inner();
        Self::from_span(Some(start), Some(end))
    }

    /// One token per row, in row order, strictly increasing where they compare (see
    /// [`OffsetToken`]; never the same token twice in a row): database keys, stream sequence
    /// numbers. The tokens are kept only until the rows are encoded.
    pub fn per_row(tokens: impl IntoIterator<Item = OffsetToken>) -> Self {
        Self(Tokens::PerRow(tokens.into_iter().collect()))
    }

    /// One number per row (its token is the number in decimal), strictly increasing, gaps
    /// allowed: a log's offsets, a file's line numbers. Kept as runs of consecutive numbers,
    /// not one string per row.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when a number does not
    /// follow the one before.
    pub fn numbered(numbers: impl IntoIterator<Item = u64>) -> Result<Self> {
        let mut runs: Vec<TokenRun> = Vec::new();
        for n in numbers {
            super::raw_rows::extend_runs(&mut runs, n)?;
        }
        Ok(Self(Tokens::Runs(runs)))
    }

    /// The span `start..=end`, either end possibly absent (the deprecated `append_*` calls'
    /// two optional tokens).
    pub(crate) fn from_span(start: Option<OffsetToken>, end: Option<OffsetToken>) -> Self {
        Self(Tokens::Span { start, end })
    }

    /// Runs of consecutive numbers already checked ([`RawRows`]).
    pub(super) fn from_runs(runs: Vec<TokenRun>) -> Self {
        Self(Tokens::Runs(runs))
    }
}

impl Default for Positions {
    /// [`Positions::none`].
    fn default() -> Self {
        Self::none()
    }
}

/// [`Positions::at`].
impl From<OffsetToken> for Positions {
    fn from(token: OffsetToken) -> Self {
        Self::at(token)
    }
}

/// [`Positions::at`], or [`Positions::none`] for `None`.
impl From<Option<OffsetToken>> for Positions {
    fn from(token: Option<OffsetToken>) -> Self {
        Self::from_span(token.clone(), token)
    }
}

/// [`Positions::span`].
impl From<RangeInclusive<OffsetToken>> for Positions {
    fn from(range: RangeInclusive<OffsetToken>) -> Self {
        Self::span(range)
    }
}

impl RawRows {
    /// The rows and their numbered positions, for [`Channel::append`](super::Channel::append):
    /// `let (rows, positions) = raw.into_append(); channel.append(rows, positions).await?`.
    pub fn into_append(self) -> (Rows, Positions) {
        let (ndjson, runs) = self.into_parts();
        (
            Rows {
                kind: RowsKind::Ndjson(ndjson),
            },
            Positions::from_runs(runs),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_positions_are_runs_and_must_increase() {
        let p = Positions::numbered([5, 6, 7, 10]).unwrap();
        let Tokens::Runs(runs) = &p.0 else {
            panic!("{p:?}")
        };
        assert_eq!(
            runs,
            &[
                TokenRun { first: 5, rows: 3 },
                TokenRun { first: 10, rows: 1 }
            ]
        );
        let e = Positions::numbered([5, 5]).unwrap_err().to_string();
        assert!(e.contains("does not follow the previous row's (5)"), "{e}");
    }

    #[test]
    fn conversions_name_the_span_they_mean() {
        let t = |s: &str| OffsetToken::new(s).unwrap();
        let span = |p: Positions| match p.0 {
            Tokens::Span { start, end } => (start, end),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            span(t("a").into()),
            (None, Some(t("a"))),
            "one token: the end only"
        );
        assert_eq!(span((t("a")..=t("b")).into()), (Some(t("a")), Some(t("b"))));
        assert_eq!(span(None.into()), (None, None));
        assert_eq!(span(Positions::default()), (None, None));
    }
}
