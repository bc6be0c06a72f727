//! The offset tokens of one append, checked at the call and divided among its pieces.
//!
//! An append larger than one request is cut into pieces (see `encode`), and each piece is sent
//! in a request of its own. For the committed token to say exactly which rows are in the table
//! (the rule in `batch` and `docs/GUARANTEES.md`), every piece needs the tokens of its own
//! first and last row. They are known when the caller gave every row its token
//! ([`Tokens::PerRow`]) or when the append's numeric tokens are dense (one per row:
//! `end - start + 1 == rows`). Otherwise the append is refused, unless the channel was opened
//! with [`OpenChannelOptions::at_least_once_splits`](super::OpenChannelOptions::at_least_once_splits):
//! then only the last piece carries the end token, and a replay after a partial commit may
//! store the leading pieces twice.

use std::cmp::Ordering;

use super::raw_rows::TokenRun;
use crate::{Error, OffsetToken, Result};

/// The tokens an append call gave.
#[derive(Debug)]
pub(crate) enum Tokens {
    /// The first and last row's tokens (either may be absent).
    Span {
        start: Option<OffsetToken>,
        end: Option<OffsetToken>,
    },
    /// One token per row, in row order.
    PerRow(Vec<OffsetToken>),
    /// One numeric token per row, as runs of consecutive numbers (`RawRows`, which checked
    /// that they strictly increase).
    Runs(Vec<TokenRun>),
}

/// The tokens of one piece of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PieceTokens {
    pub(crate) start: Option<OffsetToken>,
    pub(crate) end: Option<OffsetToken>,
    /// A leading piece of an at-least-once split: the append continues in the next piece.
    pub(crate) continues: bool,
}

impl Tokens {
    /// The first row's token (or the append's start token).
    pub(crate) fn first(&self) -> Option<OffsetToken> {
        match self {
            Self::Span { start, .. } => start.clone(),
            Self::PerRow(v) => v.first().cloned(),
            Self::Runs(r) => r.first().map(|r| OffsetToken::from(r.first)),
        }
    }

    /// The last row's token (or the append's end token).
    pub(crate) fn last(&self) -> Option<OffsetToken> {
        match self {
            Self::Span { end, .. } => end.clone(),
            Self::PerRow(v) => v.last().cloned(),
            Self::Runs(r) => r.last().map(|r| OffsetToken::from(r.last())),
        }
    }

    /// Checks what can be checked before the rows are encoded: every token valid (not empty,
    /// not too long), per-row tokens strictly increasing where they compare, and a start
    /// token not after the end token.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the token and the fix.
    pub(crate) fn check(&self) -> Result<()> {
        match self {
            Self::Span { start, end } => {
                for t in [start, end].into_iter().flatten() {
                    t.validate()?;
                }
                if let (Some(s), Some(e)) = (start, end) {
                    if s.partial_cmp_numeric(e) == Some(Ordering::Greater) {
                        return Err(Error::invalid_argument(
                            "offset_token",
                            format!(
                                "start offset token {s} is after end offset token {e}; pass \
                                 the first row's token as start and the last row's as end"
                            ),
                        ));
                    }
                }
                Ok(())
            }
            Self::PerRow(v) => {
                for (i, t) in v.iter().enumerate() {
                    t.validate().map_err(|e| match e {
                        Error::InvalidArgument { what, message } => Error::InvalidArgument {
                            what,
                            message: format!("row {i}: {message}"),
                        },
                        other => other,
                    })?;
                }
                for (i, w) in v.windows(2).enumerate() {
                    let why = match w[0].partial_cmp_numeric(&w[1]) {
                        Some(Ordering::Equal) => "repeats",
                        Some(Ordering::Greater) => "goes back from",
                        _ => continue,
                    };
                    return Err(Error::invalid_argument(
                        "offset_token",
                        format!(
                            "the token of row {} ({}) {why} the token of row {i} ({}); give \
                             every row its own, strictly increasing token",
                            i + 1,
                            w[1],
                            w[0]
                        ),
                    ));
                }
                Ok(())
            }
            Self::Runs(_) => Ok(()),
        }
    }

