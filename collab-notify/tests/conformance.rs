//! The SMS conformance kit on the core's recording fake: the reference every provider is held to
//! (the HTTP providers run it in their own test files).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use collab_notify::testing::RecordingBackend;

async fn reference() -> RecordingBackend {
    RecordingBackend::new()
}

collab_notify::sms_provider_conformance!(reference);
