//! Snowflake's `connections.toml`, the file Snowflake's CLI, its Python connector and other
//! drivers share: [`ClientBuilder::from_connections_toml`] (a file and a section) and
//! [`ClientBuilder::from_connection`] (the file found where Snowflake's tools look).
//!
//! Where the file is, which section is the default, what its keys mean and the permission
//! rules are Snowflake's, cited in `docs/connections-toml.md`.

use std::path::{Path, PathBuf};

use super::{ClientBuilder, ConfigKey};
use crate::auth::AuthorizationType;
use crate::{Error, Result};

/// The setting named by file-level errors.
const SETTING: &str = "connections.toml";

/// The authenticators this client maps, for the error that names the others.
const SUPPORTED: &str = "SNOWFLAKE_JWT (key pair: private_key_file or private_key), \
     PROGRAMMATIC_ACCESS_TOKEN (token or token_file_path) and OAUTH_CLIENT_CREDENTIALS \
     (oauth_client_id, oauth_client_secret)";

/// The keys of a connection this client reads (besides this crate's own, [`ConfigKey`]).
const MAPPED: &[&str] = &[
    "account",
    "user",
    "role",
    "host",
    "port",
    "protocol",
    "application",
    "authenticator",
    "private_key_file",
    "private_key_path",
    "private_key_file_pwd",
    "private_key_passphrase",
    "private_key",
    "token",
    "token_file_path",
    "password",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_token_request_url",
    "oauth_scope",
];

/// The passphrase of an encrypted key when the connection has no `private_key_file_pwd`.
const PASSPHRASE_VAR: &str = "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE";

/// The environment variable that names the default connection, before any file does.
const DEFAULT_NAME_VAR: &str = "SNOWFLAKE_DEFAULT_CONNECTION_NAME";

impl ClientBuilder {
    /// A builder filled from one connection of a Snowflake `connections.toml` file (the file
    /// Snowflake's CLI, Python connector and drivers share; `docs/connections-toml.md`).
    ///
    /// `name` chooses the section (`[myconnection]`); `None` takes the default connection as
    /// Snowflake's tools choose it: the `SNOWFLAKE_DEFAULT_CONNECTION_NAME` environment
    /// variable, else the file's top-level `default_connection_name`, else `default`. A file
    /// named `config.toml` is read in its own layout, the connections under
    /// `[connections.<name>]`.
    ///
    /// Keys: `account`, `user`, `role`, `host`, `port`, `protocol` (`https`/`http`),
    /// `authenticator` (`SNOWFLAKE_JWT`, `PROGRAMMATIC_ACCESS_TOKEN` or
    /// `OAUTH_CLIENT_CREDENTIALS`), `private_key_file` (or `private_key_path`, `~/` expanded),
    /// `private_key_file_pwd` (or `private_key_passphrase`; else the
    /// `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE` environment variable), `private_key`, `token`,
    /// `token_file_path`, `oauth_client_id`, `oauth_client_secret`, `oauth_token_request_url`,
    /// `oauth_scope`, `application`; this crate's own keys ([`ConfigKey`]) are read too. Keys a
    /// streaming client has no use for (`database`, `schema`, `warehouse`, ...) are skipped.
    /// Without `authenticator`, a private key means key pair and a token alone means PAT.
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be read, is not TOML, or can be written by other
    /// users (as Snowflake's connector refuses it); when the section does not exist (the
    /// message lists those that do); when its authenticator is one this client does not
    /// support (the message lists those it does); or naming a key whose value is invalid.
    pub fn from_connections_toml(path: impl AsRef<Path>, name: Option<&str>) -> Result<Self> {
        Self::connections_file_with(path.as_ref(), name, &|k| std::env::var(k).ok())
    }

