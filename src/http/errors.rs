//! Turning failed attempts into the crate's errors: transport failures classified (timeout,
//! connect, DNS, TLS, ...), server answers with their code, message and request id.

use crate::api::ErrorBody;
use crate::error::{Error, ServerError, TransportError, TransportErrorKind};
use http::StatusCode;

use super::*;

/// Classifies a reqwest send error. A TLS failure is a configuration problem (an untrusted
/// or mismatched certificate); any other connect failure (including a connect timeout) means
/// the request never left; a timeout or a broken connection afterwards means it may have.
pub(crate) fn classify(error: &reqwest::Error) -> TransportErrorKind {
    if tls_error(error).is_some() {
        TransportErrorKind::Tls
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_builder() || error.is_redirect() {
        TransportErrorKind::Other
    } else if error.is_decode() {
        TransportErrorKind::Decode
    } else {
        TransportErrorKind::Interrupted
    }
}

/// `error` and its causes. An `io::Error`'s `source()` skips the error it wraps (rustls
/// errors reach reqwest that way, sometimes nested twice), so each one is opened with
/// `get_ref()`.
pub(super) fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        }
    })
}

/// The `rustls::Error` in `error`'s source chain, if any.
pub(super) fn tls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    causes(error).find_map(|e| e.downcast_ref::<rustls::Error>())
}

/// Whether a connect failure is a failed host-name lookup. hyper's connector reports it as a
/// `ConnectError` (a private type) whose message is exactly `dns error`.
pub(super) fn is_dns_failure(error: &reqwest::Error) -> bool {
    error.is_connect() && causes(error).any(|e| e.to_string() == "dns error")
}

/// The host (and port, when the URL names one) of a URL, for messages: never the path or
/// query, which may carry tokens.
pub(super) fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| "the server".to_owned())
}

pub(super) fn describe_error_body(b: &ErrorBody) -> String {
    match (&b.code, &b.message) {
        (Some(c), Some(m)) => format!(" {c} ({m})"),
        (Some(c), None) => format!(" {c}"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    }
}

/// The code of a server's instruction to move to file mode (docs/protocol-wire.md §4.6, "Our
/// client and file mode"): the REST API has no file mode, so the request (not applied) is
/// retried as it is, and when retries run out the error says so.
pub(super) const SWITCH_TO_FILE_MODE: &str = "SWITCH_TO_FILE_MODE";

/// What to check after an answer whose likely cause is the client's configuration or the
/// account's setup (docs/snowflake-setup.md, "Troubleshooting"): an object the role cannot
/// see (Snowflake names "does not exist" and "not authorized" alike), or a first call that
/// reached something other than Snowflake's API (what a wrong account identifier gives).
fn hint(
    operation: &str,
    status: StatusCode,
    code: Option<&str>,
    json: bool,
) -> Option<&'static str> {
    match code {
        Some(
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
            | "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
            | "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED"
            | "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ) => Some(
            "check the name (a table's default pipe is <TABLE>-STREAMING) and that the client's \
             role (its role setting, else the user's default role) has USAGE on the database and \
             the schema, INSERT on the table and, for a pipe created with CREATE PIPE, OPERATE \
             on the pipe",
        ),
        None if !json
            && operation == "hostname discovery"
            && matches!(status.as_u16(), 403 | 404) =>
        {
            Some(
                "the account URL answered with a page that is not Snowflake's API: check the \
                 account identifier (<orgname>-<account_name>, or an account locator with its \
                 region, e.g. xy12345.us-east-2.aws) and the url setting",
            )
        }
        _ => None,
    }
}

pub(super) fn server_error(
    operation: &'static str,
    status: StatusCode,
    parsed: Option<ErrorBody>,
    body: &[u8],
    request_id: &str,
    attempts: u32,
) -> Error {
    let json = parsed.is_some();
    let (code, message) = match parsed {
        Some(b) => (b.code, b.message.unwrap_or_default()),
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                String::new()
            } else {
                let snippet: String = text.chars().take(BODY_SNIPPET).collect();
                let ellipsis = if text.chars().count() > BODY_SNIPPET {
                    "…"
                } else {
                    ""
                };
                format!("non-JSON body: {snippet}{ellipsis}")
            };
            (None, message)
        }
    };
    let message = if code.as_deref() == Some(SWITCH_TO_FILE_MODE) {
        format!(
            "{message}{}the service asked for its file mode, which only the official SDKs have \
             and the REST API does not; the rows were not applied and this client retried them \
             as rows until its retries ran out: retry later (they are not lost)",
            if message.is_empty() { "" } else { "; " }
        )
    } else {
        match hint(operation, status, code.as_deref(), json) {
            Some(hint) if message.is_empty() => hint.to_owned(),
            Some(hint) => format!("{message}; {hint}"),
            None => message,
        }
    };
    Error::Server(Box::new(ServerError {
        status: status.as_u16(),
        code,
        message,
        request_id: Some(request_id.to_owned()),
        operation,
        attempts,
    }))
}

pub(super) fn transport_error(
    call: &Call,
    kind: TransportErrorKind,
    error: reqwest::Error,
    request_id: &str,
    attempts: u32,
) -> Error {
    let message = match kind {
        TransportErrorKind::Tls => {
            let host = host_of(&call.url);
            match tls_error(&error) {
                Some(rustls::Error::InvalidCertificate(_)) => format!(
                    "the TLS certificate of {host} is not trusted or does not match the host: \
                     if the server uses a private CA (e.g. snowpipe-emulator --tls), trust it \
                     with the root_ca_pem or root_ca_file setting or SSL_CERT_FILE; otherwise \
                     check the url setting and any TLS-intercepting proxy"
                ),
                _ => format!(
                    "the TLS handshake with {host} failed: check the url setting, the proxy, \
                     and that the server's CA is trusted (root_ca_pem, root_ca_file or \
                     SSL_CERT_FILE)"
                ),
            }
        }
        TransportErrorKind::Connect if is_dns_failure(&error) => format!(
            "cannot resolve the host name {}: check the account identifier and the url \
             setting (e.g. https://<orgname>-<account_name>.snowflakecomputing.com)",
            host_of(&call.url)
        ),
        TransportErrorKind::Connect => format!(
            "cannot connect to {}; check the account URL, DNS, proxy settings and that the \
             server is reachable",
            host_of(&call.url)
        ),
        TransportErrorKind::Timeout => {
            "the request timed out; the server may have processed it".to_owned()
        }
        TransportErrorKind::Interrupted => {
            "the connection broke during the request; the server may have processed it".to_owned()
        }
        TransportErrorKind::Decode => "the response could not be read".to_owned(),
        _ => "the request could not be sent".to_owned(),
    };
    Error::Transport(Box::new(TransportError {
        kind,
        operation: call.operation,
        message,
        request_id: Some(request_id.to_owned()),
        attempts,
        source: Some(Box::new(error.without_url())),
    }))
}

/// Builds the error for a 2xx response whose body could not be decoded.
pub(crate) fn decode_error(
    operation: &'static str,
    what: String,
    request_id: Option<&str>,
    source: Option<crate::error::BoxError>,
) -> Error {
    Error::Transport(Box::new(TransportError {
        kind: TransportErrorKind::Decode,
        operation,
        message: what,
        request_id: request_id.map(str::to_owned),
        attempts: 1,
        source,
    }))
}
