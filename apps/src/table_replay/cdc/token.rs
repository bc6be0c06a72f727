//! The change channel's offset tokens: where a restart resumes and which changes it skips.
//!
//! | token | meaning |
//! |---|---|
//! | `s:FILE:POS:KEY` | a snapshot row: every key up to `KEY` is committed; the binlog resumes at `FILE:POS`, the position the first snapshot was taken at |
//! | `S:FILE:POS:KEY` | the snapshot's last row (its last page was short): the snapshot is complete, a restart takes none |
//! | `b:FILE:TX:EVENT:ROW` | a binlog change: row `ROW` of the rows event at `FILE:EVENT`, in the transaction that begins at `FILE:TX` (the form of releases before the server's identity was recorded: still read) |
//! | `c:SERVER:EPOCH:GTID:ORD:FILE:TX:EVENT:ROW` | a binlog change as `b:`, read from the server `SERVER` (`@@server_uuid`, else `@@server_id`), in the transaction `GTID` (MariaDB's `domain-server-sequence`, `-` without one) as its change `ORD` (a count within the transaction that does not depend on the server), written in epoch `EPOCH` (`failover.rs`) |
//!
//! `KEY` is the key's text and a count (`key.rs`: `7/0`, `12,3/0`, `x6162/0`; `x6162/2`: two
//! rows after that key whose keys a token cannot carry); it holds no `:`, so a token splits
//! from the right unambiguously.
//!
//! A restart reads the binlog again from the transaction's start (the rows event needs the
//! table map before it) and skips every change at or before `(FILE, EVENT, ROW)`, so a
//! transaction split over several appends resumes inside itself, nothing twice.

use std::cmp::Ordering;

use anyhow::{bail, Context, Result};

use crate::table_replay::cdc::key::TokenKey;

/// A binlog file and a byte position in it. Ordered as the server writes them: file names
/// carry a fixed-width sequence number (`mysql-bin.000012`), so they order as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
}

impl std::fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// One change's place in the binlog: its rows event and its index in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangePos {
    pub event: BinlogPos,
    pub row: u32,
}

/// A MariaDB GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl Gtid {
    /// Parses `domain-server-sequence`; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.split('-');
        let gtid = Gtid {
            domain: it.next()?.parse().ok()?,
            server: it.next()?.parse().ok()?,
            seq: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(gtid)
    }
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// Who a binlog change was read from, and its place that does not depend on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The server's identity: `@@server_uuid` (MySQL), else `@@server_id`. No `:`.
    pub server: String,
    /// How many times `follow` moved to another server before writing this change.
    pub epoch: u32,
    /// The change's transaction.
    pub gtid: Option<Gtid>,
    /// The change's place within its transaction (the same on every server of a topology).
    pub ordinal: u32,
}

/// A parsed change-channel token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Snapshot {
        resume: BinlogPos,
        key: TokenKey,
        /// The snapshot's last row: nothing left to snapshot.
        done: bool,
    },
    Binlog {
        tx: BinlogPos,
        change: ChangePos,
        /// The server and GTID (absent in a `b:` token).
        by: Option<Reader>,
    },
}

impl Token {
    /// The token's text (see the module docs).
    pub fn render(&self) -> String {
        match self {
            Token::Snapshot { resume, key, done } => format!(
                "{}:{}:{}:{}",
                if *done { "S" } else { "s" },
                resume.file,
                resume.pos,
                key.render()
            ),
            Token::Binlog { tx, change, by } => {
                let place = format!("{}:{}:{}:{}", tx.file, tx.pos, change.event.pos, change.row);
                match by {
                    None => format!("b:{place}"),
                    Some(r) => format!(
                        "c:{}:{}:{}:{}:{place}",
                        r.server,
                        r.epoch,
                        r.gtid.map_or_else(|| "-".to_owned(), |g| g.to_string()),
                        r.ordinal
                    ),
                }
            }
        }
    }

