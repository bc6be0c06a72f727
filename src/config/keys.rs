//! [`ConfigKey`]: every string key of the client's configuration, the one list that
//! [`ClientBuilder::with_config`], [`ClientBuilder::from_env`] and the profile loader
//! ([`ClientBuilder::from_profile_json`]) use, so a key cannot exist in one and not the others.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::ClientBuilder;
use crate::auth::Secret;
use crate::Compression;
use crate::{Error, Result};

/// A configuration key, as spelled in `profile.json` and [`ClientBuilder::with_config`]
/// (case-insensitive). Keys marked *official* are the official SDK's; the rest are this
/// crate's. Durations are written like `"500ms"`, `"30s"` or `"2m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigKey {
    /// `account`: Account identifier (`MYORG-MYACCOUNT` or a locator). Env `SNOWFLAKE_ACCOUNT`. Official.
    Account,
    /// `user`: User name (key-pair authentication). Env `SNOWFLAKE_USER`. Official.
    User,
    /// `url`: Account URL, `https://host[:port]`. Env `SNOWFLAKE_URL`. Official.
    Url,
    /// `scheme`: Account URL scheme (with `host` and `port`). Official.
    Scheme,
    /// `host`: Account URL host. Official.
    Host,
    /// `port`: Account URL port. Official.
    Port,
    /// `ssl`: `true`: https (default); `false`: http. Official.
    Ssl,
    /// `private_key`: PKCS#8 PEM private key text. Env `SNOWFLAKE_PRIVATE_KEY`. Official.
    PrivateKey,
    /// `private_key_file`: File holding the PKCS#8 PEM private key. Env `SNOWFLAKE_PRIVATE_KEY_FILE`. Official.
    PrivateKeyFile,
    /// `private_key_passphrase`: Passphrase of an encrypted private key. Env `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`. Official.
    PrivateKeyPassphrase,
    /// `role`: Role of the session. Env `SNOWFLAKE_ROLE`. Official.
    Role,
    /// `authorization_type`: `JWT` (default), `PAT` or `OAUTH`. Official.
    AuthorizationType,
    /// `personal_access_token`: Programmatic access token. Official.
    PersonalAccessToken,
    /// `oauth_client_id`: OAuth client id. Official.
    OauthClientId,
    /// `oauth_client_secret`: OAuth client secret. Official.
    OauthClientSecret,
    /// `oauth_refresh_token`: OAuth refresh token. Official.
    OauthRefreshToken,
    /// `oauth_token_endpoint`: OAuth token endpoint URL. Official.
    OauthTokenEndpoint,
    /// `oauth_scope`: OAuth scope. Official.
    OauthScope,
    /// `oauth_include_scope`: Whether to send a scope in OAuth token requests. Official.
    OauthIncludeScope,
    /// `application`: Application name sent to Snowflake. Env `SS_APPLICATION`. Official.
    Application,
    /// `replace_underscore_with_dash_in_host`: Replace `_` with `-` in the discovered ingest host. Official.
    ReplaceUnderscoreWithDashInHost,
    /// `danger_accept_cleartext_http`: Allow `http://` to hosts that are not loopback: the
    /// credentials (key-pair JWT, PAT, OAuth secrets) and rows then cross the network in clear.
    DangerAcceptCleartextHttp,
    /// `enable_rowset_compression`: `true`: zstd bodies; `false`: uncompressed. Official.
    EnableRowsetCompression,
    /// `max_requests_per_second`: Appends per second per channel (default 10; 0: unpaced).
    MaxRequestsPerSecond,
    /// `max_bytes_per_second`: Uncompressed append bytes per second per channel (default
    /// 20,000,000; 0: unpaced).
    MaxBytesPerSecond,
    /// `auth_refresh_buffer_duration_seconds`: Seconds before expiry a token is refreshed. Official.
    AuthRefreshBufferDurationSeconds,
    /// `max_client_lag`: Flush a batch this long after its first row (milliseconds, or a duration). Official.
    MaxClientLag,
    /// `root_ca_file`: Extra trusted CA bundle (PEM file).
    RootCaFile,
    /// `proxy`: HTTP(S) proxy URL.
    Proxy,
    /// `no_proxy`: Hosts that bypass the proxy.
    NoProxy,
    /// `request_timeout`: Timeout of one HTTP request (a duration).
    RequestTimeout,
    /// `connect_timeout`: Timeout of one TCP/TLS connect (a duration).
    ConnectTimeout,
    /// `max_request_bytes`: Largest append request on the wire, bytes (at most 4,000,000).
    MaxRequestBytes,
    /// `memory_budget_bytes`: Client-wide memory budget, bytes.
    MemoryBudgetBytes,
    /// `compression`: `zstd`, `gzip` or `none`.
    Compression,
    /// `commit_poll_interval`: Commit poll interval while something is uncommitted (a duration).
    CommitPollInterval,
    /// `retry_max_attempts`: Most attempts of one call.
    RetryMaxAttempts,
    /// `retry_total_budget`: Longest time one call may spend retrying (a duration).
    RetryTotalBudget,
    /// `retry_initial_backoff`: First retry delay (a duration).
    RetryInitialBackoff,
    /// `retry_max_backoff`: Longest retry delay (a duration).
    RetryMaxBackoff,
    /// `recovery_timeout`: Longest automatic channel recovery (a duration, 1s..=1h).
    RecoveryTimeout,
    /// `zstd_level`: zstd compression level, -7..=22 (default 1, the official SDK's). Negative
    /// ("fast") levels Huffman-code literals as level 1 does: -2 makes bodies 2–10 % larger
    /// than level 1 for 6–9 % less client CPU.
    ZstdLevel,
}

