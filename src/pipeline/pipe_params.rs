//! What a client knows of each pipe's parameters: today its `BINARY_INPUT_FORMAT`, which
//! decides how a [`Binary`](crate::binary::Binary) is written (docs/protocol-types-and-sql.md "Type
//! conversion (emulator)").
//!
//! Learned from the pipe-info call (docs/protocol-wire.md §4.2) once per pipe and shared by the
//! pipe's channels; concurrent opens of one pipe's channels make one call. A format named on
//! the client builder replaces the call. A failed call is not an open failure (the open
//! answers for itself); the pipe's format is then unknown, and only a row that holds a
//! `Binary` fails, naming why and the fix — never written in a guessed format.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::binary::{BinaryFormat, PipeBinary};
use crate::sync::lock;
use crate::transport::{IngestApi, PipePath};

/// A pipe's names, lower-cased (names are case-insensitive in URLs; docs/protocol.md
/// "Names").
type PipeKey = [String; 3];

fn key(pipe: &PipePath) -> PipeKey {
    [&pipe.database, &pipe.schema, &pipe.pipe].map(|n| n.to_lowercase())
}

/// The pipes' parameters of one client.
#[derive(Debug, Default)]
pub(crate) struct PipeParams {
    /// Named by the client builder: no pipe-info call is made.
    fixed: Option<BinaryFormat>,
    learned: Mutex<HashMap<PipeKey, Arc<OnceCell<PipeBinary>>>>,
}

impl PipeParams {
    /// Parameters learned from the service, unless `fixed` names the format.
    pub(crate) fn new(fixed: Option<BinaryFormat>) -> Self {
        Self {
            fixed,
            learned: Mutex::default(),
        }
    }

    /// The pipe's format: the one the builder named, else the pipe-info answer of the
    /// client's first call for this pipe.
    ///
    /// # Cancellation
    /// Dropping the future leaves the pipe unlearned; the next caller calls again.
    pub(crate) async fn binary(&self, api: &dyn IngestApi, pipe: &PipePath) -> PipeBinary {
        if let Some(f) = self.fixed {
            return PipeBinary::Known(f);
        }
        let cell = Arc::clone(lock(&self.learned).entry(key(pipe)).or_default());
        cell.get_or_init(|| learn(api, pipe)).await.clone()
    }

    /// Asks the service again (a reopen: the pipe may have been altered since).
    ///
    /// # Cancellation
    /// Dropping the future keeps what was known before.
    pub(crate) async fn refresh(&self, api: &dyn IngestApi, pipe: &PipePath) -> PipeBinary {
        if let Some(f) = self.fixed {
            return PipeBinary::Known(f);
        }
        let fresh = learn(api, pipe).await;
        let cell = OnceCell::new_with(Some(fresh.clone()));
        lock(&self.learned).insert(key(pipe), Arc::new(cell));
        fresh
    }
}

/// One pipe-info call → the pipe's format. No `binary_input_format` means `BASE64`, as the
/// official SDK reads it (docs/protocol-wire.md §4.2).
async fn learn(api: &dyn IngestApi, pipe: &PipePath) -> PipeBinary {
    let shown = format!("{}.{}.{}", pipe.database, pipe.schema, pipe.pipe);
    match api.pipe_info(pipe).await {
        Ok(info) => {
            let name = info.parameter_overrides.and_then(|p| p.binary_input_format);
            match name {
                None => PipeBinary::Known(BinaryFormat::Base64),
                Some(name) => match BinaryFormat::from_name(&name) {
                    Some(f) => PipeBinary::Known(f),
                    None => PipeBinary::Unknown(
                        format!(
                            "pipe {shown} reads BINARY values as {name:?}, a format this SDK \
                             does not know; send the bytes as a string in that format yourself, \
                             or name the format with ClientBuilder::binary_format"
                        )
                        .into(),
                    ),
                },
            }
        }
        Err(e) => {
            tracing::warn!(pipe = %shown, error = %e, "pipe-info failed: the pipe's BINARY_INPUT_FORMAT is unknown");
            PipeBinary::Unknown(
                format!(
                    "the BINARY_INPUT_FORMAT of pipe {shown} is unknown: its pipe-info call \
                     failed ({e}); name the format with ClientBuilder::binary_format (SHOW \
                     PARAMETERS LIKE 'BINARY_INPUT_FORMAT' tells it), or write the bytes with \
                     binary::hex / binary::base64"
                )
                .into(),
            )
        }
    }
}
