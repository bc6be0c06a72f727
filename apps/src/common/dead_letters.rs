//! One dead-letter channel, the way every application keeps one: a channel beside the rows'
//! own, whose offset token is the bad record's place in its source (a key, a binlog place, a
//! sequence number). `table_replay`'s replay and `follow` and `sensor_stream`'s Kinesis writer
//! each hold one; each decides what a place is ([`Place`]) and when to wait.
//!
//! The rule they share, which makes a dead letter land exactly once across crashes: a batch of
//! dead letters is one append with a token per row, and is committed ([`settle`]) before any
//! good row after it is appended on the rows' channel. After a restart a record at or below the
//! rows' committed place was handled; above it, a bad record at or below this channel's
//! [`covered`] place is already here and is skipped, never appended twice.
//!
//! [`settle`]: DeadLetterChannel::settle
//! [`covered`]: DeadLetterChannel::covered

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use snowpipe_streaming::{
    Channel, ChannelStatus, CloseOptions, OffsetToken, Pipe, Positions, Rows,
};

/// A bad record's place in its source, as its dead letter's offset token carries it.
pub trait Place: Clone {
    /// The place a committed token names (`channel` for the error).
    ///
    /// # Errors
    /// When the token is not one of these places (written by another tool).
    fn from_token(token: &OffsetToken, channel: &str) -> Result<Self>;

    /// The offset token of this place.
    ///
    /// # Errors
    /// When the place cannot be a token (too long).
    fn token(&self) -> Result<OffsetToken>;

    /// Whether a record at `later` is at or before this place (so its dead letter is here).
    fn covers(&self, later: &Self) -> bool;
}

/// A dead-letter channel and what it holds: the place committed when it was opened, moved on
/// by every append; the last token appended and not yet seen committed.
pub struct DeadLetterChannel<P> {
    channel: Channel,
    covered: Option<P>,
    pending: Option<OffsetToken>,
    stored: u64,
}

impl<P: Place> DeadLetterChannel<P> {
    /// Opens channel `name` of `pipe` (taking it over from any earlier holder) and reads its
    /// committed place.
    ///
    /// # Errors
    /// When the channel cannot be opened (the caller adds what to do), or its committed token
    /// is not a place.
    ///
    /// # Cancellation
    /// Dropping the future leaves the channel, if opened, to the next open.
    pub async fn open(pipe: &Pipe, name: &str) -> Result<Self> {
        let channel = pipe.open_channel(name).await?;
        let covered = channel
            .latest_committed_offset_token()
            .map(|t| P::from_token(&t, channel.name()))
            .transpose()?;
        Ok(Self {
            channel,
            covered,
            pending: None,
            stored: 0,
        })
    }

    /// The channel (its name, status and row errors).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The last place here: committed when opened, or appended since.
    pub fn covered(&self) -> Option<&P> {
        self.covered.as_ref()
    }

    /// Whether the dead letter of a record at `at` is here already.
    pub fn covers(&self, at: &P) -> bool {
        self.covered.as_ref().is_some_and(|c| c.covers(at))
    }

    /// Dead letters appended through this value.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// Appends `letters` (in place order, none [`covers`](Self::covers) skips: the caller
    /// filters and reports them first) as one append with a token per row.
    ///
    /// # Errors
    /// When a place is not a token or the append fails.
    ///
    /// # Cancellation
    /// Dropping the future may leave the letters appended and not committed: a reopened
    /// channel does not cover them, so they are appended again.
    pub async fn append<R: Serialize + Send + Sync>(&mut self, letters: Vec<(R, P)>) -> Result<()> {
        let Some(last) = letters.last().map(|(_, p)| p.clone()) else {
            return Ok(());
        };
        let n = letters.len() as u64;
        let mut rows = Vec::with_capacity(letters.len());
        let mut tokens = Vec::with_capacity(letters.len());
        for (row, place) in letters {
            rows.push(row);
            tokens.push(place.token()?);
        }
        let token = tokens.last().cloned().expect("one letter at least");
        self.channel
            .append(Rows::serde(rows), Positions::per_row(tokens))
            .await
            .with_context(|| format!("the dead-letter append to {} failed", self.channel.name()))?;
        self.pending = Some(token);
        self.covered = Some(last);
        self.stored += n;
        Ok(())
    }

    /// Waits until every dead letter appended is committed: before the rows after them are
    /// appended on their own channel.
    ///
    /// # Errors
    /// When they are not committed within `timeout`, or the channel fails.
    ///
    /// # Cancellation
    /// Safe: the letters stay pending, and the next call waits for them.
    pub async fn settle(&mut self, timeout: Duration) -> Result<()> {
        let Some(last) = &self.pending else {
            return Ok(());
        };
        self.channel
            .wait_for_commit(last, timeout)
            .await
            .with_context(|| {
                format!(
                    "the dead letters on {} were not committed within {timeout:?}",
                    self.channel.name()
                )
            })?;
        self.pending = None;
        Ok(())
    }

    /// Waits for what was appended ([`settle`](Self::settle)) and closes the channel; its
    /// status just before the close.
    ///
    /// # Errors
    /// When the letters are not committed within `timeout`, or the close fails.
    ///
    /// # Cancellation
    /// Dropping the future drops the channel unclosed; nothing committed is lost.
    pub async fn close(mut self, timeout: Duration) -> Result<ChannelStatus> {
        self.settle(timeout).await?;
        let status = self.channel.status();
        let name = self.channel.name().to_owned();
        self.channel
            .close()
            .await
            .with_context(|| format!("closing the dead-letter channel {name} failed"))?;
        Ok(status)
    }

    /// Stops the channel without waiting for its letters (after a failure), within
    /// `options`' timeout.
    ///
    /// # Errors
    /// When the channel cannot be stopped cleanly.
    ///
    /// # Cancellation
    /// Dropping the future drops the channel unstopped.
    pub async fn discard(self, options: CloseOptions) -> snowpipe_streaming::Result<()> {
        self.channel.close_with(options).await
    }
}

/// A source key: a dead letter's place in `table_replay`'s replay.
impl Place for u64 {
    fn from_token(token: &OffsetToken, channel: &str) -> Result<Self> {
        token.as_u64().with_context(|| {
            format!(
                "the dead-letter channel {channel}'s committed offset token {token} is not a \
                 key: was it written by another tool?"
            )
        })
    }

    fn token(&self) -> Result<OffsetToken> {
        Ok(OffsetToken::from(*self))
    }

    fn covers(&self, later: &Self) -> bool {
        later <= self
    }
}

#[cfg(test)]
#[path = "dead_letters_tests.rs"]
mod tests;