    /// A builder filled from a connection of the `connections.toml` Snowflake's tools use,
    /// found where they look for it (`docs/connections-toml.md`): the directory
    /// `$SNOWFLAKE_HOME` (default `~/.snowflake`) when it exists, else the platform's
    /// configuration directory (`$XDG_CONFIG_HOME/snowflake` or `~/.config/snowflake` on Linux,
    /// `~/Library/Application Support/snowflake` on macOS, `%LOCALAPPDATA%\snowflake` on
    /// Windows). There `connections.toml` holds the connections; without it, the
    /// `[connections.<name>]` tables of `config.toml`.
    ///
    /// `name` `None` takes the default connection: `SNOWFLAKE_DEFAULT_CONNECTION_NAME`, else
    /// `default_connection_name` in `config.toml` (or at the top of `connections.toml`), else
    /// `default`. The keys are those of [`from_connections_toml`](Self::from_connections_toml).
    ///
    /// # Errors
    /// [`Error::Config`] when neither file exists (the message lists the paths looked at), and
    /// as [`from_connections_toml`](Self::from_connections_toml).
    pub fn from_connection(name: Option<&str>) -> Result<Self> {
        Self::discovered_connection_with(name, &|k| std::env::var(k).ok())
    }

    /// [`from_connections_toml`](Self::from_connections_toml) with the environment read
    /// through `env`.
    pub(crate) fn connections_file_with(
        path: &Path,
        name: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let file = TomlFile::read(path)?;
        let config_layout = path.file_name().is_some_and(|n| n == "config.toml");
        let (connections, top) = if config_layout {
            (file.connections_table()?, &file.table)
        } else {
            (file.table.clone(), &file.table)
        };
        let chosen = Chosen::pick(name, env, &[(top, path)]);
        connection(&connections, &chosen, path, env)
    }

    /// [`from_connection`](Self::from_connection) with the environment read through `env`.
    pub(crate) fn discovered_connection_with(
        name: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let (dir, looked) = config_dir(env);
        let connections_path = dir.join("connections.toml");
        let config_path = dir.join("config.toml");
        let config = if config_path.is_file() {
            Some(TomlFile::read(&config_path)?)
        } else {
            None
        };
        if connections_path.is_file() {
            // Its connections replace config.toml's (docs/connections-toml.md).
            let file = TomlFile::read(&connections_path)?;
            let mut tops: Vec<(&toml::Table, &Path)> = Vec::new();
            if let Some(c) = &config {
                tops.push((&c.table, &config_path));
            }
            tops.push((&file.table, &connections_path));
            let chosen = Chosen::pick(name, env, &tops);
            return connection(&file.table, &chosen, &connections_path, env);
        }
        if let Some(c) = config {
            let connections = c.connections_table()?;
            let chosen = Chosen::pick(name, env, &[(&c.table, &config_path)]);
            return connection(&connections, &chosen, &config_path, env);
        }
        let mut paths: Vec<String> = looked
            .iter()
            .map(|d| format!("{} (does not exist)", d.display()))
            .collect();
        paths.push(connections_path.display().to_string());
        paths.push(config_path.display().to_string());
        Err(Error::config(
            SETTING,
            format!(
                "no connections.toml found; looked at {}. Create {} (docs/connections-toml.md), \
                 or set SNOWFLAKE_HOME to the directory that holds it",
                paths.join(", "),
                connections_path.display()
            ),
        ))
    }
}

/// A TOML file read and parsed.
struct TomlFile {
    path: PathBuf,
    table: toml::Table,
}

