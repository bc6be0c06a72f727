//! When the stream is idle (`consume --until-idle`, both sources): a reader whose shard (a
//! Kinesis shard, a NATS reader) is idle goes on reading until every running reader's is, so
//! readings coming to one while another is still busy are read before the exit (a reader that
//! stopped alone gave up its part: exit 0 with readings written before it unread).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Whether each running reader is idle now: a reader stops only when all are.
#[derive(Debug, Default)]
pub(crate) struct IdleBoard {
    idle: Mutex<BTreeMap<String, bool>>,
}

impl IdleBoard {
    /// Notes whether `shard`'s reader is idle now (adding it when new); `true` when it is and
    /// so is every other reader on the board.
    pub(crate) fn note(&self, shard: &str, idle: bool) -> bool {
        let mut board = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        board.insert(shard.to_owned(), idle);
        idle && board.values().all(|i| *i)
    }

    /// `shard`'s reader ended (idle, finished, failed or stopped).
    pub(crate) fn leave(&self, shard: &str) {
        let mut board = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        board.remove(shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_stops_only_when_every_running_reader_is_idle() {
        let board = IdleBoard::default();
        assert!(!board.note("a", false));
        assert!(!board.note("b", true), "a is still reading");
        assert!(!board.note("b", true));
        assert!(board.note("a", true), "both idle");
        board.leave("a");
        assert!(board.note("b", true), "a ended: b alone");
        assert!(!board.note("c", false));
        assert!(!board.note("b", true), "c joined and reads");
    }
}
