//! A room's documents: sharing one (the request body is the file) and opening one.

use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use collab_core::blob::ByteRange;
use collab_core::document::{Disposition, content_disposition_header};
use collab_core::rooms::Upload;
use collab_core::{DocumentId, Entity, Error};
use futures_util::TryStreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiResult, QueryParams, reader, request_field, room_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::views::EventView;

/// The name of an uploaded file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, for display only.
    pub name: String,
}

/// Shares a document: the request body is the file's bytes (the largest accepted is stated in
/// the request body's description and in a 413's `limit`).
///
/// Each session (agent or customer) may upload a few documents at once, then a few a minute:
/// past that, 429 `rate_limited` with `Retry-After`, before any byte is read. Each room keeps
/// at most its storage quota of documents: one that would take the room past it is 413
/// `quota_exceeded`, nothing kept, with `limit` the bytes the room has left. A quota is not a
/// rate, so it is not 429: waiting does not help, a smaller document (or another room) does.
#[utoipa::path(post, path = "/api/rooms/{room}/documents", params(("room" = String, Path), UploadQuery, Caller),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"), tag = "rooms",
    responses((status = 201, body = EventView),
    (status = 413, body = ErrorBody, description = "`too_large`: over the document limit; `quota_exceeded`: over \
    what the room has left of its storage quota (`limit` says how much that is); nothing kept"),
    (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "`rate_limited`: this session uploaded too many documents \
    lately; `Retry-After` says when to try again")))]
pub async fn upload(
    State(state): State<AppState>,
    Path(room): Path<String>,
    QueryParams(query): QueryParams<UploadQuery>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    check_octet_stream(&headers)?;
    let room = room_id(&room)?;
    state.quotas.upload(&actor)?;
    let data = body.into_data_stream().map_err(io::Error::other);
    let upload = Upload {
        file_name: query.name,
        data: Box::pin(data),
    };
    // The core names the bytes `file`: here they are the request's body.
    let event = state
        .rooms
        .share_document(&actor, room, upload)
        .await
        .map_err(request_field(&[("file", "body")]))?;
    Ok((StatusCode::CREATED, Json(EventView::new(room, &event, reader(&actor)))))
}

/// Refuses an upload declared as anything but `application/octet-stream` (a form, text): the
/// body is taken as the file's bytes, so a form's encoding would be stored as the document. No
/// `Content-Type` at all is taken as octet-stream, as RFC 9110 says a recipient may.
fn check_octet_stream(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if essence.eq_ignore_ascii_case("application/octet-stream") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "an upload's body is the file's bytes, sent as application/octet-stream".to_owned(),
        ))
    }
}

/// The `Range` header: `bytes=a-b` or `bytes=a-`, one range. Anything else (several ranges,
/// `b < a`, garbage) is ignored and the whole document is sent, as RFC 9110 allows. Public for
/// the fuzz targets.
pub fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    match end.trim() {
        "" => Some(ByteRange::from_start(start)),
        end => ByteRange::new(start..end.parse::<u64>().ok()?.checked_add(1)?).ok(),
    }
}

/// A document id from the path: a malformed one is as unknown as a missing document.
fn document_id(raw: &str) -> ApiResult<DocumentId> {
    raw.parse()
        .map_err(|_| ApiError::Core(Error::NotFound { what: Entity::Document }))
}

/// Sets the headers the core gives for stored bytes (type, disposition, sandbox, caching).
fn insert_headers(response: &mut Response, safe_headers: &[(&'static str, String)]) {
    let headers = response.headers_mut();
    for (name, value) in safe_headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
}

/// Opens a document, or a byte range of it, with safe headers.
#[utoipa::path(get, path = "/api/rooms/{room}/documents/{document}",
    params(("room" = String, Path), ("document" = String, Path),
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b` (bytes a to b, both \
        included, counted from 0) or `bytes=a-` (from a to the end). Anything else (several ranges, b before a, \
        another unit) is ignored: the whole document is sent (200)."),
        Caller), tag = "rooms",
    responses((status = 200, description = "the bytes",
        headers(("Accept-Ranges" = String, description = "`bytes`: a `Range` may ask for part of the document"))),
    (status = 206, description = "the range of the bytes the `Range` header asked for (up to the document's end)",
        headers(("Content-Range" = String, description = "`bytes a-b/size`: the bytes sent, both included, and \
        the document's size"), ("Accept-Ranges" = String, description = "`bytes`"))),
    (status = 404, body = ErrorBody),
    (status = 416, body = ErrorBody, description = "`range_not_satisfiable`: the range starts at or past the \
        document's end", headers(("Content-Range" = String, description = "`bytes */size`: the document's size")))))]
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((room, document)): Path<(String, String)>,
    Caller(actor): Caller,
) -> ApiResult<Response> {
    let room = room_id(&room)?;
    let document = document_id(&document)?;
    let range = parse_range(&headers);
    let download = state.rooms.open_document(&actor, room, document, range).await?;
    let partial = range.is_some();
    let (size, range) = (download.meta.size, download.range.clone());
    let safe_headers = download.headers();
    let mut response = Response::new(Body::from_stream(download.stream.map_err(io::Error::other)));
    insert_headers(&mut response, &safe_headers);
    let headers = response.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(length) = HeaderValue::from_str(&(range.end - range.start).to_string()) {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    if partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {}-{}/{size}", range.start, range.end.saturating_sub(1));
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

/// Opens an image document's thumbnail: a JPEG of at most 320 pixels on its long side, made
/// on the first request and kept. Readable by whoever may open the document; cached by the
/// browser for a year, since it never changes. A 404 whose message names the thumbnail means
/// there is none (not an image, or one that cannot be decoded safely): show a placeholder.
#[utoipa::path(get, path = "/api/rooms/{room}/documents/{document}/thumbnail",
    params(("room" = String, Path), ("document" = String, Path), Caller), tag = "rooms",
    responses((status = 200, description = "the thumbnail's bytes, `image/jpeg`"),
    (status = 404, body = ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    Path((room, document)): Path<(String, String)>,
    Caller(actor): Caller,
) -> ApiResult<Response> {
    let room = room_id(&room)?;
    let document = document_id(&document)?;
    let thumbnail = state.rooms.open_thumbnail(&actor, room, document).await?;
    let safe_headers = thumbnail.headers();
    let mut response = Response::new(Body::from(thumbnail.bytes));
    insert_headers(&mut response, &safe_headers);
    Ok(response)
}

/// The room's whole record as a ZIP archive (`room-<id>.zip`): `events.jsonl` (every event, one
/// JSON object per line), `transcript.html` (the conversation, readable) and
/// `documents/<seq>-<name>` (each shared file). Streamed as it is made; a failure midway ends
/// the download early (the archive then has no directory, and no reader takes it for whole).
/// Agents of the room's tenant only.
#[utoipa::path(get, path = "/api/rooms/{room}/export", params(("room" = String, Path), Caller), tag = "rooms",
    security(("agent_session" = [])), responses((status = 200, description = "the archive, `application/zip`"), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
) -> ApiResult<Response> {
    let export = state.rooms.export_room(&actor, room_id(&room)?).await?;
    let mut response = Response::new(Body::from_stream(export.stream.map_err(io::Error::other)));
    let disposition = content_disposition_header(Disposition::Attachment, &export.file_name);
    insert_headers(
        &mut response,
        &[
            ("content-type", "application/zip".to_owned()),
            ("content-disposition", disposition),
            ("x-content-type-options", "nosniff".to_owned()),
            ("cache-control", "private, no-store".to_owned()),
        ],
    );
    Ok(response)
}
