//! Fresh batch buffers faulted in ahead of the poll thread, on a thread of their own.
//!
//! A buffer the batches' pool ([`crate::rows::batch`]) does not have idle is fresh memory: the first
//! write to each of its pages is a page fault, in which the kernel zeroes the page. While a
//! sink catches up on a backlog, every batch it holds for `--max-client-lag` is such a buffer
//! (nothing comes back to the pool before the first commits), and the faults were most of the
//! poll thread's time: the one thread that reads every partition spent about three quarters of
//! it in the kernel, where the consume-only floor spends almost none (`kafka/README.md`, "Cost
//! and throughput"). The second core was mostly idle meanwhile.
//!
//! So the faulting moves off the poll thread. A [`Prefault`] keeps a few buffers of each size
//! the pool has been asked for and could not give, already written to, and a thread
//! (`batch-prefault`, started at the first such miss) makes more as they are taken. The pool
//! takes one of those before it allocates a fresh one itself. The same pages are faulted in
//! either way, but the poll thread no longer waits for them.
//!
//! **Only what batches fill.** A batch seldom fills its buffer: it is sized up from its
//! partition's last, to one of five powers of two. Faulting every page in would fault in pages
//! nobody writes to (at 100 B messages a third more faults than the poll thread took on its
//! own). So the pool tells the [`Prefault`] how much of each buffer that comes back was
//! written ([`Prefault::filled`]), and the thread faults in each size's buffers as far as a
//! running average of that, and a quarter more; a batch that writes further takes the rest of
//! its faults itself.
//!
//! **Bounds.** At most [`READY_BYTES`] of each size (and at least two buffers) wait, 5 MiB
//! over the five sizes: like the pool's idle buffers, outside the batches' byte budget and
//! within its slack. A size that nobody takes any more keeps what waits; it is fresh memory
//! nobody paid for twice.

use std::sync::{Arc, Condvar, Mutex};

use crate::lock::lock;

/// Bytes of each size kept waiting, at most (and at least two buffers).
pub(crate) const READY_BYTES: usize = 1 << 20;
/// One write per this many bytes faults every page in (pages are at least this large).
const PAGE: usize = 4096;

/// Buffers of `sizes.len()` sizes faulted in ahead (see the module docs). Dropping it stops
/// its thread.
#[derive(Debug)]
pub(crate) struct Prefault {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the thread: a buffer was taken or a size wanted, or stop.
    wake: Condvar,
    sizes: Vec<usize>,
}

#[derive(Debug)]
struct State {
    /// Per size, buffers faulted in and waiting.
    ready: Vec<Vec<Vec<u8>>>,
    /// Per size, whether it was ever asked for and missing.
    wanted: Vec<bool>,
    /// Per size, a running average of the bytes written to its buffers (the capacity until
    /// one comes back).
    fill: Vec<usize>,
    started: bool,
    stop: bool,
}

impl Prefault {
    /// Buffers of these capacities (the pool's sizes), none made until one is asked for.
    pub(crate) fn new(sizes: &[usize]) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ready: vec![Vec::new(); sizes.len()],
                    wanted: vec![false; sizes.len()],
                    fill: sizes.to_vec(),
                    started: false,
                    stop: false,
                }),
                wake: Condvar::new(),
                sizes: sizes.to_vec(),
            }),
        }
    }

    /// A buffer of size `i` faulted in, when one waits; `None` otherwise, and then more of
    /// that size are made from now on (the caller allocates this one itself).
    pub(crate) fn take(&self, i: usize) -> Option<Vec<u8>> {
        let mut state = lock(&self.shared.state);
        let got = state.ready.get_mut(i)?.pop();
        if got.is_none() {
            state.wanted[i] = true;
            if !state.started {
                state.started = true;
                let shared = Arc::clone(&self.shared);
                let spawned = std::thread::Builder::new()
                    .name("batch-prefault".into())
                    .spawn(move || shared.run());
                if let Err(e) = spawned {
                    tracing::debug!("no thread to fault batch buffers in ahead: {e}");
                }
            }
        }
        drop(state);
        self.shared.wake.notify_one();
        got
    }

    /// A buffer of size `i` came back with `bytes` written to it (see the module docs).
    pub(crate) fn filled(&self, i: usize, bytes: usize) {
        if let Some(fill) = lock(&self.shared.state).fill.get_mut(i) {
            *fill = (*fill * 7 + bytes) / 8;
        }
    }

    /// How far buffers of size `i` are faulted in now.
    #[cfg(test)]
    pub(crate) fn reach(&self, i: usize) -> usize {
        let state = lock(&self.shared.state);
        self.shared.reach(&state, i)
    }

    /// How many buffers of size `i` wait now.
    #[cfg(test)]
    pub(crate) fn waiting(&self, i: usize) -> usize {
        lock(&self.shared.state).ready.get(i).map_or(0, Vec::len)
    }
}

