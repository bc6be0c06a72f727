//! The scoped-token cache (docs/protocol-wire.md §2.2).
//!
//! * The token is fetched once and cached; callers get it without any I/O.
//! * It is refreshed when less than `refresh_ahead` (default 5 min, or half the token's
//!   lifetime if that is shorter) remains. That refresh runs in ONE background task: callers
//!   keep getting the still-valid cached token at once, so a slow or failing control plane
//!   never delays data-plane calls while the token is valid. If the refresh fails, it is
//!   retried [`REFRESH_RETRY_AFTER`] later. Callers wait for an exchange only when there is
//!   no token yet, when it has expired, or after a 401.
//! * After an HTTP 401, [`TokenManager::invalidate_and_refresh`] is single-flight: every
//!   caller that saw the same rejected token shares ONE exchange (a tokio mutex plus a
//!   generation number per token). The official SDK fires about 20 exchanges per 401.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use tokio::time::Instant;

use crate::auth::{AuthHeader, Authenticator, Secret};
use crate::Result;

/// How long to wait before retrying a failed refresh while the cached token is still valid.
const REFRESH_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Fetches a new scoped token (the HTTP exchange; a counting fake in tests).
#[async_trait]
pub(crate) trait TokenFetcher: Send + Sync + fmt::Debug {
    /// Returns the raw token text.
    async fn fetch(&self) -> Result<String>;
}

/// A cached scoped token.
#[derive(Debug)]
pub(crate) struct CachedToken {
    pub(crate) value: Secret,
    pub(crate) generation: u64,
    pub(crate) expires_at: Instant,
    /// When to refresh ahead of expiry (moved later after a failed refresh).
    refresh_at: Instant,
}

impl CachedToken {
    fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// Caches the scoped token and refreshes it.
pub(crate) struct TokenManager {
    /// Itself, for spawning the background refresh.
    me: Weak<Self>,
    fetcher: Arc<dyn TokenFetcher>,
    current: RwLock<Option<Arc<CachedToken>>>,
    /// Held during every exchange (single flight).
    refresh_lock: tokio::sync::Mutex<()>,
    /// Set while a background refresh ahead of expiry is scheduled or running.
    refreshing: AtomicBool,
    refresh_ahead: Duration,
    default_ttl: Duration,
    generation: AtomicU64,
    exchanges: AtomicU64,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("fetcher", &self.fetcher)
            .field("refresh_ahead", &self.refresh_ahead)
            .field("default_ttl", &self.default_ttl)
            .field("exchanges", &self.exchanges.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// `refresh_ahead`: refresh when less than this remains (capped at half the lifetime).
    /// `default_ttl`: lifetime assumed when the token is not a decodable JWT.
    pub(crate) fn new(
        fetcher: Arc<dyn TokenFetcher>,
        refresh_ahead: Duration,
        default_ttl: Duration,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: Weak::clone(me),
            fetcher,
            current: RwLock::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            refresh_ahead,
            default_ttl,
            generation: AtomicU64::new(0),
            exchanges: AtomicU64::new(0),
        })
    }