impl TomlFile {
    /// Reads `path` (refused when others may write it, as Snowflake's connector refuses it;
    /// a warning when they may read it) and parses it. A parse error names the line and
    /// column, never the text there (it may be a secret).
    fn read(path: &Path) -> Result<Self> {
        let text = crate::secret::read_secret_file(path, "connections.toml").map_err(|e| {
            Error::config_caused(
                SETTING,
                format!(
                    "cannot read {}: check the path and its permissions",
                    path.display()
                ),
                e,
            )
        })?;
        if let Some(mode) = writable_by_others(path) {
            return Err(Error::config(
                SETTING,
                format!(
                    "{} can be written by other users (mode {mode:o}): anyone could change the \
                     account or the key it names. Restrict it: chmod 0600 {}",
                    path.display(),
                    path.display()
                ),
            ));
        }
        let table = text.parse::<toml::Table>().map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            Error::config(
                SETTING,
                format!(
                    "{} is not valid TOML{at}: {}",
                    path.display(),
                    e.message().trim_end()
                ),
            )
        })?;
        Ok(Self {
            path: path.to_owned(),
            table,
        })
    }

    /// The `[connections]` table of a `config.toml` (empty when it has none).
    fn connections_table(&self) -> Result<toml::Table> {
        match self.table.get("connections") {
            None => Ok(toml::Table::new()),
            Some(toml::Value::Table(t)) => Ok(t.clone()),
            Some(_) => Err(Error::config(
                SETTING,
                format!(
                    "connections in {} must be a table of connections ([connections.<name>])",
                    self.path.display()
                ),
            )),
        }
    }
}

/// The connection asked for and where its name came from (for the error when it is missing).
struct Chosen {
    name: String,
    origin: String,
}

impl Chosen {
    /// `name`, else Snowflake's default: the environment variable, else the first
    /// `default_connection_name` of `tops` (top-level tables, in order), else `default`.
    fn pick(
        name: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        tops: &[(&toml::Table, &Path)],
    ) -> Self {
        if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
            return Self {
                name: n.to_owned(),
                origin: "asked for".to_owned(),
            };
        }
        if let Some(n) = env(DEFAULT_NAME_VAR)
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
        {
            return Self {
                name: n,
                origin: format!("the default connection, from {DEFAULT_NAME_VAR}"),
            };
        }
        for (top, path) in tops {
            if let Some(toml::Value::String(n)) = top.get("default_connection_name") {
                return Self {
                    name: n.trim().to_owned(),
                    origin: format!(
                        "the default connection, from default_connection_name in {}",
                        path.display()
                    ),
                };
            }
        }
        Self {
            name: "default".to_owned(),
            origin: format!(
                "the default connection when neither {DEFAULT_NAME_VAR} nor \
                 default_connection_name names one"
            ),
        }
    }
}

