//! The error every protocol and SQL API operation answers with: HTTP status, stable code and
//! message. Below the HTTP layer, which turns it into a response (`http::response`).

/// An API error: HTTP status, stable code and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The SQLSTATE of a SQL API error (sent as `sqlState`).
    pub sql_state: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            sql_state: None,
        }
    }

    /// Adds a SQLSTATE (SQL API errors).
    pub(crate) fn with_sql_state(mut self, state: &str) -> Self {
        self.sql_state = Some(state.to_owned());
        self
    }
}

/// A refusal from the channel state (`channels::Reject`): status, code, message.
impl From<(u16, &'static str, String)> for ApiError {
    fn from((status, code, message): (u16, &'static str, String)) -> Self {
        Self::new(status, code, message)
    }
}
