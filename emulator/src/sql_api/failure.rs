//! How a SQL API statement fails: 422 with Snowflake's error code and SQLSTATE. The one
//! constructor every part of the SQL API (parsing, rewriting, running) answers with, in a leaf
//! of its own so that those parts need not use each other for it.

use crate::base::api_error::ApiError;

/// A SQL API statement failure: 422 with Snowflake's code and SQLSTATE.
pub(super) fn failed(code: &str, sql_state: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(422, code, message.into()).with_sql_state(sql_state)
}
