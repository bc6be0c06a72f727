//! A Confluent Schema Registry client: a schema by its id, fetched once and cached.
//!
//! `GET {url}/schemas/ids/{id}` (the registry's REST API) answers
//! `{"schema": "<the schema as a string>", "schemaType": "AVRO" | "JSON" | "PROTOBUF"}`
//! (`schemaType` absent means Avro). A schema id names one schema for good, so a parsed answer is
//! kept for the run.
//!
//! **Whose fault a failure is** decides what happens to the messages that need the schema:
//!
//! * **The message's** ([`Failure::Dead`]): the registry does not know the id (HTTP 404 with
//!   Confluent's `error_code` 40403), or its answer for the id is a schema that cannot be used (it
//!   does not parse or compile, references other schemas, has an unknown type, is larger than
//!   [`MAX_ANSWER`]). Every message with the id becomes a dead letter naming the failure. Such a
//!   failure is remembered for [`RETRY_AFTER`], so a burst of messages with a bad id costs one
//!   request, not one each.
//! * **Passing** (the registry cannot be reached, times out or resets the connection, answers
//!   HTTP 5xx, 429, 408 or anything else that is not about the id, or answers something that is
//!   not a registry's answer, e.g. a proxy's page or a 404 without error 40403: a wrong URL path).
//!   No message is blamed: [`Registry::schema`] tries again, with a backoff from
//!   [`FIRST_BACKOFF`] doubling to [`MAX_BACKOFF`], for as long as it takes, and warns (naming the
//!   registry's URLs and the failure) at most every [`WARN_EVERY`] across all partitions. The
//!   partition's worker waits meanwhile, so its messages wait, nothing is skipped and its offset
//!   token never moves past them; partitions whose schemas are cached go on. Nothing of it is
//!   cached. The wait ends when the future is dropped: the partition's worker drops it when it is
//!   told to stop (`partition.rs`), so a revoke or a shutdown never hangs on the registry.
//! * **The sink's configuration** ([`Failure::Refused`]): the registry refuses the sink's
//!   credentials (HTTP 401 or 403). Retrying would leave the topic unread with only a log line
//!   to show for it, and the fix is the operator's, so, as Kafka's own authorization errors do
//!   (`subscription.rs`), it stops the sink, non-zero, naming the registry and
//!   `--schema-registry-basic-auth`.
//!
//! **Several URLs.** `--schema-registry-url` may list registries separated by commas (as
//! Confluent's `schema.registry.url` does). A request goes to the URL that last answered;
//! when it cannot be had there (a passing failure, or refused credentials), the next ones are
//! tried in turn, and the first to answer is kept for the next requests.
//!
//! Requests go through reqwest with rustls (as the SDK), with basic auth when given (the secret is
//! never logged or put in a reason), a [`TIMEOUT`] each, and answers of at most [`MAX_ANSWER`]
//! bytes. A URL never holds credentials (refused at start); a URL quoted in an error has any
//! `user:password@` taken out ([`redact_url`]). Only partition workers call it, never the poll
//! thread, so a slow registry delays the partitions that wait for a schema and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::formats::avro::AvroSchema;
use crate::formats::json_schema::JsonSchema;
use crate::formats::protobuf::ProtoSchema;
use crate::lock;

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
pub const MAX_ANSWER: usize = 1 << 20;
/// How long a failure that is the message's fault is remembered before the id is asked for
/// again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// The first wait before asking again after a passing failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts (the backoff doubles up to it).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often, at most, a registry that cannot answer is warned about.
pub const WARN_EVERY: Duration = Duration::from_secs(30);
/// Most ids cached (a run sees a handful; a flood of garbage ids must not grow it for good).
const MAX_CACHED: usize = 10_000;
/// The most the cached schemas may weigh ([`Registered::weight`]): a registry (or whoever may
/// register schemas) serving thousands of 1 MB schemas, each id sent once, must not hold them
/// all.
pub const MAX_CACHED_BYTES: usize = 64 << 20;
/// What a parsed Avro or Protobuf schema is taken to weigh for each byte of its answer:
/// parsed, a schema holds several times its text (parsing a 0.9 MB Avro schema peaked at
/// 72 MB, measured). A JSON Schema is weighed by what it holds ([`JsonSchema::weight`]).
pub const SCHEMA_WEIGHT_PER_BYTE: usize = 24;
/// Confluent's `error_code` for "schema not found".
const SCHEMA_NOT_FOUND: u64 = 40403;

