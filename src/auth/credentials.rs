//! Control-plane credentials from the builder's settings: a key-pair JWT signer (the key
//! loaded from PEM text or a file), a programmatic access token, or an OAuth client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::key::KeySource;
use super::oauth::{OAuthClient, OAuthConfig};
use super::{AuthorizationType, ControlAuth, JwtSigner, KeyPair, Secret};
use crate::http::HttpClient;
use crate::{Error, Result};

/// The authentication settings of a client builder.
#[derive(Debug, Clone)]
pub(crate) struct CredentialSettings {
    pub(crate) authorization_type: Option<AuthorizationType>,
    pub(crate) user: Option<String>,
    pub(crate) private_key: Option<Secret>,
    pub(crate) private_key_file: Option<PathBuf>,
    pub(crate) private_key_passphrase: Option<Secret>,
    pub(crate) personal_access_token: Option<Secret>,
    pub(crate) oauth_client_id: Option<String>,
    pub(crate) oauth_client_secret: Option<Secret>,
    pub(crate) oauth_refresh_token: Option<Secret>,
    pub(crate) oauth_token_endpoint: Option<String>,
    pub(crate) oauth_scope: Option<String>,
    pub(crate) oauth_include_scope: bool,
    /// Lifetime assumed for a token whose answer states none.
    pub(crate) default_token_ttl: Duration,
}

impl Default for CredentialSettings {
    fn default() -> Self {
        Self {
            authorization_type: None,
            user: None,
            private_key: None,
            private_key_file: None,
            private_key_passphrase: None,
            personal_access_token: None,
            oauth_client_id: None,
            oauth_client_secret: None,
            oauth_refresh_token: None,
            oauth_token_endpoint: None,
            oauth_scope: None,
            oauth_include_scope: true,
            default_token_ttl: Duration::from_secs(3600),
        }
    }
}

impl CredentialSettings {
    /// The control-plane credentials: a key-pair JWT signer, a PAT or an OAuth client.
    pub(crate) fn control_auth(
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
}