impl ConfigKey {
    /// Every key, in the order of the documentation.
    pub const ALL: &'static [Self] = &[
        Self::Account,
        Self::User,
        Self::Url,
        Self::Scheme,
        Self::Host,
        Self::Port,
        Self::Ssl,
        Self::PrivateKey,
        Self::PrivateKeyFile,
        Self::PrivateKeyPassphrase,
        Self::Role,
        Self::AuthorizationType,
        Self::PersonalAccessToken,
        Self::OauthClientId,
        Self::OauthClientSecret,
        Self::OauthRefreshToken,
        Self::OauthTokenEndpoint,
        Self::OauthScope,
        Self::OauthIncludeScope,
        Self::Application,
        Self::ReplaceUnderscoreWithDashInHost,
        Self::DangerAcceptCleartextHttp,
        Self::EnableRowsetCompression,
        Self::MaxRequestsPerSecond,
        Self::MaxBytesPerSecond,
        Self::AuthRefreshBufferDurationSeconds,
        Self::MaxClientLag,
        Self::RootCaFile,
        Self::Proxy,
        Self::NoProxy,
        Self::RequestTimeout,
        Self::ConnectTimeout,
        Self::MaxRequestBytes,
        Self::MemoryBudgetBytes,
        Self::Compression,
        Self::CommitPollInterval,
        Self::RetryMaxAttempts,
        Self::RetryTotalBudget,
        Self::RetryInitialBackoff,
        Self::RetryMaxBackoff,
        Self::RecoveryTimeout,
        Self::ZstdLevel,
    ];

    /// The key as spelled in `profile.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::User => "user",
            Self::Url => "url",
            Self::Scheme => "scheme",
            Self::Host => "host",
            Self::Port => "port",
            Self::Ssl => "ssl",
            Self::PrivateKey => "private_key",
            Self::PrivateKeyFile => "private_key_file",
            Self::PrivateKeyPassphrase => "private_key_passphrase",
            Self::Role => "role",
            Self::AuthorizationType => "authorization_type",
            Self::PersonalAccessToken => "personal_access_token",
            Self::OauthClientId => "oauth_client_id",
            Self::OauthClientSecret => "oauth_client_secret",
            Self::OauthRefreshToken => "oauth_refresh_token",
            Self::OauthTokenEndpoint => "oauth_token_endpoint",
            Self::OauthScope => "oauth_scope",
            Self::OauthIncludeScope => "oauth_include_scope",
            Self::Application => "application",
            Self::ReplaceUnderscoreWithDashInHost => "replace_underscore_with_dash_in_host",
            Self::DangerAcceptCleartextHttp => "danger_accept_cleartext_http",
            Self::EnableRowsetCompression => "enable_rowset_compression",
            Self::MaxRequestsPerSecond => "max_requests_per_second",
            Self::MaxBytesPerSecond => "max_bytes_per_second",
            Self::AuthRefreshBufferDurationSeconds => "auth_refresh_buffer_duration_seconds",
            Self::MaxClientLag => "max_client_lag",
            Self::RootCaFile => "root_ca_file",
            Self::Proxy => "proxy",
            Self::NoProxy => "no_proxy",
            Self::RequestTimeout => "request_timeout",
            Self::ConnectTimeout => "connect_timeout",
            Self::MaxRequestBytes => "max_request_bytes",
            Self::MemoryBudgetBytes => "memory_budget_bytes",
            Self::Compression => "compression",
            Self::CommitPollInterval => "commit_poll_interval",
            Self::RetryMaxAttempts => "retry_max_attempts",
            Self::RetryTotalBudget => "retry_total_budget",
            Self::RetryInitialBackoff => "retry_initial_backoff",
            Self::RetryMaxBackoff => "retry_max_backoff",
            Self::RecoveryTimeout => "recovery_timeout",
            Self::ZstdLevel => "zstd_level",
        }
    }

    /// The environment variable [`ClientBuilder::from_env`] reads for this key, if any.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Self::Account => Some("SNOWFLAKE_ACCOUNT"),
            Self::User => Some("SNOWFLAKE_USER"),
            Self::Url => Some("SNOWFLAKE_URL"),
            Self::PrivateKey => Some("SNOWFLAKE_PRIVATE_KEY"),
            Self::PrivateKeyFile => Some("SNOWFLAKE_PRIVATE_KEY_FILE"),
            Self::PrivateKeyPassphrase => Some("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
            Self::Role => Some("SNOWFLAKE_ROLE"),
            Self::Application => Some("SS_APPLICATION"),
            _ => None,
        }
    }

    /// Whether the official SDK's `profile.json` knows this key.
    pub fn is_official(self) -> bool {
        matches!(
            self,
            Self::Account
                | Self::User
                | Self::Url
                | Self::Scheme
                | Self::Host
                | Self::Port
                | Self::Ssl
                | Self::PrivateKey
                | Self::PrivateKeyFile
                | Self::PrivateKeyPassphrase
                | Self::Role
                | Self::AuthorizationType
                | Self::PersonalAccessToken
                | Self::OauthClientId
                | Self::OauthClientSecret
                | Self::OauthRefreshToken
                | Self::OauthTokenEndpoint
                | Self::OauthScope
                | Self::OauthIncludeScope
                | Self::Application
                | Self::ReplaceUnderscoreWithDashInHost
                | Self::EnableRowsetCompression
                | Self::AuthRefreshBufferDurationSeconds
                | Self::MaxClientLag
        )
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConfigKey {
    type Err = Error;

    /// Parses a key case-insensitively, ignoring surrounding whitespace.
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                Error::config(
                    wanted.to_owned(),
                    format!("unknown client setting {wanted:?}; the keys are listed on ConfigKey"),
                )
            })
    }
}

