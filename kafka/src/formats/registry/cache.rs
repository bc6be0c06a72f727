//! The cache by id ([`CacheState`]): compiled schemas weighed by what they hold, failures that
//! are the message's fault for [`RETRY_AFTER`], a hash of each id's first answer; and each id's
//! gate, so that one caller at a time fetches and compiles it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::schema::{compile_answer, Answer, Registered};
use super::{Failure, Registry, MAX_CACHED_BYTES, RETRY_AFTER};
use crate::lock::lock;

/// Most ids cached (a run sees a handful; a flood of garbage ids must not grow it for good).
const MAX_CACHED: usize = 10_000;

pub(super) enum Cached {
    /// A schema, and what it weighs (see [`MAX_CACHED_BYTES`]).
    Ok(Arc<Registered>, usize),
    Failed(String, Instant),
}

impl Cached {
    pub(super) fn weight(&self) -> usize {
        match self {
            Self::Ok(_, weight) => *weight,
            Self::Failed(why, _) => why.len() + 64,
        }
    }
}

/// The cached schemas and failures, and what they weigh.
#[derive(Default)]
pub(super) struct CacheState {
    pub(super) entries: HashMap<u32, Cached>,
    pub(super) bytes: usize,
    /// A hash of each id's first good answer, kept when its schema is forgotten: an id
    /// fetched again must mean what it meant (at most [`MAX_FINGERPRINTS`] ids).
    fingerprints: HashMap<u32, u64>,
    /// Tests only: a compilation waits here until an async task has seen it running.
    #[cfg(test)]
    pub(super) rendezvous: Option<Arc<Rendezvous>>,
    /// Tests only: how many compilations started, and whether they panic.
    #[cfg(test)]
    pub(super) compiles: usize,
    #[cfg(test)]
    pub(super) panics: bool,
}

/// Tests only: a compilation that waits (at most 10 s) until an async task saw it running,
/// which on a current-thread runtime only happens when it runs off the async worker.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Rendezvous {
    /// Set by the compilation when it starts.
    pub(super) compiling: std::sync::atomic::AtomicBool,
    /// Set by an async task that saw `compiling`.
    pub(super) seen: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl Rendezvous {
    /// Called by a compilation: waits for [`Rendezvous::seen`] (bounded, so a failure ends).
    fn wait_to_be_seen(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.compiling.store(true, SeqCst);
        let give_up = Instant::now() + std::time::Duration::from_secs(10);
        while !self.seen.load(SeqCst) && Instant::now() < give_up {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The most ids whose first answer is remembered by its hash (12 bytes each).
const MAX_FINGERPRINTS: usize = 100_000;

/// A hash of an answer's bytes, for this run.
pub(super) fn fingerprint(body: &[u8]) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    h.write(body);
    h.finish()
}

impl Registry {
    /// The cached answer for `id`, if any (a remembered failure only for [`RETRY_AFTER`]).
    pub(super) fn cached(&self, id: u32) -> Option<Result<Arc<Registered>, Failure>> {
        match lock(&self.cache).entries.get(&id) {
            Some(Cached::Ok(s, _)) => Some(Ok(Arc::clone(s))),
            Some(Cached::Failed(why, at)) if at.elapsed() < RETRY_AFTER => {
                Some(Err(Failure::Dead(why.clone())))
            }
            _ => None,
        }
    }

    /// The gate of `id` (see [`Registry::schema`]); the gates nobody holds or waits for are
    /// dropped when there are many.
    pub(super) fn gate(&self, id: u32) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = lock(&self.gates);
        if gates.len() >= 1_024 {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        Arc::clone(gates.entry(id).or_default())
    }

    /// Drops `id`'s gate `gate` if nobody else holds or waits for it.
    pub(super) fn release(&self, id: u32, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut gates = lock(&self.gates);
        if gates
            .get(&id)
            .is_some_and(|g| Arc::ptr_eq(g, &gate) && Arc::strong_count(g) <= 2)
        {
            gates.remove(&id);
        }
    }
}

impl CacheState {
    /// Whether `hash` is the first answer seen for `id` in this run (remembering it if so).
    fn same_meaning(cache: &Mutex<Self>, id: u32, hash: u64) -> bool {
        let mut cache = lock(cache);
        let known = cache.fingerprints.len();
        match cache.fingerprints.get(&id) {
            Some(&first) => first == hash,
            None => {
                if known < MAX_FINGERPRINTS {
                    cache.fingerprints.insert(id, hash);
                }
                true
            }
        }
    }

    /// Caches `entry`, making room by forgetting failures first, then other schemas (they
    /// are fetched again when next needed): at most [`MAX_CACHED`] ids and
    /// [`MAX_CACHED_BYTES`].
    pub(super) fn remember(cache: &Mutex<Self>, id: u32, entry: Cached) {
        let mut guard = lock(cache);
        let cache = &mut *guard;
        if let Some(old) = cache.entries.remove(&id) {
            cache.bytes -= old.weight();
        }
        let fits = |c: &CacheState| {
            c.entries.len() < MAX_CACHED && c.bytes + entry.weight() <= MAX_CACHED_BYTES
        };
        if !fits(cache) {
            cache.entries.retain(|_, c| matches!(c, Cached::Ok(..)));
            cache.bytes = cache.entries.values().map(Cached::weight).sum();
        }
        while !fits(cache) {
            let Some(&victim) = cache.entries.keys().next() else {
                break;
            };
            if let Some(old) = cache.entries.remove(&victim) {
                cache.bytes -= old.weight();
            }
        }
        if fits(cache) {
            cache.bytes += entry.weight();
            cache.entries.insert(id, entry);
        }
    }
}

/// [`compile_answer`], a panic in it caught as the schema's refusal (a compiler's bug on
/// some hostile text is the message's fault, and remembered as any refused schema is: while
/// the id's gate is held, so no other caller compiles it meanwhile).
fn compile_caught(
    #[cfg_attr(not(test), allow(unused_variables))] cache: &Mutex<CacheState>,
    answer: Answer,
) -> Result<Registered, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        #[cfg(test)]
        {
            let panics = {
                let mut c = lock(cache);
                c.compiles += 1;
                c.panics
            };
            assert!(!panics, "a compiler that panics (test hook)");
        }
        compile_answer(answer)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let what: String = what.chars().take(200).collect();
        Err(format!(
            "compiling the schema failed (the compiler panicked: {what}); the sink refuses it \
             without compiling it again for {RETRY_AFTER:?}"
        ))
    })
}

