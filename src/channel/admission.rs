//! Admission: how an `append_*` call becomes buffered chunks — the checks every append
//! makes, serialization into pieces of at most one request, the division of offset tokens
//! among the pieces, and taking room in the client-wide memory budget.
//!
//! Token order: the handle's last admitted token (`Channel::last_token`) is checked and
//! recorded under one lock, in the same critical section that puts the append in the actor's
//! mailbox ([`Channel::send_in_order`]), so the order the check sees is the order the actor
//! gets: two tasks sharing a handle cannot both pass the check and land out of order. The
//! check when the append is prepared only refuses early, before anything is serialized or
//! waited for.

use serde::Serialize;

use super::input::Positions;
use crate::rows::Rows;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::actor::Cmd;
use super::handle::Channel;
use super::tokens::{PieceTokens, Tokens};
use crate::pipeline::batch::Chunk;
use crate::pipeline::budget;
use crate::pipeline::encode::{self, Encoded};
use crate::sync::lock;
use crate::{Error, OffsetToken, Result};

/// An appending task yields to the scheduler after serializing this many bytes.
const YIELD_EVERY: usize = 256 << 10;
/// An append split into more pieces than this is admitted piece by piece.
const MAX_ATOMIC_PIECES: usize = 32;

/// Rows serialized by an `append_*` call, waiting to be admitted: the pieces (each at most
/// one request) and each piece's offset tokens.
#[derive(Debug)]
pub(super) struct Prepared {
    encoded: Encoded,
    tokens: Vec<PieceTokens>,
    /// The append's first token (start, else end), checked against the last one admitted.
    first: Option<OffsetToken>,
    /// The append's last token (end, else start), for the order check of the next append.
    last: Option<OffsetToken>,
}

