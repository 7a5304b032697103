//! The example server end to end: a request built from the input goes through the whole router
//! (the host and origin guard, axum's path, query and JSON extractors, the handlers, the error
//! mapping) of a fresh server holding one room with an invited customer and a document.
//!
//! Input: a route byte, a flags byte (method, credential, `Content-Type`, `x-collab-as`, no
//! `Origin`), then four fields separated by 0xFF: a path parameter (empty: the real room,
//! document or token), the query string, header lines (`name: value`), the body.
//! Properties: no answer is a server error (5xx); every API answer that is not a success has a
//! JSON body `{"error": {"code", "message"}}`; every answer carries `nosniff` and
//! `no-referrer`, and every answer but a document the page CSP; a JSON answer parses.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use bytes::Bytes;
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{InviteRequest, Rooms, Upload};
use collab_core::{Actor, EventData, TenantId};
use collab_fuzz::{raw_fields, runtime};
use collab_server::auth::{AGENT_COOKIE, AS_CUSTOMER_HEADER, Agents, CUSTOMER_COOKIE, PasswordCost};
use collab_server::{AppState, Shared, app};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt as _;

const HOST: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";

/// Routes, with the methods they answer first; `{room}`, `{document}`, `{token}` are filled in.
const ROUTES: &[(&str, &[Method])] = &[
    ("/api/session", &[Method::POST, Method::DELETE]),
    ("/api/me", &[Method::GET]),
    ("/api/rooms", &[Method::GET, Method::POST]),
    ("/api/rooms/{room}", &[Method::GET]),
    ("/api/rooms/{room}/invites", &[Method::POST]),
    ("/api/rooms/{room}/close", &[Method::POST]),
    ("/api/rooms/{room}/events", &[Method::GET]),
    ("/api/rooms/{room}/live", &[Method::GET]),
    ("/api/rooms/{room}/messages", &[Method::POST]),
    ("/api/rooms/{room}/read", &[Method::POST]),
    ("/api/rooms/{room}/typing", &[Method::POST]),
    ("/api/rooms/{room}/documents", &[Method::POST]),
    ("/api/rooms/{room}/documents/{document}", &[Method::GET]),
    ("/api/join", &[Method::POST]),
    ("/api/dev/inbox", &[Method::GET]),
    ("/api/callbacks/twilio", &[Method::POST]),
    ("/api/callbacks/vonage", &[Method::GET, Method::POST]),
    ("/api/openapi.json", &[Method::GET]),
    ("/api/{token}", &[Method::GET]),
    ("/join/{token}", &[Method::GET]),
    ("/", &[Method::GET]),
];

/// A fresh server for every input, so that a failing input fails alone.
struct World {
    app: Router,
    room: String,
    document: String,
    invite_token: String,
    agent_cookie: String,
    customer_cookie: String,
}

async fn world() -> World {
    let inbox = Arc::new(RecordingNotifier::new());
    let rooms = Rooms::builder().email(inbox.clone()).build();
    let tenant = TenantId::new("example").expect("a tenant id");
    // The least password cost: a world is made for every input.
    let agents = Agents::new(tenant.clone(), HashMap::new())
        .with_password_cost(PasswordCost::MINIMAL)
        .with_tenant(tenant.clone(), HashMap::from([("ada".to_owned(), "secret".to_owned())]));
    let (agent, agent_token) = agents.sign_in("ada", "secret", None).await.expect("ada signs in");
    let agent = Actor::Agent { tenant, agent };
    let room = rooms.create_room(&agent).await.expect("a room").room;
    rooms
        .invite(
            &agent,
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .expect("an invite");
    let link = rooms
        .get_link(&agent, room)
        .await
        .expect("a link")
        .link
        .expect("a link");
    let invite_token = link.token().to_owned();
    let session = rooms.join(&invite_token).await.expect("the customer joins");
    let upload = Upload {
        file_name: "notes.txt".to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok::<_, std::io::Error>(
            Bytes::from_static(b"Meeting notes\n"),
        )])),
    };
    let shared = rooms.share_document(&agent, room, upload).await.expect("a document");
    let EventData::DocumentShared(meta) = &shared.data else {
        panic!("sharing a document recorded {:?}", shared.data);
    };
    let state = AppState::new(Shared {
        rooms,
        agents,
        inbox: Some(inbox),
        secure_cookies: false,
        origin: ORIGIN.to_owned(),
        twilio: Some(collab_notify::TwilioWebhook::new("twilio-token".into())),
        vonage: Some(collab_notify::VonageReceipts::new(
            "vonage-signature-secret".into(),
            collab_notify::vonage::SignatureMethod::Sha256Hmac,
        )),
        allowed_hosts: vec![HOST.to_owned()],
        live_streams: collab_server::streams::LiveStreams::default(),
        quotas: collab_server::quota::Quotas::default(),
    });
    World {
        app: app(state),
        room: room.to_string(),
        document: meta.id.to_string(),
        invite_token,
        agent_cookie: format!("{AGENT_COOKIE}={}", agent_token.expose()),
        customer_cookie: format!("{CUSTOMER_COOKIE}={}", session.token.expose()),
    }
}

