//! Client configuration: [`ClientBuilder`].
//!
//! Settings come from setters, from a `profile.json` in the official SDK's format
//! ([`ClientBuilder::from_profile_file`]), from `SNOWFLAKE_*` environment variables
//! ([`ClientBuilder::from_env`]) or from string keys ([`ClientBuilder::with_config`]); later
//! calls override earlier ones. [`ClientBuilder::build`] validates everything and names the
//! setting at fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::key::KeySource;
use crate::auth::oauth::{OAuthClient, OAuthConfig};
use crate::auth::{AuthorizationType, ControlAuth, JwtSigner, KeyPair, Secret};
use crate::channel::ChannelSettings;
use crate::error::Error;
use crate::http::{user_agent, HttpClient, RetryConfig};
use crate::rest::{ConnectOptions, RestApi};
use crate::transport::Compression;
use crate::{Result, StreamingIngestClient};

pub use crate::channel::settings::{
    MAX_CLIENT_LAG, MAX_REQUEST_BYTES, MIN_CLIENT_LAG, MIN_REQUEST_BYTES,
};

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
    user: Option<String>,
    url: Option<String>,
    url_scheme: Option<String>,
    url_host: Option<String>,
    url_port: Option<String>,
    private_key: Option<Secret>,
    private_key_file: Option<PathBuf>,
    private_key_passphrase: Option<Secret>,
    role: Option<String>,
    authorization_type: Option<AuthorizationType>,
    personal_access_token: Option<Secret>,
    oauth_client_id: Option<String>,
    oauth_client_secret: Option<Secret>,
    oauth_refresh_token: Option<Secret>,
    oauth_token_endpoint: Option<String>,
    oauth_scope: Option<String>,
    oauth_include_scope: bool,
    root_ca_pems: Vec<Secret>,
    root_ca_files: Vec<PathBuf>,
    /// A secret because the URL may carry credentials.
    proxy: Option<Secret>,
    no_proxy: Option<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
    retry: RetryConfig,
    application: Option<String>,
    replace_underscore_with_dash_in_host: bool,
    auth_refresh_ahead: Duration,
    default_token_ttl: Duration,
    appends_per_second: u32,
    channel: ChannelSettings,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            account: None,
            user: None,
            url: None,
            url_scheme: None,
            url_host: None,
            url_port: None,
            private_key: None,
            private_key_file: None,
            private_key_passphrase: None,
            role: None,
            authorization_type: None,
            personal_access_token: None,
            oauth_client_id: None,
            oauth_client_secret: None,
            oauth_refresh_token: None,
            oauth_token_endpoint: None,
            oauth_scope: None,
            oauth_include_scope: true,
            root_ca_pems: Vec::new(),
            root_ca_files: Vec::new(),
            proxy: None,
            no_proxy: None,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryConfig::default(),
            application: None,
            replace_underscore_with_dash_in_host: true,
            auth_refresh_ahead: Duration::from_secs(300),
            default_token_ttl: Duration::from_secs(3600),
            appends_per_second: 10,
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
        self.user = Some(user.into());
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
        self.private_key = Some(Secret::new(pem));
        self
    }

    /// A file holding the PKCS#8 PEM private key. Env `SNOWFLAKE_PRIVATE_KEY_FILE`, profile
    /// key `private_key_file`.
    pub fn private_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.private_key_file = Some(path.into());
        self
    }

    /// The passphrase of an encrypted private key. Env `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`,
    /// profile key `private_key_passphrase`.
    pub fn private_key_passphrase(mut self, passphrase: impl Into<String>) -> Self {
        self.private_key_passphrase = Some(Secret::new(passphrase));
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
        self.authorization_type = Some(kind);
        self
    }

    /// A programmatic access token (PAT) to authenticate with instead of a key pair. Profile
    /// key `personal_access_token`.
    pub fn personal_access_token(mut self, token: impl Into<String>) -> Self {
        self.personal_access_token = Some(Secret::new(token));
        self
    }

    /// OAuth client credentials, for [`AuthorizationType::OAuth`]. Profile keys
    /// `oauth_client_id`, `oauth_client_secret`.
    pub fn oauth_client(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.oauth_client_id = Some(client_id.into());
        self.oauth_client_secret = Some(Secret::new(client_secret));
        self
    }

    /// The OAuth refresh token (rotated tokens returned by the endpoint are kept). Without
    /// one, the client-credentials grant is used. Profile key `oauth_refresh_token`.
    pub fn oauth_refresh_token(mut self, token: impl Into<String>) -> Self {
        self.oauth_refresh_token = Some(Secret::new(token));
        self
    }

    /// The OAuth token endpoint. Default: Snowflake OAuth's
    /// `<account url>/oauth/token-request`; set it for External OAuth. Profile key
    /// `oauth_token_endpoint`.
    pub fn oauth_token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.oauth_token_endpoint = Some(url.into());
        self
    }

    /// The `scope` sent to the OAuth token endpoint. Default `session:role:<ROLE>` when a
    /// role is set. Profile keys `oauth_scope`, and `oauth_include_scope = false` to send none.
    pub fn oauth_scope(mut self, scope: impl Into<String>) -> Self {
        self.oauth_scope = Some(scope.into());
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
        self.root_ca_pems.push(Secret::new(pem));
        self
    }

    /// Like [`root_ca_pem`](Self::root_ca_pem), read from a file. Profile key `root_ca_file`.
    pub fn root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_ca_files.push(path.into());
        self
    }

    /// An HTTP(S) proxy for this client only, e.g. `http://proxy:3128` (credentials may be
    /// given in the URL). Without it the client honours `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.
    /// Profile key `proxy`.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(Secret::new(url));
        self
    }

    /// Hosts that bypass the [`proxy`](Self::proxy): a comma-separated list in `NO_PROXY`
    /// syntax (`localhost,127.0.0.1,.internal`). Profile key `no_proxy`.
    pub fn no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.no_proxy = Some(hosts.into());
        self
    }

    /// Timeout of one HTTP attempt, from sending to the end of the response. Default 60 s.
    /// Profile key `request_timeout` (e.g. `"30s"`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Timeout of establishing a connection (TCP + TLS). Default 10 s. Profile key
    /// `connect_timeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
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

    /// At most this many append requests per second on one channel. Default 10, Snowflake's
    /// per-channel request rate (docs/protocol.md "Limits"): above it the service answers
    /// 429. Requests are spaced `1/n` s apart; rows appended meanwhile join the next
    /// request. 0 removes the pacing (for a server without the limit). Profile key
    /// `max_requests_per_second`.
    pub fn max_requests_per_second(mut self, n: u32) -> Self {
        self.appends_per_second = n;
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
        self.default_token_ttl = ttl;
        self
    }

    // ----- channels -------------------------------------------------------------------------

    /// How long a row may wait in the client buffer before its batch is sent: the latency
    /// versus request-size trade-off. Default 1 s; accepted 10 ms to 10 min. Profile key
    /// `max_client_lag` (`"200ms"`, or a number of milliseconds).
    pub fn max_client_lag(mut self, lag: Duration) -> Self {
        self.channel.max_client_lag = lag;
        self
    }

    /// Target size of one append request on the wire. Default and maximum 4 MB (4,000,000
    /// bytes: Snowflake's hard per-request cap, docs/protocol.md "Limits"); at least 1 KiB.
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
    /// (about 1 MB each at level 1) and the bodies being compressed, both bounded per client
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
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("SNOWFLAKE_ACCOUNT") {
            self = self.account(v);
        }
        if let Some(v) = get("SNOWFLAKE_USER") {
            self = self.user(v);
        }
        if let Some(v) = get("SNOWFLAKE_URL") {
            self = self.url(v);
        }
        if let Some(v) = get("SNOWFLAKE_PRIVATE_KEY") {
            self = self.private_key_pem(v);
        }
        if let Some(v) = get("SNOWFLAKE_PRIVATE_KEY_FILE") {
            self = self.private_key_file(v);
        }
        if let Some(v) = get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE") {
            self = self.private_key_passphrase(v);
        }
        if let Some(v) = get("SNOWFLAKE_ROLE") {
            self = self.role(v);
        }
        if let Some(v) = get("SS_APPLICATION") {
            self = self.application(v);
        }
        self
    }

    /// A builder filled from a `profile.json` file in the official SDK's format (see
    /// [`from_profile_json`](Self::from_profile_json)).
    ///
    /// # Errors
    /// [`Error::Config`] naming `profile` when the file cannot be read or is not a JSON
    /// object, or naming the key whose value is invalid.
    pub fn from_profile_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
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
            builder = builder.with_config(&key, value)?;
        }
        Ok(builder)
    }

    /// Sets one setting by its string key, as in `profile.json`. Keys are case-insensitive.
    ///
    /// Official SDK keys: `account`, `user`, `url`, `scheme`, `host`, `port`, `ssl`,
    /// `private_key`, `private_key_file`, `private_key_passphrase`, `role`,
    /// `authorization_type`, `personal_access_token`, `oauth_client_id`,
    /// `oauth_client_secret`, `oauth_refresh_token`, `oauth_token_endpoint`, `oauth_scope`,
    /// `oauth_include_scope`, `application`, `replace_underscore_with_dash_in_host`,
    /// `enable_rowset_compression`, `auth_refresh_buffer_duration_seconds`,
    /// `max_client_lag`. This crate's keys:
    /// `root_ca_file`, `proxy`, `no_proxy`, `request_timeout`, `connect_timeout`,
    /// `max_request_bytes`, `memory_budget_bytes`, `compression`,
    /// `commit_poll_interval`, `retry_max_attempts`, `retry_total_budget`, `retry_initial_backoff`,
    /// `retry_max_backoff` (durations as `"500ms"`, `"30s"`). Other keys are logged as
    /// warnings and ignored.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key when its value cannot be parsed.
    pub fn with_config(mut self, key: &str, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let key_lc = key.trim().to_ascii_lowercase();
        let v = value.trim();
        match key_lc.as_str() {
            "account" => self.account = Some(v.to_owned()),
            "user" => self.user = Some(v.to_owned()),
            "url" => self.url = Some(v.to_owned()),
            "scheme" => self.url_scheme = Some(v.to_owned()),
            "host" => self.url_host = Some(v.to_owned()),
            "port" => self.url_port = Some(v.to_owned()),
            "ssl" => {
                let on = parse_bool(&key_lc, v)?;
                self.url_scheme = Some(if on { "https" } else { "http" }.to_owned());
            }
            "private_key" => self.private_key = Some(Secret::new(value)),
            "private_key_file" => self.private_key_file = Some(PathBuf::from(v)),
            "private_key_passphrase" => self.private_key_passphrase = Some(Secret::new(value)),
            "role" => self.role = Some(v.to_owned()),
            "authorization_type" => self.authorization_type = Some(v.parse()?),
            "personal_access_token" => self.personal_access_token = Some(Secret::new(v)),
            "oauth_client_id" => self.oauth_client_id = Some(v.to_owned()),
            "oauth_client_secret" => self.oauth_client_secret = Some(Secret::new(v)),
            "oauth_refresh_token" => self.oauth_refresh_token = Some(Secret::new(v)),
            "oauth_token_endpoint" => self.oauth_token_endpoint = Some(v.to_owned()),
            "oauth_scope" => self.oauth_scope = Some(v.to_owned()),
            "oauth_include_scope" => self.oauth_include_scope = parse_bool(&key_lc, v)?,
            "application" => self.application = Some(v.to_owned()),
            "replace_underscore_with_dash_in_host" => {
                self.replace_underscore_with_dash_in_host = parse_bool(&key_lc, v)?;
            }
            "enable_rowset_compression" => {
                self.channel.compression = if parse_bool(&key_lc, v)? {
                    Compression::Zstd
                } else {
                    Compression::None
                };
            }
            "max_requests_per_second" => {
                self.appends_per_second = parse_num(&key_lc, v)?;
            }
            "auth_refresh_buffer_duration_seconds" => {
                self.auth_refresh_ahead = Duration::from_secs(parse_num(&key_lc, v)?);
            }
            "max_client_lag" => {
                self.channel.max_client_lag = match v.parse::<u64>() {
                    Ok(ms) => Duration::from_millis(ms),
                    Err(_) => parse_duration(&key_lc, v)?,
                };
            }
            "root_ca_file" => self.root_ca_files.push(PathBuf::from(v)),
            "proxy" => self.proxy = Some(Secret::new(v)),
            "no_proxy" => self.no_proxy = Some(v.to_owned()),
            "request_timeout" => self.request_timeout = parse_duration(&key_lc, v)?,
            "connect_timeout" => self.connect_timeout = parse_duration(&key_lc, v)?,
            "max_request_bytes" => self.channel.max_request_bytes = parse_num(&key_lc, v)?,
            "memory_budget_bytes" => self.channel.memory_budget_bytes = parse_num(&key_lc, v)?,
            "compression" => {
                self.channel.compression = match v.to_ascii_lowercase().as_str() {
                    "zstd" => Compression::Zstd,
                    "gzip" => Compression::Gzip,
                    "none" | "off" | "false" => Compression::None,
                    _ => {
                        return Err(Error::config(
                            key_lc,
                            format!("{v:?} is not one of zstd, gzip, none"),
                        ))
                    }
                };
            }
            "commit_poll_interval" => {
                self.channel.commit_poll_interval = parse_duration(&key_lc, v)?
            }
            "retry_max_attempts" => self.retry = self.retry.max_attempts(parse_num(&key_lc, v)?),
            "retry_total_budget" => {
                self.retry = self.retry.total_budget(parse_duration(&key_lc, v)?)
            }
            "retry_initial_backoff" => {
                self.retry = self.retry.initial_backoff(parse_duration(&key_lc, v)?)
            }
            "retry_max_backoff" => self.retry = self.retry.max_backoff(parse_duration(&key_lc, v)?),
            _ => {
                tracing::warn!(key = %key, "unknown or unsupported client setting ignored");
            }
        }
        Ok(self)
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
            validate_application(app)?;
        }
        self.channel.validate()?;
        if self.request_timeout.is_zero() {
            return Err(Error::config(
                "request_timeout",
                "must be greater than zero",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.auth_refresh_ahead.is_zero() || self.default_token_ttl < Duration::from_secs(2) {
            return Err(Error::config(
                "auth_refresh_ahead",
                "auth_refresh_ahead must be positive and default_token_ttl at least 2 s",
            ));
        }

        let client = self.reqwest_client()?;
        let http = HttpClient::new(
            client,
            &user_agent(self.application.as_deref()),
            self.retry.clone(),
        )?;
        let control = self.control_auth(&account, role.as_deref(), &account_url, &http)?;

        Ok(Resolved {
            connect: ConnectOptions {
                http,
                account_url,
                control,
                role,
                replace_underscore_with_dash_in_host: self.replace_underscore_with_dash_in_host,
                auth_refresh_ahead: self.auth_refresh_ahead,
                default_token_ttl: self.default_token_ttl,
                min_append_interval: match self.appends_per_second {
                    0 => Duration::ZERO,
                    n => Duration::from_secs(1) / n,
                },
            },
            channel: self.channel,
        })
    }

    /// The control-plane credentials: a key-pair JWT signer, a PAT or an OAuth client.
    fn control_auth(
        &self,
        account: &str,
        role: Option<&str>,
        account_url: &url::Url,
        http: &HttpClient,
    ) -> Result<ControlAuth> {
        let kind = self.authorization_type.unwrap_or(
            if self.personal_access_token.is_some()
                && self.private_key.is_none()
                && self.private_key_file.is_none()
            {
                AuthorizationType::ProgrammaticAccessToken
            } else {
                AuthorizationType::KeyPair
            },
        );
        Ok(match kind {
            AuthorizationType::ProgrammaticAccessToken => {
                let pat = self
                    .personal_access_token
                    .clone()
                    .filter(|t| !t.expose().trim().is_empty())
                    .ok_or_else(|| {
                        Error::config(
                            "personal_access_token",
                            "authorization_type PAT needs a programmatic access token: set \
                             .personal_access_token() or the profile key personal_access_token",
                        )
                    })?;
                ControlAuth::Pat(Secret::new(pat.expose().trim()))
            }
            AuthorizationType::KeyPair => {
                let user = self
                    .user
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        Error::config(
                            "user",
                            "key-pair authentication needs the user: set .user(), SNOWFLAKE_USER \
                             or the profile key user",
                        )
                    })?;
                let key = self.key_pair()?;
                ControlAuth::KeyPair(JwtSigner::new(Arc::new(key), account, user, role))
            }
            AuthorizationType::OAuth => {
                let missing = |setting: &str| {
                    Error::config(
                        setting,
                        format!(
                            "authorization_type OAUTH needs {setting}: set it with \
                             .oauth_client() or the profile key {setting}"
                        ),
                    )
                };
                let client_id = self
                    .oauth_client_id
                    .clone()
                    .ok_or_else(|| missing("oauth_client_id"))?;
                let client_secret = self
                    .oauth_client_secret
                    .clone()
                    .ok_or_else(|| missing("oauth_client_secret"))?;
                let endpoint = match &self.oauth_token_endpoint {
                    Some(e) => {
                        let u = url::Url::parse(e.trim()).map_err(|err| {
                            Error::config_caused(
                                "oauth_token_endpoint",
                                format!("{e:?} is not a valid URL"),
                                err,
                            )
                        })?;
                        if !matches!(u.scheme(), "http" | "https") {
                            return Err(Error::config(
                                "oauth_token_endpoint",
                                "the scheme must be https (or http)",
                            ));
                        }
                        u.to_string()
                    }
                    None => format!(
                        "{}/oauth/token-request",
                        account_url.as_str().trim_end_matches('/')
                    ),
                };
                let scope = if self.oauth_include_scope {
                    self.oauth_scope
                        .clone()
                        .or_else(|| role.map(|r| format!("session:role:{r}")))
                } else {
                    None
                };
                ControlAuth::OAuth(Arc::new(OAuthClient::new(
                    http.clone(),
                    OAuthConfig {
                        endpoint,
                        client_id,
                        client_secret,
                        refresh_token: self.oauth_refresh_token.clone(),
                        scope,
                        default_ttl: self.default_token_ttl,
                    },
                )))
            }
        })
    }

    /// Loads the private key from `private_key` or `private_key_file`.
    fn key_pair(&self) -> Result<KeyPair> {
        let passphrase = self
            .private_key_passphrase
            .as_ref()
            .filter(|p| !p.expose().is_empty());
        match (&self.private_key, &self.private_key_file) {
            (Some(_), Some(_)) => Err(Error::config(
                "private_key",
                "both private_key and private_key_file are set: keep only one",
            )),
            (Some(pem), None) => KeyPair::from_pem(pem.expose(), passphrase, KeySource::Inline),
            (None, Some(path)) => KeyPair::from_file(path, passphrase),
            (None, None) => Err(Error::config(
                "private_key",
                "key-pair authentication needs a private key: set .private_key_pem() or \
                 .private_key_file() (SNOWFLAKE_PRIVATE_KEY / SNOWFLAKE_PRIVATE_KEY_FILE), or \
                 use a personal_access_token",
            )),
        }
    }

    fn account_url(&self, account: &str) -> Result<url::Url> {
        let (text, setting) = match (&self.url, &self.url_host) {
            (Some(u), _) => (u.trim().to_owned(), "url"),
            (None, Some(host)) => {
                let scheme = self.url_scheme.as_deref().unwrap_or("https");
                let port = self
                    .url_port
                    .as_deref()
                    .map(|p| format!(":{}", p.trim()))
                    .unwrap_or_default();
                (format!("{scheme}://{}{port}", host.trim()), "host")
            }
            (None, None) => (
                format!("https://{account}.snowflakecomputing.com"),
                "account",
            ),
        };
        parse_account_url(&text, setting)
    }

    fn reqwest_client(&self) -> Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(true)
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .http1_only()
            .redirect(reqwest::redirect::Policy::none());
        for pem in &self.root_ca_pems {
            for cert in parse_certs(pem.expose().as_bytes(), "root_ca_pem", "the PEM text")? {
                b = b.add_root_certificate(cert);
            }
        }
        let mut files: Vec<(PathBuf, &str)> = self
            .root_ca_files
            .iter()
            .map(|p| (p.clone(), "root_ca_file"))
            .collect();
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
            files.push((PathBuf::from(f), "SSL_CERT_FILE"));
        }
        for (path, setting) in files {
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::config_caused(
                    setting,
                    format!("cannot read the CA file {}", path.display()),
                    e,
                )
            })?;
            for cert in parse_certs(&bytes, setting, &path.display().to_string())? {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some(proxy) = &self.proxy {
            let mut p = reqwest::Proxy::all(proxy.expose()).map_err(|e| {
                Error::config_caused(
                    "proxy",
                    "not a valid proxy URL (e.g. http://proxy.example.com:3128)",
                    e.without_url(),
                )
            })?;
            if let Some(no_proxy) = &self.no_proxy {
                p = p.no_proxy(reqwest::NoProxy::from_string(no_proxy));
            }
            b = b.proxy(p);
        } else if self.no_proxy.is_some() {
            return Err(Error::config(
                "no_proxy",
                "no_proxy is set but proxy is not",
            ));
        }
        b.build()
            .map_err(|e| Error::config_caused("tls", "cannot create the HTTP client", e))
    }
}

