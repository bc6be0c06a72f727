//! The exactly-once writer: the recipe of the channel docs (open, resume after the committed
//! token, append the source's next rows with their tokens; reopen and replay after an
//! invalidation; stop after losing the channel to another writer), run by the crash model and
//! by the two-writer property test of the unit tests.

use super::{row, Row, Table};
use crate::{Channel, Error, OffsetToken, Positions, Result, Rows, StreamingIngestClient};

/// How a writer gives the source's rows their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// Token = id, appended with a span `first..=last`.
    Dense,
    /// Token = id, appended with a token per row (`Positions::per_row`).
    PerRow,
    /// Token = 7 × id + 3 (sparse), appended numbered (`Positions::numbered`).
    Sparse,
}

impl Tokens {
    /// The token of row `id`.
    pub fn of(self, id: u64) -> u64 {
        match self {
            Self::Dense | Self::PerRow => id,
            Self::Sparse => 7 * id + 3,
        }
    }

    /// The last id `token` covers.
    ///
    /// # Panics
    /// When the token is not one this form gives.
    pub fn id_of(self, token: &OffsetToken) -> u64 {
        let t = token.as_u64().expect("numeric token");
        match self {
            Self::Dense | Self::PerRow => t,
            Self::Sparse => (t - 3) / 7,
        }
    }
}

/// One writer of a source of rows `1..`: its own client, its handle of one channel, and where
/// it is in the source.
#[derive(Debug)]
pub struct Writer {
    client: StreamingIngestClient,
    table: Table,
    name: String,
    channel: Option<Channel>,
    /// The next row of the source to append.
    next: u64,
    /// It was told another writer has the channel.
    fenced: bool,
    tokens: Tokens,
    /// Each row's padding: `None`, [`row`]'s.
    pad: Option<usize>,
}

impl Writer {
    /// A writer of channel `name` on `table` through `client`, giving rows `tokens` and padding
    /// them with `pad` bytes (`None`: [`row`]'s 40..240). It has no handle until it
    /// [`take`](Self::take)s the channel.
    pub fn new(
        client: StreamingIngestClient,
        table: Table,
        name: &str,
        tokens: Tokens,
        pad: Option<usize>,
    ) -> Self {
        Self {
            client,
            table,
            name: name.to_owned(),
            channel: None,
            next: 1,
            fenced: false,
            tokens,
            pad,
        }
    }

    /// The next row of the source it would append.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether it was told another writer has the channel (then it appends nothing).
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Its handle, if it took the channel.
    pub fn channel(&self) -> Option<&Channel> {
        self.channel.as_ref()
    }

    /// Gives up its handle (to close it).
    pub fn take_handle(&mut self) -> Option<Channel> {
        self.channel.take()
    }

    /// Takes the channel: the hand-over's receiving side (open, resume after the committed
    /// token), or the explicit `reopen()` of a handle it already has.
    ///
    /// # Errors
    /// As [`Pipe::open_channel`](crate::Pipe::open_channel) and [`Channel::reopen`].
    pub async fn take(&mut self) -> Result<()> {
        let committed = match &self.channel {
            Some(ch) => ch.reopen().await?,
            None => {
                let ch = self.table.open(&self.client, &self.name).await?;
                let committed = ch.latest_committed_offset_token();
                self.channel = Some(ch);
                committed
            }
        };
        self.next = committed.map_or(0, |t| self.tokens.id_of(&t)) + 1;
        self.fenced = false;
        Ok(())
    }

    /// The recipe's answer to an error: reopen and replay after an invalidation, stop after
    /// ownership is lost; anything else is returned.
    async fn on_error(&mut self, e: Error) -> Result<()> {
        match e {
            Error::OwnershipLost { .. } => {
                self.fenced = true;
                Ok(())
            }
            Error::ChannelInvalidated { .. } => self.take().await,
            e => Err(e),
        }
    }

    fn row(&self, id: u64) -> Row {
        match self.pad {
            Some(pad) => Row {
                id,
                pad: "p".repeat(pad),
            },
            None => row(id),
        }
    }

    /// Appends the source's next `rows` rows, none after `last` (nothing when it has no
    /// handle or was fenced), answering errors as the recipe does.
    ///
    /// # Errors
    /// An error the recipe has no answer for, or one reopening after an invalidation.
    pub async fn append(&mut self, rows: u64, last: u64) -> Result<()> {
        let Some(ch) = self.channel.as_ref().filter(|_| !self.fenced) else {
            return Ok(());
        };
        let (first, last) = (self.next, (self.next + rows - 1).min(last));
        if first > last {
            return Ok(());
        }
        let tokens = self.tokens;
        let res = match tokens {
            Tokens::Dense => {
                let rows = (first..=last).map(|id| self.row(id));
                let span = OffsetToken::from(first)..=OffsetToken::from(last);
                ch.append(Rows::serde(rows), span.into()).await
            }
            Tokens::PerRow => {
                let rows = (first..=last).map(|id| self.row(id));
                let positions = Positions::per_row((first..=last).map(OffsetToken::from));
                ch.append(Rows::serde(rows), positions).await
            }
            Tokens::Sparse => {
                let rows = (first..=last).map(|id| self.row(id));
                let positions = Positions::numbered((first..=last).map(|id| tokens.of(id)))?;
                ch.append(Rows::serde(rows), positions).await
            }
        };
        match res {
            Ok(()) => {
                self.next = last + 1;
                Ok(())
            }
            Err(e) => self.on_error(e).await,
        }
    }

    /// Flushes (nothing when it has no handle or was fenced), answering errors as the recipe
    /// does.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub async fn flush(&mut self) -> Result<()> {
        let Some(ch) = self.channel.as_ref().filter(|_| !self.fenced) else {
            return Ok(());
        };
        match ch.flush().await {
            Ok(()) => Ok(()),
            Err(e) => self.on_error(e).await,
        }
    }
}