/// `answer` (for `id`, its hash `hash`, `size` bytes) compiled, checked to mean what the id's
/// first answer in this run meant, and cached: a failure as the message's fault
/// ([`Failure::Dead`], naming the id).
///
/// It takes as long as the schema does (bounded by each parser's limits): it runs on a
/// blocking thread, never on an async worker.
pub(super) fn compile_and_cache(
    cache: &Mutex<CacheState>,
    id: u32,
    (answer, hash, size): (Answer, u64, usize),
) -> Result<Arc<Registered>, Failure> {
    #[cfg(test)]
    if let Some(r) = lock(cache).rendezvous.clone() {
        r.wait_to_be_seen();
    }
    let compiled = compile_caught(cache, answer).and_then(|s| {
        // An id means what its first answer in this run said: another schema later is
        // refused (and remembered) like any schema that cannot be used.
        if CacheState::same_meaning(cache, id, hash) {
            Ok(s)
        } else {
            Err(
                "the registry answered with another schema than earlier in this run (a \
                 registry's ids never change meaning); the sink keeps the first and refuses the \
                 message"
                    .into(),
            )
        }
    });
    match compiled {
        Ok(s) => {
            let weight = s.weight(size);
            if let Registered::Json(j) = &s {
                tracing::debug!(
                    "schema id {id}: a JSON Schema of {size} bytes compiled in {} steps, \
                     holding {weight} bytes",
                    j.compile_steps()
                );
            }
            let s = Arc::new(s);
            CacheState::remember(cache, id, Cached::Ok(Arc::clone(&s), weight));
            Ok(s)
        }
        Err(why) => {
            let why = format!("schema id {id}: {why}");
            CacheState::remember(cache, id, Cached::Failed(why.clone(), Instant::now()));
            Err(Failure::Dead(why))
        }
    }
}
