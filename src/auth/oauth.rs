//! OAuth (authorization_type `OAUTH`, docs/protocol-wire.md §2.4): an access token from an OAuth token
//! endpoint (Snowflake OAuth's `{account}/oauth/token-request` by default, or an External
//! OAuth endpoint) authenticates the control plane; it is then exchanged for the scoped token
//! like a key-pair JWT.
//!
//! The token endpoint is called with `Authorization: Basic base64(client_id:client_secret)`
//! and the form `grant_type=refresh_token&refresh_token=…` (or `grant_type=client_credentials`
//! without a refresh token) plus `scope` (default `session:role:<ROLE>` when a role is set).
//! The JSON answer `{access_token, expires_in, refresh_token}` is cached until a minute before
//! it expires; a rotated refresh token replaces the old one.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use http::Method;
use serde::Deserialize;
use tokio::time::Instant;

use crate::auth::{AuthHeader, Authenticator, Secret};
use crate::http::{Call, HttpClient};
use crate::Result;

/// Refresh the access token this long before it expires.
const ACCESS_REFRESH_AHEAD: Duration = Duration::from_secs(60);

/// OAuth settings, resolved.
#[derive(Debug, Clone)]
pub(crate) struct OAuthConfig {
    pub(crate) endpoint: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) refresh_token: Option<Secret>,
    /// `scope` form field; `None` omits it.
    pub(crate) scope: Option<String>,
    /// Lifetime assumed when the response has no `expires_in`.
    pub(crate) default_ttl: Duration,
}

#[derive(Debug, Default)]
struct State {
    access: Option<(Secret, Instant)>,
    refresh_token: Option<Secret>,
    generation: u64,
}

/// Obtains and caches OAuth access tokens.
pub(crate) struct OAuthClient {
    http: HttpClient,
    config: OAuthConfig,
    state: tokio::sync::Mutex<State>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("endpoint", &self.config.endpoint)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// `Authorization: Basic` with the client credentials, for the token endpoint.
#[derive(Debug)]
struct ClientCredentials(Secret);

#[async_trait]
impl Authenticator for ClientCredentials {
    async fn authorization(&self) -> Result<AuthHeader> {
        Ok(AuthHeader {
            token: self.0.clone(),
            scheme: "Basic",
            token_type: None,
            generation: 0,
        })
    }

    async fn unauthorized(&self, _rejected: &AuthHeader) -> Result<bool> {
        Ok(false)
    }

    fn rejection_hint(&self) -> String {
        "the OAuth token endpoint rejected the client id/secret or the refresh token: check \
         oauth_client_id, oauth_client_secret and oauth_refresh_token"
            .to_owned()
    }
}

impl OAuthClient {
    pub(crate) fn new(http: HttpClient, config: OAuthConfig) -> Self {
        let refresh_token = config.refresh_token.clone();
        Self {
            http,
            config,
            state: tokio::sync::Mutex::new(State {
                refresh_token,
                ..State::default()
            }),
        }
    }

    /// A valid access token and its generation.
    pub(crate) async fn access_token(&self) -> Result<(Secret, u64)> {
        let mut state = self.state.lock().await;
        if let Some((token, expires)) = &state.access {
            if Instant::now() + ACCESS_REFRESH_AHEAD < *expires {
                return Ok((token.clone(), state.generation));
            }
        }
        self.fetch(&mut state).await
    }

    /// Drops the access token of `generation` (after a 401), so the next call fetches one.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.access = None;
        }
    }

    async fn fetch(&self, state: &mut State) -> Result<(Secret, u64)> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        match &state.refresh_token {
            Some(rt) => {
                pairs.push(("grant_type", "refresh_token"));
                pairs.push(("refresh_token", rt.expose()));
            }
            None => pairs.push(("grant_type", "client_credentials")),
        }
        if let Some(scope) = &self.config.scope {
            pairs.push(("scope", scope));
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let call = Call::new(
            "OAuth token request",
            Method::POST,
            self.config.endpoint.clone(),
        )
        .body(form, "application/x-www-form-urlencoded")
        .max_response_bytes(crate::http::SMALL_ANSWER_BYTES);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.config.client_id,
            self.config.client_secret.expose()
        ));
        let resp = self
            .http
            .execute(&call, &ClientCredentials(Secret::new(basic)))
            .await?;
        let parsed: TokenResponse = resp.json("OAuth token request")?;
        let ttl = parsed
            .expires_in
            .map(|s| Duration::from_secs(s).min(crate::wire_time::MAX_TOKEN_TTL))
            .unwrap_or(self.config.default_ttl);
        if let Some(rotated) = parsed.refresh_token.filter(|t| !t.is_empty()) {
            state.refresh_token = Some(Secret::new(rotated));
        }
        let token = Secret::new(parsed.access_token);
        state.generation += 1;
        state.access = Some((token.clone(), Instant::now() + ttl));
        Ok((token, state.generation))
    }
}
