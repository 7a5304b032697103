//! SMS through an in-house gateway: a signed JSON POST to a configured URL.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt, sms_segments};
use collab_core::rooms::Rooms;
use collab_core::{DeliveryStatus, Error, InviteId, RoomId};
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

/// A delivery report the gateway posts back, signed as the gateway's requests are: the same
/// secret, [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`] over the raw JSON body.
///
/// ```json
/// { "version": 1, "room": "5d7c…", "invite": "9a41…", "status": "failed",
///   "permanent": true, "reason": "unknown subscriber" }
/// ```
///
/// `status` is `sent` (with the gateway's `id`, if any), `delivered` or `failed` (`permanent`
/// when another attempt cannot help; `reason` is shown to the agent, so it must not hold the
/// link).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayReport {
    /// The payload's version: 1.
    pub version: u32,
    /// The room, as in the [`GatewayMessage`].
    pub room: RoomId,
    /// The invite, as in the [`GatewayMessage`].
    pub invite: InviteId,
    /// `sent`, `delivered` or `failed`.
    pub status: String,
    /// The gateway's message id, for `sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For `failed`: whether another attempt cannot help.
    #[serde(default)]
    pub permanent: bool,
    /// For `failed`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GatewayReport {
    /// What the report means for the invite.
    pub fn delivery_status(&self) -> Result<DeliveryStatus, Error> {
        match self.status.as_str() {
            "sent" => Ok(DeliveryStatus::Sent {
                provider_id: self.id.clone(),
            }),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed {
                permanent: self.permanent,
                reason: format!("gateway: {}", self.reason.as_deref().unwrap_or("failed")),
            }),
            _ => Err(Error::invalid("status", "must be sent, delivered or failed")),
        }
    }
}

/// Verifies the gateway's signed delivery reports and records them on the invite.
///
/// ```
/// use collab_notify::gateway::{GatewayReports, signature};
/// use collab_notify::SecretString;
///
/// let secret = SecretString::from("gateway-shared-secret-0123456789");
/// let reports = GatewayReports::new(secret.clone())?;
/// let body = br#"{"version":1,"room":"00000000-0000-0000-0000-000000000001","invite":"00000000-0000-0000-0000-000000000002","status":"delivered"}"#;
/// let signed = signature(&secret, 1_796_398_200, body)?;
/// let report = reports.verify_at("1796398200", &signed, body, 1_796_398_260)?;
/// assert_eq!(report.status, "delivered");
/// // In the host's handler: `reports.record(&rooms, timestamp_header, signature_header, &body).await`.
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone)]
pub struct GatewayReports {
    secret: SecretString,
}

impl fmt::Debug for GatewayReports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayReports(<redacted>)")
    }
}

/// How far a report's timestamp may be from this server's clock.
pub const REPORT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

impl GatewayReports {
    /// Verifies reports signed with `secret` (the gateway's, at least 16 bytes).
    pub fn new(secret: SecretString) -> Result<Self, Error> {
        if secret.expose_secret().len() < 16 {
            return Err(Error::invalid("secret", "must be at least 16 bytes"));
        }
        Ok(Self { secret })
    }

    /// Checks the signature of `body` and its timestamp against the clock, then reads the report.
    /// A wrong signature, or a timestamp more than [`REPORT_TOLERANCE`] away, is
    /// [`Error::Forbidden`]; a body that is not a report is [`Error::Invalid`].
    pub fn verify(&self, timestamp: &str, signature: &str, body: &[u8]) -> Result<GatewayReport, Error> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.verify_at(timestamp, signature, body, now)
    }

    /// [`verify`](Self::verify) at `now` (Unix seconds).
    pub fn verify_at(&self, timestamp: &str, signature: &str, body: &[u8], now: u64) -> Result<GatewayReport, Error> {
        let at: u64 = timestamp.trim().parse().map_err(|_| Error::Forbidden)?;
        if at.abs_diff(now) > REPORT_TOLERANCE.as_secs() {
            return Err(Error::Forbidden);
        }
        let hex = signature.trim().strip_prefix("v1=").ok_or(Error::Forbidden)?;
        let tag = http::unhex(hex).ok_or(Error::Forbidden)?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|_| Error::invalid("secret", "not usable as an HMAC key"))?;
        mac.update(at.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&tag).map_err(|_| Error::Forbidden)?;
        let report: GatewayReport =
            serde_json::from_slice(body).map_err(|e| Error::invalid("body", format!("not a delivery report: {e}")))?;
        if report.version != 1 {
            return Err(Error::invalid("version", "must be 1"));
        }
        Ok(report)
    }

    /// Verifies a report (the [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`] values, the raw
    /// body) and records it on the invite through [`Rooms::record_delivery`]. A replayed or
    /// late report records nothing and succeeds.
    ///
    /// Answer the gateway with 2xx on `Ok`, 403 on [`Error::Forbidden`], 400 on
    /// [`Error::Invalid`] and 404 on [`Error::NotFound`].
    pub async fn record(
        &self,
        rooms: &Rooms,
        timestamp: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<GatewayReport, Error> {
        let report = self.verify(timestamp, signature, body)?;
        let status = report.delivery_status()?;
        rooms.record_delivery(report.room, report.invite, status).await?;
        Ok(report)
    }
}
