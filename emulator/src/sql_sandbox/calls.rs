//! What the emulator's replacements of SQLite's long-running functions (`patterns.rs`,
//! `scans.rs`) share: the running statement's deadline and limits, and reading arguments as
//! SQLite reads them.
//!
//! A replacement stays on a reader connection once the SQL API has used it (SQLite cannot
//! give a built-in back), so it learns whether a statement runs from a thread-local [`Watch`]
//! the sandbox holds while the statement runs on that thread. Outside one (the console,
//! `Emulator::query`) there is no deadline and SQLite's default limits apply.

use std::cell::Cell;
use std::time::Instant;

use rusqlite::types::ValueRef;

use crate::base::float_text::float_text_for_sqlite_functions;

/// The error a replacement gives when the statement's time is up.
pub(super) const DEADLINE_PASSED: &str = "the statement's time limit passed";

/// Steps between two looks at the clock.
const STEPS_PER_CHECK: u32 = 1 << 14;

/// The running statement's deadline and limits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watched {
    pub deadline: Instant,
    /// The longest `LIKE`/`GLOB` pattern, in bytes.
    pub pattern_limit: i32,
}

thread_local! {
    static WATCHED: Cell<Option<Watched>> = const { Cell::new(None) };
}

/// The statement running on this thread, if any.
pub(super) fn watched() -> Option<Watched> {
    WATCHED.with(Cell::get)
}

/// While alive, the replacements called on this thread stop at `deadline`.
pub(super) struct Watch(());

impl Watch {
    pub(super) fn start(deadline: Instant, pattern_limit: i32) -> Self {
        WATCHED.with(|w| {
            w.set(Some(Watched {
                deadline,
                pattern_limit,
            }))
        });
        Self(())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        WATCHED.with(|w| w.set(None));
    }
}

/// Why a call stopped early: the statement's deadline passed.
#[derive(Debug)]
pub(super) struct Cancelled;

impl From<Cancelled> for rusqlite::Error {
    fn from(_: Cancelled) -> Self {
        rusqlite::Error::UserFunctionError(DEADLINE_PASSED.into())
    }
}

/// The running statement's deadline, looked at every [`STEPS_PER_CHECK`] steps.
pub(super) struct Budget {
    deadline: Option<Instant>,
    steps: u32,
}

impl Budget {
    pub(super) fn new() -> Self {
        Self {
            deadline: watched().map(|w| w.deadline),
            steps: 0,
        }
    }

    /// Counts one step of work.
    ///
    /// # Errors
    /// [`Cancelled`] once the deadline has passed.
    pub(super) fn step(&mut self) -> Result<(), Cancelled> {
        self.steps = self.steps.wrapping_add(1);
        if self.steps % STEPS_PER_CHECK == 0 && self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Cancelled);
        }
        Ok(())
    }
}

/// An argument's bytes as `sqlite3_value_text` gives them (text and blobs as they are,
/// integers as decimal text, floats as SQLite prints them); `None` for NULL. `owned` holds a
/// number's text.
///
/// # Errors
/// When SQLite cannot print a float (it cannot open an in-memory database).
pub(super) fn text_of<'a>(
    v: ValueRef<'a>,
    owned: &'a mut String,
) -> rusqlite::Result<Option<&'a [u8]>> {
    Ok(match v {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(t),
        ValueRef::Integer(i) => {
            *owned = i.to_string();
            Some(owned.as_bytes())
        }
        ValueRef::Real(f) => {
            *owned = float_text_for_sqlite_functions(f)?;
            Some(owned.as_bytes())
        }
    })
}
