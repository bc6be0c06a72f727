//! Authentication of requests: control-plane JWTs and PATs, scoped tokens on the data plane.

use http::HeaderMap;

use crate::base::api_error::ApiError;
use crate::service::Shared;

use super::request::{bearer, token_type};

pub(super) fn auth_control(
    shared: &Shared,
    headers: &HeaderMap,
    fallback: Option<&str>,
) -> Result<crate::security::auth::Principal, ApiError> {
    let token = bearer(headers)
        .or_else(|| fallback.map(str::to_string))
        .ok_or_else(|| {
            ApiError::new(
                401,
                "390101",
                "missing Authorization: Bearer <key-pair JWT or PAT>",
            )
        })?;
    shared
        .auth
        .verify_control(&token, token_type(headers).as_deref())
        .map(|p| shared.with_default_role(p))
        .map_err(|e| {
            tracing::info!(reason = %e, "control-plane authentication failed");
            ApiError::new(401, "390144", format!("authentication failed: {e}"))
        })
}

/// Checks the scoped token of a data-plane call and, for a call about database `db`, that
/// the token's role may use it (see `EmulatorConfig::role_grants`).
pub(super) fn auth_scoped(
    shared: &Shared,
    headers: &HeaderMap,
    allow_control: bool,
    db: Option<&str>,
) -> Result<crate::security::auth::Principal, ApiError> {
    let principal = verify_scoped(shared, headers, allow_control)?;
    if let Some(db) = db {
        shared.authorize(principal.role.as_deref(), db)?;
    }
    Ok(principal)
}

pub(super) fn verify_scoped(
    shared: &Shared,
    headers: &HeaderMap,
    allow_control: bool,
) -> Result<crate::security::auth::Principal, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            401,
            "390101",
            "missing Authorization: Bearer <scoped token>",
        )
    })?;
    match shared.auth.verify_scoped(&token) {
        Ok(p) => Ok(shared.with_default_role(p)),
        Err(e) => {
            if let Some(p) = allow_control
                .then(|| shared.auth.verify_control(&token, None).ok())
                .flatten()
            {
                return Ok(shared.with_default_role(p));
            }
            tracing::info!(reason = %e, "data-plane authentication failed");
            Err(ApiError::new(
                401,
                "390114",
                format!("authentication failed: {e}"),
            ))
        }
    }
}