    /// Checks the tokens against the row count: numeric span tokens naming several rows
    /// (`start < end`) must name at least as many as the append has, and per-row tokens
    /// must be one per row.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the tokens, the row count and the fixes.
    pub(crate) fn check_rows(&self, rows: usize) -> Result<()> {
        match self {
            Self::PerRow(v) if v.len() != rows => Err(Error::invalid_argument(
                "offset_token",
                format!(
                    "{} tokens for {rows} rows; give every row one token",
                    v.len()
                ),
            )),
            Self::PerRow(_) => Ok(()),
            Self::Runs(r) => {
                let tokens: usize = r.iter().map(|r| r.rows).sum();
                if tokens == rows {
                    return Ok(());
                }
                Err(Error::invalid_argument(
                    "row",
                    format!(
                        "{tokens} numbered positions for {rows} rows: give one number per row \
                         (a row written with RawRows::push_with must hold no line break: \
                         write line breaks between JSON tokens as spaces)"
                    ),
                ))
            }
            Self::Span { start, end } => {
                let (Some(s), Some(e)) = (start, end) else {
                    return Ok(());
                };
                let Some(span) = OffsetToken::span_len(s, e) else {
                    return Ok(());
                };
                if span > 1 && u64::try_from(rows).unwrap_or(u64::MAX) > span {
                    return Err(Error::invalid_argument(
                        "offset_token",
                        format!(
                            "offset tokens {s}..{e} name {span} rows but the append has {rows}, \
                             so the committed token could not say which rows landed; give each \
                             row its own token (end = start + rows - 1, or \
                             Positions::per_row), or one token for the whole append \
                             (Positions::at)"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Divides the tokens among pieces holding `piece_rows` rows each (in order).
    /// `request_bytes` and `bytes` only word the error.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the append needs several pieces, the pieces' tokens
    /// cannot be known and `at_least_once` is off.
    pub(crate) fn split(
        self,
        piece_rows: &[usize],
        at_least_once: bool,
        bytes: usize,
        request_bytes: usize,
    ) -> Result<Vec<PieceTokens>> {
        let n = piece_rows.len();
        let exact = |start, end| PieceTokens {
            start,
            end,
            continues: false,
        };
        match self {
            Self::PerRow(v) => {
                let mut out = Vec::with_capacity(n);
                let mut first = 0;
                for &rows in piece_rows {
                    let last = first + rows.max(1) - 1;
                    out.push(exact(v.get(first).cloned(), v.get(last).cloned()));
                    first += rows;
                }
                Ok(out)
            }
            Self::Runs(runs) => {
                let mut out = Vec::with_capacity(n);
                let mut tokens = RunCursor::new(&runs);
                for &rows in piece_rows {
                    let first = tokens.take(1);
                    let last = if rows > 1 {
                        tokens.take(rows - 1)
                    } else {
                        first
                    };
                    out.push(exact(
                        first.map(OffsetToken::from),
                        last.map(OffsetToken::from),
                    ));
                }
                Ok(out)
            }
            Self::Span { start, end } if n <= 1 => Ok(vec![exact(start, end)]),
            Self::Span {
                start: None,
                end: None,
            } => Ok(vec![exact(None, None); n]),
            Self::Span { start, end } => {
                let rows: usize = piece_rows.iter().sum();
                let dense = match (&start, &end) {
                    (Some(s), Some(e)) => OffsetToken::dense_span(s, e, rows),
                    _ => None,
                };
                if let Some(span) = dense {
                    let mut out = Vec::with_capacity(n);
                    let mut next = 0;
                    for &r in piece_rows {
                        let last = next + r.max(1) - 1;
                        out.push(exact(Some(span.token(next)), Some(span.token(last))));
                        next = last + 1;
                    }
                    return Ok(out);
                }
                if !at_least_once {
                    return Err(unsplittable(
                        start.as_ref(),
                        end.as_ref(),
                        rows,
                        bytes,
                        request_bytes,
                    ));
                }
                let (mut start, mut end) = (start, end);
                Ok((0..n)
                    .map(|i| PieceTokens {
                        start: if i == 0 { start.take() } else { None },
                        end: if i + 1 == n { end.take() } else { None },
                        continues: i + 1 < n,
                    })
                    .collect())
            }
        }
    }
}

/// Walks the rows' tokens of [`Tokens::Runs`] in order.
struct RunCursor<'a> {
    runs: &'a [TokenRun],
    /// Rows of `runs[0]` already passed.
    used: usize,
}

impl<'a> RunCursor<'a> {
    fn new(runs: &'a [TokenRun]) -> Self {
        Self { runs, used: 0 }
    }

    /// Moves `n` rows (at least 1) on and returns the token of the last of them (`None` past
    /// the end).
    fn take(&mut self, mut n: usize) -> Option<u64> {
        loop {
            let run = self.runs.first()?;
            if self.used + n <= run.rows {
                self.used += n;
                return Some(run.first + (self.used as u64 - 1));
            }
            n -= run.rows - self.used;
            self.runs = &self.runs[1..];
            self.used = 0;
        }
    }
}

fn unsplittable(
    start: Option<&OffsetToken>,
    end: Option<&OffsetToken>,
    rows: usize,
    bytes: usize,
    request_bytes: usize,
) -> Error {
    let show = |t: Option<&OffsetToken>| t.map_or_else(|| "none".to_owned(), ToString::to_string);
    Error::invalid_argument(
        "rows",
        format!(
            "an append of {rows} rows ({bytes} bytes) is larger than one request \
             (max_request_bytes {request_bytes}) and its offset tokens (start {}, end {}) do not \
             say which rows each request would carry: after a partial commit a restart would \
             store rows twice. Give every row its own token (Positions::per_row or \
             Positions::numbered) or use a span of one token per row (numbers with one prefix, \
             end = start + rows - 1), or append fewer rows per call; to \
             accept possible duplicates instead, open the channel with \
             OpenChannelOptions::at_least_once_splits(true)",
            show(start),
            show(end),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: Option<u64>, e: Option<u64>) -> Tokens {
        Tokens::Span {
            start: s.map(OffsetToken::from),
            end: e.map(OffsetToken::from),
        }
    }

    fn ends(v: &[PieceTokens]) -> Vec<(Option<String>, Option<String>)> {
        v.iter()
            .map(|p| {
                (
                    p.start.as_ref().map(ToString::to_string),
                    p.end.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    }

    fn s(x: &str) -> Option<String> {
        Some(x.to_owned())
    }

    #[test]
    fn dense_numeric_tokens_are_divided_row_by_row() {
        let p = span(Some(101), Some(110)).split(&[4, 3, 3], false, 0, 0);
        assert_eq!(
            ends(&p.unwrap()),
            vec![
                (s("101"), s("104")),
                (s("105"), s("107")),
                (s("108"), s("110"))
            ]
        );
    }

    #[test]
    fn prefixed_tokens_naming_one_per_row_are_divided_row_by_row() {
        let t = |s: &str| Some(OffsetToken::new(s).unwrap());
        let p = Tokens::Span {
            start: t("o_101"),
            end: t("o_110"),
        };
        assert_eq!(
            ends(&p.split(&[4, 3, 3], false, 0, 0).unwrap()),
            vec![
                (s("o_101"), s("o_104")),
                (s("o_105"), s("o_107")),
                (s("o_108"), s("o_110"))
            ]
        );
    }

    #[test]
    fn per_row_tokens_give_each_piece_its_first_and_last() {
        let toks = ["a", "c", "f", "g", "x"]
            .map(|t| OffsetToken::new(t).unwrap())
            .to_vec();
        let p = Tokens::PerRow(toks).split(&[2, 1, 2], false, 0, 0).unwrap();
        assert_eq!(
            ends(&p),
            vec![(s("a"), s("c")), (s("f"), s("f")), (s("g"), s("x"))]
        );
        assert!(p.iter().all(|p| !p.continues));
    }

    #[test]
    fn sparse_or_single_tokens_are_refused_when_split_unless_at_least_once() {
        for t in [
            span(Some(1), Some(100)),
            span(Some(7), Some(7)),
            span(None, Some(9)),
        ] {
            let e = t.split(&[2, 2], false, 5000, 4000).unwrap_err().to_string();
            assert!(e.contains("4 rows (5000 bytes)"), "{e}");
            assert!(e.contains("Positions::per_row"), "{e}");
            assert!(e.contains("at_least_once_splits"), "{e}");
        }
        let p = span(Some(1), Some(100))
            .split(&[2, 2, 2], true, 0, 0)
            .unwrap();
        assert_eq!(
            ends(&p),
            vec![(s("1"), None), (None, None), (None, s("100"))]
        );
        assert_eq!(
            p.iter().map(|p| p.continues).collect::<Vec<_>>(),
            [true, true, false]
        );
    }

    #[test]
    fn untokened_appends_split_freely_and_single_pieces_keep_their_tokens() {
        let p = span(None, None).split(&[1, 1], false, 0, 0).unwrap();
        assert_eq!(ends(&p), vec![(None, None), (None, None)]);
        let p = span(Some(7), Some(7)).split(&[50], false, 0, 0).unwrap();
        assert_eq!(ends(&p), vec![(s("7"), s("7"))]);
    }

    #[test]
    fn spans_with_more_rows_than_tokens_are_refused_at_the_call() {
        assert!(span(Some(1), Some(10)).check_rows(10).is_ok());
        assert!(span(Some(1), Some(100)).check_rows(10).is_ok(), "sparse");
        assert!(span(Some(5), Some(5)).check_rows(300).is_ok(), "one token");
        let e = span(Some(1), Some(10))
            .check_rows(11)
            .unwrap_err()
            .to_string();
        assert!(e.contains("name 10 rows but the append has 11"), "{e}");
        assert!(span(Some(9), Some(3)).check().is_err());
        let e = Tokens::PerRow(vec![OffsetToken::from(1u64)])
            .check_rows(2)
            .unwrap_err();
        assert!(e.to_string().contains("1 tokens for 2 rows"));
    }

    #[test]
    fn token_runs_give_each_piece_its_first_and_last_across_gaps() {
        let runs = vec![
            TokenRun { first: 10, rows: 3 },
            TokenRun { first: 20, rows: 1 },
            TokenRun { first: 30, rows: 4 },
        ];
        let p = Tokens::Runs(runs.clone())
            .split(&[2, 3, 1, 2], false, 0, 0)
            .unwrap();
        assert_eq!(
            ends(&p),
            vec![
                (s("10"), s("11")),
                (s("12"), s("30")),
                (s("31"), s("31")),
                (s("32"), s("33"))
            ]
        );
        let t = Tokens::Runs(runs);
        assert_eq!(
            (t.first(), t.last()),
            (Some(10u64.into()), Some(33u64.into()))
        );
        assert!(t.check_rows(8).is_ok());
        let e = t.check_rows(9).unwrap_err().to_string();
        assert!(e.contains("8 numbered positions for 9 rows"), "{e}");
    }

    #[test]
    fn per_row_tokens_must_increase() {
        let t = |v: &[u64]| Tokens::PerRow(v.iter().map(|&x| OffsetToken::from(x)).collect());
        assert!(t(&[1, 2, 5, 9]).check().is_ok());
        let e = t(&[1, 3, 3]).check().unwrap_err().to_string();
        assert!(
            e.contains("row 2 (3) repeats the token of row 1 (3)"),
            "{e}"
        );
        assert!(t(&[4, 2]).check().is_err());
        let e = Tokens::PerRow(vec![OffsetToken::from_wire(String::new())])
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("row 0"), "{e}");
    }
}
