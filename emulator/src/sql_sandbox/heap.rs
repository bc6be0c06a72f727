//! One SQL API statement's SQLite memory, bounded: the values one row holds before they are
//! encoded (`SELECT zeroblob(16e6), zeroblob(16e6), …` over 2,000 columns would otherwise
//! take 32 GB), the pages and sorts it reads with.
//!
//! SQLite allocates through the functions it is configured with (`SQLITE_CONFIG_MALLOC`,
//! before it is first initialized in the process). The emulator gives it [`METHODS`], which
//! allocate from Rust's allocator with a 16-byte header holding the size, and charge each
//! allocation made on a thread where a statement runs to that statement ([`Meter`], held by
//! the sandbox while the statement runs there). An allocation that would take the statement
//! past [`STATEMENT_HEAP_LIMIT`] is refused; SQLite answers `SQLITE_NOMEM` and the statement
//! fails, its memory freed; the sandbox names the limit. Allocations on other threads (the
//! writer, the console) are not charged, so a statement can never make a commit fail.
//!
//! Charges are net: memory freed during the statement is taken off its count. Memory the
//! statement leaves behind (its reader's page cache) is no later statement's charge.
//!
//! SQLite takes an allocator only before it is initialized, and `sqlite3_config` is not safe
//! while another thread initializes it (it allocates its init mutex with the allocator set up
//! before the flag it checks), so [`install`] is called once, first thing in `main`
//! (`snowpipe_emulator::bound_sql_statement_memory`, which the `snowpipe-emulator` binary
//! calls), never when an emulator starts inside a process that may use SQLite elsewhere.
//! Without it one statement's memory is bounded per value only (16 MiB, `limits.rs`).

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The most SQLite memory one SQL API statement may hold at once: a whole result (64 MiB,
/// `storage::readers::MAX_RESULT_BYTES`) plus one value being built (16 MiB) plus 16 MiB of
/// pages and sort buffers (a reader's page cache and a sorter's in-memory run are ~2 MB each).
pub(crate) const STATEMENT_HEAP_LIMIT: i64 = 96 << 20;

/// Bytes in front of each allocation: its size (16, to keep SQLite's 8-byte alignment and
/// Rust's `max_align_t`).
const HEADER: usize = 16;

/// The statement running on this thread: bytes it holds now, and whether an allocation was
/// refused.
#[derive(Clone, Copy)]
struct Charge {
    held: i64,
    limit: i64,
    refused: bool,
}

thread_local! {
    static CHARGE: Cell<Option<Charge>> = const { Cell::new(None) };
}

/// Whether SQLite allocates through [`METHODS`] in this process.
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Makes SQLite allocate through this module's functions, once per process, before any
/// database is opened. Returns whether it does (false when SQLite was initialized first).
pub(crate) fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: `METHODS` is a `'static` table of functions that never unwind; SQLite copies
        // it. `sqlite3_config` refuses (SQLITE_MISUSE) once SQLite is initialized, and is
        // not called concurrently with another configuration here (`OnceLock`).
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &METHODS.0) };
        rc == ffi::SQLITE_OK
    })
}

/// Whether one statement's SQLite memory is bounded in this process (see [`install`]).
pub(crate) fn is_bounded() -> bool {
    INSTALLED.get().copied().unwrap_or(false)
}

/// While alive, SQLite's allocations on this thread are charged to one statement, at most
/// `limit` bytes.
pub(crate) struct Meter(());

impl Meter {
    pub(crate) fn start(limit: i64) -> Self {
        CHARGE.with(|c| {
            c.set(Some(Charge {
                held: 0,
                limit,
                refused: false,
            }))
        });
        Self(())
    }

    /// Whether an allocation was refused since [`Meter::start`].
    pub(crate) fn refused(&self) -> bool {
        CHARGE.with(|c| c.get().is_some_and(|c| c.refused))
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        CHARGE.with(|c| c.set(None));
    }
}