    /// Parses a committed token.
    ///
    /// # Errors
    /// For a token of another form, naming it and who writes this form.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            format!(
                "the change channel's committed offset token {text:?} is not a table_replay \
                 follow token (s:FILE:POS:KEY, b:FILE:TX:EVENT:ROW or \
                 c:SERVER:EPOCH:GTID:ORD:FILE:TX:EVENT:ROW): was the channel written \
                 by another tool? Drop the channel (or use another change table) to start over"
            )
        };
        let num = |s: &str| s.parse::<u64>().with_context(bad);
        let snapshot = match text.strip_prefix("s:") {
            Some(rest) => Some((rest, false)),
            None => text.strip_prefix("S:").map(|rest| (rest, true)),
        };
        if let Some((rest, done)) = snapshot {
            let mut it = rest.rsplitn(3, ':');
            let (key, pos, file) = (it.next(), it.next(), it.next());
            let (Some(key), Some(pos), Some(file)) = (key, pos, file) else {
                bail!(bad());
            };
            return Ok(Token::Snapshot {
                resume: BinlogPos {
                    file: file.to_owned(),
                    pos: num(pos)?,
                },
                key: TokenKey::parse(key).with_context(bad)?,
                done,
            });
        }
        if let Some(rest) = text.strip_prefix("c:") {
            let mut it = rest.splitn(5, ':');
            let (Some(server), Some(epoch), Some(gtid), Some(ordinal), Some(rest)) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            else {
                bail!(bad());
            };
            let gtid = match gtid {
                "-" => None,
                g => Some(Gtid::parse(g).with_context(bad)?),
            };
            let by = Reader {
                server: server.to_owned(),
                epoch: u32::try_from(num(epoch)?).with_context(bad)?,
                gtid,
                ordinal: u32::try_from(num(ordinal)?).with_context(bad)?,
            };
            if by.server.is_empty() {
                bail!(bad());
            }
            let Token::Binlog { tx, change, .. } = Token::parse(&format!("b:{rest}"))? else {
                bail!(bad());
            };
            return Ok(Token::Binlog {
                tx,
                change,
                by: Some(by),
            });
        }
        if let Some(rest) = text.strip_prefix("b:") {
            let mut it = rest.rsplitn(4, ':');
            let (row, event, tx, file) = (it.next(), it.next(), it.next(), it.next());
            let (Some(row), Some(event), Some(tx), Some(file)) = (row, event, tx, file) else {
                bail!(bad());
            };
            let row = u32::try_from(num(row)?).with_context(bad)?;
            return Ok(Token::Binlog {
                tx: BinlogPos {
                    file: file.to_owned(),
                    pos: num(tx)?,
                },
                change: ChangePos {
                    event: BinlogPos {
                        file: file.to_owned(),
                        pos: num(event)?,
                    },
                    row,
                },
                by: None,
            });
        }
        bail!(bad())
    }

    /// Where the binlog must be read again from for this channel.
    pub fn resume_at(&self) -> &BinlogPos {
        match self {
            Token::Snapshot { resume, .. } => resume,
            Token::Binlog { tx, .. } => tx,
        }
    }

    /// Whether a channel committed at this token has already written the row of `other`:
    /// a snapshot row of the same snapshot (the same binlog position to resume at) by its key
    /// when that is certain without the server (`TokenKey::covers`; the rest `dead_resume.rs`
    /// asks the server), every row of that snapshot once it is complete or a change after its
    /// position is committed, a binlog change by its place. Another snapshot's rows (a new
    /// snapshot after the change table was made again) are never covered.
    pub fn covers(&self, other: &Token) -> bool {
        match (self, other) {
            (_, Token::Binlog { change, by, .. }) => {
                // Read from another server: by GTID, when both carry one.
                let other = by.as_ref().filter(|o| {
                    self.reader()
                        .is_some_and(|r| r.server != o.server && o.gtid.is_some())
                });
                match other.and_then(|o| self.wants_by_gtid(&o.gtid?, o.ordinal)) {
                    Some(wanted) => !wanted,
                    None => !self.wants(change),
                }
            }
            // Snapshot rows are covered only by a token of the same snapshot (the binlog
            // position it resumes at): a new snapshot (the change table made again) writes
            // its own.
            (
                Token::Snapshot {
                    resume: r_at,
                    done: true,
                    ..
                },
                Token::Snapshot { resume, .. },
            ) => r_at == resume,
            (
                Token::Snapshot {
                    resume: r_at,
                    key: at,
                    ..
                },
                Token::Snapshot { resume, key, .. },
            ) => r_at == resume && at.covers(key),
            // A change read after this snapshot began: the snapshot was done before it.
            (Token::Binlog { change, .. }, Token::Snapshot { resume, .. }) => {
                change.event >= *resume
            }
        }
    }

    /// Whether the change at `at` is still to be written on this channel.
    pub fn wants(&self, at: &ChangePos) -> bool {
        match self {
            Token::Snapshot { resume, .. } => at.event.cmp(resume) != Ordering::Less,
            Token::Binlog { change, .. } => at > change,
        }
    }

    /// Whether the change `ordinal` of transaction `gtid` is still to be written on this
    /// channel, by GTID (read from another server than the one this token names): a later
    /// sequence in the same domain, or a later change of the same transaction. `None` when
    /// this token cannot tell (no GTID, or another domain).
    pub fn wants_by_gtid(&self, gtid: &Gtid, ordinal: u32) -> Option<bool> {
        let committed = self.reader()?;
        let c = committed.gtid?;
        (c.domain == gtid.domain).then(|| (gtid.seq, ordinal) > (c.seq, committed.ordinal))
    }

    /// Who the change this token names was read from (a `c:` token).
    pub fn reader(&self) -> Option<&Reader> {
        match self {
            Token::Binlog { by, .. } => by.as_ref(),
            Token::Snapshot { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(file: &str, pos: u64) -> BinlogPos {
        BinlogPos {
            file: file.into(),
            pos,
        }
    }

    #[test]
    fn tokens_round_trip_and_foreign_tokens_are_refused() {
        let s = Token::Snapshot {
            resume: pos("mysql-bin.000001", 330),
            key: TokenKey::parse("42").unwrap(),
            done: false,
        };
        assert_eq!(s.render(), "s:mysql-bin.000001:330:42/0");
        assert_eq!(Token::parse(&s.render()).unwrap(), s);
        let done = Token::Snapshot {
            resume: pos("mysql-bin.000001", 330),
            key: TokenKey::parse("42").unwrap(),
            done: true,
        };
        assert_eq!(done.render(), "S:mysql-bin.000001:330:42/0");
        assert_eq!(Token::parse(&done.render()).unwrap(), done);
        let b = Token::Binlog {
            tx: pos("my:bin.000002", 4),
            change: ChangePos {
                event: pos("my:bin.000002", 900),
                row: 7,
            },
            by: None,
        };
        assert_eq!(b.render(), "b:my:bin.000002:4:900:7");
        assert_eq!(Token::parse(&b.render()).unwrap(), b);
        let text = Token::parse("s:f.000001:4:x613a62,7/0").unwrap();
        assert_eq!(text.render(), "s:f.000001:4:x613a62,7/0");
        let none = Token::parse("s:f.000001:4:/3").unwrap();
        assert_eq!(none.render(), "s:f.000001:4:/3");
        // An earlier version's token: the key alone.
        assert_eq!(
            Token::parse("s:f.000001:4:42").unwrap().render(),
            "s:f.000001:4:42/0"
        );
        for foreign in [
            "42",
            "s:x:1",
            "b:f:1:2",
            "b:f:1:2:x",
            "s:f:-1:3",
            "s:f:1:a:b",
            "s:f:1:xz",
        ] {
            let e = Token::parse(foreign).unwrap_err().to_string();
            assert!(
                e.contains("not a table_replay follow token"),
                "{foreign}: {e}"
            );
        }
    }

    #[test]
    fn a_restart_skips_exactly_the_committed_changes() {
        let committed = Token::Binlog {
            tx: pos("b.000001", 100),
            change: ChangePos {
                event: pos("b.000001", 300),
                row: 2,
            },
            by: None,
        };
        let at = |f: &str, p: u64, row: u32| ChangePos {
            event: pos(f, p),
            row,
        };
        assert!(!committed.wants(&at("b.000001", 300, 2)));
        assert!(!committed.wants(&at("b.000001", 200, 9)));
        assert!(committed.wants(&at("b.000001", 300, 3)));
        assert!(committed.wants(&at("b.000002", 4, 0)));
        let snap = Token::Snapshot {
            resume: pos("b.000001", 500),
            key: TokenKey::parse("9").unwrap(),
            done: false,
        };
        assert!(!snap.wants(&at("b.000001", 499, 0)));
        assert!(snap.wants(&at("b.000001", 500, 0)));
        assert!(snap.wants(&at("b.000002", 4, 0)));
    }

    #[test]
    fn a_dead_letter_channel_covers_snapshot_rows_by_key_and_binlog_changes_by_place() {
        let snap = |resume: u64, key: u64| Token::Snapshot {
            resume: pos("b.000001", resume),
            key: TokenKey::parse(&key.to_string()).unwrap(),
            done: false,
        };
        let change = |event: u64| Token::Binlog {
            tx: pos("b.000001", 100),
            change: ChangePos {
                event: pos("b.000001", event),
                row: 0,
            },
            by: None,
        };
        // A snapshot resumed after a kill keeps its position: keys decide. Another snapshot
        // (the change table made again) has its own position: nothing of it is covered.
        assert!(!snap(500, 150).covers(&snap(900, 150)));
        assert!(!snap(500, 150).covers(&snap(900, 20)));
        assert!(snap(500, 150).covers(&snap(500, 20)));
        assert!(!snap(500, 150).covers(&snap(500, 1234)));
        assert!(!snap(500, 150).covers(&change(600)));
        assert!(snap(500, 150).covers(&change(400)));
        assert!(change(600).covers(&snap(500, u64::MAX)));
        assert!(!change(600).covers(&snap(700, 1)));
        let done = Token::parse("S:b.000001:500:x61").unwrap();
        assert!(done.covers(&snap(500, 7)));
        assert!(!done.covers(&snap(900, 7)));
        assert!(change(600).covers(&change(600)));
        assert!(!change(600).covers(&change(700)));
    }

    #[test]
    fn a_token_names_its_server_and_gtid_and_a_new_server_skips_by_gtid() {
        let c = |server: &str, seq: u64, ordinal: u32| Token::Binlog {
            tx: pos("bin:log.000003", 100),
            change: ChangePos {
                event: pos("bin:log.000003", 300),
                row: 2,
            },
            by: Some(Reader {
                server: server.into(),
                epoch: 1,
                gtid: Some(Gtid {
                    domain: 0,
                    server: 1,
                    seq,
                }),
                ordinal,
            }),
        };
        let t = c("1", 17, 4);
        assert_eq!(t.render(), "c:1:1:0-1-17:4:bin:log.000003:100:300:2");
        assert_eq!(Token::parse(&t.render()).unwrap(), t);
        let none = Token::parse("c:x-y:0:-:0:f.000001:4:90:1").unwrap();
        assert_eq!(none.reader().unwrap().gtid, None);
        assert_eq!(none.render(), "c:x-y:0:-:0:f.000001:4:90:1");
        for foreign in ["c:1:0:0-1:0:f:1:2:3", "c::0:-:0:f:1:2:3", "c:1:0:-:0:f:1:2"] {
            assert!(Token::parse(foreign).is_err(), "{foreign}");
        }
        let g = |seq| Gtid {
            domain: 0,
            server: 2,
            seq,
        };
        assert_eq!(t.wants_by_gtid(&g(17), 4), Some(false));
        assert_eq!(t.wants_by_gtid(&g(17), 5), Some(true));
        assert_eq!(t.wants_by_gtid(&g(16), 9), Some(false));
        assert_eq!(t.wants_by_gtid(&g(18), 0), Some(true));
        let other_domain = Gtid { domain: 1, ..g(99) };
        assert_eq!(t.wants_by_gtid(&other_domain, 0), None);
        // A dead letter read from the new server is covered by GTID, not by its position.
        assert!(t.covers(&c("2", 17, 4)));
        assert!(!t.covers(&c("2", 18, 0)));
        // The same server: by position.
        assert!(t.covers(&c("1", 99, 0)));
    }
}