    /// How many token exchanges have been made.
    #[cfg(test)]
    pub(crate) fn exchange_count(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    fn cached(&self) -> Option<Arc<CachedToken>> {
        crate::sync::read(&self.current).clone()
    }

    /// The current token. Inside the refresh-ahead window the cached token is returned at
    /// once and one background refresh is started; the caller waits for an exchange only
    /// when there is no unexpired token.
    ///
    /// Cancelling (dropping) the future while it waits for an exchange is harmless: the
    /// exchange is abandoned or finished by another waiter, and nothing is cached half-way.
    ///
    /// # Errors
    /// The exchange's error when there is no valid token to fall back on.
    pub(crate) async fn token(&self) -> Result<Arc<CachedToken>> {
        if let Some(t) = self.cached() {
            let now = Instant::now();
            if now < t.refresh_at {
                return Ok(t);
            }
            if !t.is_expired(now) {
                self.refresh_in_background();
                return Ok(t);
            }
        }
        let _guard = self.refresh_lock.lock().await;
        if let Some(t) = self.cached() {
            if !t.is_expired(Instant::now()) {
                return Ok(t);
            }
        }
        self.fetch_and_store().await
    }

    /// Starts the refresh ahead of expiry unless one is already scheduled or running.
    fn refresh_in_background(&self) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (Some(me), Ok(runtime)) = (self.me.upgrade(), tokio::runtime::Handle::try_current())
        else {
            // No runtime to run it on: the token is refreshed when it expires.
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(async move { me.refresh_ahead().await });
    }

    /// The background refresh: one exchange; on failure the cached (still valid) token stays
    /// and the refresh is retried [`REFRESH_RETRY_AFTER`] later.
    async fn refresh_ahead(&self) {
        /// Clears `refreshing` however the task ends (also when the runtime drops it).
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _done = Done(&self.refreshing);
        let _guard = self.refresh_lock.lock().await;
        let Some(cached) = self.cached() else {
            return;
        };
        if Instant::now() < cached.refresh_at {
            return; // refreshed meanwhile (e.g. after a 401)
        }
        if let Err(e) = self.fetch_and_store().await {
            tracing::warn!(
                error = %e,
                "refreshing the scoped token ahead of expiry failed; using the cached token and retrying in {REFRESH_RETRY_AFTER:?}"
            );
            let mut current = crate::sync::write(&self.current);
            if let Some(t) = current
                .as_ref()
                .filter(|t| t.generation == cached.generation)
            {
                *current = Some(Arc::new(CachedToken {
                    value: t.value.clone(),
                    generation: t.generation,
                    expires_at: t.expires_at,
                    refresh_at: Instant::now() + REFRESH_RETRY_AFTER,
                }));
            }
        }
    }

    /// After a 401 with the token of generation `seen`: refreshes it, unless another caller
    /// (or the background refresh) already did (then the newer token is returned without a
    /// new exchange).
    ///
    /// Cancelling (dropping) the future is harmless, as for [`TokenManager::token`].
    ///
    /// # Errors
    /// The exchange's error.
    pub(crate) async fn invalidate_and_refresh(&self, seen: u64) -> Result<Arc<CachedToken>> {
        let _guard = self.refresh_lock.lock().await;
        if let Some(t) = self.cached() {
            if t.generation != seen && !t.is_expired(Instant::now()) {
                return Ok(t);
            }
        }
        self.fetch_and_store().await
    }

    /// Exchanges and caches. Call with `refresh_lock` held.
    async fn fetch_and_store(&self) -> Result<Arc<CachedToken>> {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("snowpipe_streaming_token_exchanges_total").increment(1);
        let raw = self.fetcher.fetch().await?;
        let ttl = token_ttl(&raw, SystemTime::now()).unwrap_or(self.default_ttl);
        let ahead = self.refresh_ahead.min(ttl / 2);
        let now = Instant::now();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let token = Arc::new(CachedToken {
            value: Secret::new(raw),
            generation,
            expires_at: now + ttl,
            refresh_at: now + (ttl - ahead),
        });
        tracing::debug!(generation, ttl_s = ttl.as_secs(), "scoped token obtained");
        *crate::sync::write(&self.current) = Some(Arc::clone(&token));
        Ok(token)
    }
}

#[async_trait]
impl Authenticator for TokenManager {
    async fn authorization(&self) -> Result<AuthHeader> {
        let t = self.token().await?;
        Ok(AuthHeader {
            token: t.value.clone(),
            scheme: "Bearer",
            token_type: Some("OAUTH"),
            generation: t.generation,
        })
    }

    async fn unauthorized(&self, rejected: &AuthHeader) -> Result<bool> {
        self.invalidate_and_refresh(rejected.generation).await?;
        Ok(true)
    }

    fn rejection_hint(&self) -> String {
        "Snowflake kept rejecting the scoped token even after refreshing it: check the role's \
         privileges on the pipe and that the user is not disabled"
            .to_owned()
    }
}

/// The remaining lifetime of a JWT-shaped token, from its payload's `exp` (seconds; a value
/// that can only be milliseconds is accepted too). `None` when the token is not a decodable
/// JWT with a numeric `exp`.
pub(crate) fn token_ttl(token: &str, now: SystemTime) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let mut exp = claims.get("exp")?.as_f64()?;
    if exp > 100_000_000_000.0 {
        exp /= 1000.0; // milliseconds
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    Some(crate::wire_time::clamp_secs(
        exp - now,
        crate::wire_time::MAX_TOKEN_TTL,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn jwt_with_exp(exp: u64) -> String {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
        };
        format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg":"HS256"})),
            enc(serde_json::json!({"exp": exp}))
        )
    }

    fn now_s() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        ttl_s: u64,
        delay: Duration,
    }

