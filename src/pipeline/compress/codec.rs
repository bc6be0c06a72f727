//! The codec: zstd in streaming mode over a batch's segments, straight into the body's own
//! buffer, reusing its context; and the one-shot form the elastic path uses.

use std::io::Write as _;

use bytes::Bytes;

use crate::pipeline::pool::{trimmed, BufferPool};
use crate::Compression;

/// Compresses batch bodies, reusing its zstd context.
///
/// zstd runs in streaming mode over the batch's segments, straight into the body's own
/// buffer: no copy of the batch into one contiguous buffer and no `compress_bound`-sized
/// output buffer. The window holds a whole batch (4 MB by default, where level 1's own is
/// 512 KB): with a smaller one most blocks go down zstd's external-dictionary path, which a
/// profile put at 20 % of the client's CPU; the whole-batch window takes about 6 % off the
/// client's CPU per GB (measured side by side: docs/PERFORMANCE.md). It costs about 4 MB
/// per context; only the blocking jobs' contexts have it (one per permit, client-wide: see
/// [`CompressorPool`](super::pool::CompressorPool)), and never more than 1/8 of the memory
/// budget in all ([`large_window_log`]).
pub(crate) struct Codec {
    compression: Compression,
    level: i32,
    /// log2 of zstd's window: a whole batch (see [`window_log`]).
    window_log: u32,
    zstd: Option<zstd::zstd_safe::CCtx<'static>>,
    /// Compressed / uncompressed size of the last body, to size the next one's buffer.
    ratio: f64,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// Batches smaller than this are compressed inline on the actor's task (a hand-off to the
/// blocking pool costs more than compressing them), with a small context (a window this
/// size); an open batch that grows to it is compressed as it fills (`frame::EARLY_FROM`).
pub(crate) const INLINE_BELOW: usize = 256 << 10;

/// Smallest growth of a body whose size was underestimated.
const GROW_MIN: usize = 64 << 10;

pub(super) fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
}

/// A zstd context at `level` with a window of 2^`window_log` bytes.
///
/// Literals (the bytes no match covers) are always Huffman-coded. zstd's negative ("fast")
/// levels otherwise store them raw, which on NDJSON costs 35–60 % more bytes; with them
/// coded, level -2 makes bodies 2–10 % larger than level 1 at 6–9 % less client CPU (README,
/// Performance). Levels 1 and up code literals anyway.
pub(super) fn zstd_context(
    level: i32,
    window_log: u32,
) -> std::io::Result<zstd::zstd_safe::CCtx<'static>> {
    use zstd::zstd_safe::{CParameter, ParamSwitch};
    let mut cctx = zstd::zstd_safe::CCtx::try_create()
        .ok_or_else(|| std::io::Error::other("zstd: cannot allocate a context"))?;
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(zstd_error)?;
    cctx.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Enable))
        .map_err(zstd_error)?;
    cctx.set_parameter(CParameter::WindowLog(window_log))
        .map_err(zstd_error)?;
    Ok(cctx)
}

/// The window of the large-batch contexts (one per permit): a whole batch, unless the
/// client's contexts would then hold more than 1/8 of the memory budget (many cores, a small
/// budget); never below zstd's own for level 1 (512 KB), which every context had before.
pub(super) fn large_window_log(batch_cap: usize, budget: usize, jobs: usize) -> u32 {
    let whole = window_log(batch_cap);
    let share = budget / 8 / jobs.max(1);
    let fits = share.checked_ilog2().unwrap_or(0);
    whole.min(fits.max(19))
}

/// The smallest zstd window that holds a whole batch of `cap` bytes (zstd shrinks it further
/// for a frame whose stated size is smaller).
pub(super) fn window_log(cap: usize) -> u32 {
    cap.next_power_of_two().trailing_zeros().clamp(10, 23)
}

impl Codec {
    /// A codec for `compression` at zstd `level`, sized for batches up to `batch_cap`
    /// bytes, with no context yet (the first `encode` makes one).
    pub(crate) fn template(compression: Compression, level: i32, batch_cap: usize) -> Self {
        Self {
            compression,
            level,
            window_log: window_log(batch_cap),
            zstd: None,
            ratio: 0.3,
        }
    }

    /// A codec for one large row's trial compression (`encode::RowCap`): the smallest window
    /// a client's compressors may have (512 KB, [`large_window_log`]'s floor), so the body the
    /// channel makes later is no larger.
    pub(crate) fn for_trial(compression: Compression, level: i32) -> Self {
        Self {
            compression,
            level,
            window_log: 19,
            zstd: None,
            ratio: 1.0,
        }
    }

