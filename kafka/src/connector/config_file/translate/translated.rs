//! What a translation reads and what it makes: the file's keys as the connector reads their
//! values ([`Values`]), and the [`ConnectorConfig`] they become, with its [`Connection`].

use std::collections::BTreeMap;

use crate::formats::registry::BasicAuth;

/// The Snowflake connection a connector configuration names. `Debug` shows no key material.
#[derive(Clone, Default)]
pub struct Connection {
    /// `snowflake.url.name`, as an `https://` URL (or the `http(s)://` URL given).
    pub url: Option<String>,
    /// The account: the URL host's first label.
    pub account: Option<String>,
    /// `snowflake.user.name`.
    pub user: Option<String>,
    /// `snowflake.private.key` as a PEM document.
    pub private_key_pem: Option<String>,
    /// `snowflake.private.key.passphrase`.
    pub passphrase: Option<String>,
    /// `snowflake.role.name`.
    pub role: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("account", &self.account)
            .field("user", &self.user)
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("role", &self.role)
            .finish()
    }
}

impl Connection {
    /// `builder` with what the configuration names (the rest stays the profile's or the
    /// environment's).
    pub fn apply(
        &self,
        mut builder: snowpipe_streaming::ClientBuilder,
    ) -> snowpipe_streaming::ClientBuilder {
        if let Some(v) = &self.url {
            builder = builder.url(v);
        }
        if let Some(v) = &self.account {
            builder = builder.account(v);
        }
        if let Some(v) = &self.user {
            builder = builder.user(v);
        }
        if let Some(v) = &self.private_key_pem {
            builder = builder.private_key_pem(v);
        }
        if let Some(v) = &self.passphrase {
            builder = builder.private_key_passphrase(v);
        }
        if let Some(v) = &self.role {
            builder = builder.role(v);
        }
        builder
    }
}

/// A connector configuration, translated. `Debug` shows no secret.
#[derive(Default)]
pub struct ConnectorConfig {
    /// Command-line options (`--flag`, then its value when it takes one).
    pub args: Vec<(String, Option<String>)>,
    /// The Snowflake connection the file gives (account, user, key).
    pub connection: Connection,
    /// The registry's credentials (`value.converter.basic.auth.user.info`).
    pub registry_auth: Option<BasicAuth>,
    /// `value.converter.basic.auth.credentials.source=SASL_INHERIT`: the registry's
    /// credentials are the Kafka login's (`sasl.username`, `sasl.password`).
    pub registry_auth_inherit: bool,
    /// Keys this sink has no equivalent for (names only).
    pub ignored: Vec<String>,
    /// How a taken key's meaning differs here (logged once at start).
    pub notes: Vec<String>,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("args", &self.args)
            .field("connection", &self.connection)
            .field("registry_auth", &self.registry_auth)
            .field("registry_auth_inherit", &self.registry_auth_inherit)
            .field("ignored", &self.ignored)
            .field("notes", &self.notes)
            .finish()
    }
}

impl ConnectorConfig {
    /// Adds the option `flag`, with its value when it takes one.
    pub(super) fn flag(&mut self, flag: &str, value: Option<&str>) {
        self.args.push((flag.to_owned(), value.map(str::to_owned)));
    }

    /// Adds a note: how a key's meaning differs here.
    pub(super) fn note(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }
}

/// The file's keys as the connector reads their values: trimmed, an empty one absent.
#[derive(Clone, Copy)]
pub(super) struct Values<'a>(pub(super) &'a BTreeMap<String, String>);

impl<'a> Values<'a> {
    /// `key`'s value, trimmed; `None` when it is absent or empty.
    pub(super) fn get(self, key: &str) -> Option<&'a str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The connector reads its flags with `Boolean.parseBoolean`: `true` in any case is true,
    /// any other value false.
    pub(super) fn is_true(self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A flag that defaults to true, given otherwise (`Boolean.parseBoolean` false).
    pub(super) fn is_off(self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| !v.eq_ignore_ascii_case("true"))
    }
}
