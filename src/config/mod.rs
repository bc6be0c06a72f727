//! Client configuration: [`ClientBuilder`].
//!
//! Settings come from setters, from a `profile.json` in the official SDK's format
//! ([`ClientBuilder::from_profile_file`]), from a connection of Snowflake's `connections.toml`
//! ([`ClientBuilder::from_connection`]), from `SNOWFLAKE_*` environment variables
//! ([`ClientBuilder::from_env`]) or from string keys ([`ClientBuilder::with_config`]); later
//! calls override earlier ones. [`ClientBuilder::build`] validates everything and names the
//! setting at fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::credentials::CredentialSettings;
use crate::auth::{AuthorizationType, Secret};
use crate::error::Error;
use crate::http::options::HttpOptions;
use crate::http::{user_agent, HttpClient, RetryConfig};
use crate::rest::{ConnectOptions, RestApi};
use crate::settings::ChannelSettings;
use crate::Compression;
use crate::{Result, StreamingIngestClient};

use crate::settings::{MAX_CLIENT_LAG, MAX_REQUEST_BYTES, MIN_CLIENT_LAG, MIN_REQUEST_BYTES};

/// Builds a [`StreamingIngestClient`]: connection, authentication and channel settings.
///
/// Every setter takes and returns the builder. Nothing is checked until
/// [`build`](Self::build), which reports the first invalid setting by name.
///
/// # Examples
/// ```no_run
/// # async fn run() -> snowpipe_streaming::Result<()> {
/// use std::time::Duration;
/// use snowpipe_streaming::StreamingIngestClient;
///
/// let client = StreamingIngestClient::builder()
///     .account("MYORG-MYACCOUNT")
///     .user("INGEST_USER")
///     .private_key_file("rsa_key.p8")
///     .role("INGEST_ROLE")
///     .max_client_lag(Duration::from_millis(500))
///     .build()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    account: Option<String>,
    url: Option<String>,
    url_scheme: Option<String>,
    url_host: Option<String>,
    url_port: Option<String>,
    role: Option<String>,
    retry: RetryConfig,
    application: Option<String>,
    replace_underscore_with_dash_in_host: bool,
    danger_accept_cleartext_http: bool,
    auth_refresh_ahead: Duration,
    appends_per_second: u32,
    append_bytes_per_second: u64,
    credentials: CredentialSettings,
    http: HttpOptions,
    channel: ChannelSettings,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            account: None,
            url: None,
            url_scheme: None,
            url_host: None,
            url_port: None,
            role: None,
            retry: RetryConfig::default(),
            application: None,
            replace_underscore_with_dash_in_host: true,
            danger_accept_cleartext_http: false,
            auth_refresh_ahead: Duration::from_secs(300),
            appends_per_second: 10,
            append_bytes_per_second: DEFAULT_BYTES_PER_SECOND,
            credentials: CredentialSettings::default(),
            http: HttpOptions::default(),
            channel: ChannelSettings::default(),
        }
    }
}

/// Everything [`ClientBuilder::build`] derives before touching the network.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) connect: ConnectOptions,
    pub(crate) channel: ChannelSettings,
}

impl StreamingIngestClient {
    /// Starts configuring a client. See [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- connection and identity ---------------------------------------------------------