    /// The same codec with a window of `2^log` bytes.
    pub(super) fn with_window_log(mut self, log: u32) -> Self {
        self.window_log = log;
        self
    }

    /// The codec's zstd level.
    pub(super) fn level(&self) -> i32 {
        self.level
    }

    /// log2 of the codec's window.
    pub(super) fn window_log(&self) -> u32 {
        self.window_log
    }

    /// The bytes its zstd context holds (0 before the first `encode`).
    #[cfg(test)]
    pub(super) fn context_size(&self) -> usize {
        self.zstd.as_ref().map_or(0, zstd::zstd_safe::CCtx::sizeof)
    }

    /// A codec with the same settings and no context yet (the first `encode` makes one).
    pub(super) fn sibling(&self) -> Self {
        Self {
            compression: self.compression,
            level: self.level,
            window_log: self.window_log,
            zstd: None,
            ratio: self.ratio,
        }
    }

    /// Compresses the batch made of `segments` (`len` bytes in all) into a body of its own,
    /// in a buffer from `pool` when one that size is idle.
    pub(crate) fn encode(
        &mut self,
        segments: &[Bytes],
        len: usize,
        pool: &BufferPool,
    ) -> std::io::Result<Bytes> {
        match self.compression {
            Compression::Zstd => {
                let cctx = match &mut self.zstd {
                    Some(c) => c,
                    None => self.zstd.insert(zstd_context(self.level, self.window_log)?),
                };
                let estimate = (len as f64 * self.ratio * 1.0625) as usize + 4096;
                let body = zstd_stream(cctx, segments, len, pool.take_about(estimate))?;
                if len > 0 {
                    self.ratio = body.len() as f64 / len as f64;
                }
                Ok(body)
            }
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(len / 4 + 64),
                    flate2::Compression::fast(),
                );
                for s in segments {
                    enc.write_all(s)?;
                }
                Ok(Bytes::from(trimmed(enc.finish()?)))
            }
            Compression::None => {
                if segments.len() == 1 {
                    Ok(segments[0].clone())
                } else {
                    let mut body = pool.take_exact(len);
                    for s in segments {
                        body.extend_from_slice(s);
                    }
                    Ok(Bytes::from(body))
                }
            }
        }
    }
}

/// One `compress_stream2` step of `cctx` over `input` (directive `op`) into the room after
/// `body`'s bytes, `body` first grown by `grow(capacity)` bytes when it has none left; zstd's
/// answer (how much it still has to flush).
pub(super) fn stream_step(
    cctx: &mut zstd::zstd_safe::CCtx<'static>,
    body: &mut Vec<u8>,
    input: &mut zstd::zstd_safe::InBuffer<'_>,
    op: zstd::zstd_safe::zstd_sys::ZSTD_EndDirective,
    grow: impl FnOnce(usize) -> usize,
) -> std::io::Result<usize> {
    if body.capacity() == body.len() {
        body.reserve(grow(body.capacity()));
    }
    let pos = body.len();
    let mut out = zstd::zstd_safe::OutBuffer::around_pos(body, pos);
    cctx.compress_stream2(&mut out, input, op)
        .map_err(zstd_error)
}

