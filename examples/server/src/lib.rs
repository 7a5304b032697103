//! An example host for collab: an axum server with the agent console, the customer page and a
//! JSON API (OpenAPI at `/api/openapi.json`), on the embedded defaults (SQLite + local files).
//!
//! Run it with `cargo run -p collab-server`; `--help` lists the settings.

pub mod api;
pub mod auth;
pub mod error;
pub mod i18n;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod quota;
pub mod serve;
pub mod streams;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use collab_core::rooms::Rooms;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::api::dev::Inbox;
use crate::auth::Agents;

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// The shared parts.
pub struct Shared {
    /// The collab service.
    pub rooms: Rooms,
    /// The example's agents and their sign-ins.
    pub agents: Agents,
    /// What the development notifiers "sent", in dev mode (a development notifier is in use):
    /// the Dev inbox's routes are mounted only with one.
    pub inbox: Option<Arc<dyn Inbox>>,
    /// Whether cookies carry `Secure` (the server is reached over https).
    pub secure_cookies: bool,
    /// The origin browsers send on state-changing requests (`http://127.0.0.1:8080`).
    pub origin: String,
    /// Checks Twilio's status callbacks, when SMS goes through Twilio: the callback route is
    /// mounted only with one.
    pub twilio: Option<collab_notify::TwilioWebhook>,
    /// Checks Vonage's signed delivery receipts, when SMS goes through Vonage with a signature
    /// secret: the receipt routes are mounted only with one.
    pub vonage: Option<collab_notify::VonageReceipts>,
    /// The `Host` values the server answers to (`127.0.0.1:8080`): anything else is refused, so
    /// that a rebound DNS name cannot pass for this origin.
    pub allowed_hosts: Vec<String>,
    /// The live streams open, and their caps per session and per address.
    pub live_streams: streams::LiveStreams,
    /// How fast each session may post messages and upload documents.
    pub quotas: quota::Quotas,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("rooms", &self.rooms)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.inner
    }
}

impl AppState {
    /// Shares `shared` between handlers.
    pub fn new(shared: Shared) -> Self {
        Self {
            inner: Arc::new(shared),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "collab example server",
        description = "The JSON API of the agent console and the customer page.\n\n\
                   Every request names a host the server answers to (`Host`). A request that \
                   changes state (POST, PUT, PATCH, DELETE) names the server's origin in \
                   `Origin` (`http://127.0.0.1:8080`), as browsers do: a client other than a \
                   browser sends it too, else the answer is 403 `cross_origin`."
    ),
    components(schemas(views::TypingView))
)]
struct ApiDoc;

/// Adds the answers every route can give (a malformed request, a refused host or origin, a
/// server or backend failure) to each operation that does not list them, with the error body;
/// the answers only some can give where they can: no sign-in (401) where one is required (the
/// operations that take a caller, with the `x-collab-as` header), a closed, timed-out, merged or
/// erased room, or one that changed meanwhile (409, 410), where a room is read or written; and
/// to each operation with a body, the answers to a body of another type or shape.
fn add_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let common = [
        ("400", "malformed request"),
        (
            "401",
            "not signed in (no session cookie, or an agent's sign-in that ended)",
        ),
        (
            "403",
            "refused: another host or origin, not allowed, or a customer's session that ended \
             (expired, revoked, left): open the invite link again",
        ),
        ("404", "not found"),
        ("409", "the room is closed or timed out, or changed meanwhile"),
        ("410", "the room's personal data was erased: it accepts no change"),
        ("500", "the server failed"),
        ("503", "a backend (database, document store) failed; try again later"),
    ];
    let with_body = [
        ("415", "the body is not of the documented type"),
        ("422", "the body does not fit the schema, or a field breaks a rule"),
    ];
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            // A room's routes meet its state, and so do joining one (its link) and signing out
            // (ending the customer's session in it); erasing a customer erases rooms, which may
            // change meanwhile, but takes an erased one as done.
            let room = path.starts_with("/api/rooms/{room}")
                || matches!(
                    (method, path.as_str()),
                    ("POST", "/api/join") | ("DELETE", "/api/session")
                );
            let changes_rooms = room || (method, path.as_str()) == ("POST", "/api/customers/erase");
            let signed_in = operation
                .parameters
                .iter()
                .flatten()
                .any(|parameter| parameter.name == auth::AS_CUSTOMER_HEADER);
            let body = operation
                .request_body
                .is_some()
                .then_some(with_body)
                .into_iter()
                .flatten();
            let applies = |status: &str| match status {
                "401" => signed_in,
                "409" => changes_rooms,
                "410" => room,
                _ => true,
            };
            for (status, description) in common.into_iter().chain(body) {
                if !applies(status) {
                    continue;
                }
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}

