//! Who is asking a SQL API statement (the role grants, the token's role, the user) and the
//! role the statement runs as: the token's (or the user's default), or the request's `role`
//! when the user may use it.

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;

/// Who is asking: the role grants (`--grant`), the role of the caller's token (or the user's
/// default role) and the user.
pub(crate) struct Caller<'a> {
    pub grants: &'a [(String, String)],
    pub token_role: Option<&'a str>,
    /// The user (`USER` of a key-pair JWT's `ACCOUNT.USER`); `None` for a PAT.
    pub user: Option<&'a str>,
    /// The emulator accepts any credential (`--accept-any-key`): there is no user to check a
    /// requested role against, so the request's `role` is taken as given.
    pub any_role: bool,
}

impl Caller<'_> {
    /// The role the statement runs as: the token's (or the user's default), unless the
    /// request names one the user may use: the token's role, `PUBLIC`, the user's default
    /// role or a role `GRANT ROLE … TO USER` granted the user.
    ///
    /// # Errors
    /// 422 `390189` for a requested role the user may not use.
    pub(super) fn role<'r>(
        &'r self,
        catalog: &Catalog,
        requested: Option<&'r str>,
    ) -> Result<Option<&'r str>, ApiError> {
        let Some(requested) = requested else {
            return Ok(self.token_role);
        };
        let bare = requested.trim_matches('"');
        let same =
            |r: Option<&str>| r.is_some_and(|r| r.trim_matches('"').eq_ignore_ascii_case(bare));
        let allowed = self.any_role
            || same(self.token_role)
            || bare.eq_ignore_ascii_case("PUBLIC")
            || self.user.is_some_and(|u| {
                same(catalog.default_role(u)) || catalog.role_granted_to_user(u, bare)
            });
        if allowed {
            return Ok(Some(requested));
        }
        Err(ApiError::new(
            422,
            "390189",
            format!(
                "Role '{}' specified in the request is not granted to this user ({}). Grant it \
                 in the DDL (GRANT ROLE {} TO USER {}), or leave `role` out to use the \
                 token's role{}.",
                bare.to_ascii_uppercase(),
                self.user
                    .unwrap_or("a programmatic access token, which has no user"),
                bare.to_ascii_uppercase(),
                self.user.unwrap_or("<user>"),
                self.token_role
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        )
        .with_sql_state("08004"))
    }
}
