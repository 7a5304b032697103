//! What the OpenAPI document says beyond the handlers' annotations: how a caller signs in (the
//! session cookies), the status of every error code, and the limits of the bodies, as this
//! server is configured.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, KnownFormat, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Schema, SchemaFormat, Type,
};

use crate::AppState;
use crate::auth::{AGENT_COOKIE, AS_CUSTOMER_HEADER, CUSTOMER_COOKIE};
use crate::error::{JSON_BODY_LIMIT, status_table_markdown};

/// The security scheme of an agent's session cookie.
pub const AGENT_SESSION: &str = "agent_session";
/// The security scheme of a customer's session cookie.
pub const CUSTOMER_SESSION: &str = "customer_session";

/// Completes `openapi` for a server with `state`.
pub fn complete(openapi: &mut OpenApi, state: &AppState) {
    sessions(openapi);
    statuses(openapi);
    limits(openapi, state);
    live_stream_caps(openapi, state);
    retry_after(openapi);
    exactly_one(openapi);
}

fn operations(openapi: &mut OpenApi) -> impl Iterator<Item = (&String, &mut Operation)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        .map(move |operation| (path, operation))
    })
}

/// The cookies as security schemes. Every operation that takes a caller (the ones with the
/// `x-collab-as` header) accepts either, unless its annotation says which it accepts: the
/// agents-only ones declare `agent_session` alone, as a customer's session is refused there
/// (403) whatever the request.
fn sessions(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for (scheme, cookie, who) in [
        (AGENT_SESSION, AGENT_COOKIE, "an agent, set by `POST /api/session`"),
        (CUSTOMER_SESSION, CUSTOMER_COOKIE, "a customer, set by `POST /api/join`"),
    ] {
        let mut value = ApiKeyValue::new(cookie);
        value.description = Some(format!("The session cookie of {who}."));
        components
            .security_schemes
            .insert(scheme.to_owned(), SecurityScheme::ApiKey(ApiKey::Cookie(value)));
    }
    for (_, operation) in operations(openapi) {
        let takes_caller = operation
            .parameters
            .iter()
            .flatten()
            .any(|parameter| parameter.name == AS_CUSTOMER_HEADER);
        if takes_caller && operation.security.is_none() {
            operation.security = Some(vec![
                SecurityRequirement::new(AGENT_SESSION, Vec::<String>::new()),
                SecurityRequirement::new(CUSTOMER_SESSION, Vec::<String>::new()),
            ]);
        }
    }
}

/// The status of every error code, in the description of the error body.
fn statuses(openapi: &mut OpenApi) {
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(error))) = components.schemas.get_mut("ErrorBody") {
        let intro = error.description.take().unwrap_or_default();
        error.description = Some(format!(
            "{intro}\n\nThe status of each `code`:\n\n{}",
            status_table_markdown()
        ));
    }
}

/// The largest body of each operation, in its request body's description, and its 413.
fn limits(openapi: &mut OpenApi, state: &AppState) {
    let upload_limit = state.rooms.config().max_document_bytes();
    let message_chars = state.rooms.config().policy().max_message_chars();
    for (path, operation) in operations(openapi) {
        let Some(body) = operation.request_body.as_mut() else {
            continue;
        };
        let upload = match body.content.get_mut("application/octet-stream") {
            Some(content) => {
                // The bytes themselves (utoipa says an array of integers for `Vec<u8>`), so that
                // a generated client sends a file, not a JSON array.
                let binary = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)));
                content.schema = Some(binary.into());
                true
            }
            None => false,
        };
        let mut description = if upload {
            format!("The file's bytes: at most {upload_limit} bytes.")
        } else {
            format!("At most {JSON_BODY_LIMIT} bytes.")
        };
        if path.ends_with("/messages") {
            description.push_str(&format!(
                " `text` holds at most {message_chars} characters once trimmed."
            ));
        }
        description.push_str(
            " A larger body is refused with 413 `too_large` (its `limit` says the limit); one whose \
             `Content-Length` says so is refused before it is read, and the connection closed.",
        );
        body.description = Some(description);
        let too_large = ResponseBuilder::new()
            .description("the body is over the limit")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .entry("413".to_owned())
            .or_insert_with(|| too_large.into());
    }
}

/// The `Retry-After` header of every 429: whichever limit refused the request, it says when the
/// same request may pass.
fn retry_after(openapi: &mut OpenApi) {
    for (_, operation) in operations(openapi) {
        if let Some(RefOr::T(response)) = operation.responses.responses.get_mut("429") {
            let seconds = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1));
            let header = HeaderBuilder::new()
                .schema(seconds)
                .description(Some(
                    "Whole seconds to wait before trying again, rounded up (at least 1).",
                ))
                .build();
            response.headers.insert("Retry-After".to_owned(), header);
        }
    }
}

/// The bodies that take exactly one of their fields: `minProperties` and `maxProperties` 1.
/// (Not `#[schema(min_properties = 1)]`: utoipa-gen 5.5 writes that as `maxProperties`.)
fn exactly_one(openapi: &mut OpenApi) {
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    for name in ["EraseCustomerBody"] {
        if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(name) {
            body.min_properties = Some(1);
            body.max_properties = Some(1);
        }
    }
}

/// The live-stream caps, as configured, in the live route's 429.
fn live_stream_caps(openapi: &mut OpenApi, state: &AppState) {
    let caps = state.live_streams.limits();
    for (path, operation) in operations(openapi) {
        if !path.ends_with("/live") {
            continue;
        }
        if let Some(RefOr::T(response)) = operation.responses.responses.get_mut("429") {
            response.description = format!(
                "more than {} live streams open for this session, or {} from this address; \
                 `Retry-After` says when to try again",
                caps.per_session(),
                caps.per_address()
            );
        }
    }
}