/// The API's routes and their OpenAPI document, built together so that they cannot differ. The
/// optional routes are there only when `state` has what they serve: the Dev inbox in dev mode,
/// Twilio's status callback with a Twilio account.
pub fn api(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = api_routes(state);
    add_common_responses(&mut openapi);
    openapi::complete(&mut openapi, state);
    (router, openapi)
}

fn api_routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use api::{access, callbacks, dev, documents, health, rooms, sessions, settings};
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::sign_in, sessions::sign_out))
        .routes(routes!(sessions::me))
        .routes(routes!(rooms::list_rooms, rooms::create_room))
        .routes(routes!(rooms::get_room))
        .routes(routes!(rooms::invite))
        .routes(routes!(rooms::close_room))
        .routes(routes!(rooms::erase_room))
        .routes(routes!(rooms::merge_room))
        .routes(routes!(settings::get_settings, settings::change_settings))
        .routes(routes!(settings::settings_history))
        .routes(routes!(rooms::erase_customer))
        .routes(routes!(access::access))
        .routes(routes!(access::revoke_session))
        .routes(routes!(access::revoke_invite))
        .routes(routes!(rooms::events))
        .routes(routes!(rooms::live))
        .routes(routes!(rooms::post_message))
        .routes(routes!(rooms::mark_read))
        .routes(routes!(rooms::typing))
        .routes(routes!(documents::upload))
        .routes(routes!(documents::download))
        .routes(routes!(documents::thumbnail))
        .routes(routes!(documents::export))
        .routes(routes!(sessions::join))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz));
    if state.inbox.is_some() {
        router = router.routes(routes!(dev::dev_inbox));
    }
    if state.twilio.is_some() {
        router = router.routes(routes!(callbacks::twilio_callback));
    }
    if state.vonage.is_some() {
        router = router.routes(routes!(callbacks::vonage_receipt, callbacks::vonage_receipt_form));
    }
    router.split_for_parts()
}

/// The whole application: pages, assets, the API and its OpenAPI document; the optional routes
/// as [`api()`] says.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api(&state);
    let openapi = Arc::new(openapi);
    // The pages and their assets, compressed; the API's answers are small JSON, event streams or
    // documents, which stay as they are.
    // Built once: each request sends the same bytes, shared, not copied.
    let console = Bytes::from(fingerprinted(CONSOLE_HTML));
    let customer = Bytes::from(fingerprinted(CUSTOMER_HTML));
    let mut pages = Router::new()
        .route("/", get(move || page(console.clone())))
        .route(
            "/join/{token}",
            get({
                let customer = customer.clone();
                move || page(customer.clone())
            }),
        )
        .route("/room", get(move || page(customer.clone())));
    for &(path, content_type, body) in ASSETS {
        let version = version_of(body);
        pages = pages.route(
            path,
            get(move |query: axum::extract::RawQuery| async move { asset(content_type, body, &version, query.0) }),
        );
    }
    // PDF.js, vendored by vendor.sh: read from the source tree, like `cargo run` does; its URLs
    // carry no version, so a browser asks whether a file changed (it answers 304 when not).
    let vendor = ServeDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vendor"));
    let pages = pages
        .nest_service(
            "/assets/vendor",
            Router::new()
                .fallback_service(vendor)
                .layer(middleware::map_response(revalidate)),
        )
        // The customer page's strings, one file per language: served the same way, so that
        // adding a language is adding its file.
        .nest_service(
            "/assets/i18n",
            Router::new()
                .fallback_service(ServeDir::new(i18n::DIR))
                .layer(middleware::map_response(revalidate)),
        )
        .layer(CompressionLayer::new());
    Router::new()
        .merge(pages)
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .merge(api)
        // JSON bodies are small; uploads stream past this limit (the core enforces theirs).
        .layer(DefaultBodyLimit::max(error::JSON_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), screen_and_harden))
        .with_state(state)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"))
}

