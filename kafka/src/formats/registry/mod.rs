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
//!   does not parse or compile, its compiler panics on it, references other schemas, has an
//!   unknown type, is larger than [`MAX_ANSWER`]). Every message with the id becomes a dead letter naming the failure. Such a
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

mod cache;
mod fetch;
mod schema;
mod urls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lock::lock;
use cache::{compile_and_cache, CacheState, Cached};
use fetch::Attempt;
pub(crate) use schema::Registered;
pub(crate) use urls::redact_url;
use urls::{check_url, is_cleartext_elsewhere};

/// How long one request may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
pub(crate) const MAX_ANSWER: usize = 1 << 20;
/// How long a failure that is the message's fault is remembered before the id is asked for
/// again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(10);
/// The first wait before asking again after a passing failure.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts (the backoff doubles up to it).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often, at most, a registry that cannot answer is warned about.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(30);
/// The most the cached schemas may weigh ([`Registered::weight`]): a registry (or whoever may
/// register schemas) serving thousands of 1 MB schemas, each id sent once, must not hold them
/// all.
pub(crate) const MAX_CACHED_BYTES: usize = 64 << 20;

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
                        // The compiler's own panics are caught and cached in the task
                        // (`cache::compile_caught`); one past them is remembered here.
                        let why = format!("schema id {id}: compiling the schema failed ({e})");
                        CacheState::remember(
                            &self.cache,
                            id,
                            Cached::Failed(why.clone(), Instant::now()),
                        );
                        Err(Failure::Dead(why))
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
}

/// The wait after `backoff`: doubled, at most [`MAX_BACKOFF`].
fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(MAX_BACKOFF)
}

#[cfg(test)]
use fetch::{classify, Class};
#[cfg(test)]
use schema::{parse_answer, BadAnswer};

#[cfg(test)]
mod tests;
