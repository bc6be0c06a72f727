//! A batch compressed while it fills: one zstd frame, written as its chunks arrive.
//!
//! A channel holds its open batch for up to `max_client_lag`. Held uncompressed, every byte of
//! a backlog that arrives within one lag is memory touched for the first time (a page fault
//! and a zeroed page each 4 KiB), and at the end of the lag zstd reads the batch back from
//! memory rather than from the cache. Compressed as it fills, the rows are read once, while
//! they are fresh, and the batch holds its compressed bytes and a zstd context instead: the
//! rows' buffers go back to their pool at once, to be filled again.
//!
//! The frame states no content size (it is not known when the frame starts): the official
//! SDK's append bodies state none either (`docs/protocol-wire.md`, §4.4), so the service reads such
//! frames. Its window is small ([`FRAME_WINDOW_LOG`]) so that a context costs little next to
//! the rows it replaces: zstd's streaming mode keeps a window-sized copy of the input.

use bytes::Bytes;
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{CCtx, InBuffer, ResetDirective};

use super::codec::{stream_step, zstd_context, zstd_error, INLINE_BELOW};
use crate::pipeline::pool::trimmed;

/// log2 of an early frame's window: 128 KiB. On realistic NDJSON (clickstream rows of about
/// 550 bytes, 3 MB) at level 1 the frame is 2.4 % larger than with a window of the whole batch
/// and compresses at about the same speed (712 against 737 MB/s), and its context holds about
/// 1 MB; with 2^16 the frame is 5 % larger, with 2^18 or more the context holds 1.1–1.4 MB
/// (`docs/log/performance/2026-11-23-memory.md`).
pub(crate) const FRAME_WINDOW_LOG: u32 = 17;

/// What an early frame's context is charged to the memory budget when the frame starts: at
/// least what it holds once used, at every level early frames are made at (checked by a
/// test), so that the batch's charge covers its context and its body from the start.
///
/// At level 1 a used context holds 953 KiB (`CCtx::sizeof`): zstd's streaming input buffer
/// (the window and a block, 256 KiB), its output buffer (a block's bound, 128 KiB), one
/// 128 KiB block's sequences and their codes (352 KiB) and literals (128 KiB), the match table
/// (32 KiB) and the entropy tables. About 440 KiB of it is ever written, so a fresh context
/// costs about 110 page faults. A smaller block (zstd's experimental `ZSTD_c_maxBlockSize`)
/// shrinks both (32 KiB blocks: 401 KiB held, 280 KiB written; 16 KiB: 309 and 256) but every
/// block pays for its entropy tables: zstd spent 20–40 % more CPU on the same rows, and the
/// sink 4.8–5.0 CPU-s per GB against 3.6–3.9 with 128 KiB blocks on the mock cluster
/// (`docs/log/performance/2026-11-27-kafka-the-copy-and-where-the-rest-goes.md`), so the
/// block is zstd's own.
pub(crate) const CONTEXT_CHARGE: usize = 1 << 20;

/// The highest zstd level early frames are made at (the default, 1, and the negative "fast"
/// levels; 0 is zstd's default level, 3): from level 2 a context holds more than
/// [`CONTEXT_CHARGE`] (1.7 MB at 3: larger match tables), and compression is slow enough to
/// be better done off the channel's task, when the batch is sealed.
pub(crate) const MAX_LEVEL: i32 = 1;

/// Whether early frames are made at zstd `level`.
pub(crate) fn early_level(level: i32) -> bool {
    level != 0 && level <= MAX_LEVEL
}

/// An open batch is compressed as it fills (an early frame) once it holds this many bytes
/// (and a context is to be had): smaller batches are compressed inline when sealed.
pub(crate) const EARLY_FROM: usize = INLINE_BELOW;

/// An early frame is fed on the channel's task, less than this many bytes at once (about a
/// millisecond of zstd at level 1): a larger chunk seals the open batch and starts one of
/// its own, compressed when sealed (off the task).
pub(crate) const FEED_INLINE_MAX: usize = 2 * INLINE_BELOW;

/// The first capacity of a frame's body, and the least it grows by.
const GROW_MIN: usize = 64 << 10;

/// A zstd context for early frames, kept by the client's pool between batches.
pub(crate) struct FrameContext(CCtx<'static>);

impl std::fmt::Debug for FrameContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameContext")
            .field("bytes", &self.0.sizeof())
            .finish()
    }
}

impl FrameContext {
    /// A context for early frames at zstd `level`.
    ///
    /// # Errors
    /// zstd's, when the context cannot be made or set.
    pub(super) fn new(level: i32) -> std::io::Result<Self> {
        zstd_context(level, FRAME_WINDOW_LOG).map(Self)
    }
}

/// One batch's zstd frame, open: the chunks fed so far, compressed.
pub(crate) struct OpenFrame {
    cctx: CCtx<'static>,
    body: Vec<u8>,
}

