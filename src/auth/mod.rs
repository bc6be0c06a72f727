//! Authentication: key-pair JWTs, programmatic access tokens and the scoped token exchange
//! (docs/protocol-wire.md §2).
//!
//! ```text
//!   control plane (account host)                 data plane (ingest host)
//!   ┌──────────────────────────────┐             ┌──────────────────────────┐
//!   │ ControlAuth                  │  exchange   │ TokenManager             │
//!   │  key-pair JWT (fresh/request)│ ──────────► │  scoped token, cached,   │
//!   │  or PAT                      │ /oauth/token│  refreshed ahead of exp, │
//!   └──────────────────────────────┘             │  single-flight after 401 │
//!                                                └──────────────────────────┘
//! ```
//!
//! Secrets live in [`Secret`], whose `Debug` and `Display` print `***`. The seam the HTTP layer
//! calls on every attempt ([`Authenticator`]) belongs to `http`; this module implements it.

pub(crate) mod credentials;
pub(crate) mod jwt;
pub(crate) mod key;
pub(crate) mod oauth;
pub(crate) mod token;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::Result;

pub(crate) use jwt::JwtSigner;
pub(crate) use key::KeyPair;
pub(crate) use token::TokenManager;

pub(crate) use crate::http::{AuthHeader, Authenticator};
pub(crate) use crate::secret::Secret;

/// How the client authenticates to the control plane (profile key `authorization_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthorizationType {
    /// Key-pair JWT signed with the user's RSA private key (the default; `JWT`).
    #[default]
    KeyPair,
    /// A programmatic access token (`PAT`); `user` is not needed.
    ProgrammaticAccessToken,
    /// An OAuth access token from Snowflake OAuth or External OAuth (`OAUTH`), obtained with
    /// a client id/secret and a refresh token (or the client-credentials grant).
    OAuth,
}

impl AuthorizationType {
    /// The profile.json spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyPair => "JWT",
            Self::ProgrammaticAccessToken => "PAT",
            Self::OAuth => "OAUTH",
        }
    }
}

impl fmt::Display for AuthorizationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthorizationType {
    type Err = Error;

    /// Parses `JWT` (also `KEYPAIR`, `KEYPAIR_JWT`, `SNOWFLAKE_JWT`), `PAT` (also
    /// `PROGRAMMATIC_ACCESS_TOKEN`) or `OAUTH`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "JWT" | "KEYPAIR" | "KEYPAIR_JWT" | "SNOWFLAKE_JWT" | "KEY_PAIR" => Ok(Self::KeyPair),
            "PAT" | "PROGRAMMATIC_ACCESS_TOKEN" => Ok(Self::ProgrammaticAccessToken),
            "OAUTH" | "OAUTH2" => Ok(Self::OAuth),
            other => Err(Error::config(
                "authorization_type",
                format!("unknown authorization type {other:?}; expected JWT, PAT or OAUTH"),
            )),
        }
    }
}

/// Control-plane credentials: used for hostname discovery and the token exchange.
#[derive(Debug, Clone)]
pub(crate) enum ControlAuth {
    /// Key-pair JWT, minted fresh for every request.
    KeyPair(JwtSigner),
    /// Programmatic access token, sent as it is.
    Pat(Secret),
    /// OAuth access token, fetched and cached.
    OAuth(Arc<oauth::OAuthClient>),
}

#[async_trait]
impl Authenticator for ControlAuth {
    async fn authorization(&self) -> Result<AuthHeader> {
        match self {
            Self::KeyPair(signer) => Ok(AuthHeader {
                token: Secret::new(signer.sign()?),
                scheme: "Bearer",
                token_type: Some("KEYPAIR_JWT"),
                generation: 0,
            }),
            Self::Pat(pat) => Ok(AuthHeader {
                token: pat.clone(),
                scheme: "Bearer",
                token_type: Some("PROGRAMMATIC_ACCESS_TOKEN"),
                generation: 0,
            }),
            Self::OAuth(client) => {
                let (token, generation) = client.access_token().await?;
                Ok(AuthHeader {
                    token,
                    scheme: "Bearer",
                    token_type: Some("OAUTH"),
                    generation,
                })
            }
        }
    }

    async fn unauthorized(&self, rejected: &AuthHeader) -> Result<bool> {
        match self {
            // A revoked or expired access token: fetch a new one and retry.
            Self::OAuth(client) => {
                client.invalidate(rejected.generation).await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn rejection_hint(&self) -> String {
        match self {
            Self::KeyPair(signer) => format!(
                "Snowflake did not accept the key-pair JWT for {} (public key fingerprint \
                 SHA256:{}): check the account and user names and that this public key is \
                 registered for the user (DESC USER shows RSA_PUBLIC_KEY_FP)",
                signer.subject(),
                signer.fingerprint()
            ),
            Self::Pat(_) => "Snowflake did not accept the programmatic access token: check \
                             that it is valid, not expired, and belongs to this account"
                .to_owned(),
            Self::OAuth(_) => "Snowflake did not accept the OAuth access token: check the \
                               OAuth integration, the token endpoint and the role"
                .to_owned(),
        }
    }
}

impl ControlAuth {
    /// The form fields of the scoped-token exchange for this credential (docs/protocol-wire.md §2.2,
    /// §2.3).
    pub(crate) fn exchange_form(
        &self,
        scope_host: &str,
        role: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        match self {
            // The role goes in the JWT's `scp` claim (what the official SDK sends) and in the
            // scope (what Redpanda verified live); docs/protocol.md "Authentication and role".
            Self::KeyPair(_) => vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("scope", scoped(scope_host, role)),
            ],
            Self::Pat(_) => {
                let scope = scoped(scope_host, role);
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
                    ),
                    ("scope", scope),
                    ("subject_token_type", "programmatic_access_token".to_owned()),
                ]
            }
            Self::OAuth(_) => vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
                ),
                ("scope", scoped(scope_host, role)),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token".to_owned(),
                ),
            ],
        }
    }
}

/// `<host>[ session:role:<ROLE>]`.
fn scoped(host: &str, role: Option<&str>) -> String {
    match role {
        Some(role) => format!("{host} session:role:{role}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod refresh_tests;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn authorization_type_parsing() {
        assert_eq!(
            "jwt".parse::<AuthorizationType>().unwrap(),
            AuthorizationType::KeyPair
        );
        assert_eq!(
            "PAT".parse::<AuthorizationType>().unwrap(),
            AuthorizationType::ProgrammaticAccessToken
        );
        assert_eq!(
            "oauth".parse::<AuthorizationType>().unwrap(),
            AuthorizationType::OAuth
        );
        assert!("x".parse::<AuthorizationType>().is_err());
    }
}
