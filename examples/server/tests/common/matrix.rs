//! Who may do what: every documented operation × every kind of caller, and the status each
//! must get. `access_matrix.rs` checks the server against it; `contract.rs` checks that the
//! OpenAPI document declares the sessions the server takes.

/// The kinds of caller, in the order of the expectation rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Nobody,
    Agent,
    OtherTenantAgent,
    Customer,
    OtherRoomCustomer,
    RevokedSession,
    ExpiredInvite,
    SignedOutAgent,
}

pub const CALLERS: [Caller; 8] = [
    Caller::Nobody,
    Caller::Agent,
    Caller::OtherTenantAgent,
    Caller::Customer,
    Caller::OtherRoomCustomer,
    Caller::RevokedSession,
    Caller::ExpiredInvite,
    Caller::SignedOutAgent,
];

/// The documented operations, `METHOD path`, with the status each caller must get, in the
/// order of [`CALLERS`]. A new route fails the test until it is added here.
pub const EXPECTED: [(&str, [u16; 8]); 33] = [
    // The platform's probes: public, and the same for everyone.
    ("GET /healthz", [200, 200, 200, 200, 200, 200, 200, 200]),
    ("GET /readyz", [200, 200, 200, 200, 200, 200, 200, 200]),
    // Public: a wrong password is refused whatever cookie comes with it.
    ("POST /api/session", [401, 401, 401, 401, 401, 401, 401, 401]),
    ("DELETE /api/session", [204, 204, 204, 204, 204, 204, 204, 204]),
    ("GET /api/me", [401, 200, 200, 200, 200, 403, 403, 401]),
    ("GET /api/rooms", [401, 200, 200, 403, 403, 403, 403, 401]),
    ("POST /api/rooms", [401, 201, 201, 403, 403, 403, 403, 401]),
    ("GET /api/rooms/{room}", [401, 200, 404, 200, 404, 403, 403, 401]),
    (
        "POST /api/rooms/{room}/invites",
        [401, 201, 404, 403, 404, 403, 403, 401],
    ),
    ("POST /api/rooms/{room}/close", [401, 204, 404, 403, 404, 403, 403, 401]),
    ("GET /api/rooms/{room}/access", [401, 200, 404, 403, 404, 403, 403, 401]),
    ("GET /api/rooms/{room}/export", [401, 200, 404, 403, 404, 403, 403, 401]),
    ("POST /api/rooms/{room}/erase", [401, 204, 404, 403, 404, 403, 403, 401]),
    // Into room B: the agent gets past access to the check that the rooms' customers differ;
    // room A's customer may not know of room B.
    ("POST /api/rooms/{room}/merge", [401, 422, 404, 404, 404, 403, 403, 401]),
    // Another tenant's agent erases nothing (no such customer in its tenant): 200, no rooms.
    ("POST /api/customers/erase", [401, 200, 200, 403, 403, 403, 403, 401]),
    (
        "DELETE /api/rooms/{room}/sessions/{participant}",
        [401, 204, 404, 403, 404, 403, 403, 401],
    ),
    (
        "DELETE /api/rooms/{room}/invites/{invite}",
        [401, 204, 404, 403, 404, 403, 403, 401],
    ),
    ("GET /api/rooms/{room}/events", [401, 200, 404, 200, 404, 403, 403, 401]),
    ("GET /api/rooms/{room}/live", [401, 200, 404, 200, 404, 403, 403, 401]),
    (
        "POST /api/rooms/{room}/messages",
        [401, 201, 404, 201, 404, 403, 403, 401],
    ),
    ("POST /api/rooms/{room}/read", [401, 204, 404, 204, 404, 403, 403, 401]),
    (
        "POST /api/rooms/{room}/typing",
        [401, 204, 404, 204, 404, 403, 403, 401],
    ),
    (
        "POST /api/rooms/{room}/documents",
        [401, 201, 404, 201, 404, 403, 403, 401],
    ),
    (
        "GET /api/rooms/{room}/documents/{document}",
        [401, 200, 404, 200, 404, 403, 403, 401],
    ),
    (
        "GET /api/rooms/{room}/documents/{document}/thumbnail",
        [401, 200, 404, 200, 404, 403, 403, 401],
    ),
    // Public: each caller joins with the invite token it holds (a made-up one if none).
    ("POST /api/join", [404, 404, 404, 200, 200, 404, 404, 404]),
    ("GET /api/dev/inbox", [401, 200, 200, 403, 403, 403, 403, 401]),
    // Each tenant's own settings; only its admins (ada, not eve) change them.
    ("GET /api/settings", [401, 200, 200, 403, 403, 403, 403, 401]),
    ("PUT /api/settings", [401, 200, 403, 403, 403, 403, 403, 401]),
    ("GET /api/settings/history", [401, 200, 200, 403, 403, 403, 403, 401]),
    // Public, but signed: no caller has Twilio's signature.
    ("POST /api/callbacks/twilio", [403, 403, 403, 403, 403, 403, 403, 403]),
    // Likewise Vonage's.
    ("GET /api/callbacks/vonage", [403, 403, 403, 403, 403, 403, 403, 403]),
    ("POST /api/callbacks/vonage", [403, 403, 403, 403, 403, 403, 403, 403]),
];

/// The statuses of `operation` (`METHOD path`), in the order of [`CALLERS`].
pub fn statuses(operation: &str) -> Option<[u16; 8]> {
    EXPECTED
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, statuses)| *statuses)
}

/// The status `caller` must get from `operation`.
pub fn status(statuses: [u16; 8], caller: Caller) -> u16 {
    let column = CALLERS.iter().position(|c| *c == caller).unwrap_or(usize::MAX);
    statuses.get(column).copied().unwrap_or_default()
}
