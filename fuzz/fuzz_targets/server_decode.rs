//! The example server's request decoding: the JSON bodies and query strings its handlers
//! extract (with axum's own `Json` and `Query` extractors, as the routes do), the values the
//! handlers parse out of them, and the `Range`, `Cookie` and `Last-Event-ID` headers.
//!
//! Input: five fields separated by 0xFF: a JSON body, a query string, a `Range` header, a
//! `Cookie` header, a `Last-Event-ID` header (with the query's `after` as its fallback).
//! Properties: a decoded body or query restates exactly what the JSON or the form holds; room
//! cursors, ids, numbers and addresses the handlers parse from it read back to themselves; a
//! range is one non-empty range that resolves within every size (or is refused as not
//! satisfiable exactly when it starts past the end); a cookie is a `name=value` pair of the
//! header; `Last-Event-ID` wins when it is a number.
#![no_main]

use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use collab_core::store::RoomCursor;
use collab_core::{EmailAddress, Error, InviteId, PhoneNumber, RoomId, Seq};
use collab_fuzz::raw_fields;
use collab_notify::twilio::parse_form;
use collab_server::api::{
    CallbackQuery, EventsQuery, InviteBody, JoinBody, ListQuery, LiveQuery, MessageBody, SignIn, UploadQuery,
    parse_range, resume_after,
};
use collab_server::auth::{AGENT_COOKIE, CUSTOMER_COOKIE, cookie};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let [body, query, range, cookies, last_event_id] = raw_fields::<5>(data);
    check_bodies(body);
    let after = check_queries(query);
    check_range(range);
    check_cookies(cookies);
    check_resume(last_event_id, after);
});

/// The JSON bodies: decoded only from a JSON object (or, as serde allows for structs, an array
/// of the fields in order), and then holding the same strings.
fn check_bodies(body: &[u8]) {
    // serde does not check the UTF-8 of fields it ignores: read the JSON lossily when strictly
    // it is not JSON (the fields decoded are valid UTF-8 either way).
    let value = serde_json::from_slice::<Value>(body)
        .or_else(|_| serde_json::from_str::<Value>(&String::from_utf8_lossy(body)))
        .ok();
    let field = |name: &str, position: usize| {
        let found = match &value {
            Some(Value::Object(object)) => object.get(name),
            Some(Value::Array(fields)) => fields.get(position),
            _ => None,
        };
        found.and_then(Value::as_str).map(str::to_owned)
    };
    let decoded = |ok: bool| {
        if ok {
            assert!(
                matches!(value, Some(Value::Object(_) | Value::Array(_))),
                "decoded a body that is not a JSON object"
            );
        }
    };
    let sign_in = Json::<SignIn>::from_bytes(body);
    decoded(sign_in.is_ok());
    if let Ok(Json(s)) = sign_in {
        assert_eq!(
            (Some(s.agent), Some(s.password)),
            (field("agent", 0), field("password", 1))
        );
    }
    let invite = Json::<InviteBody>::from_bytes(body);
    decoded(invite.is_ok());
    if let Ok(Json(i)) = invite {
        assert_eq!(Some(i.channel), field("channel", 0));
        assert_eq!(i.first_name, field("first_name", 1));
        assert_eq!(i.last_name, field("last_name", 2));
        assert_eq!(i.identifier, field("identifier", 3));
    }
    let message = Json::<MessageBody>::from_bytes(body);
    decoded(message.is_ok());
    if let Ok(Json(m)) = message {
        assert_eq!((Some(m.text), m.client_key), (field("text", 0), field("client_key", 1)));
    }
    let join = Json::<JoinBody>::from_bytes(body);
    decoded(join.is_ok());
    if let Ok(Json(j)) = join {
        assert_eq!(Some(j.token), field("token", 0));
    }
}