/// Charges `more` bytes (negative: frees) to the statement on this thread; false when that
/// would take it past its limit (nothing is charged then).
fn charge(more: i64) -> bool {
    CHARGE
        .try_with(|c| match c.get() {
            None => true,
            Some(mut ch) => {
                let after = ch.held.saturating_add(more);
                if more > 0 && after > ch.limit {
                    ch.refused = true;
                    c.set(Some(ch));
                    false
                } else {
                    ch.held = after;
                    c.set(Some(ch));
                    true
                }
            }
        })
        // The thread is ending: nothing to charge to.
        .unwrap_or(true)
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

/// The size stored in front of `p`.
///
/// # Safety
/// `p` came from [`x_malloc`] or [`x_realloc`] and was not freed.
unsafe fn size_of(p: *mut c_void) -> usize {
    unsafe { (p as *mut u8).sub(HEADER).cast::<usize>().read() }
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let size = usize::try_from(n).unwrap_or(0);
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    if !charge(size as i64) {
        return std::ptr::null_mut();
    }
    // SAFETY: the layout's size is at least HEADER, never zero.
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        charge(-(size as i64));
        return std::ptr::null_mut();
    }
    // SAFETY: `base` has room for the header, aligned for usize.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what `x_malloc`/`x_realloc` gave it, once.
    unsafe {
        let size = size_of(p);
        charge(-(size as i64));
        if let Some(layout) = layout(size) {
            std::alloc::dealloc((p as *mut u8).sub(HEADER), layout);
        }
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: as `x_malloc`.
        return unsafe { x_malloc(n) };
    }
    let new = usize::try_from(n).unwrap_or(0);
    // SAFETY: `p` is live, from this module.
    let old = unsafe { size_of(p) };
    let (Some(old_layout), Some(new_layout)) = (layout(old), layout(new)) else {
        return std::ptr::null_mut();
    };
    let more = new as i64 - old as i64;
    if !charge(more) {
        return std::ptr::null_mut();
    }
    // SAFETY: `p`'s block has `old_layout`; the new size is non-zero and fits a Layout.
    let base =
        unsafe { std::alloc::realloc((p as *mut u8).sub(HEADER), old_layout, new_layout.size()) };
    if base.is_null() {
        charge(-more);
        return std::ptr::null_mut();
    }
    // SAFETY: as in `x_malloc`.
    unsafe {
        base.cast::<usize>().write(new);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: `p` is live, from this module.
    c_int::try_from(unsafe { size_of(p) }).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// SQLite's allocator table (its one pointer, `pAppData`, is null).
struct Methods(ffi::sqlite3_mem_methods);

// SAFETY: the table is immutable and its `pAppData` is null.
unsafe impl Sync for Methods {}

/// SQLite's allocator in this process (see [`install`]).
static METHODS: Methods = Methods(ffi::sqlite3_mem_methods {
    xMalloc: Some(x_malloc),
    xFree: Some(x_free),
    xRealloc: Some(x_realloc),
    xSize: Some(x_size),
    xRoundup: Some(x_roundup),
    xInit: Some(x_init),
    xShutdown: Some(x_shutdown),
    pAppData: std::ptr::null_mut(),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_net_and_refused_past_the_limit() {
        let meter = Meter::start(100);
        assert!(charge(60));
        assert!(!charge(41), "past the limit");
        assert!(meter.refused());
        assert!(charge(-30));
        assert!(charge(70), "freed bytes make room");
        drop(meter);
        assert!(
            charge(1 << 40),
            "no statement on this thread: nothing is charged"
        );
    }

    #[test]
    fn the_functions_keep_sizes_and_refuse_past_the_limit() {
        unsafe {
            let p = x_malloc(10);
            assert!(!p.is_null());
            assert_eq!(x_size(p), 10);
            let p = x_realloc(p, 1000);
            assert_eq!(x_size(p), 1000);
            x_free(p);
            let meter = Meter::start(4096);
            let a = x_malloc(4000);
            assert!(!a.is_null());
            assert!(x_malloc(200).is_null(), "4,200 bytes > 4,096");
            assert!(x_realloc(a, 5000).is_null());
            assert_eq!(x_size(a), 4000, "a refused realloc leaves the block");
            x_free(a);
            let b = x_malloc(4000);
            assert!(!b.is_null(), "freeing made room");
            x_free(b);
            assert!(meter.refused());
        }
    }
}