/// Percent-encodes every byte but letters, digits and `keep`.
fn encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [route, flags] = [data.first(), data.get(1)].map(|b| b.copied().unwrap_or_default());
    let [param, query, header_lines, body] = raw_fields::<4>(data.get(2..).unwrap_or_default());
    runtime().block_on(async {
        let world = world().await;
        let (template, methods) = ROUTES[usize::from(route) % ROUTES.len()];
        let param = (!param.is_empty()).then(|| encode(param, b"-._~"));
        let path = template
            .replace("{room}", param.as_deref().unwrap_or(&world.room))
            .replace("{document}", param.as_deref().unwrap_or(&world.document))
            .replace("{token}", param.as_deref().unwrap_or(&world.invite_token));
        let uri = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{}", encode(query, b"-._~&=+%"))
        };
        let method = match flags & 0b11 {
            0 => methods[0].clone(),
            1 => methods[methods.len() - 1].clone(),
            2 => Method::PUT,
            _ => Method::HEAD,
        };

        let is_head = method == Method::HEAD;
        let mut request = Request::builder().method(method).uri(&uri).header(header::HOST, HOST);
        let cookie = match (flags >> 2) & 0b11 {
            0 => None,
            1 => Some(world.agent_cookie.clone()),
            2 => Some(world.customer_cookie.clone()),
            _ => Some(format!("{}; {}", world.agent_cookie, world.customer_cookie)),
        };
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if flags & 0b1_0000 != 0 {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if flags & 0b10_0000 != 0 {
            request = request.header(AS_CUSTOMER_HEADER, "customer");
        }
        // The server's own origin, as its pages send it, unless the flag says none: without
        // it every state-changing request stops at the origin check.
        if flags & 0b100_0000 == 0 {
            request = request.header(header::ORIGIN, ORIGIN);
        }
        for line in header_lines.split(|b| *b == b'\n').take(16) {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let name = HeaderName::from_bytes(&line[..colon]);
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
            if let (Ok(name), Ok(value)) = (name, value) {
                request = request.header(name, value);
            }
        }
        let Ok(request) = request.body(Body::from(body.to_vec())) else {
            return;
        };
        let response = world.app.clone().oneshot(request).await.expect("the router answers");

        let status = response.status();
        let headers = response.headers().clone();
        assert!(!status.is_server_error(), "{status} for {uri}");
        assert_eq!(
            headers.get("x-content-type-options").map(HeaderValue::as_bytes),
            Some(&b"nosniff"[..])
        );
        assert_eq!(
            headers.get(header::REFERRER_POLICY).map(HeaderValue::as_bytes),
            Some(&b"no-referrer"[..])
        );
        let is_document = path.starts_with("/api/rooms/") && path.contains("/documents/");
        if !is_document {
            assert!(
                headers.contains_key(header::CONTENT_SECURITY_POLICY),
                "no CSP for {uri}"
            );
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if content_type.starts_with("text/event-stream") || is_head {
            // A live stream does not end: its head is the answer. An answer to HEAD loses its
            // body on the wire (hyper drops it), whatever the router left in it.
            return;
        }
        let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
            .await
            .expect("the body is readable");
        if path.starts_with("/api/") && !status.is_success() {
            assert!(
                content_type.starts_with("application/json"),
                "{status} for {uri} is {content_type:?}"
            );
            let error: Value = serde_json::from_slice(&bytes).expect("an error body is JSON");
            assert!(
                error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                "{status} for {uri}: {error}"
            );
        } else if content_type.starts_with("application/json") && !bytes.is_empty() {
            serde_json::from_slice::<Value>(&bytes).expect("a JSON answer parses");
        }
    });
});