fn parse_certs(bytes: &[u8], setting: &str, what: &str) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(bytes).map_err(|e| {
        Error::config_caused(
            setting,
            format!("{what} is not a valid PEM certificate bundle"),
            e,
        )
    })?;
    if certs.is_empty() {
        return Err(Error::config(
            setting,
            format!("{what} contains no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

/// Parses and checks an account URL: `http` or `https` (https when no scheme is given), a
/// host, an optional port, and nothing else.
pub(crate) fn parse_account_url(text: &str, setting: &str) -> Result<url::Url> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::config(setting, "the URL is empty"));
    }
    let full = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&full)
        .map_err(|e| Error::config_caused(setting, format!("{text:?} is not a valid URL"), e))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::config(
            setting,
            format!(
                "unsupported scheme {:?}: use https (or http, spelled out, for a local emulator)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(setting, format!("{text:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            setting,
            "the URL must not contain credentials",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            setting,
            format!("{text:?} must be just scheme://host[:port], without a path or query"),
        ));
    }
    Ok(url)
}

fn validate_application(app: &str) -> Result<()> {
    let ok = (1..=64).contains(&app.len())
        && app
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'(' | b')' | b'\\'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "application",
            "must be 1-64 visible ASCII characters without spaces, '(', ')' or '\\'",
        ))
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(Error::config(
            key,
            format!("{v:?} is not a boolean (true/false)"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    v.replace('_', "")
        .parse()
        .map_err(|_| Error::config(key, format!("{v:?} is not a valid number")))
}

fn parse_duration(key: &str, v: &str) -> Result<Duration> {
    if v.parse::<f64>().is_ok() {
        return Err(Error::config(
            key,
            format!("{v:?} has no unit: write e.g. \"500ms\" or \"30s\""),
        ));
    }
    humantime::parse_duration(v).map_err(|e| {
        Error::config_caused(
            key,
            format!("{v:?} is not a duration (e.g. \"500ms\", \"30s\", \"2m\")"),
            e,
        )
    })
}

#[cfg(test)]
mod tests;