/// The builder of connection `chosen` of `connections` (read from `path`).
fn connection(
    connections: &toml::Table,
    chosen: &Chosen,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientBuilder> {
    match connections.get(&chosen.name) {
        Some(toml::Value::Table(section)) => {
            let at = format!("[{}] of {}", chosen.name, path.display());
            apply(section, &at, env)
        }
        Some(_) => Err(Error::config(
            SETTING,
            format!(
                "{} in {} is not a section ([{}] with its keys)",
                chosen.name,
                path.display(),
                chosen.name
            ),
        )),
        None => {
            let names: Vec<&str> = connections
                .iter()
                .filter(|(_, v)| v.is_table())
                .map(|(k, _)| k.as_str())
                .collect();
            let known = if names.is_empty() {
                "it defines no connection".to_owned()
            } else {
                format!("its connections are {}", names.join(", "))
            };
            Err(Error::config(
                SETTING,
                format!(
                    "no connection {:?} ({}) in {}; {known}",
                    chosen.name,
                    chosen.origin,
                    path.display()
                ),
            ))
        }
    }
}

/// What the keys of one connection say about authentication.
#[derive(Default)]
struct Auth {
    authenticator: Option<String>,
    has_key: bool,
    token: Option<String>,
    token_file: Option<PathBuf>,
    has_password: bool,
}

/// Sets the builder from one connection's keys; `at` names the section in errors.
fn apply(
    section: &toml::Table,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientBuilder> {
    let mut b = ClientBuilder::new();
    let mut auth = Auth::default();
    let mut skipped: Vec<&str> = Vec::new();
    for (key, value) in section {
        let lower = key.to_ascii_lowercase();
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(v) => v.to_string(),
            _ if MAPPED.contains(&lower.as_str()) || lower.parse::<ConfigKey>().is_ok() => {
                return Err(Error::config(
                    key.as_str(),
                    format!("in {at}: expected a string, number or boolean"),
                ))
            }
            _ => {
                skipped.push(key);
                continue;
            }
        };
        let set = |b: ClientBuilder, k: ConfigKey, v: String| {
            b.with_config(k, v)
                .map_err(|e| e.config_prefixed(&format!("in {at}")))
        };
        b = match lower.as_str() {
            "account" => set(b, ConfigKey::Account, text)?,
            "user" => set(b, ConfigKey::User, text)?,
            "role" => set(b, ConfigKey::Role, text)?,
            "host" => set(b, ConfigKey::Host, text)?,
            "port" => set(b, ConfigKey::Port, text)?,
            "protocol" => set(b, ConfigKey::Scheme, text.to_ascii_lowercase())?,
            "application" => set(b, ConfigKey::Application, text)?,
            "authenticator" => {
                auth.authenticator = Some(text.trim().to_ascii_uppercase());
                b
            }
            "private_key_file" | "private_key_path" => {
                auth.has_key = true;
                set(b, ConfigKey::PrivateKeyFile, expand_home(&text, env))?
            }
            // Empty: no passphrase (the variable's, if any).
            "private_key_file_pwd" | "private_key_passphrase" if text.is_empty() => b,
            "private_key_file_pwd" | "private_key_passphrase" => {
                set(b, ConfigKey::PrivateKeyPassphrase, text)?
            }
            "private_key" => {
                auth.has_key = true;
                set(b, ConfigKey::PrivateKey, text)?
            }
            "token" => {
                auth.token = Some(text);
                b
            }
            "token_file_path" => {
                auth.token_file = Some(PathBuf::from(expand_home(&text, env)));
                b
            }
            "password" => {
                auth.has_password = true;
                b
            }
            "oauth_token_request_url" => set(b, ConfigKey::OauthTokenEndpoint, text)?,
            other => match other.parse::<ConfigKey>() {
                // This crate's own keys (`url`, `max_client_lag`, ...).
                Ok(k) => set(b, k, text)?,
                // Keys a streaming client has no use for (`database`, `schema`,
                // `warehouse`, ...): a connection written for Snowflake's tools has them.
                Err(_) => {
                    skipped.push(key);
                    b
                }
            },
        };
    }
    if !skipped.is_empty() {
        tracing::debug!(
            connection = %at,
            keys = %skipped.join(", "),
            "connections.toml keys a streaming client does not use were skipped"
        );
    }
    // An encrypted key's passphrase kept out of the file: the variable `from_env` reads (and
    // `snowpipe-emulator keygen --encrypt` encrypts with).
    if auth.has_key && b.credentials.private_key_passphrase.is_none() {
        if let Some(p) = env(PASSPHRASE_VAR).filter(|p| !p.is_empty()) {
            b.credentials.private_key_passphrase = Some(crate::auth::Secret::new(p));
        }
    }
    b = authenticate(b, auth, at)?;
    // `protocol` or `port` without `host`: the account's host, as Snowflake's connector
    // derives it.
    if b.url.is_none() && b.url_host.is_none() && (b.url_scheme.is_some() || b.url_port.is_some()) {
        if let Some(account) = b.account.clone() {
            b.url_host = Some(format!("{}.snowflakecomputing.com", account.trim()));
        }
    }
    Ok(b)
}

/// Applies the section's authenticator (or the one its keys imply).
fn authenticate(mut b: ClientBuilder, auth: Auth, at: &str) -> Result<ClientBuilder> {
    let token = match (&auth.token, &auth.token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(path)) => Some(read_token(path, at)?),
        (None, None) => None,
    };
    let unsupported = |name: &str, why: &str| {
        Error::config(
            "authenticator",
            format!(
                "in {at}: authenticator {name} is not supported by this client{why}; the \
                 supported ones are {SUPPORTED}"
            ),
        )
    };
    let kind = match auth.authenticator.as_deref() {
        Some("SNOWFLAKE_JWT") => AuthorizationType::KeyPair,
        Some("PROGRAMMATIC_ACCESS_TOKEN") => AuthorizationType::ProgrammaticAccessToken,
        Some("OAUTH_CLIENT_CREDENTIALS") => AuthorizationType::OAuth,
        Some("OAUTH") => {
            return Err(unsupported(
                "OAUTH",
                " (a fixed OAuth access token expires within minutes and a streaming client \
                 could not renew it: use OAUTH_CLIENT_CREDENTIALS with oauth_client_id and \
                 oauth_client_secret)",
            ))
        }
        Some(other @ ("SNOWFLAKE" | "USERNAME_PASSWORD_MFA")) => {
            return Err(unsupported(
                other,
                " (passwords are not accepted by Snowpipe Streaming; a programmatic access \
                 token used as a password goes in token, with authenticator = \
                 \"PROGRAMMATIC_ACCESS_TOKEN\")",
            ))
        }
        Some(other) => return Err(unsupported(other, "")),
        None if auth.has_key => AuthorizationType::KeyPair,
        None if token.is_some() => AuthorizationType::ProgrammaticAccessToken,
        None if auth.has_password => {
            return Err(unsupported(
                "SNOWFLAKE (a password, the default of Snowflake's tools)",
                " (passwords are not accepted by Snowpipe Streaming)",
            ))
        }
        // No credentials here: they may be set on the builder afterwards; `build` names them.
        None => return Ok(b),
    };
    if kind == AuthorizationType::ProgrammaticAccessToken {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(Error::config(
                "token",
                format!(
                    "in {at}: authenticator PROGRAMMATIC_ACCESS_TOKEN needs the token: set \
                     token, or token_file_path to a file holding it"
                ),
            ));
        };
        b.credentials.personal_access_token = Some(crate::auth::Secret::new(token));
    }
    b.credentials.authorization_type = Some(kind);
    Ok(b)
}