impl Channel {
    /// Encodes `rows` in their form and divides `positions` among the pieces.
    pub(super) fn prepare_input<I>(&self, rows: Rows<I>, positions: Positions) -> Result<Prepared>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let binary = self
            .binary
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.prepare(positions.0, |limit| {
            rows.encode(&binary, limit, &self.shared.buffers, &self.shared.row_size)
        })
    }

    /// The checks every append makes (channel open, tokens valid, in order and matching the
    /// rows), the encoding itself (capped at the batch size), and the division of the tokens
    /// among the pieces (see `tokens`).
    pub(super) fn prepare(
        &self,
        tokens: Tokens,
        encode: impl FnOnce(&encode::RowCap) -> Result<Encoded>,
    ) -> Result<Prepared> {
        self.shared.check_open()?;
        tokens.check()?;
        let first = tokens.first().or_else(|| tokens.last());
        // Early refusal only: the order is decided (and checked again) in `send_in_order`.
        self.check_token_order(first.as_ref(), lock(&self.last_token).as_ref())?;
        let encoded = encode(&self.rt.client.settings.row_cap())?;
        tokens.check_rows(encoded.rows)?;
        let last = tokens.last().or_else(|| tokens.first());
        let rows: Vec<usize> = encoded.pieces.iter().map(|p| p.rows).collect();
        let tokens = tokens.split(
            &rows,
            self.at_least_once_splits,
            encoded.bytes,
            self.rt.client.settings.max_request_bytes,
        )?;
        Ok(Prepared {
            encoded,
            tokens,
            first,
            last,
        })
    }

    pub(super) fn closed_error(&self) -> Error {
        match self.shared.check_open() {
            Err(e) => e,
            Ok(()) => Error::shutdown(format!("channel {}", self.name())),
        }
    }

    /// Counts `rows` rows of `bytes` bytes admitted.
    pub(super) fn record_admitted(&self, rows: usize, bytes: usize) {
        let m = &self.shared.metrics;
        m.data.rows_appended.increment(rows as u64);
        m.data.bytes_appended.increment(bytes as u64);
    }

    pub(super) fn chunks(
        p: Prepared,
        mut budget: budget::BudgetBytes,
    ) -> impl ExactSizeIterator<Item = Chunk> {
        p.encoded
            .pieces
            .into_iter()
            .zip(p.tokens)
            .map(move |(piece, t)| {
                let bytes = budget.split(piece.held);
                chunk_of(piece, t, bytes)
            })
    }

    /// Waits until the budget has room for an append the size of this channel's previous one
    /// (a quarter more, at most half the budget), and takes it, before the rows are serialized: producers
    /// waiting for room then hold their rows unserialized, so serialized rows are always inside
    /// the budget, however many producers wait.
    pub(super) async fn reserve(&self) -> Result<budget::BudgetBytes> {
        self.shared.check_open()?;
        let budget = &self.rt.client.budget;
        // A quarter more than last time: buffers are charged at their capacity, and a reused
        // buffer may be somewhat larger than the rows it holds.
        // A channel's first append is sized like the client's last one.
        let typical = match self.typical_append.load(Ordering::Relaxed) {
            0 => self.rt.typical_append.load(Ordering::Relaxed),
            n => n,
        };
        let want = (typical + typical / 4).min(budget.total() / 2);
        let (bytes, waited) = budget.acquire(want).await?;
        self.record_wait(waited);
        Ok(bytes)
    }

    /// Admits `p`, using the budget `reserved` for it beforehand (see [`reserve`](Self::reserve)).
    pub(super) async fn admit(&self, p: Prepared, reserved: budget::BudgetBytes) -> Result<()> {
        let bytes = p.encoded.bytes;
        self.typical_append.store(p.encoded.held, Ordering::Relaxed);
        self.rt
            .typical_append
            .store(p.encoded.held, Ordering::Relaxed);
        self.admit_inner(p, reserved).await?;
        // An append that finds room in the budget never waits, so a producer looping over
        // `append_*` would keep its worker thread for as long as the budget lasts (tens of
        // MB), starving the connection and channel tasks scheduled behind it: requests then
        // stall for tens of milliseconds. Yield once per YIELD_EVERY bytes serialized.
        if self.unyielded.fetch_add(bytes, Ordering::Relaxed) + bytes >= YIELD_EVERY {
            self.unyielded.store(0, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Puts (`send`) an append (or one piece of one) whose tokens run from `first` to `last`
    /// in the actor's mailbox, checking the order against the last token admitted through
    /// this handle and recording `last`, under one lock: the order checked is the order sent.
    /// `continues`: what this call recorded for its previous piece — while nothing else was
    /// admitted in between, the piece continues the same append and is not checked again.
    /// Returns what is recorded now.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the tokens do not follow the last admitted one
    /// (nothing is sent).
    pub(super) fn send_in_order(
        &self,
        first: Option<&OffsetToken>,
        last: Option<OffsetToken>,
        continues: Option<&Option<OffsetToken>>,
        send: impl FnOnce(),
    ) -> Result<Option<OffsetToken>> {
        let mut admitted = lock(&self.last_token);
        if continues != Some(&*admitted) {
            self.check_token_order(first, admitted.as_ref())?;
        }
        send();
        if last.is_some() {
            *admitted = last;
        }
        Ok(admitted.clone())
    }

    /// Refuses an append whose first token is numerically before, or the same as, `admitted`,
    /// the last token admitted through this handle (rows carrying the same token again are
    /// indistinguishable on replay). Non-numeric tokens are checked for repetition only.
    pub(super) fn check_token_order(
        &self,
        first: Option<&OffsetToken>,
        admitted: Option<&OffsetToken>,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (first, admitted) else {
            return Ok(());
        };
        let why = match first.partial_cmp_numeric(last) {
            Some(std::cmp::Ordering::Equal) => "reuses",
            Some(std::cmp::Ordering::Less) => "goes back before",
            _ => return Ok(()),
        };
        Err(Error::invalid_argument(
            "offset_token",
            format!(
                "offset token {first} {why} the last token appended on channel {} ({last}); \
                 tokens must strictly increase within a channel for exactly-once delivery \
                 (after reopen(), resume after the committed token it returns)",
                self.name()
            ),
        ))
    }

    pub(super) async fn admit_inner(
        &self,
        p: Prepared,
        mut reserved: budget::BudgetBytes,
    ) -> Result<()> {
        if p.encoded.rows == 0 {
            return Ok(());
        }
        self.shared.check_open()?;
        let budget = &self.rt.client.budget;
        // The budget is charged what the buffers hold (capacity), not just the row bytes.
        let total = p.encoded.held;
        let pieces = p.encoded.pieces.len();
        let counts = (p.encoded.rows, p.encoded.bytes);
        if total <= budget.total() / 2 && pieces <= MAX_ATOMIC_PIECES {
            let bytes = if reserved.len() >= total {
                reserved.shrink_to(total);
                reserved
            } else {
                // Take the rest now if it is free; otherwise let the reservation go and wait for
                // the whole (never wait while holding part of the budget: producers holding
                // parts could otherwise wait for each other forever).
                match budget.try_acquire(total - reserved.len()) {
                    Ok(more) => {
                        reserved.merge(more);
                        reserved
                    }
                    Err(_) => {
                        drop(reserved);
                        let (bytes, waited) = budget.acquire(total).await?;
                        self.record_wait(waited);
                        bytes
                    }
                }
            };
            let permits = self
                .tx
                .reserve_many(pieces)
                .await
                .map_err(|_| self.closed_error())?;
            self.send_whole(p, bytes, permits)?;
        } else {
            drop(reserved);
            self.record_admitted(counts.0, counts.1);
            let mut recorded = None;
            for (piece, t) in p.encoded.pieces.into_iter().zip(p.tokens) {
                let (bytes, waited) = budget.acquire(piece.held).await?;
                self.record_wait(waited);
                let permit = self.tx.reserve().await.map_err(|_| self.closed_error())?;
                let first = t.start.clone().or_else(|| t.end.clone());
                let last = t.end.clone().or_else(|| t.start.clone());
                // A cancelled call leaves the pieces sent so far: later appends must follow
                // them (each piece is recorded as it is sent).
                recorded = Some(self.send_in_order(
                    first.as_ref(),
                    last,
                    recorded.as_ref(),
                    || permit.send(Cmd::Append(Box::new(chunk_of(piece, t, bytes)))),
                )?);
            }
        }
        Ok(())
    }

    pub(super) fn record_wait(&self, waited: Duration) {
        if !waited.is_zero() {
            self.shared
                .metrics
                .data
                .backpressure_wait
                .record(waited.as_secs_f64());
            tracing::debug!(channel = %self.name(), waited = ?waited, "append waited for memory budget");
        }
    }

    /// Admits `p` now or not at all: [`Error::Backpressure`] when the budget or the mailbox
    /// has no room for it.
    pub(super) fn try_admit(&self, p: Prepared) -> Result<()> {
        if p.encoded.rows == 0 {
            return Ok(());
        }
        let budget = &self.rt.client.budget;
        let total = p.encoded.held;
        let bytes = budget.try_acquire(total)?;
        let permits = match self.tx.try_reserve_many(p.encoded.pieces.len()) {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => {
                return Err(Error::Backpressure {
                    requested: total,
                    available: budget.available(),
                    budget: budget.total(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(())) => return Err(self.closed_error()),
        };
        self.send_whole(p, bytes, permits)
    }

    /// Sends every piece of `p` at once on the mailbox `permits` reserved for them, in token
    /// order (see [`send_in_order`](Self::send_in_order)), and counts its rows.
    fn send_whole(
        &self,
        p: Prepared,
        bytes: budget::BudgetBytes,
        permits: mpsc::PermitIterator<'_, Cmd>,
    ) -> Result<()> {
        let (first, last) = (p.first.clone(), p.last.clone());
        let counts = (p.encoded.rows, p.encoded.bytes);
        self.send_in_order(first.as_ref(), last, None, || {
            for (chunk, permit) in Self::chunks(p, bytes).zip(permits) {
                permit.send(Cmd::Append(Box::new(chunk)));
            }
        })?;
        self.record_admitted(counts.0, counts.1);
        Ok(())
    }
}

/// One piece of an append with its tokens and the budget it holds, as the actor takes it.
fn chunk_of(piece: encode::Piece, t: PieceTokens, budget: budget::BudgetBytes) -> Chunk {
    Chunk {
        budget,
        rows: piece.rows,
        data: piece.data,
        start: t.start,
        end: t.end,
        continues: t.continues,
    }
}
