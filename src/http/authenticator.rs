//! The seam between the HTTP layer and authentication: every attempt asks an
//! [`Authenticator`] for its header, and tells it about a 401. `auth` implements it.

use std::fmt;

use async_trait::async_trait;

use crate::secret::Secret;
use crate::Result;

/// The `Authorization` header of one attempt: the bearer token and its
/// `X-Snowflake-Authorization-Token-Type`.
#[derive(Debug, Clone)]
pub(crate) struct AuthHeader {
    pub(crate) token: Secret,
    /// `Bearer` (or `Basic` for the OAuth token endpoint).
    pub(crate) scheme: &'static str,
    /// `X-Snowflake-Authorization-Token-Type`, when sent.
    pub(crate) token_type: Option<&'static str>,
    /// Identifies the cached token this header came from (for single-flight refresh).
    pub(crate) generation: u64,
}

/// Supplies the auth header of every attempt and reacts to HTTP 401.
#[async_trait]
pub(crate) trait Authenticator: Send + Sync + fmt::Debug {
    /// The header for the next attempt (re-read on every attempt).
    async fn authorization(&self) -> Result<AuthHeader>;

    /// Called after a 401 to the request that carried `rejected`. Returns `Ok(true)` when a
    /// new credential is available and the request should be retried.
    async fn unauthorized(&self, rejected: &AuthHeader) -> Result<bool>;

    /// What to tell the user when the server keeps answering 401.
    fn rejection_hint(&self) -> String;
}
