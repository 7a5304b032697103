//! Request bodies over the limit: refused from their declared length before any byte is read,
//! and a connection whose request body may be left unread closed openly (`Connection: close`),
//! so that a pooled client does not send its next request down a socket the server drops.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

use crate::AppState;
use crate::error::{JSON_BODY_LIMIT, too_large};

/// The largest body `request`'s route takes: an upload's is the document limit, every other
/// route's the JSON limit.
pub fn body_limit(state: &AppState, request: &Request) -> u64 {
    let path = request.uri().path();
    let upload = request.method() == Method::POST && path.starts_with("/api/rooms/") && path.ends_with("/documents");
    if upload {
        state.rooms.config().max_document_bytes()
    } else {
        JSON_BODY_LIMIT as u64
    }
}

/// The 413 for a request whose declared `Content-Length` is over its route's limit: answered
/// without reading the body, and the connection closed, since the body was not read.
pub fn declared_too_large(state: &AppState, request: &Request) -> Option<Response> {
    let declared: u64 = request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    let limit = body_limit(state, request);
    (declared > limit).then(|| too_large(limit))
}

/// Whether the request carries a body (declared, or chunked).
pub fn has_body(headers: &HeaderMap) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0");
    declared || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Says `Connection: close` on a refusal of a request with a body: the refusal may have come
/// before the body was read (no sign-in, an unknown room, too large), and the server then drops
/// the connection. Without the header a keep-alive client would reuse it and see its next
/// request fail.
pub fn close_if_unread(response: &mut Response, had_body: bool) {
    let refused = response.status().is_client_error() || response.status().is_server_error();
    if had_body && refused {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}
