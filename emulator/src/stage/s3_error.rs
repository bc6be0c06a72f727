//! How S3 refuses a request to the stage (an upload's signature, credentials or body): the
//! error code, the HTTP status and the XML body S3 answers with. A leaf of its own, so the
//! upload (`upload.rs`) and the signature check it calls (`sigv4.rs`) both use it without
//! using each other.

/// Why an upload is refused: an S3 error code, its HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl S3Error {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The XML body S3 answers errors with.
    pub(crate) fn xml(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            esc(&self.message)
        )
    }
}
