//! An example host for collab: an axum server with the agent console, the customer page and a
//! JSON API (OpenAPI at `/api/openapi.json`), on the embedded defaults (SQLite + local files).
//!
//! Run it with `cargo run -p collab-server`; `--help` lists the settings.

pub mod api;
pub mod auth;
pub mod error;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::Rooms;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::InboxMessage;
use crate::auth::Agents;

/// What the development notifiers "sent", for the dev inbox page.
pub trait Inbox: Send + Sync + 'static {
    /// The messages, oldest first.
    fn messages(&self) -> Vec<InboxMessage>;
}

impl Inbox for collab_notify::DevInbox {
    fn messages(&self) -> Vec<InboxMessage> {
        // The dev inbox holds the newest first.
        let mut messages: Vec<InboxMessage> = collab_notify::DevInbox::messages(self)
            .into_iter()
            .map(|m| InboxMessage {
                to: m.recipient.to_string(),
                subject: m.subject,
                text: m.text,
                link: m.link,
            })
            .collect();
        messages.reverse();
        messages
    }
}

impl Inbox for RecordingNotifier {
    fn messages(&self) -> Vec<InboxMessage> {
        self.sent()
            .into_iter()
            .map(|n| InboxMessage {
                to: n.recipient.to_string(),
                subject: n.subject,
                text: n.text,
                link: n.link,
            })
            .collect()
    }
}

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
    /// What the development notifiers "sent".
    pub inbox: Arc<dyn Inbox>,
    /// Whether cookies carry `Secure` (the server is reached over https).
    pub secure_cookies: bool,
    /// The origin browsers send on state-changing requests (`http://127.0.0.1:8080`).
    pub origin: String,
    /// Checks Twilio's status callbacks, when SMS goes through Twilio.
    pub twilio: Option<collab_notify::TwilioWebhook>,
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
#[openapi(info(
    title = "collab example server",
    description = "The JSON API of the agent console and the customer page."
))]
struct ApiDoc;

/// The API's routes and their OpenAPI document, built together so that they cannot differ.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::sign_in, api::sign_out))
        .routes(routes!(api::me))
        .routes(routes!(api::list_rooms, api::create_room))
        .routes(routes!(api::get_room))
        .routes(routes!(api::invite))
        .routes(routes!(api::close_room))
        .routes(routes!(api::events))
        .routes(routes!(api::live))
        .routes(routes!(api::post_message))
        .routes(routes!(api::upload))
        .routes(routes!(api::download))
        .routes(routes!(api::join))
        .routes(routes!(api::dev_inbox))
        .routes(routes!(api::twilio_callback))
        .split_for_parts()
}

/// The whole application: pages, assets, the API and its OpenAPI document.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    Router::new()
        .route("/", get(|| async { Html(CONSOLE_HTML) }))
        .route("/join/{token}", get(|| async { Html(CUSTOMER_HTML) }))
        .route("/room", get(|| async { Html(CUSTOMER_HTML) }))
        .route("/assets/app.css", get(|| async { asset("text/css", APP_CSS) }))
        .route(
            "/assets/common.js",
            get(|| async { asset("text/javascript", COMMON_JS) }),
        )
        .route(
            "/assets/console.js",
            get(|| async { asset("text/javascript", CONSOLE_JS) }),
        )
        .route(
            "/assets/customer.js",
            get(|| async { asset("text/javascript", CUSTOMER_JS) }),
        )
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .merge(api)
        // JSON bodies are small; uploads stream past this limit (the core enforces theirs).
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

const CONSOLE_HTML: &str = include_str!("../assets/console.html");
const CUSTOMER_HTML: &str = include_str!("../assets/customer.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const COMMON_JS: &str = include_str!("../assets/common.js");
const CONSOLE_JS: &str = include_str!("../assets/console.js");
const CUSTOMER_JS: &str = include_str!("../assets/customer.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Pages' Content-Security-Policy: scripts and styles from this origin only, no framing by
/// others; documents may be framed by our own pages (the PDF viewer).
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' blob: data:; frame-src 'self'; object-src 'none'; \
                        base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Refuses cross-origin state changes and adds the security headers to every response.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && let Some(origin) = request.headers().get(header::ORIGIN) {
        let host_origin = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| format!("http://{host}"));
        let origin = origin.to_str().unwrap_or_default();
        if origin != state.origin && Some(origin) != host_origin.as_deref() {
            return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
        }
    }
    let is_document = request.uri().path().contains("/documents/");
    let mut response = next.run(request).await;
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