async fn json_error(response: Response) -> Response {
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 16 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        // Only the routes that read their body whole get here: theirs is the JSON limit.
        StatusCode::PAYLOAD_TOO_LARGE => return error::too_large(error::JSON_BODY_LIMIT as u64),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        _ => "bad_request",
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        message
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

const CONSOLE_HTML: &str = include_str!("../assets/console.html");
const CUSTOMER_HTML: &str = include_str!("../assets/customer.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const COMMON_JS: &str = include_str!("../assets/common.js");
const CONSOLE_JS: &str = include_str!("../assets/console.js");
const CUSTOMER_JS: &str = include_str!("../assets/customer.js");
const PDF_VIEWER_JS: &str = include_str!("../assets/pdf-viewer.js");

/// The pages' own assets: path, type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/assets/app.css", "text/css", APP_CSS),
    ("/assets/common.js", "text/javascript", COMMON_JS),
    ("/assets/console.js", "text/javascript", CONSOLE_JS),
    ("/assets/customer.js", "text/javascript", CUSTOMER_JS),
    ("/assets/pdf-viewer.js", "text/javascript", PDF_VIEWER_JS),
];

/// A short digest of an asset's content: its version in the pages' URLs.
fn version_of(body: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A page whose references to the assets carry their versions (`/assets/app.css?v=…`), so that a
/// browser may keep each asset for good and still never use a stale one.
fn fingerprinted(html: &str) -> String {
    ASSETS.iter().fold(html.to_owned(), |html, &(path, _, body)| {
        html.replace(&format!("\"{path}\""), &format!("\"{path}?v={}\"", version_of(body)))
    })
}

/// Pages keep their URLs from one version to the next: a browser asks before using a kept one.
async fn page(html: Bytes) -> Response {
    revalidate(Html(html).into_response()).await
}

/// An asset: kept for a year when asked for at its current version (the URL changes with the
/// content), else revalidated each time (an old page, or a hand-typed URL).
fn asset(content_type: &'static str, body: &'static str, version: &str, query: Option<String>) -> Response {
    let current = query.as_deref().and_then(|q| q.strip_prefix("v=")) == Some(version);
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)],
        body,
    )
        .into_response()
}

/// Sets `Cache-Control: no-cache`: a browser may keep the response but asks whether it changed
/// before using it.
async fn revalidate(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Pages' Content-Security-Policy: scripts, workers and styles from this origin only (PDF.js
/// runs with its evaluation turned off, so no `unsafe-eval`), no frames, no framing by others.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' blob: data:; worker-src 'self'; frame-src 'none'; \
                        object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> String {
    let url = url.trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()),
        None => url.to_owned(),
    }
}