impl Drop for Prefault {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    /// How many buffers of size `i` may wait.
    fn depth(&self, i: usize) -> usize {
        (READY_BYTES / self.sizes[i]).max(2)
    }

    /// How far to fault in buffers of size `i`: its average fill and a quarter more, a page at
    /// least, the whole buffer at most.
    fn reach(&self, state: &State, i: usize) -> usize {
        let fill = state.fill[i];
        (fill + fill / 4).clamp(PAGE, self.sizes[i])
    }

    /// The size most short of its depth among those wanted, if any.
    fn next(&self, state: &State) -> Option<usize> {
        (0..self.sizes.len())
            .filter(|&i| state.wanted[i] && state.ready[i].len() < self.depth(i))
            .min_by_key(|&i| state.ready[i].len() * self.sizes[i])
    }

    /// The thread: makes buffers while a wanted size is short, sleeps otherwise, ends on stop.
    fn run(&self) {
        let mut state = lock(&self.state);
        loop {
            if state.stop {
                return;
            }
            let Some(i) = self.next(&state) else {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            };
            let reach = self.reach(&state, i);
            drop(state);
            let buf = faulted_in(self.sizes[i], reach);
            state = lock(&self.state);
            state.ready[i].push(buf);
        }
    }
}

/// An empty buffer of `capacity` bytes with every page of its first `reach` bytes written to.
fn faulted_in(capacity: usize, reach: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity);
    let spare = buf.spare_capacity_mut();
    for at in (0..reach.min(spare.len())).step_by(PAGE) {
        spare[at].write(0);
    }
    std::hint::black_box(&mut buf);
    buf
}

/// The calling thread's minor page faults: field 10 of `/proc/thread-self/stat`.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn thread_minor_faults() -> i64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("thread stat");
    // Fields counted from the one after the command's closing parenthesis (field 3).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    rest.split(' ')
        .nth(7)
        .expect("minflt")
        .parse()
        .expect("a number")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_missed_size_is_made_ahead_up_to_its_depth_and_only_that_size() {
        let p = Prefault::new(&[16 << 10, 256 << 10]);
        assert!(p.take(1).is_none(), "nothing waits before the first miss");
        wait_for(|| p.waiting(1) == 4);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(p.waiting(1), 4, "no more than its depth: 1 MiB of 256 KiB");
        assert_eq!(p.waiting(0), 0, "a size nobody asked for is not made");
        let b = p.take(1).expect("one waits");
        assert!(b.is_empty() && b.capacity() >= 256 << 10);
        wait_for(|| p.waiting(1) == 4);
        assert!(p.take(7).is_none(), "a size it does not have");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn its_buffers_are_resident_before_anyone_writes_to_them() {
        // Minor faults of this thread while it fills buffers the prefault thread made: fresh
        // memory would fault in every page.
        let p = Prefault::new(&[256 << 10]);
        assert!(p.take(0).is_none());
        wait_for(|| p.waiting(0) == 4);
        let mut bufs: Vec<Vec<u8>> = (0..4).map(|_| p.take(0).expect("waiting")).collect();
        let before = thread_minor_faults();
        for b in &mut bufs {
            b.resize(256 << 10, 1);
        }
        let taken = thread_minor_faults() - before;
        assert!(
            taken < 16,
            "{taken} faults filling 256 pages faulted in ahead"
        );
        // The control: 64 MiB is above glibc's largest mmap threshold, so it is always
        // mapped afresh; writing to 256 of its pages faults each in.
        let mut fresh: Vec<u8> = Vec::with_capacity(64 << 20);
        let before = thread_minor_faults();
        let spare = fresh.spare_capacity_mut();
        for at in (0..256 * PAGE).step_by(PAGE) {
            spare[at].write(1);
        }
        std::hint::black_box(&mut fresh);
        let control = thread_minor_faults() - before;
        assert!(
            control >= 200,
            "the control: {control} faults for 256 fresh pages"
        );
    }

    #[test]
    fn buffers_are_faulted_in_as_far_as_they_are_filled() {
        let p = Prefault::new(&[256 << 10]);
        assert_eq!(p.reach(0), 256 << 10, "all of it until one comes back");
        for _ in 0..64 {
            p.filled(0, 40 << 10);
        }
        let reach = p.reach(0);
        assert!(
            (50 << 10..=52 << 10).contains(&reach),
            "a quarter over 40 KiB: {reach}"
        );
        for _ in 0..64 {
            p.filled(0, 0);
        }
        assert_eq!(p.reach(0), PAGE, "a page at least");
    }

    #[test]
    fn dropping_it_ends_its_thread() {
        let p = Prefault::new(&[16 << 10]);
        assert!(p.take(0).is_none());
        let shared = Arc::downgrade(&p.shared);
        drop(p);
        wait_for(|| shared.upgrade().is_none());
    }
}