/// One zstd frame (stating its content size) of the concatenated `segments`, written into
/// `body` (grown when the estimate was short, trimmed when it was far too long).
fn zstd_stream(
    cctx: &mut zstd::zstd_safe::CCtx<'static>,
    segments: &[Bytes],
    len: usize,
    mut body: Vec<u8>,
) -> std::io::Result<Bytes> {
    use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
    use zstd::zstd_safe::{InBuffer, ResetDirective};
    cctx.reset(ResetDirective::SessionOnly)
        .map_err(zstd_error)?;
    cctx.set_pledged_src_size(Some(len as u64))
        .map_err(zstd_error)?;
    let empty = [Bytes::new()];
    let segments = if segments.is_empty() {
        &empty[..]
    } else {
        segments
    };
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        let mut input = InBuffer::around(seg);
        let op = if i == last {
            ZSTD_EndDirective::ZSTD_e_end
        } else {
            ZSTD_EndDirective::ZSTD_e_continue
        };
        loop {
            // The estimate was short: grow by a quarter (zstd fills whatever room it gets).
            let remaining =
                stream_step(cctx, &mut body, &mut input, op, |cap| GROW_MIN.max(cap / 4))?;
            let done = if i == last {
                remaining == 0
            } else {
                input.pos() == seg.len()
            };
            if done {
                break;
            }
        }
    }
    Ok(Bytes::from(trimmed(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ChannelSettings;
    use std::sync::Arc;

    fn pool() -> Arc<BufferPool> {
        Arc::new(BufferPool::new(1 << 24))
    }

    fn unzstd(b: &Bytes) -> Vec<u8> {
        zstd::stream::decode_all(&b[..]).unwrap()
    }

    #[test]
    fn large_windows_hold_a_batch_within_an_eighth_of_the_budget() {
        let mib = 1usize << 20;
        for (batch, budget, permits, log, why) in [
            (3_984_119, 256 * mib, 2, 22, "a whole 4 MB batch"),
            (3_984_119, 256 * mib, 32, 20, "32 permits: 1 MiB each"),
            (3_984_119, 64 * mib, 64, 19, "never below level 1's own"),
            (100_000, 256 * mib, 2, 17, "a small batch, a small window"),
        ] {
            assert_eq!(large_window_log(batch, budget, permits), log, "{why}");
        }
    }

    #[test]
    fn streamed_frames_round_trip_state_their_size_and_grow_when_underestimated() {
        // A 128 KB window, so the longer inputs wrap it (zstd's external-dictionary path).
        let mut cctx = zstd_context(1, 19).unwrap();
        cctx.set_parameter(zstd::zstd_safe::CParameter::WindowLog(17))
            .unwrap();
        // Compressible rows in many segments, and incompressible noise.
        let rows: Vec<Bytes> = (0..50)
            .map(|i| {
                Bytes::from(format!(
                    "{{\"id\":{i},\"pad\":\"{}\"}}\n",
                    "ab".repeat(2000)
                ))
            })
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for segments in [rows, vec![Bytes::from(noise)], vec![]] {
            let len: usize = segments.iter().map(Bytes::len).sum();
            // Start from an empty buffer: the body has to grow.
            let body = zstd_stream(&mut cctx, &segments, len, Vec::new()).unwrap();
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&body).unwrap(),
                Some(len as u64)
            );
            assert_eq!(unzstd(&body), segments.concat());
        }
    }

    /// NDJSON rows with the variety of real ones (names, timestamps, prices), deterministic.
    fn varied_rows(n: usize) -> Vec<u8> {
        let names = [
            "Ada", "Grace", "Linus", "Barbara", "Edsger", "Frances", "Ken", "Radia",
        ];
        let resorts = ["Vail", "Zermatt", "Niseko", "Whistler", "Chamonix"];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::new();
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (a, b) = ((x % 8) as usize, ((x >> 8) % 5) as usize);
            out.extend_from_slice(
                format!(
                    "{{\"txid\":\"{x:016x}\",\"name\":\"{} {}\",\"resort\":\"{}\",\
                     \"purchase_time\":\"2026-11-{:02}T{:02}:{:02}:{:02}Z\",\"price_usd\":{}.{:02},\
                     \"days\":{},\"row\":{i}}}\n",
                    names[a],
                    names[(a + b) % 8],
                    resorts[b],
                    1 + x % 28,
                    (x >> 3) % 24,
                    (x >> 5) % 60,
                    (x >> 7) % 60,
                    50 + (x >> 11) % 400,
                    (x >> 13) % 100,
                    1 + (x >> 17) % 7,
                )
                .as_bytes(),
            );
        }
        out
    }

    #[test]
    fn fast_levels_code_literals_and_stay_near_level_one() {
        let data = varied_rows(20_000);
        let settings = ChannelSettings {
            compression: Compression::Zstd,
            zstd_level: -1,
            ..ChannelSettings::default()
        };
        let mut codec = settings.codec();
        let ours = codec
            .encode(&[Bytes::from(data.clone())], data.len(), &pool())
            .unwrap();
        assert_eq!(unzstd(&ours), data);
        let raw_literals = zstd::bulk::compress(&data, settings.zstd_level).unwrap();
        let level_one = zstd::bulk::compress(&data, 1).unwrap();
        // Elastic channels compress with the same codec (`compress::compress`).
        let len = ours.len();
        assert!(
            len * 5 < raw_literals.len() * 4,
            "{len} bytes, zstd {} without coded literals {}",
            settings.zstd_level,
            raw_literals.len()
        );
        assert!(
            len * 100 <= level_one.len() * 106,
            "{len} bytes, level 1 {}",
            level_one.len()
        );
    }
}