/// A schema as the registry gave it, parsed.
#[derive(Debug)]
pub enum Registered {
    /// An Avro schema.
    Avro(Box<AvroSchema>),
    /// A JSON Schema, compiled to the Connect schema payloads are read with.
    Json(Box<JsonSchema>),
    /// A Protobuf schema, compiled.
    Protobuf(ProtoSchema),
}

impl Registered {
    /// What it is taken to weigh in the cache, parsed from an answer of `answer` bytes: a JSON
    /// Schema what it holds, counted as it was compiled; an Avro or Protobuf schema
    /// [`SCHEMA_WEIGHT_PER_BYTE`] times its answer (their parsers' structures are not ours to
    /// count).
    pub fn weight(&self, answer: usize) -> usize {
        match self {
            Self::Json(s) => s.weight(),
            Self::Avro(_) | Self::Protobuf(_) => answer.saturating_mul(SCHEMA_WEIGHT_PER_BYTE),
        }
        .saturating_add(1024)
    }

    /// The registry's name of its type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Avro(_) => "AVRO",
            Self::Json(_) => "JSON",
            Self::Protobuf(_) => "PROTOBUF",
        }
    }
}

/// Why a schema cannot be had (a passing failure is never one: it is retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The message's fault (an unknown id, a schema that cannot be used): the message is a
    /// dead letter with this reason.
    Dead(String),
    /// The registry refuses the sink's credentials: the sink stops with this reason.
    Refused(String),
}

/// `user:password` for the registry's basic auth; never printed.
#[derive(Clone)]
pub struct BasicAuth {
    user: String,
    password: String,
}

impl BasicAuth {
    /// Parses `user:password` (the Confluent clients' `basic.auth.user.info`).
    ///
    /// # Errors
    /// Text without a `:` (the message does not repeat the text).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (user, password) = text.split_once(':').ok_or_else(|| {
            "the Schema Registry credentials are not USER:PASSWORD (no ':' found)".to_owned()
        })?;
        Ok(Self::new(user, password))
    }

    /// The credentials `user` and `password` (e.g. the Kafka client's `sasl.username` and
    /// `sasl.password`, for Confluent's `basic.auth.credentials.source=SASL_INHERIT`).
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth(***)")
    }
}

enum Cached {
    /// A schema, and what it weighs (see [`MAX_CACHED_BYTES`]).
    Ok(Arc<Registered>, usize),
    Failed(String, Instant),
}

impl Cached {
    fn weight(&self) -> usize {
        match self {
            Self::Ok(_, weight) => *weight,
            Self::Failed(why, _) => why.len() + 64,
        }
    }
}

/// The cached schemas and failures, and what they weigh.
#[derive(Default)]
struct CacheState {
    entries: HashMap<u32, Cached>,
    bytes: usize,
    /// A hash of each id's first good answer, kept when its schema is forgotten: an id
    /// fetched again must mean what it meant (at most [`MAX_FINGERPRINTS`] ids).
    fingerprints: HashMap<u32, u64>,
}

/// The most ids whose first answer is remembered by its hash (12 bytes each).
const MAX_FINGERPRINTS: usize = 100_000;

/// A hash of an answer's bytes, for this run.
fn fingerprint(body: &[u8]) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    h.write(body);
    h.finish()
}

/// What one round of requests says of the registries ([`Registry::probe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A registry answered as a registry does (its URL).
    Answers(String),
    /// The registries refuse the credentials (or redirect): the reason, naming the fix.
    Refused(String),
    /// No registry answered (unreachable, timing out, or not a registry's answer): why.
    Unreachable(String),
}

/// One request's outcome.
enum Attempt {
    /// A registry's answer for the id (not yet compiled), its hash ([`fingerprint`]) and size.
    Got(Answer, u64, usize),
    /// The message's fault.
    Dead(String),
    /// Try again (later, or at the next URL).
    Passing(String),
    /// The credentials are refused.
    Refused(String),
}