/// The query strings of every route that takes one; returns `after` for the live stream.
fn check_queries(query: &[u8]) -> Option<i64> {
    let Ok(query) = std::str::from_utf8(query) else {
        return None;
    };
    let Ok(uri) = format!("/api/rooms?{query}").parse::<Uri>() else {
        return None;
    };
    // What the form holds, decoded as axum's extractor decodes it.
    let form = parse_form(uri.query().unwrap_or_default().as_bytes());
    let param = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let number = |name: &str| param(name).map(|v| v.parse::<u64>());
    let signed = |name: &str| param(name).and_then(|v| v.parse::<i64>().ok());

    if let Ok(Query(list)) = Query::<ListQuery>::try_from_uri(&uri) {
        assert_eq!(list.name, param("name"));
        assert_eq!(list.phone, param("phone"));
        assert_eq!(list.email, param("email"));
        assert_eq!(list.after, param("after"));
        assert_eq!(list.limit.map(|l| l as u64), number("limit").and_then(Result::ok));
        // What the handler parses out of the filters.
        if let Some(Ok(phone)) = list.phone.as_deref().map(PhoneNumber::parse) {
            assert_eq!(PhoneNumber::parse(phone.as_str()).ok(), Some(phone));
        }
        if let Some(Ok(email)) = list.email.as_deref().map(EmailAddress::parse) {
            assert_eq!(EmailAddress::parse(email.as_str()).ok(), Some(email));
        }
        match list.after.as_deref().map(|a| a.trim().parse::<RoomCursor>()) {
            Some(Ok(cursor)) => assert_eq!(cursor.to_string().parse::<RoomCursor>().ok(), Some(cursor)),
            Some(Err(e)) => assert!(matches!(e, Error::Invalid { field: "after", .. }), "{e:?}"),
            None => {}
        }
    }
    if let Ok(Query(events)) = Query::<EventsQuery>::try_from_uri(&uri) {
        assert_eq!(events.after, signed("after"));
        assert_eq!(events.limit.map(|l| l as u64), number("limit").and_then(Result::ok));
    }
    let live = Query::<LiveQuery>::try_from_uri(&uri).ok().map(|Query(live)| live);
    if let Some(live) = &live {
        assert_eq!(live.after, signed("after"));
        assert_eq!(live.as_role, param("as"));
    }
    if let Ok(Query(upload)) = Query::<UploadQuery>::try_from_uri(&uri) {
        assert_eq!(Some(upload.name), param("name"));
    }
    if let Ok(Query(callback)) = Query::<CallbackQuery>::try_from_uri(&uri) {
        assert_eq!(
            (Some(callback.room.clone()), Some(callback.invite.clone())),
            (param("room"), param("invite"))
        );
        if let Ok(room) = callback.room.parse::<RoomId>() {
            assert_eq!(room.to_string().parse::<RoomId>().ok(), Some(room));
        }
        if let Ok(invite) = callback.invite.parse::<InviteId>() {
            assert_eq!(invite.to_string().parse::<InviteId>().ok(), Some(invite));
        }
    }
    live.and_then(|live| live.after)
}

fn header_map(name: header::HeaderName, value: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_bytes(value).ok()?);
    Some(headers)
}

/// One range, within bounds whatever the document's size.
fn check_range(value: &[u8]) {
    let Some(headers) = header_map(header::RANGE, value) else {
        return;
    };
    let Some(range) = parse_range(&headers) else {
        return;
    };
    let text = String::from_utf8_lossy(value);
    assert!(
        text.starts_with("bytes=") && !text.contains(','),
        "{text:?} is not one byte range"
    );
    if let Some(end) = range.end() {
        assert!(range.start() < end, "{range:?} is empty");
    }
    let start = range.start();
    let sizes = [0, 1, start, start.saturating_add(1), range.end().unwrap_or(7), u64::MAX];
    for size in sizes {
        match range.resolve(size) {
            Ok(bytes) => {
                assert_eq!(bytes.start, start);
                assert!(
                    bytes.start < bytes.end && bytes.end <= size,
                    "{range:?} of {size} bytes is {bytes:?}"
                );
                assert!(
                    range.end().is_none_or(|end| bytes.end <= end),
                    "{bytes:?} goes past {range:?}"
                );
                // The answer's Content-Range, as the download handler writes it.
                let content_range = format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1);
                assert!(HeaderValue::from_str(&content_range).is_ok());
            }
            Err(Error::RangeNotSatisfiable { size: reported }) => {
                assert_eq!(reported, size);
                assert!(start >= size, "{range:?} of {size} bytes was refused");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// A cookie's value is what follows its `name=` in one `;`-separated pair of the header.
fn check_cookies(value: &[u8]) {
    let Some(headers) = header_map(header::COOKIE, value) else {
        return;
    };
    let Some(text) = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()) else {
        // A header of other than visible ASCII holds no cookie the server reads.
        assert_eq!(
            (cookie(&headers, AGENT_COOKIE), cookie(&headers, CUSTOMER_COOKIE)),
            (None, None)
        );
        return;
    };
    for name in [AGENT_COOKIE, CUSTOMER_COOKIE] {
        if let Some(found) = cookie(&headers, name) {
            assert!(!found.contains(';'), "{found:?} runs into the next cookie");
            let pair = format!("{name}={found}");
            assert!(
                text.split(';').any(|p| p.trim() == pair),
                "{pair:?} is not a pair of {text:?}"
            );
        } else {
            assert!(
                !text.split(';').any(|p| p.trim().starts_with(&format!("{name}="))),
                "{name} was missed in {text:?}"
            );
        }
    }
}

/// `Last-Event-ID` wins when it is a number, and a value that is not one is refused (never a
/// replay from the start); without one (or an empty one), `after`; else the start.
fn check_resume(value: &[u8], after: Option<i64>) {
    let headers = header_map(header::HeaderName::from_static("last-event-id"), value);
    let sent = headers.is_some() && !value.is_empty();
    let resume = resume_after(&headers.unwrap_or_default(), after).ok().map(Seq::get);
    if sent {
        // The header as text: visible ASCII, spaces and tabs only (as `HeaderValue::to_str`).
        let text = value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
            .then(|| String::from_utf8_lossy(value));
        let number = text.and_then(|v| v.trim().parse::<u64>().ok());
        match number {
            Some(number) => assert_eq!(resume, Some(number), "Last-Event-ID {number} was not used"),
            None => assert_eq!(resume, None, "a Last-Event-ID that is no number was not refused"),
        }
    } else {
        let expected = u64::try_from(after.unwrap_or(0)).ok();
        assert_eq!(
            resume, expected,
            "no Last-Event-ID, yet not `after` (or a negative `after` accepted)"
        );
    }
}
