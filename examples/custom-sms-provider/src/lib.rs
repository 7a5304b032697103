//! A complete custom SMS provider: "Acme SMS", a JSON API with a bearer token.
//!
//! `POST {base}/v1/messages` with `{"to": "+447911123456", "text": "…", "reference": "<invite>"}`;
//! Acme answers 2xx with `{"id": "…"}`, or an error status. Wire it into the service like any
//! notifier; configuring an SMS notifier is what activates SMS invites:
//!
//! ```
//! use collab_core::rooms::Rooms;
//! use custom_sms_provider::AcmeSms;
//!
//! let acme = AcmeSms::new("https://api.acme-sms.example", "acme-token".into())?;
//! let rooms = Rooms::builder().sms(acme).build();
//! assert!(rooms.config().policy().sms_activated());
//! # Ok::<(), collab_core::Error>(())
//! ```
//!
//! `tests/conformance.rs` runs collab-notify's conformance kit on it against an in-process
//! server speaking Acme's API, and on the core's recording fake, the reference.

use async_trait::async_trait;
use collab_core::Error;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
use collab_notify::http::{self, DEFAULT_TIMEOUT};
use collab_notify::{ExposeSecret, ProviderError, SecretString};

/// Sends SMS invites through Acme. `Debug` never shows the token (a `SecretString`).
#[derive(Debug)]
pub struct AcmeSms {
    base_url: String,
    token: SecretString,
    client: http::reqwest::Client,
}

#[derive(serde::Deserialize)]
struct Accepted {
    id: Option<String>,
}

impl AcmeSms {
    /// Sends through the API at `base_url` with `token`.
    pub fn new(base_url: &str, token: SecretString) -> Result<Self, Error> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            // rustls, timeouts, no redirects: the client collab-notify's providers use.
            client: http::client(DEFAULT_TIMEOUT)?,
        })
    }
}

#[async_trait]
impl Notifier for AcmeSms {
    /// One attempt. The dispatcher owns retries: classify failures, never retry here.
    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        // Anything but a phone number is a permanent failure.
        let to = http::phone_number("acme", notification)?;
        let body = serde_json::json!({
            "to": to.as_str(),
            "text": notification.text,
            "reference": notification.invite.to_string(),
        });
        let request = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .header("content-type", "application/json")
            .body(body.to_string());
        // No connection: transient. A timeout or a cut answer: ambiguous. The answer's body is
        // read within a bound.
        let reply = http::send("acme", request).await?;
        if reply.status.is_success() {
            let id = reply.json::<Accepted>().and_then(|a| a.id);
            return Ok(Receipt { provider_id: id });
        }
        // 408, 429 and 5xx: transient after Retry-After; any other status: permanent.
        Err(reply.failure(ProviderError::new("acme", reply.body.clone())))
    }
}