/// The client and its cache, shared by the partition workers.
pub struct Registry {
    /// The registries, in the order given (`http(s)://host[:port][/path]`, no credentials).
    urls: Vec<String>,
    /// The URL that answered last (an index of `urls`).
    current: AtomicUsize,
    auth: Option<BasicAuth>,
    http: reqwest::Client,
    /// Shared with the compilations in flight, which cache what they make (even when the
    /// partition that started one has stopped waiting for it).
    cache: Arc<Mutex<CacheState>>,
    /// One fetch and compilation per id at a time: each id's gate, held while its schema is
    /// fetched and compiled (see [`Registry::schema`]).
    gates: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<()>>>>,
    /// When a passing failure was last warned about.
    warned: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("urls", &self.urls)
            .finish()
    }
}

/// `url` with any `user:password@` replaced by `***@`, to be quoted in a message.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    // Up to the last `@` anywhere: a password may hold `/`, `?` or `#` (unescaped, it is no
    // valid URL, but it is still a secret).
    match rest.rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_owned(),
    }
}

/// One registry URL of `--schema-registry-url`, checked: `http://` or `https://` (the scheme in
/// any case), no credentials; without a trailing `/`.
fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let scheme_end = url.find("://");
    let scheme = scheme_end.map(|i| url[..i].to_ascii_lowercase());
    let Some(("http" | "https", end)) = scheme.as_deref().zip(scheme_end) else {
        return Err(format!(
            "--schema-registry-url {:?} is not an http:// or https:// URL",
            redact_url(url)
        ));
    };
    let rest = &url[end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    // Any `@`: credentials whose password holds `/`, `?` or `#` end the authority early.
    if rest.contains('@') {
        return Err(format!(
            "--schema-registry-url {:?} holds credentials: remove them from the URL and give \
             them with --schema-registry-basic-auth",
            redact_url(url)
        ));
    }
    if authority.is_empty() {
        return Err(format!("--schema-registry-url {url:?} names no host"));
    }
    Ok(format!("{}://{rest}", scheme.unwrap_or_default()))
}

/// Whether `url` (as [`check_url`] gives it) is `http://` to a host other than this machine
/// (the SDK's rule, [`snowpipe_streaming::is_loopback`]); an `http://` URL that does not parse
/// counts as elsewhere.
fn is_cleartext_elsewhere(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => u.scheme() == "http" && !snowpipe_streaming::is_loopback(&u),
        Err(_) => url.starts_with("http://"),
    }
}