    #[async_trait]
    impl TokenFetcher for Counting {
        async fn fetch(&self) -> Result<String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(jwt_with_exp(now_s() + self.ttl_s))
        }
    }

    /// Lets the background refresh run to completion (paused time advances as needed).
    async fn settle(m: &TokenManager) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let _ = m.refresh_lock.lock().await;
        while m.refreshing.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn manager(ttl_s: u64, delay: Duration) -> (Arc<Counting>, Arc<TokenManager>) {
        over(Counting {
            calls: AtomicUsize::new(0),
            ttl_s,
            delay,
        })
    }

    /// `n` concurrent callers reporting generation `seen` rejected each get generation
    /// `seen + 1`.
    async fn all_see_one_refresh(m: &Arc<TokenManager>, seen: u64, n: usize) {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let m = Arc::clone(m);
                tokio::spawn(
                    async move { m.invalidate_and_refresh(seen).await.unwrap().generation },
                )
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), seen + 1);
        }
    }

    /// A manager over `fetcher` that refreshes 5 minutes ahead (default TTL 1 hour).
    fn over<F: TokenFetcher + 'static>(fetcher: F) -> (Arc<F>, Arc<TokenManager>) {
        let f = Arc::new(fetcher);
        let m = TokenManager::new(
            Arc::clone(&f) as Arc<dyn TokenFetcher>,
            Duration::from_secs(300),
            Duration::from_secs(3600),
        );
        (f, m)
    }

    /// A scoped token whose `exp` a hostile or broken server made huge, negative or not a
    /// number: never a panic, a lifetime within bounds, and a fetched token usable.
    #[tokio::test(start_paused = true)]
    async fn a_token_with_an_extreme_exp_never_panics() {
        let now = SystemTime::now();
        let jwt = |exp: serde_json::Value| {
            let enc = |v: serde_json::Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&v).unwrap())
            };
            format!(
                "{}.{}.sig",
                enc(serde_json::json!({"alg":"HS256"})),
                enc(serde_json::json!({"exp": exp}))
            )
        };
        let max = crate::wire_time::MAX_TOKEN_TTL;
        for (exp, want) in [
            (serde_json::json!(1e30), Some(max)),
            (serde_json::json!(f64::MAX), Some(max)),
            (serde_json::json!(u64::MAX), Some(max)),
            (serde_json::json!(-1e30), Some(Duration::ZERO)),
            (serde_json::json!(-5), Some(Duration::ZERO)),
            (serde_json::json!(0), Some(Duration::ZERO)),
            (serde_json::json!("1e30"), None),
            (serde_json::json!(null), None),
            (serde_json::json!({"n": 1}), None),
        ] {
            assert_eq!(token_ttl(&jwt(exp.clone()), now), want, "{exp}");
        }
        // Fetched through the manager: cached with the bounded lifetime, usable at once.
        #[derive(Debug)]
        struct Huge(String);
        #[async_trait]
        impl TokenFetcher for Huge {
            async fn fetch(&self) -> Result<String> {
                Ok(self.0.clone())
            }
        }
        let (_, m) = over(Huge(jwt(serde_json::json!(1e30))));
        let t = m.token().await.unwrap();
        assert_eq!(t.expires_at - Instant::now(), max);
    }

    #[test]
    fn ttl_from_jwt_seconds_and_millis() {
        let now = SystemTime::now();
        let n = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let ttl = token_ttl(&jwt_with_exp(n + 3600), now).unwrap();
        assert!(ttl.as_secs() >= 3599 && ttl.as_secs() <= 3600, "{ttl:?}");
        let ttl = token_ttl(&jwt_with_exp((n + 600) * 1000), now).unwrap();
        assert!(ttl.as_secs() >= 599 && ttl.as_secs() <= 600, "{ttl:?}");
        assert_eq!(token_ttl("opaque-token", now), None);
        assert_eq!(token_ttl("a.b.c", now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn cached_until_refresh_ahead_window() {
        let (f, m) = manager(3600, Duration::ZERO);
        let a = m.token().await.unwrap();
        let b = m.token().await.unwrap();
        assert_eq!(a.generation, b.generation);
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        // 3600 s token, refreshed 300 s ahead: still cached at 3299 s...
        tokio::time::advance(Duration::from_secs(3299)).await;
        assert_eq!(m.token().await.unwrap().generation, a.generation);
        // ...refreshed in the background from 3300 s: the call still gets the valid token.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(m.token().await.unwrap().generation, a.generation);
        settle(&m).await;
        assert_ne!(m.token().await.unwrap().generation, a.generation);
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn short_tokens_refresh_at_half_life() {
        let (f, m) = manager(120, Duration::ZERO);
        m.token().await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        m.token().await.unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        m.token().await.unwrap();
        settle(&m).await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_fetch_is_single_flight() {
        let (f, m) = manager(3600, Duration::from_millis(50));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let m = Arc::clone(&m);
                tokio::spawn(async move { m.token().await.unwrap().generation })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 1);
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_is_single_flight_per_generation() {
        let (f, m) = manager(3600, Duration::from_millis(50));
        let seen = m.token().await.unwrap().generation;
        all_see_one_refresh(&m, seen, 20).await;
        assert_eq!(
            f.calls.load(Ordering::SeqCst),
            2,
            "one initial fetch + one refresh"
        );
        assert_eq!(m.exchange_count(), 2);
    }

    /// The first exchange gives a token valid for 10 minutes; every later one takes `delay`,
    /// then fails.
    #[derive(Debug)]
    struct FailAfterFirst {
        calls: AtomicUsize,
        delay: Duration,
    }

    #[async_trait]
    impl TokenFetcher for FailAfterFirst {
        async fn fetch(&self) -> Result<String> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Ok(jwt_with_exp(now_s() + 600));
            }
            tokio::time::sleep(self.delay).await;
            Err(crate::Error::auth("exchange down"))
        }
    }

    fn failing_after_first(delay: Duration) -> (Arc<FailAfterFirst>, Arc<TokenManager>) {
        over(FailAfterFirst {
            calls: AtomicUsize::new(0),
            delay,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refresh_ahead_keeps_the_valid_token() {
        let (f, m) = failing_after_first(Duration::ZERO);
        let first = m.token().await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await; // inside the refresh window
        let again = m.token().await.unwrap();
        assert_eq!(again.generation, first.generation);
        settle(&m).await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        // The failed refresh is not retried on every call.
        m.token().await.unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        // Once expired, the error surfaces.
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(m.token().await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_refresh_ahead_does_not_delay_callers() {
        // The second exchange hangs for a minute, then fails.
        let (f, m) = failing_after_first(Duration::from_secs(60));
        let first = m.token().await.unwrap();
        // Inside the refresh window. Paused time: if a call waited for the 60 s exchange, the
        // 1 ms timeout would fire first.
        tokio::time::advance(Duration::from_secs(301)).await;
        for _ in 0..20 {
            let t = tokio::time::timeout(Duration::from_millis(1), m.token())
                .await
                .expect("a call waited for the refresh ahead of expiry")
                .unwrap();
            assert_eq!(t.generation, first.generation);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 2, "one background exchange");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_during_the_background_refresh_shares_it() {
        let (f, m) = manager(3600, Duration::from_millis(50));
        let seen = m.token().await.unwrap().generation;
        tokio::time::advance(Duration::from_secs(3301)).await;
        assert_eq!(m.token().await.unwrap().generation, seen); // starts the refresh
        all_see_one_refresh(&m, seen, 10).await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn opaque_token_uses_default_ttl() {
        #[derive(Debug)]
        struct Opaque;
        #[async_trait]
        impl TokenFetcher for Opaque {
            async fn fetch(&self) -> Result<String> {
                Ok("opaque".into())
            }
        }
        let (_, m) = over(Opaque);
        let t = m.token().await.unwrap();
        assert_eq!(t.expires_at - Instant::now(), Duration::from_secs(3600));
    }
}