/// The token in `path`, trimmed.
fn read_token(path: &Path, at: &str) -> Result<String> {
    let text = crate::secret::read_secret_file(path, "token").map_err(|e| {
        Error::config_caused(
            "token_file_path",
            format!("in {at}: cannot read the token file {}", path.display()),
            e,
        )
    })?;
    Ok(text.trim().to_owned())
}

/// `~` and `~/…` relative to the home directory; other paths as they are.
fn expand_home(path: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let path = path.trim();
    let rest = match path.strip_prefix('~') {
        Some("") => "",
        Some(r) if r.starts_with('/') || r.starts_with('\\') => &r[1..],
        _ => return path.to_owned(),
    };
    match home(env) {
        Some(h) => h.join(rest).to_string_lossy().into_owned(),
        None => path.to_owned(),
    }
}

/// The user's home directory, from the environment.
fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    env(var).filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// The directory Snowflake's tools read `connections.toml` and `config.toml` from, and the
/// directories looked at before it that do not exist.
fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> (PathBuf, Vec<PathBuf>) {
    let home = home(env).unwrap_or_default();
    let snowflake_home = match env("SNOWFLAKE_HOME").filter(|h| !h.trim().is_empty()) {
        Some(h) => PathBuf::from(expand_home(&h, env)),
        None => home.join(".snowflake"),
    };
    if snowflake_home.exists() {
        return (snowflake_home, Vec::new());
    }
    (platform_config_dir(&home, env), vec![snowflake_home])
}

/// The platform's configuration directory for `snowflake` (platformdirs' `user_config_dir`,
/// what Snowflake's Python connector uses).
fn platform_config_dir(home: &Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if cfg!(windows) {
        return env("LOCALAPPDATA")
            .filter(|d| !d.is_empty())
            .map_or_else(|| home.join("AppData").join("Local"), PathBuf::from)
            .join("snowflake");
    }
    if cfg!(target_os = "macos") {
        return home
            .join("Library")
            .join("Application Support")
            .join("snowflake");
    }
    env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .unwrap_or_else(|| home.join(".config"))
        .join("snowflake")
}

/// The file's permission bits when group or others may write it (Unix); `None` otherwise.
fn writable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o022 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests;