    /// The account identifier, e.g. `MYORG-MYACCOUNT` (preferred) or a locator such as
    /// `xy12345.us-east-2.aws`. Required. Env `SNOWFLAKE_ACCOUNT`, profile key `account`.
    ///
    /// Without [`url`](Self::url) the client connects to
    /// `https://<account>.snowflakecomputing.com`.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// The Snowflake user. Required for key-pair authentication. Env `SNOWFLAKE_USER`,
    /// profile key `user`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.credentials.user = Some(user.into());
        self
    }

    /// The account URL, e.g. `https://myorg-myaccount.snowflakecomputing.com` or, for the local
    /// emulator, `http://127.0.0.1:8080`. Default: `https://<account>.snowflakecomputing.com`.
    /// A URL without a scheme gets `https://`; plain `http://` is used only when spelled
    /// out. Env `SNOWFLAKE_URL`, profile key `url` (or `scheme` + `host` + `port`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The RSA private key as PKCS#8 PEM text (`BEGIN PRIVATE KEY` or `BEGIN ENCRYPTED
    /// PRIVATE KEY`; header and footer optional). Env `SNOWFLAKE_PRIVATE_KEY`, profile key
    /// `private_key`. Mutually exclusive with [`private_key_file`](Self::private_key_file).
    pub fn private_key_pem(mut self, pem: impl Into<String>) -> Self {
        self.credentials.private_key = Some(Secret::new(pem));
        self
    }

    /// A file holding the PKCS#8 PEM private key. Env `SNOWFLAKE_PRIVATE_KEY_FILE`, profile
    /// key `private_key_file`.
    pub fn private_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials.private_key_file = Some(path.into());
        self
    }

    /// The passphrase of an encrypted private key. Env `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`,
    /// profile key `private_key_passphrase`.
    pub fn private_key_passphrase(mut self, passphrase: impl Into<String>) -> Self {
        self.credentials.private_key_passphrase = Some(Secret::new(passphrase));
        self
    }

    /// The role to use (case preserved). Default: the user's default role. Env
    /// `SNOWFLAKE_ROLE`, profile key `role`. Sent in the token exchange's scope
    /// (`session:role:<ROLE>`) and, with a key pair, in the JWT's `scp` claim too.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// How to authenticate. Default: key pair, or PAT when only a
    /// [`personal_access_token`](Self::personal_access_token) is given. Profile key
    /// `authorization_type` (`JWT`, `PAT` or `OAUTH`).
    pub fn authorization_type(mut self, kind: AuthorizationType) -> Self {
        self.credentials.authorization_type = Some(kind);
        self
    }

    /// A programmatic access token (PAT) to authenticate with instead of a key pair. Profile
    /// key `personal_access_token`.
    pub fn personal_access_token(mut self, token: impl Into<String>) -> Self {
        self.credentials.personal_access_token = Some(Secret::new(token));
        self
    }

    /// OAuth client credentials, for [`AuthorizationType::OAuth`]. Profile keys
    /// `oauth_client_id`, `oauth_client_secret`.
    pub fn oauth_client(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials.oauth_client_id = Some(client_id.into());
        self.credentials.oauth_client_secret = Some(Secret::new(client_secret));
        self
    }

    /// The OAuth refresh token (rotated tokens returned by the endpoint are kept). Without
    /// one, the client-credentials grant is used. Profile key `oauth_refresh_token`.
    pub fn oauth_refresh_token(mut self, token: impl Into<String>) -> Self {
        self.credentials.oauth_refresh_token = Some(Secret::new(token));
        self
    }

    /// The OAuth token endpoint. Default: Snowflake OAuth's
    /// `<account url>/oauth/token-request`; set it for External OAuth. Profile key
    /// `oauth_token_endpoint`.
    pub fn oauth_token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.credentials.oauth_token_endpoint = Some(url.into());
        self
    }

    /// The `scope` sent to the OAuth token endpoint. Default `session:role:<ROLE>` when a
    /// role is set. Profile keys `oauth_scope`, and `oauth_include_scope = false` to send none.
    pub fn oauth_scope(mut self, scope: impl Into<String>) -> Self {
        self.credentials.oauth_scope = Some(scope.into());
        self
    }

    /// The application name sent in the `User-Agent` (`(app=<name>)`): 1–64 visible ASCII
    /// characters other than `(`, `)` and `\`. Env `SS_APPLICATION`, profile key
    /// `application`.
    pub fn application(mut self, name: impl Into<String>) -> Self {
        self.application = Some(name.into());
        self
    }

    // ----- TLS, proxy, timeouts, retries ----------------------------------------------------

    /// An extra trusted root CA (PEM, one or more certificates), for example the local
    /// emulator's `ca.pem`. Added to the built-in and OS roots; may be called several times.
    /// The file named by `SSL_CERT_FILE` is always trusted too, as in the official SDK.
    pub fn root_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.http.root_ca_pems.push(Secret::new(pem));
        self
    }

    /// Like [`root_ca_pem`](Self::root_ca_pem), read from a file. Profile key `root_ca_file`.
    pub fn root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.http.root_ca_files.push(path.into());
        self
    }

    /// An HTTP(S) proxy for this client only, e.g. `http://proxy:3128` (credentials may be
    /// given in the URL). Without it the client honours `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.
    /// Profile key `proxy`.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.http.proxy = Some(Secret::new(url));
        self
    }

    /// Hosts that bypass the [`proxy`](Self::proxy): a comma-separated list in `NO_PROXY`
    /// syntax (`localhost,127.0.0.1,.internal`). Profile key `no_proxy`.
    pub fn no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.http.no_proxy = Some(hosts.into());
        self
    }

    /// Timeout of one HTTP attempt, from sending to the end of the response. Default 60 s.
    /// Profile key `request_timeout` (e.g. `"30s"`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http.request_timeout = timeout;
        self
    }

    /// Timeout of establishing a connection (TCP + TLS). Default 10 s. Profile key
    /// `connect_timeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http.connect_timeout = timeout;
        self
    }

    /// The retry policy of every request. Default [`RetryConfig::default`].
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Whether underscores in the discovered ingest host are replaced by dashes (Snowflake's
    /// documented requirement for account names with underscores). Default `true`. Profile
    /// key `replace_underscore_with_dash_in_host`.
    pub fn replace_underscore_with_dash_in_host(mut self, replace: bool) -> Self {
        self.replace_underscore_with_dash_in_host = replace;
        self
    }

    /// Allows `http://` (no TLS) to hosts that are not loopback, for the account URL, the
    /// discovered ingest host and the OAuth token endpoint. **Dangerous:** the key-pair JWT,
    /// the PAT, OAuth secrets, scoped tokens and every row cross the network in clear text.
    /// Without it, `http://` is accepted only for `127.0.0.0/8`, `::1` and `localhost` (the
    /// emulator). Default `false`. Key `danger_accept_cleartext_http`.
    pub fn danger_accept_cleartext_http(mut self, accept: bool) -> Self {
        self.danger_accept_cleartext_http = accept;
        self
    }

    /// At most this many append requests per second on one channel. Default 10, Snowflake's
    /// per-channel request rate (docs/protocol.md "Limits"): above it the service answers
    /// 429. Requests are spaced `1/n` s apart; rows appended meanwhile join the next
    /// request. 0 removes the pacing (for a server without the limit). Profile key
    /// `max_requests_per_second`.
    pub fn max_requests_per_second(mut self, n: u32) -> Self {
        self.appends_per_second = n;
        self
    }

    /// At most this many uncompressed bytes per second of appends on one channel. Default
    /// 20,000,000, Snowflake's per-channel throughput limit (docs/protocol.md "Limits"; one
    /// revision of the limitations page says "REST 1 MBps / SDK 12 MBps" instead): above it
    /// the service answers 429, and a busy channel would run in bursts of throttling instead
    /// of steadily. After a request of `n` bytes the channel's next one waits `n / rate`
    /// (or the request spacing, if longer). 0 removes the pacing. Profile key
    /// `max_bytes_per_second`.
    pub fn max_bytes_per_second(mut self, bytes: u64) -> Self {
        self.append_bytes_per_second = bytes;
        self
    }

    /// Refresh the scoped token when less than this remains before it expires. Default
    /// 5 min (as the official SDK); a token living less than twice this is refreshed at half
    /// its life. Profile key `auth_refresh_buffer_duration_seconds`.
    pub fn auth_refresh_ahead(mut self, ahead: Duration) -> Self {
        self.auth_refresh_ahead = ahead;
        self
    }

    /// The lifetime assumed for a scoped token that is not a decodable JWT. Default 1 h.
    pub fn default_token_ttl(mut self, ttl: Duration) -> Self {
        self.credentials.default_token_ttl = ttl;
        self
    }

    // ----- channels -------------------------------------------------------------------------

    /// Smallest accepted [`max_client_lag`](Self::max_client_lag).
    pub const MIN_CLIENT_LAG: Duration = MIN_CLIENT_LAG;
    /// Largest accepted [`max_client_lag`](Self::max_client_lag).
    pub const MAX_CLIENT_LAG: Duration = MAX_CLIENT_LAG;
    /// Smallest accepted [`max_request_bytes`](Self::max_request_bytes).
    pub const MIN_REQUEST_BYTES: usize = MIN_REQUEST_BYTES;
    /// Largest accepted [`max_request_bytes`](Self::max_request_bytes): 4 MB on the wire,
    /// Snowflake's hard per-request cap (one byte more is answered 413).
    pub const MAX_REQUEST_BYTES: usize = MAX_REQUEST_BYTES;

    /// How long a row may wait in the client buffer before its batch is sent: the latency
    /// versus request-size trade-off. Default 1 s; accepted [`MIN_CLIENT_LAG`](Self::MIN_CLIENT_LAG) (10 ms) to
    /// [`MAX_CLIENT_LAG`](Self::MAX_CLIENT_LAG) (10 min). Profile key
    /// `max_client_lag` (`"200ms"`, or a number of milliseconds).
    ///
    /// A batch goes out sooner when it fills a request, on `flush()`, and when the client's
    /// memory budget runs short (an `append_*` waits for room, or a `try_append_*` is
    /// refused) while the channel has nothing else queued or in flight: buffered rows hold
    /// budget until they are committed.
    pub fn max_client_lag(mut self, lag: Duration) -> Self {
        self.channel.max_client_lag = lag;
        self
    }

    /// Target size of one append request on the wire. Default and maximum 4 MB
    /// ([`MAX_REQUEST_BYTES`](Self::MAX_REQUEST_BYTES), Snowflake's hard per-request cap,
    /// docs/protocol.md "Limits"); at least [`MIN_REQUEST_BYTES`](Self::MIN_REQUEST_BYTES).
    /// Profile key `max_request_bytes`.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.channel.max_request_bytes = bytes;
        self
    }

    /// Client-wide budget of buffered plus sent-but-uncommitted bytes; appends wait for room
    /// when it is full. Default 256 MiB; at least twice `max_request_bytes`. Profile key
    /// `memory_budget_bytes`.
    ///
    /// Buffered rows are charged at the capacity of the buffers holding them; a batch is
    /// charged its compressed size from the moment its body is ready (its rows are freed
    /// then) until it commits. 1/16 of the budget (at most 32 MiB) is set aside for idle
    /// buffers kept for reuse. A channel also stops taking appends while four requests' worth
    /// of its batches wait to be sent, so one fast producer stays a few requests ahead of the
    /// server instead of filling the budget. Outside the budget are the client's zstd contexts
    /// (about 1 MB each, 4–5 MB with the blocking jobs' whole-batch windows, at most 1/8 of the
    /// budget in all) and the bodies being compressed, both bounded per client
    /// (about as many as cores), whatever the number of channels.
    pub fn memory_budget_bytes(mut self, bytes: usize) -> Self {
        self.channel.memory_budget_bytes = bytes;
        self
    }

    /// Compression of append bodies. Default [`Compression::Zstd`], as the official SDK.
    /// Profile key `compression` (`zstd`, `gzip`, `none`) or `enable_rowset_compression`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.channel.compression = compression;
        self
    }

    /// How often committed offsets are polled while some channel has uncommitted data.
    /// Default 100 ms; accepted 10 ms to 1 min. Profile key `commit_poll_interval`.
    pub fn commit_poll_interval(mut self, interval: Duration) -> Self {
        self.channel.commit_poll_interval = interval;
        self
    }

    /// Longest time one automatic channel recovery (reopen and replay, every attempt and
    /// the REST layer's retries included) may take before the channel fails with
    /// [`Error::ChannelInvalidated`] carrying the last committed offset token.
    /// Default 2 min; accepted 1 s to 1 h.
    pub fn recovery_timeout(mut self, timeout: Duration) -> Self {
        self.channel.recovery_timeout = timeout;
        self
    }

    /// The `BINARY_INPUT_FORMAT` every pipe of this client reads, which
    /// [`Binary`](crate::binary::Binary) values are written in. Default: none, each pipe's
    /// format is learned from the service when its first channel opens (the pipe-info call,
    /// as the official SDKs do). Name it only when that call is unavailable or you must
    /// override it; a wrong format stores other bytes without a row error
    /// ([`binary`](crate::binary)).
    pub fn binary_format(mut self, format: crate::binary::BinaryFormat) -> Self {
        self.channel.binary_format = Some(format);
        self
    }

    // ----- sources ----------------------------------------------------------------------------

    /// A builder filled from the environment: `SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_USER`,
    /// `SNOWFLAKE_URL`, `SNOWFLAKE_PRIVATE_KEY` or `SNOWFLAKE_PRIVATE_KEY_FILE`,
    /// `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`, `SNOWFLAKE_ROLE`, and `SS_APPLICATION`. Unset and
    /// empty variables are skipped; setters called afterwards override them. (`SSL_CERT_FILE`
    /// is honoured by every client, see [`root_ca_pem`](Self::root_ca_pem).)
    pub fn from_env() -> Self {
        Self::new().with_env(|k| std::env::var(k).ok())
    }

    /// Applies environment-like variables through `lookup` (testable without touching the
    /// process environment).
    pub(crate) fn with_env(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        for key in ConfigKey::ALL {
            let Some(value) = key.env_var().and_then(&lookup) else {
                continue;
            };
            if value.trim().is_empty() {
                continue;
            }
            // The keys read from the environment take any text (checked at `build`).
            if let Err(e) = self.set(*key, value) {
                tracing::warn!(key = %key, error = %e, "environment setting ignored");
            }
        }
        self
    }

    /// A builder filled from a `profile.json` file in the official SDK's format (see
    /// [`from_profile_json`](Self::from_profile_json)), or, for a file whose name ends in
    /// `.toml`, from the default connection of a Snowflake `connections.toml`
    /// ([`from_connections_toml`](Self::from_connections_toml)).
    ///
    /// # Errors
    /// [`Error::Config`] naming `profile` when the file cannot be read or is not a JSON
    /// object, or naming the key whose value is invalid; for a `.toml` file, what
    /// [`from_connections_toml`](Self::from_connections_toml) reports.
    pub fn from_profile_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            return Self::from_connections_toml(path, None);
        }
        let text = crate::secret::read_secret_file(path, "profile").map_err(|e| {
            Error::config_caused(
                "profile",
                format!("cannot read the profile file {}", path.display()),
                e,
            )
        })?;
        Self::from_profile_json(&text)
    }

    /// A builder filled from the text of a `profile.json`: a JSON object of the official
    /// SDK's keys (`account`, `user`, `url` or `scheme`/`host`/`port`, `private_key`,
    /// `private_key_file`, `private_key_passphrase`, `role`, `authorization_type`,
    /// `personal_access_token`, `application`, `replace_underscore_with_dash_in_host`,
    /// `enable_rowset_compression`, `auth_refresh_buffer_duration_seconds`, ...) plus this
    /// crate's own (see [`with_config`](Self::with_config)). Values may be strings, numbers
    /// or booleans. Unknown keys are logged as warnings and ignored.
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not a JSON object or a value is invalid.
    pub fn from_profile_json(json: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::config_caused("profile", "the profile is not valid JSON", e))?;
        let serde_json::Value::Object(map) = value else {
            return Err(Error::config(
                "profile",
                "the profile must be a JSON object of settings",
            ));
        };
        let mut builder = Self::new();
        let mut unknown = Vec::new();
        for (key, value) in map {
            let value = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    return Err(Error::config(
                        key,
                        "expected a string, number or boolean value",
                    ))
                }
            };
            builder = builder.with_profile_key(&key, value, &mut unknown)?;
        }
        keys::warn_unknown(&unknown);
        Ok(builder)
    }

    /// Sets one setting by its key: every key is listed, with its meaning, its spelling in
    /// `profile.json` and its environment variable, on [`ConfigKey`] (durations as
    /// `"500ms"`, `"30s"`). A key read from text parses with `str::parse::<ConfigKey>()`
    /// (case-insensitive), so a typo is an error where the text is read.
    ///
    /// ```
    /// use snowpipe_streaming::{ClientBuilder, ConfigKey};
    /// let builder = ClientBuilder::new()
    ///     .with_config(ConfigKey::MaxClientLag, "250ms")?
    ///     .with_config(ConfigKey::EnableRowsetCompression, "false")?;
    /// # let _ = builder; Ok::<(), snowpipe_streaming::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the key when its value cannot be parsed.
    pub fn with_config(mut self, key: ConfigKey, value: impl Into<String>) -> Result<Self> {
        self.set(key, value.into())?;
        Ok(self)
    }

    /// The lenient path of `profile.json`: a known key is set, an unknown one is added to
    /// `unknown` (warned about once, `keys::warn_unknown`) and ignored (the official SDK's profiles
    /// carry keys this client has no use for).
    fn with_profile_key(self, key: &str, value: String, unknown: &mut Vec<String>) -> Result<Self> {
        match key.parse::<ConfigKey>() {
            Ok(k) => self.with_config(k, value),
            Err(_) => {
                unknown.push(key.to_owned());
                Ok(self)
            }
        }
    }

    // ----- build ------------------------------------------------------------------------------

    /// Validates the configuration, loads the private key, creates the HTTP client,
    /// discovers the ingest host and obtains the first scoped token.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first invalid or missing setting (and how to fix it);
    /// [`Error::Auth`] when Snowflake rejects the credentials; [`Error::Server`] or
    /// [`Error::Transport`] when the account cannot be reached.
    ///
    /// # Cancellation
    /// Dropping the future abandons the connection attempt; nothing is left running.
    pub async fn build(self) -> Result<StreamingIngestClient> {
        let resolved = self.resolve()?;
        let rest = RestApi::connect(resolved.connect).await?;
        Ok(StreamingIngestClient::from_parts(
            Arc::new(rest),
            resolved.channel,
        ))
    }

    /// Validates everything that needs no network.
    pub(crate) fn resolve(self) -> Result<Resolved> {
        let account = self
            .account
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::config(
                    "account",
                    "the account identifier is required: set .account(), SNOWFLAKE_ACCOUNT or \
                     the profile key account (e.g. MYORG-MYACCOUNT)",
                )
            })?
            .to_owned();
        if !account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::config(
                "account",
                format!(
                    "{account:?} is not an account identifier (letters, digits, '-', '_', '.')"
                ),
            ));
        }
        let role = self
            .role
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        let account_url = self.account_url(&account)?;
        if let Some(app) = &self.application {
            account::validate_application(app)?;
        }
        self.channel.validate()?;
        if self.http.request_timeout.is_zero() {
            return Err(Error::config(
                "request_timeout",
                "must be greater than zero",
            ));
        }
        if self.http.connect_timeout.is_zero() {
            return Err(Error::config(
                "connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.auth_refresh_ahead.is_zero()
            || self.credentials.default_token_ttl < Duration::from_secs(2)
        {
            return Err(Error::config(
                "auth_refresh_ahead",
                "auth_refresh_ahead must be positive and default_token_ttl at least 2 s",
            ));
        }

        let client = self.http.build_client()?;
        let http = HttpClient::new(
            client,
            &user_agent(self.application.as_deref()),
            self.retry.clone(),
        )?;
        account::check_cleartext(&account_url, "url", self.danger_accept_cleartext_http)?;
        if let Some(endpoint) = &self.credentials.oauth_token_endpoint {
            if let Ok(u) = url::Url::parse(endpoint.trim()) {
                account::check_cleartext(
                    &u,
                    "oauth_token_endpoint",
                    self.danger_accept_cleartext_http,
                )?;
            }
        }
        let control =
            self.credentials
                .control_auth(&account, role.as_deref(), &account_url, &http)?;

        Ok(Resolved {
            connect: ConnectOptions {
                http,
                account_url,
                control,
                role,
                replace_underscore_with_dash_in_host: self.replace_underscore_with_dash_in_host,
                danger_accept_cleartext_http: self.danger_accept_cleartext_http,
                auth_refresh_ahead: self.auth_refresh_ahead,
                default_token_ttl: self.credentials.default_token_ttl,
                append_bytes_per_second: self.append_bytes_per_second,
                min_append_interval: match self.appends_per_second {
                    0 => Duration::ZERO,
                    n => Duration::from_secs(1) / n,
                },
            },
            channel: self.channel,
        })
    }
}

/// The default of [`ClientBuilder::max_bytes_per_second`]: Snowflake's 20 MB/s per channel.
const DEFAULT_BYTES_PER_SECOND: u64 = 20_000_000;

mod account;
mod connections_toml;
mod keys;
#[cfg(test)]
mod tests;

pub use keys::ConfigKey;