impl std::fmt::Debug for OpenFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFrame")
            .field("body", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl OpenFrame {
    /// Starts a frame with `cctx` (any earlier frame of it is forgotten).
    ///
    /// # Errors
    /// zstd's, when the context cannot be reset.
    pub(crate) fn start(FrameContext(mut cctx): FrameContext) -> std::io::Result<Self> {
        cctx.reset(ResetDirective::SessionOnly)
            .map_err(zstd_error)?;
        Ok(Self {
            cctx,
            body: Vec::with_capacity(GROW_MIN),
        })
    }

    /// Compresses `data` into the frame.
    ///
    /// # Errors
    /// zstd's; the frame is then unusable.
    pub(crate) fn feed(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut input = InBuffer::around(data);
        while input.pos() < data.len() {
            self.step(&mut input, ZSTD_EndDirective::ZSTD_e_continue)?;
        }
        Ok(())
    }

    /// Ends the frame: its body (or zstd's error), and the context back for the next.
    pub(crate) fn finish(mut self) -> (std::io::Result<Bytes>, FrameContext) {
        let mut empty = InBuffer::around(&[]);
        loop {
            match self.step(&mut empty, ZSTD_EndDirective::ZSTD_e_end) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return (Err(e), FrameContext(self.cctx)),
            }
        }
        (Ok(Bytes::from(trimmed(self.body))), FrameContext(self.cctx))
    }

    /// The context, the frame abandoned.
    pub(crate) fn into_context(self) -> FrameContext {
        FrameContext(self.cctx)
    }

    /// The bytes the frame is charged: its body so far and its context's [`CONTEXT_CHARGE`]
    /// (as a batch's rows are charged their bytes, not their buffers' capacity; the pages of
    /// a body's room not yet written are not touched).
    pub(crate) fn held(&self) -> usize {
        self.body.len() + CONTEXT_CHARGE
    }

    /// One zstd step into the body, which doubles when full: every grown body is copied, so
    /// the copies add up to at most its size.
    fn step(&mut self, input: &mut InBuffer<'_>, op: ZSTD_EndDirective) -> std::io::Result<usize> {
        stream_step(&mut self.cctx, &mut self.body, input, op, |cap| {
            GROW_MIN.max(cap)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// NDJSON rows of varied content (ids, hex strings), `n` bytes or a little more.
    fn rows(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 200);
        let mut id = 0u64;
        while v.len() < n {
            let r: u64 = rng.gen();
            v.extend_from_slice(
                format!(
                    "{{\"id\":{id},\"kind\":\"view\",\"r\":\"{r:x}\",\"page\":\"/p/{}\"}}\n",
                    r % 977
                )
                .as_bytes(),
            );
            id += 1;
        }
        v
    }

    /// Whatever the pieces, the body is one zstd frame that decodes to them in order and
    /// states no content size (as the official SDK's bodies, `docs/protocol-wire.md` §4.4).
    #[test]
    fn a_frame_fed_in_pieces_is_one_frame_of_the_pieces_in_order() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let mut cctx = FrameContext::new(1).unwrap();
        for round in 0..12 {
            let data = rows(rng.gen_range(0..3_000_000), &mut rng);
            let mut frame = OpenFrame::start(cctx).unwrap();
            let mut at = 0;
            while at < data.len() {
                let n = rng.gen_range(1..200_000).min(data.len() - at);
                frame.feed(&data[at..at + n]).unwrap();
                at += n;
            }
            let (body, back) = frame.finish();
            cctx = back;
            let body = body.unwrap();
            assert_eq!(
                zstd::zstd_safe::find_frame_compressed_size(&body),
                Ok(body.len()),
                "round {round}: one frame, nothing after it"
            );
            assert!(
                matches!(zstd::zstd_safe::get_frame_content_size(&body), Ok(None)),
                "round {round}: no content size"
            );
            assert!(
                zstd::decode_all(&body[..]).unwrap() == data,
                "round {round}"
            );
        }
    }

    /// The charge taken for a context covers what it holds once used, at every level early
    /// frames are made for ([`early_level`]); at zstd's default level (3), a context holds
    /// more, and none is made.
    #[test]
    fn a_used_context_holds_no_more_than_its_charge() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let data = rows(2_000_000, &mut rng);
        for level in (-7..=MAX_LEVEL).filter(|l| early_level(*l)) {
            let mut frame = OpenFrame::start(FrameContext::new(level).unwrap()).unwrap();
            for piece in data.chunks(100_000) {
                frame.feed(piece).unwrap();
            }
            let held = frame.cctx.sizeof();
            assert!(
                held <= CONTEXT_CHARGE && held > CONTEXT_CHARGE / 4,
                "level {level}: the context holds {held} bytes"
            );
            let (body, _) = frame.finish();
            assert!(zstd::decode_all(&body.unwrap()[..]).unwrap() == data);
        }
        for level in [0, 2, 3] {
            assert!(!early_level(level));
            let mut frame = OpenFrame::start(FrameContext::new(level).unwrap()).unwrap();
            frame.feed(&data).unwrap();
            let held = frame.cctx.sizeof();
            assert!(held > CONTEXT_CHARGE, "level {level}: {held} bytes");
        }
    }

    /// What a frame is charged covers its body and its context, which the next frame reuses.
    #[test]
    fn what_a_frame_holds_is_its_body_and_its_context() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let data = rows(3_000_000, &mut rng);
        let mut frame = OpenFrame::start(FrameContext::new(1).unwrap()).unwrap();
        frame.feed(&data).unwrap();
        let held = frame.held();
        assert!(held >= frame.body.len() + frame.cctx.sizeof());
        assert!(held <= frame.body.len() + CONTEXT_CHARGE);
        assert!(
            held < data.len(),
            "{held} bytes held for {} fed",
            data.len()
        );
        let (body, cctx) = frame.finish();
        let mut again = OpenFrame::start(cctx).unwrap();
        again.feed(b"{\"a\":1}\n").unwrap();
        let (second, _) = again.finish();
        assert_eq!(
            zstd::decode_all(&second.unwrap()[..]).unwrap(),
            b"{\"a\":1}\n"
        );
        assert!(zstd::decode_all(&body.unwrap()[..]).unwrap() == data);
    }
}
