//! The routes of the official SDK's file mode (docs/protocol-wire.md §4.6): uploads to the
//! emulator's stage (`PUT /snowpipe-emulator/<key>`, S3's `PutObject`, answered as S3 answers)
//! and file registrations (`POST …/channels/{channel}/filebuffer`, answered as an append).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use hyper::body::Incoming;

use crate::base::api_error::ApiError;
use crate::base::requests::RequestRecord;
use crate::service::Shared;
use crate::stage::upload::{self, S3Error};
use crate::stage::{fragment, Full};

use super::super::auth::auth_scoped;
use super::super::request::{param, read_body, ChannelPath};
use super::super::response::Body;

/// How often an upload that does not fit looks for room again.
const ROOM_POLL: Duration = Duration::from_millis(50);

fn s3_response(e: &S3Error) -> Response<Body> {
    let body = e.xml();
    Response::builder()
        .status(StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

/// Stores an upload in the stage and answers its ETag, or an S3 error.
///
/// The credentials are checked first, then room is reserved for the declared length
/// (waiting up to `--body-timeout` for registrations to free some), and only then is the
/// body read, at most that length plus its framing.
///
/// # Cancellation
/// A dropped request stores nothing and releases its reservation.
pub(crate) async fn stage_put(
    shared: &Arc<Shared>,
    path: &str,
    headers: &HeaderMap,
    body: Incoming,
    record: &mut RequestRecord,
) -> Response<Body> {
    match store(shared, path, headers, body, record).await {
        Ok(etag) => Response::builder()
            .status(StatusCode::OK)
            .header(header::ETAG, format!("\"{etag}\""))
            .header(header::CONTENT_LENGTH, 0)
            .body(Body::default())
            .unwrap_or_default(),
        Err(e) => {
            // The message quotes what the request sent escaped and cut (`upload::quoted`).
            tracing::info!(
                code = e.code,
                message = %e.message,
                path = ?path,
                "stage upload refused"
            );
            record.error_code = Some(e.code.to_string());
            s3_response(&e)
        }
    }
}

async fn store(
    shared: &Arc<Shared>,
    path: &str,
    headers: &HeaderMap,
    body: Incoming,
    record: &mut RequestRecord,
) -> Result<String, S3Error> {
    let stage = &shared.stage;
    let signed = crate::stage::sigv4::Request {
        method: "PUT",
        raw_path: &record.path,
        raw_query: &record.query,
        headers,
    };
    let grant = upload::check_credentials(&signed, path, &stage.secrets, shared.clock.now_ms())?;
    let declared = upload::declared_len(headers)?;
    let too_large = || {
        S3Error::new(
            400,
            "EntityTooLarge",
            format!(
                "the file has {declared} bytes; one caller's uploads may take {} bytes of \
                 the emulator's stage (half of --max-stage-bytes {}; an upload takes twice \
                 its size while it is read)",
                stage.share().0,
                stage.max_bytes()
            ),
        )
    };
    let declared = usize::try_from(declared).map_err(|_| too_large())?;
    // The framing of aws-chunked adds a few bytes per chunk (the SDK sends 64 KiB ones)
    // and the trailer.
    let raw_limit = declared.saturating_add(declared / 512).saturating_add(4096);
    let deadline = Instant::now() + shared.settings.body_read_timeout;
    let charge = loop {
        // The raw body and the decoded copy are held at once while it is decoded.
        match stage.reserve(raw_limit.saturating_add(declared), &grant.owner) {
            Ok(r) => break r,
            Err(Full::TooLarge) => return Err(too_large()),
            Err(Full::Busy | Full::Share) if Instant::now() < deadline => {
                tokio::time::sleep(ROOM_POLL).await
            }
            Err(Full::Share) => {
                let (bytes, files) = stage.share();
                return Err(S3Error::new(
                    503,
                    "SlowDown",
                    format!(
                        "these credentials' caller holds its share of the emulator's stage \
                         ({bytes} bytes in {files} files: half of --max-stage-bytes and \
                         --max-stage-files) in files not yet registered and uploads under \
                         way; register files, then retry"
                    ),
                ));
            }
            Err(Full::Busy) => {
                return Err(S3Error::new(
                    503,
                    "SlowDown",
                    format!(
                    "the emulator's stage is full of files not yet registered (--max-stage-bytes \
                         {}, --max-stage-files); retry after a short wait",
                    stage.max_bytes()
                ),
                ))
            }
        }
    };
    let raw = read_body(shared, headers, body, raw_limit, record)
        .await
        .map_err(|e| S3Error::new(e.status, "IncompleteBody", e.message))?;
    let data = upload::decode(headers, &raw)?;
    drop(raw);
    // `put` lowers the charge to the file's size.
    stage.put(path, Bytes::from(data), charge).map_err(|_| {
        S3Error::new(
            503,
            "SlowDown",
            "the emulator's stage has no free file slot (--max-stage-files); retry after a short wait",
        )
    })
}

/// Registers files on a named or elastic channel and answers as an append does.
///
/// # Errors
/// As [`Shared::register_files`], and 400 for a body that is not a registration.
pub(crate) async fn file_buffer(
    shared: &Arc<Shared>,
    path: &ChannelPath,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Incoming,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    const REGISTRATION_BYTES: usize = 1024 * 1024;
    let ChannelPath {
        db,
        schema,
        pipe,
        channel,
    } = path;
    let principal = auth_scoped(shared, headers, false, Some(db))?;
    let (key, target) = shared.resolve(db, schema, pipe, channel)?;
    shared.admit_default_pipe(&key)?;
    let b = read_body(shared, headers, body, REGISTRATION_BYTES, record).await?;
    let owner = crate::stage::Stage::owner(&principal.subject, db);
    let fragments = fragment::parse(&b)?;
    let token = param(params, "continuationToken")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let registered = shared
        .register_files(key.clone(), target, token, fragments, &owner)
        .await?;
    let answer = super::appended_answer(shared, &key, params, registered, record);
    shared.default_pipe_used(&key).await;
    Ok(answer)
}