impl ClientBuilder {
    /// Sets `key` from its text value (see [`ClientBuilder::with_config`]). Every value is
    /// parsed before it is stored, so an error leaves the builder unchanged.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key when its value cannot be parsed.
    pub(crate) fn set(&mut self, key: ConfigKey, value: String) -> Result<()> {
        let name = key.as_str();
        let v = value.trim();
        match key {
            ConfigKey::Account => self.account = Some(v.to_owned()),
            ConfigKey::User => self.credentials.user = Some(v.to_owned()),
            ConfigKey::Url => self.url = Some(v.to_owned()),
            ConfigKey::Scheme => self.url_scheme = Some(v.to_owned()),
            ConfigKey::Host => self.url_host = Some(v.to_owned()),
            ConfigKey::Port => self.url_port = Some(v.to_owned()),
            ConfigKey::Ssl => {
                let on = parse_bool(name, v)?;
                self.url_scheme = Some(if on { "https" } else { "http" }.to_owned());
            }
            ConfigKey::PrivateKey => self.credentials.private_key = Some(Secret::new(value)),
            ConfigKey::PrivateKeyFile => self.credentials.private_key_file = Some(PathBuf::from(v)),
            ConfigKey::PrivateKeyPassphrase => {
                self.credentials.private_key_passphrase = Some(Secret::new(value))
            }
            ConfigKey::Role => self.role = Some(v.to_owned()),
            ConfigKey::AuthorizationType => self.credentials.authorization_type = Some(v.parse()?),
            ConfigKey::PersonalAccessToken => {
                self.credentials.personal_access_token = Some(Secret::new(v))
            }
            ConfigKey::OauthClientId => self.credentials.oauth_client_id = Some(v.to_owned()),
            ConfigKey::OauthClientSecret => {
                self.credentials.oauth_client_secret = Some(Secret::new(v))
            }
            ConfigKey::OauthRefreshToken => {
                self.credentials.oauth_refresh_token = Some(Secret::new(v))
            }
            ConfigKey::OauthTokenEndpoint => {
                self.credentials.oauth_token_endpoint = Some(v.to_owned())
            }
            ConfigKey::OauthScope => self.credentials.oauth_scope = Some(v.to_owned()),
            ConfigKey::OauthIncludeScope => {
                self.credentials.oauth_include_scope = parse_bool(name, v)?
            }
            ConfigKey::Application => self.application = Some(v.to_owned()),
            ConfigKey::ReplaceUnderscoreWithDashInHost => {
                self.replace_underscore_with_dash_in_host = parse_bool(name, v)?;
            }
            ConfigKey::DangerAcceptCleartextHttp => {
                self.danger_accept_cleartext_http = parse_bool(name, v)?;
            }
            ConfigKey::EnableRowsetCompression => {
                self.channel.compression = if parse_bool(name, v)? {
                    Compression::Zstd
                } else {
                    Compression::None
                };
            }
            ConfigKey::MaxRequestsPerSecond => {
                self.appends_per_second = parse_num(name, v)?;
            }
            ConfigKey::MaxBytesPerSecond => {
                self.append_bytes_per_second = parse_num(name, v)?;
            }
            ConfigKey::AuthRefreshBufferDurationSeconds => {
                self.auth_refresh_ahead = Duration::from_secs(parse_num(name, v)?);
            }
            ConfigKey::MaxClientLag => {
                self.channel.max_client_lag = match v.parse::<u64>() {
                    Ok(ms) => Duration::from_millis(ms),
                    Err(_) => parse_duration(name, v)?,
                };
            }
            ConfigKey::RootCaFile => self.http.root_ca_files.push(PathBuf::from(v)),
            ConfigKey::Proxy => self.http.proxy = Some(Secret::new(v)),
            ConfigKey::NoProxy => self.http.no_proxy = Some(v.to_owned()),
            ConfigKey::RequestTimeout => self.http.request_timeout = parse_duration(name, v)?,
            ConfigKey::ConnectTimeout => self.http.connect_timeout = parse_duration(name, v)?,
            ConfigKey::MaxRequestBytes => self.channel.max_request_bytes = parse_num(name, v)?,
            ConfigKey::MemoryBudgetBytes => self.channel.memory_budget_bytes = parse_num(name, v)?,
            ConfigKey::Compression => {
                self.channel.compression = match v.to_ascii_lowercase().as_str() {
                    "zstd" => Compression::Zstd,
                    "gzip" => Compression::Gzip,
                    "none" | "off" | "false" => Compression::None,
                    _ => {
                        return Err(Error::config(
                            name,
                            format!("{v:?} is not one of zstd, gzip, none"),
                        ))
                    }
                };
            }
            ConfigKey::CommitPollInterval => {
                self.channel.commit_poll_interval = parse_duration(name, v)?
            }
            ConfigKey::RetryMaxAttempts => {
                self.retry = self.retry.clone().max_attempts(parse_num(name, v)?)
            }
            ConfigKey::RetryTotalBudget => {
                self.retry = self.retry.clone().total_budget(parse_duration(name, v)?)
            }
            ConfigKey::RetryInitialBackoff => {
                self.retry = self.retry.clone().initial_backoff(parse_duration(name, v)?)
            }
            ConfigKey::RetryMaxBackoff => {
                self.retry = self.retry.clone().max_backoff(parse_duration(name, v)?)
            }
            ConfigKey::RecoveryTimeout => {
                self.channel.recovery_timeout = parse_duration(name, v)?;
            }
            ConfigKey::ZstdLevel => self.channel.zstd_level = parse_num(name, v)?,
        }
        Ok(())
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
    crate::duration::parse(v).map_err(|e| Error::config(key, e.to_string()))
}

/// The most unknown profile keys one warning names (a profile of 100,000 keys is one line).
const UNKNOWN_KEYS_SHOWN: usize = 10;

/// One warning for the profile's unknown keys: the first [`UNKNOWN_KEYS_SHOWN`], each escaped
/// and cut at 64 characters, and how many more.
pub(super) fn warn_unknown(unknown: &[String]) {
    if unknown.is_empty() {
        return;
    }
    let shown: Vec<String> = unknown
        .iter()
        .take(UNKNOWN_KEYS_SHOWN)
        .map(|k| {
            k.chars()
                .take(64)
                .collect::<String>()
                .escape_debug()
                .to_string()
        })
        .collect();
    let more = unknown.len().saturating_sub(UNKNOWN_KEYS_SHOWN);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    tracing::warn!(
        keys = %format_args!("{}{more}", shown.join(", ")),
        "unknown or unsupported client settings ignored"
    );
}