/// At most 200 characters of what a registry sent, escaped: it goes into logs and reasons.
fn excerpt(text: &str) -> String {
    text.chars()
        .take(200)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

impl Registry {
    /// A client of the registries at `urls`: one `http://` or `https://` URL, or several
    /// separated by commas, none with credentials in it.
    ///
    /// # Errors
    /// No URL, a URL that is not `http(s)://…` or holds `user:password@` (they belong in
    /// `auth`; the message never shows them), `http://` to another machine with `auth` (the
    /// credentials would go in clear text), or an HTTP client that cannot be built.
    pub fn new(urls: &str, auth: Option<BasicAuth>) -> Result<Self, String> {
        let urls = urls
            .split(',')
            .filter(|u| !u.trim().is_empty())
            .map(check_url)
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err("--schema-registry-url names no URL".to_owned());
        }
        if auth.is_some() {
            if let Some(cleartext) = urls.iter().find(|u| is_cleartext_elsewhere(u)) {
                return Err(format!(
                    "--schema-registry-url {cleartext} is http:// to another machine, and the \
                     registry's credentials would cross the network in clear text: use the \
                     registry's https:// URL"
                ));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // A redirect is answered as a configuration error (`fetch_from`): followed, it
            // could take the credentials to another host or from https to http.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the Schema Registry client: {e}"))?;
        Ok(Self {
            urls,
            current: AtomicUsize::new(0),
            auth,
            http,
            cache: Arc::default(),
            gates: Mutex::default(),
            warned: Mutex::default(),
        })
    }

    /// The registries' URLs, in the order given.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Asks the registries once (each URL in turn, as a schema is fetched) for schema id 0,
    /// which no registry gives (ids start at 1): "not found" (or a schema) shows a registry
    /// that answers and takes the credentials; nothing is cached or retried. For
    /// `snowpipe-kafka check`.
    ///
    /// # Cancellation
    /// Dropping the future drops the request in flight.
    pub async fn probe(&self) -> Probe {
        match self.fetch(0).await {
            Attempt::Got(..) | Attempt::Dead(_) => Probe::Answers(
                self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()].clone(),
            ),
            Attempt::Refused(why) => Probe::Refused(why),
            Attempt::Passing(why) => Probe::Unreachable(why),
        }
    }

    /// The cached answer for `id`, if any (a remembered failure only for [`RETRY_AFTER`]).
    fn cached(&self, id: u32) -> Option<Result<Arc<Registered>, Failure>> {
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
    fn gate(&self, id: u32) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = lock(&self.gates);
        if gates.len() >= 1_024 {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        Arc::clone(gates.entry(id).or_default())
    }

    /// Drops `id`'s gate `gate` if nobody else holds or waits for it.
    fn release(&self, id: u32, gate: Arc<tokio::sync::Mutex<()>>) {
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
    fn remember(cache: &Mutex<Self>, id: u32, entry: Cached) {
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

/// `answer` (for `id`, its hash `hash`, `size` bytes) compiled, checked to mean what the id's
/// first answer in this run meant, and cached: a failure as the message's fault
/// ([`Failure::Dead`], naming the id).
///
/// It takes as long as the schema does (bounded by each parser's limits): it runs on a
/// blocking thread, never on an async worker.
fn compile_and_cache(
    cache: &Mutex<CacheState>,
    id: u32,
    (answer, hash, size): (Answer, u64, usize),
) -> Result<Arc<Registered>, Failure> {
    let compiled = compile_answer(answer).and_then(|s| {
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

impl Registry {
    /// The schema with `id`: from the cache, or fetched and parsed; a passing failure is
    /// retried (with backoff, warned about) until the registry answers.
    ///
    /// One caller at a time fetches and compiles an id (it holds the id's gate); the others
    /// (partitions meeting the same new id at once) wait for the gate and then find the
    /// schema, or its failure, cached. The compilation runs on a blocking thread
    /// (`spawn_blocking`), never on an async worker, and keeps the gate until it ends, also
    /// when its caller stops waiting: there is never a second compilation of an id beside
    /// it, and what it makes is cached.
    ///
    /// # Errors
    /// [`Failure::Dead`]: the id is unknown or its schema cannot be used (remembered for
    /// [`RETRY_AFTER`]); [`Failure::Refused`]: the registry refuses the credentials.
    ///
    /// # Cancellation
    /// Cancel-safe, and the way to end a wait: dropping the future stops the request or the
    /// wait in flight, and nothing is cached or lost.
    pub async fn schema(&self, id: u32) -> Result<Arc<Registered>, Failure> {
        if i32::try_from(id).is_err() {
            // The registry's ids are Java ints: it answers a larger one with a plain 404, which
            // is not its "unknown id" (40403) and would be retried for good.
            return Err(Failure::Dead(format!(
                "schema id {id} is larger than any a Schema Registry gives ({}): the value is not \
                 in the registry's wire format (check --value-format)",
                i32::MAX
            )));
        }
        if let Some(cached) = self.cached(id) {
            return cached;
        }
        let gate = self.gate(id);
        let outcome = self.schema_gated(id, &gate).await;
        self.release(id, gate);
        outcome
    }

    /// [`Registry::schema`] past the cache: through `id`'s gate.
    async fn schema_gated(
        &self,
        id: u32,
        gate: &Arc<tokio::sync::Mutex<()>>,
    ) -> Result<Arc<Registered>, Failure> {
        let held = Arc::clone(gate).lock_owned().await;
        let mut backoff = FIRST_BACKOFF;
        let mut failing_since = None;
        loop {
            // Another partition may have had it meanwhile.
            if let Some(cached) = self.cached(id) {
                return cached;
            }
            match self.fetch(id).await {
                Attempt::Got(answer, hash, size) => {
                    let cache = Arc::clone(&self.cache);
                    let compiled = tokio::task::spawn_blocking(move || {
                        let _held = held;
                        compile_and_cache(&cache, id, (answer, hash, size))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Err(Failure::Dead(format!(
                            "schema id {id}: compiling the schema failed ({e})"
                        )))
                    });
                    if let (Ok(_), Some(since)) = (&compiled, failing_since) {
                        tracing::warn!(
                            registry = %self.urls.join(","),
                            "the Schema Registry answers again (schema id {id}, after {:?}); \
                             the waiting partitions go on",
                            Instant::elapsed(&since)
                        );
                    }
                    return compiled;
                }
                Attempt::Dead(why) => {
                    let why = format!("schema id {id}: {why}");
                    CacheState::remember(
                        &self.cache,
                        id,
                        Cached::Failed(why.clone(), Instant::now()),
                    );
                    return Err(Failure::Dead(why));
                }
                Attempt::Refused(why) => return Err(Failure::Refused(why)),
                Attempt::Passing(why) => {
                    failing_since.get_or_insert_with(Instant::now);
                    self.warn(id, &why);
                    tokio::time::sleep(backoff).await;
                    backoff = next_backoff(backoff);
                }
            }
        }
    }

    /// Warns that `id` cannot be had for a passing reason `why`, at most every [`WARN_EVERY`]
    /// (across all partitions; in between at debug).
    fn warn(&self, id: u32, why: &str) {
        let mut warned = lock(&self.warned);
        if warned.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            tracing::debug!(registry = %self.urls.join(","), "schema id {id}: {why}; retrying");
            return;
        }
        *warned = Some(Instant::now());
        tracing::warn!(
            registry = %self.urls.join(","),
            "the Schema Registry cannot give schema id {id}: {why}. The partitions that need it \
             wait and nothing is skipped; retrying with a backoff up to {MAX_BACKOFF:?} (this \
             warning repeats at most every {WARN_EVERY:?})"
        );
    }

    /// One round: the URL that answered last, then the others in turn while they fail for a
    /// passing reason or refuse the credentials.
    async fn fetch(&self, id: u32) -> Attempt {
        let first = self.current.load(Ordering::Relaxed) % self.urls.len();
        let mut passing = Vec::new();
        let mut refused = None;
        for k in 0..self.urls.len() {
            let i = (first + k) % self.urls.len();
            match self.fetch_from(&self.urls[i], id).await {
                Attempt::Passing(why) => passing.push(why),
                Attempt::Refused(why) => refused = refused.or(Some(why)),
                answered => {
                    self.current.store(i, Ordering::Relaxed);
                    return answered;
                }
            }
        }
        match refused {
            Some(why) => Attempt::Refused(why),
            None => Attempt::Passing(passing.join("; ")),
        }
    }

    async fn fetch_from(&self, base: &str, id: u32) -> Attempt {
        let url = format!("{base}/schemas/ids/{id}");
        let mut request = self.http.get(&url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.user, Some(&auth.password));
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Passing(format!("{base} cannot be reached: {}", without_url(&e)))
            }
        };
        let status = response.status();
        if status.is_redirection() {
            let to: String = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(excerpt)
                .unwrap_or_default();
            return Attempt::Refused(format!(
                "{base} answered HTTP {status}, a redirect (to \"{to}\"): the sink does not \
                 follow redirects, so that the registry's credentials never go to another host \
                 or over http; give the registry's own URL with --schema-registry-url"
            ));
        }
        let mut body = Vec::new();
        let mut whole = true;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER => {
                    whole = false;
                    break;
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    return Attempt::Passing(format!(
                        "reading the answer of {base} failed: {}",
                        without_url(&e)
                    ))
                }
            }
        }
        if status.is_success() {
            if !whole {
                return Attempt::Dead(format!(
                    "the Schema Registry's answer is larger than {MAX_ANSWER} bytes"
                ));
            }
            // Only read here (linear in the answer); compiled by the caller, off the workers.
            return match parse_envelope(&body) {
                Ok(answer) => Attempt::Got(answer, fingerprint(&body), body.len()),
                Err(why) => Attempt::Passing(format!(
                    "{base} answered HTTP {status} with {why}: is --schema-registry-url the \
                     registry's URL?"
                )),
            };
        }
        let excerpt = excerpt(&String::from_utf8_lossy(&body));
        match classify(status.as_u16(), &body) {
            Class::NotFound => Attempt::Dead(format!(
                "the Schema Registry answered HTTP {status}: the id is not in this registry (is \
                 the producer's registry the same?) ({excerpt})"
            )),
            Class::Refused => Attempt::Refused(format!(
                "the Schema Registry at {base} refuses the sink's credentials (HTTP {status}: \
                 {excerpt}): give the registry's USER:PASSWORD with --schema-registry-basic-auth \
                 (or value.converter.basic.auth.user.info in --connector-config), and check that \
                 the user may read schemas"
            )),
            Class::Passing(hint) => {
                Attempt::Passing(format!("{base} answered HTTP {status}{hint} ({excerpt})"))
            }
        }
    }
}

/// The wait after `backoff`: doubled, at most [`MAX_BACKOFF`].
fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(MAX_BACKOFF)
}

/// Whose fault an answer that is not a success is.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// The id is not in the registry.
    NotFound,
    /// The credentials are refused.
    Refused,
    /// Anything else: try again (with a hint for the log).
    Passing(&'static str),
}

/// Classifies an HTTP `status` (not a success) with its `body`.
fn classify(status: u16, body: &[u8]) -> Class {
    #[derive(serde::Deserialize)]
    struct ErrorAnswer {
        error_code: u64,
    }
    match status {
        404 => match serde_json::from_slice::<ErrorAnswer>(body) {
            Ok(e) if e.error_code == SCHEMA_NOT_FOUND => Class::NotFound,
            _ => Class::Passing(
                ": not the registry's \"schema not found\" (error_code 40403), so the URL's path \
                 is likely wrong: check --schema-registry-url",
            ),
        },
        401 | 403 => Class::Refused,
        408 | 429 => Class::Passing(""),
        s if s >= 500 => Class::Passing(""),
        _ => Class::Passing(": an answer the sink does not expect; check --schema-registry-url"),
    }
}

/// A reqwest error's text without its URL (the URL is already in the reason).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(serde::Deserialize)]
struct Answer {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

/// Why a successful answer gives no schema.
#[cfg(test)]
#[derive(Debug)]
enum BadAnswer {
    /// It is not a registry's answer (`{"schema": "…"}`): not the message's fault.
    NotAnAnswer(String),
    /// The schema it holds cannot be used: the message's fault.
    Schema(String),
}

/// The registry's answer, read (not compiled: [`compile_answer`]).
///
/// # Errors
/// An answer that is not `{"schema": "…"}` (not the message's fault: a wrong URL, a proxy).
fn parse_envelope(body: &[u8]) -> Result<Answer, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("something that is not {{\"schema\": \"…\"}} ({e})"))
}

/// The schema of a registry's answer, compiled: as long as the schema takes (bounded by each
/// parser's limits), so never on an async worker.
///
/// # Errors
/// A schema with references, an unknown schema type, a schema that does not parse or compile.
fn compile_answer(answer: Answer) -> Result<Registered, String> {
    if !answer.references.is_empty() {
        return Err(
            "the schema references other schemas, which this sink does not resolve yet".into(),
        );
    }
    match answer.schema_type.as_deref().unwrap_or("AVRO") {
        "AVRO" => AvroSchema::parse(&answer.schema).map(|s| Registered::Avro(Box::new(s))),
        "JSON" => JsonSchema::parse(&answer.schema).map(|s| Registered::Json(Box::new(s))),
        "PROTOBUF" => ProtoSchema::parse(&answer.schema).map(Registered::Protobuf),
        other => Err(format!("the schema type {other:?} is unknown")),
    }
}

/// The registry's answer, read and compiled.
#[cfg(test)]
fn parse_answer(body: &[u8]) -> Result<Registered, BadAnswer> {
    compile_answer(parse_envelope(body).map_err(BadAnswer::NotAnAnswer)?).map_err(BadAnswer::Schema)
}

#[cfg(test)]
mod tests;