fn refused(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// Refuses unknown hosts and cross-origin state changes, gives every API error a JSON body, and
/// adds the security headers to every response, refusals included.
async fn screen_and_harden(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_document = path.starts_with("/api/rooms/") && path.contains("/documents/");
    let had_body = limits::has_body(request.headers());
    let refused = refusal(&state, &request).or_else(|| limits::declared_too_large(&state, &request));
    let mut response = match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    if path.starts_with("/api/") && !response.status().is_success() && !is_json(&response) {
        // Rejections by axum's extractors and unknown routes come as plain text: restate them.
        response = json_error(response).await;
    }
    limits::close_if_unread(&mut response, had_body);
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // Invite links carry tokens: never send them on as a referrer.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !is_document {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    response
}

/// The answer to a request refused before any route sees it: one naming no host or an unknown
/// one, or a state change not shown to come from an allowed origin.
fn refusal(state: &AppState, request: &Request) -> Option<Response> {
    // The effective authority: `Host` (HTTP/1.x), the URI's (HTTP/2's `:authority`, or an
    // absolute-form HTTP/1.1 target). Each one given must be allowed, and one must be given:
    // an HTTP/1.0 request may omit `Host`, and would otherwise pass unchecked.
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or_default());
    let authority = request.uri().authority().map(|a| a.as_str());
    if host.is_none() && authority.is_none() {
        return Some(refused(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request names no host",
        ));
    }
    if host
        .into_iter()
        .chain(authority)
        .any(|host| !is_allowed_host(state, host))
    {
        return Some(refused(
            StatusCode::FORBIDDEN,
            "unknown_host",
            "this server does not answer to that host name",
        ));
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // Twilio's callbacks come from its servers, with no origin: their signature is their proof.
    let from_provider = request.uri().path().starts_with("/api/callbacks/");
    if changes_state && !from_provider && !from_allowed_origin(state, request.headers()) {
        return Some(refused(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "a state-changing request must come from this server's origin: send `Origin`",
        ));
    }
    None
}

fn is_allowed_host(state: &AppState, host: &str) -> bool {
    state
        .allowed_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
}

/// Whether a state-changing request shows it comes from an allowed origin: its `Origin` is the
/// server's, or that of another host it answers to (the console opened at
/// `http://localhost:PORT`); or, with no `Origin`, the browser says `Sec-Fetch-Site:
/// same-origin`. A request showing neither is refused, so that a client other than a browser
/// sends `Origin` too.
fn from_allowed_origin(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        Some(origin) => origin.to_str().is_ok_and(|origin| {
            let scheme = state.origin.split_once("://").map_or("http", |(scheme, _)| scheme);
            origin == state.origin
                || origin
                    .strip_prefix(scheme)
                    .and_then(|rest| rest.strip_prefix("://"))
                    .is_some_and(|host| is_allowed_host(state, host))
        }),
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() == b"same-origin"),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use collab_core::TenantId;
    use collab_core::notify::RecordingNotifier;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn refusals_carry_the_security_headers_too() {
        // Found by fuzzing (fuzz/seeds/server_app/crash-refusal-headers): the middleware's early
        // refusals skipped the headers every other answer gets.
        let state = AppState::new(Shared {
            rooms: Rooms::builder().build(),
            agents: Agents::new(TenantId::new("example").expect("a tenant"), HashMap::new()),
            inbox: Some(Arc::new(RecordingNotifier::new())),
            secure_cookies: false,
            origin: "http://127.0.0.1:8080".to_owned(),
            twilio: None,
            vonage: None,
            allowed_hosts: vec!["127.0.0.1:8080".to_owned()],
            live_streams: streams::LiveStreams::default(),
            quotas: quota::Quotas::default(),
        });
        let requests = [
            ("GET", "evil.example", None),
            ("POST", "127.0.0.1:8080", Some("https://evil.example")),
        ];
        for (method, host, origin) in requests {
            let mut request = Request::builder()
                .method(method)
                .uri("/api/rooms")
                .header(header::HOST, host);
            if let Some(origin) = origin {
                request = request.header(header::ORIGIN, origin);
            }
            let request = request.body(Body::empty()).expect("a request");
            let response = app(state.clone()).oneshot(request).await.expect("an answer");
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} from {host}");
            let headers = response.headers();
            assert_eq!(
                headers.get("x-content-type-options").map(|v| v.as_bytes()),
                Some(&b"nosniff"[..])
            );
            assert_eq!(
                headers.get(header::REFERRER_POLICY).map(|v| v.as_bytes()),
                Some(&b"no-referrer"[..])
            );
            assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        }
    }
}
