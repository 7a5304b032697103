//! SMS through an in-house gateway: a signed JSON POST to a configured URL.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt, sms_segments};
use collab_core::{Error, InviteId, RoomId};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ProviderError;
use crate::http::{self, DEFAULT_TIMEOUT};

const PROVIDER: &str = "http-sms";

/// The header carrying the signature: `v1=` and the hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "x-collab-signature";
/// The header carrying the Unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-collab-timestamp";

/// The JSON body posted to the gateway, one per attempt.
///
/// ```json
/// {
///   "version": 1,
///   "room": "5d7c…",
///   "invite": "9a41…",
///   "to": "+447911123456",
///   "text": "Hi Grace, join your collaboration room: https://rooms.example.com/join/…",
///   "segments": 1
/// }
/// ```
///
/// Headers: `Content-Type: application/json`, `Idempotency-Key: <invite>` (every attempt of one
/// invite carries the same key; a gateway that already accepted it may answer 2xx and drop the
/// repeat), `X-Collab-Timestamp: <unix seconds>` and `X-Collab-Signature: v1=<hex>`, the
/// HMAC-SHA256 with the shared secret of `"<timestamp>.<body>"` (see [`signature`]). The gateway
/// should recompute it over the raw body, compare in constant time and refuse timestamps more
/// than a few minutes old.
///
/// The gateway answers 2xx to accept, optionally with `{"id": "<its message id>"}`; 4xx (except
/// 408 and 429) to refuse for good, optionally with `{"error": "<reason>", "code": "<code>"}`;
/// 408, 429 or 5xx (with `Retry-After`) to ask for another attempt later. The text holds the
/// invite link, a bearer secret: the gateway must not log it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayMessage {
    /// The payload's version: 1.
    pub version: u32,
    /// The room.
    pub room: RoomId,
    /// The invite; also the `Idempotency-Key`.
    pub invite: InviteId,
    /// The mobile number, E.164.
    pub to: String,
    /// The text, with the link.
    pub text: String,
    /// How many SMS segments the text takes.
    pub segments: usize,
}

impl fmt::Debug for GatewayMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayMessage")
            .field("room", &self.room)
            .field("invite", &self.invite)
            .field("to", &self.to)
            .field("text", &"<redacted: holds the invite link>")
            .finish_non_exhaustive()
    }
}

/// The signature of a gateway request: `v1=` and the hex HMAC-SHA256, keyed with `secret`, of
/// the timestamp, a dot and the body.
pub fn signature(secret: &SecretString, timestamp: u64, body: &[u8]) -> Result<String, Error> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| Error::invalid("secret", "not usable as an HMAC key"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1={}", http::hex(&mac.finalize().into_bytes())))
}

/// The settings of [`HttpSms`]. The secret is redacted from `Debug`.
#[derive(Clone, Debug)]
pub struct HttpSmsConfig {
    url: String,
    secret: SecretString,
    timeout: Duration,
}

impl HttpSmsConfig {
    /// Posts to `url`, signing with `secret` (at least 16 bytes); 15 s timeout.
    pub fn new(url: &str, secret: SecretString) -> Result<Self, Error> {
        if secret.expose_secret().len() < 16 {
            return Err(Error::invalid("secret", "must be at least 16 bytes"));
        }
        Ok(Self {
            url: http::checked_url("url", url)?,
            secret,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The whole call's timeout, 100 ms to 40 s (15 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        self.timeout = http::checked_timeout(timeout)?;
        Ok(self)
    }
}

/// Sends SMS invites to an in-house gateway: a signed [`GatewayMessage`] per attempt.
///
/// | answer | result |
/// |---|---|
/// | 2xx | sent; `id` from the JSON answer, if any, is the provider id |
/// | 408, 429, 5xx | transient, after `Retry-After` when given |
/// | other 4xx | permanent, with the answer's `error` and `code` |
/// | no connection | transient |
/// | timeout, connection lost | ambiguous |
#[derive(Debug)]
pub struct HttpSms {
    config: HttpSmsConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Accepted {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Refused {
    error: Option<String>,
    code: Option<serde_json::Value>,
}

impl HttpSms {
    /// A notifier for `config`.
    pub fn new(config: HttpSmsConfig) -> Result<Self, Error> {
        let client = http::client(config.timeout)?;
        Ok(Self { config, client })
    }
}

#[async_trait]
impl Notifier for HttpSms {
    fn provider(&self) -> &'static str {
        "http_gateway"
    }

    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let to = http::phone_number(PROVIDER, notification)?;
        let message = GatewayMessage {
            version: 1,
            room: notification.room,
            invite: notification.invite,
            to: to.as_str().to_owned(),
            text: notification.text.clone(),
            segments: sms_segments(&notification.text),
        };
        let body = serde_json::to_vec(&message)
            .map_err(|e| NotifyError::permanent(ProviderError::new(PROVIDER, "could not encode").with_source(e)))?;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let signature = signature(&self.config.secret, timestamp, &body)
            .map_err(|e| NotifyError::permanent(ProviderError::new(PROVIDER, "could not sign").with_source(e)))?;
        let request = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", notification.invite.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        let reply = http::send(PROVIDER, request).await?;
        if reply.status.is_success() {
            let provider_id = reply.json::<Accepted>().and_then(|a| a.id);
            return Ok(Receipt { provider_id });
        }
        let refused = reply.json::<Refused>();
        let message = refused
            .as_ref()
            .and_then(|r| r.error.clone())
            .unwrap_or_else(|| format!("HTTP {}", reply.status));
        let mut error = ProviderError::new(PROVIDER, message);
        match refused.and_then(|r| r.code) {
            Some(serde_json::Value::String(code)) => error = error.with_code(code),
            Some(serde_json::Value::Number(code)) => error = error.with_code(code.to_string()),
            _ => {}
        }
        Err(reply.failure(error))
    }
}
