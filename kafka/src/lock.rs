//! A mutex locked whether a holder panicked or not: every holder in this crate leaves the data
//! whole before anything it calls can panic, so a poisoned lock holds nothing half-written.
//! The lowest room: every other may use it.

/// Locks `m`, poisoned or not (every holder leaves the data whole).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
