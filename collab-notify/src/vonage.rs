//! SMS through Vonage's (formerly Nexmo's) SMS API.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
use collab_core::rooms::Rooms;
use collab_core::{DeliveryStatus, Error, InviteId, RoomId};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ProviderError;
use crate::http::{self, Endpoint};

const PROVIDER: &str = "vonage";

/// The settings of [`VonageSms`]. The API secret is redacted from `Debug`.
///
/// ```
/// use collab_notify::vonage::VonageConfig;
///
/// let config = VonageConfig::new("abcd1234", "api-secret".into(), "AcmeRooms")?;
/// assert!(!format!("{config:?}").contains("api-secret"));
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct VonageConfig {
    api_key: String,
    api_secret: SecretString,
    from: String,
    endpoint: Endpoint,
}

impl VonageConfig {
    /// Vonage's SMS API.
    pub const DEFAULT_BASE_URL: &'static str = "https://rest.nexmo.com";

    /// Sends with `api_key` and `api_secret` from `from` (a number in international form
    /// without `+`, or an alphanumeric sender id); 15 s timeout.
    pub fn new(api_key: &str, api_secret: SecretString, from: &str) -> Result<Self, Error> {
        let api_key = api_key.trim();
        if api_key.is_empty() || api_key.len() > 64 || !api_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid("api_key", "must be 1 to 64 letters or digits"));
        }
        let from = from.trim().trim_start_matches('+');
        if from.is_empty() || from.len() > 15 || !from.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
            return Err(Error::invalid(
                "from",
                "must be a number or a sender id of up to 15 characters",
            ));
        }
        Ok(Self {
            api_key: api_key.to_owned(),
            api_secret,
            from: from.to_owned(),
            endpoint: Endpoint::new(Self::DEFAULT_BASE_URL),
        })
    }

    /// Asks for delivery receipts at `url`; [`VonageReceipts`] reads them.
    pub fn with_status_callback(self, url: &str) -> Result<Self, Error> {
        let endpoint = self.endpoint.with_status_callback(url)?;
        Ok(Self { endpoint, ..self })
    }

    /// Another API address (a test server).
    pub fn with_base_url(self, url: &str) -> Result<Self, Error> {
        let endpoint = self.endpoint.with_base_url(url)?;
        Ok(Self { endpoint, ..self })
    }

    /// The whole call's timeout, 100 ms to 40 s (15 s by default).
    pub fn with_timeout(self, timeout: Duration) -> Result<Self, Error> {
        let endpoint = self.endpoint.with_timeout(timeout)?;
        Ok(Self { endpoint, ..self })
    }
}

/// Sends SMS invites through Vonage's SMS API (`POST /sms/json`, form-encoded, key and secret
/// in the form).
///
/// Vonage answers **HTTP 200 even when it refuses**: each message part in the answer carries
/// its own `status`, and only `"0"` is success. They map as follows:
///
/// | answer | result |
/// |---|---|
/// | every part status `0` | sent; the first part's `message-id` is the provider id |
/// | status 1 (throttled), 5 (internal error), 9 (quota), 10 (too many binds) | transient |
/// | any other status (invalid number, barred, bad credentials…) | permanent |
/// | some parts sent, others refused | ambiguous (the customer may have part of the text) |
/// | HTTP 429, 408, 5xx | transient, after `Retry-After` when given |
/// | HTTP 401 and other 4xx | permanent |
/// | timeout | ambiguous |
///
/// Texts outside ASCII are sent as `type=unicode`, so that accents survive.
#[derive(Debug)]
pub struct VonageSms {
    config: VonageConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    messages: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

/// Vonage statuses after which another attempt may succeed.
const TRANSIENT_STATUSES: [&str; 4] = ["1", "5", "9", "10"];

impl VonageSms {
    /// A notifier for `config`.
    pub fn new(config: VonageConfig) -> Result<Self, Error> {
        let client = http::client(config.endpoint.timeout)?;
        Ok(Self { config, client })
    }

    fn form(&self, notification: &Notification, to: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("api_key", &self.config.api_key)
            .append_pair("api_secret", self.config.api_secret.expose_secret())
            .append_pair("from", &self.config.from)
            .append_pair("to", to.trim_start_matches('+'))
            .append_pair("text", &notification.text)
            .append_pair("client-ref", &client_ref(notification.room, notification.invite));
        if !notification.text.is_ascii() {
            form.append_pair("type", "unicode");
        }
        if let Some(callback) = &self.config.endpoint.status_callback {
            // The callback as configured: the receipt names the invite in its signed `client-ref`.
            form.append_pair("status-report-req", "1")
                .append_pair("callback", callback);
        }
        form.finish()
    }
}

#[async_trait]
impl Notifier for VonageSms {
    fn provider(&self) -> &'static str {
        "vonage"
    }

    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let to = http::phone_number(PROVIDER, notification)?;
        let request = self
            .client
            .post(format!("{}/sms/json", self.config.endpoint.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(self.form(notification, to.as_str()));
        let reply = http::send(PROVIDER, request).await?;
        if !reply.status.is_success() {
            return Err(reply.failure(ProviderError::new(PROVIDER, format!("HTTP {}", reply.status))));
        }
        let status = reply.status.as_u16();
        let parts = match reply.json::<Answer>() {
            Some(answer) if !answer.messages.is_empty() => answer.messages,
            // A 200 we cannot read: the message may well have gone out.
            _ => {
                return Err(NotifyError::ambiguous(
                    ProviderError::new(PROVIDER, "unreadable answer").with_status(status),
                ));
            }
        };
        let Some(refused) = parts.iter().find(|p| p.status != "0") else {
            let provider_id = parts.into_iter().find_map(|p| p.message_id);
            return Ok(Receipt { provider_id });
        };
        let message = refused.error_text.clone().unwrap_or_else(|| "refused".to_owned());
        // The answer may quote the request, whose form carries the secret.
        let secret = self.config.api_secret.expose_secret();
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let error = ProviderError::quoting(PROVIDER, message, &[secret, &encoded])
            .with_status(status)
            .with_code(refused.status.clone());
        if parts.iter().any(|p| p.status == "0") {
            return Err(NotifyError::ambiguous(error));
        }
        if TRANSIENT_STATUSES.contains(&refused.status.as_str()) {
            Err(NotifyError::Transient {
                retry_after: reply.retry_after,
                source: error.into(),
            })
        } else {
            Err(NotifyError::permanent(error))
        }
    }
}

/// The `client-ref` of an invite's message: `room:invite`, echoed in its delivery receipts
/// (73 characters; Vonage keeps up to 100).
fn client_ref(room: RoomId, invite: InviteId) -> String {
    format!("{room}:{invite}")
}

/// How the account signs its webhooks (Vonage's dashboard, "signature method").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    /// MD5 of the parameters followed by the secret: Vonage's default, and the weakest.
    Md5Hash,
    /// HMAC-MD5.
    Md5Hmac,
    /// HMAC-SHA1.
    Sha1Hmac,
    /// HMAC-SHA256.
    Sha256Hmac,
    /// HMAC-SHA512.
    Sha512Hmac,
}

impl SignatureMethod {
    /// The method named as Vonage names it: `md5hash`, `md5`, `sha1`, `sha256` or `sha512`.
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name.trim().to_ascii_lowercase().as_str() {
            "md5hash" => Ok(Self::Md5Hash),
            "md5" => Ok(Self::Md5Hmac),
            "sha1" => Ok(Self::Sha1Hmac),
            "sha256" => Ok(Self::Sha256Hmac),
            "sha512" => Ok(Self::Sha512Hmac),
            _ => Err(Error::invalid(
                "signature_method",
                "must be md5hash, md5, sha1, sha256 or sha512",
            )),
        }
    }
}

/// A delivery receipt, read and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VonageStatusReport {
    /// The room, from `client-ref`.
    pub room: RoomId,
    /// The invite, from `client-ref`.
    pub invite: InviteId,
    /// `messageId`.
    pub message_id: String,
    /// `status` as Vonage spells it.
    pub status_name: String,
    /// What it means for the invite; `None` for steps that are not delivery news (buffered,
    /// unknown).
    pub status: Option<DeliveryStatus>,
}

/// What a receipt's `status` (and `err-code`) mean for the invite: `accepted` (by the carrier),
/// `delivered`, `expired`/`failed`/`rejected`; `None` for the others.
pub fn delivery_status(status: &str, message_id: &str, error_code: Option<&str>) -> Option<DeliveryStatus> {
    /// Error codes after which another attempt cannot help: absent subscriber (permanent), call
    /// barred, illegal number, unroutable, age restriction, blocked by the carrier.
    const PERMANENT: [&str; 6] = ["3", "4", "9", "11", "13", "14"];
    match status {
        "accepted" => Some(DeliveryStatus::Sent {
            provider_id: Some(message_id.to_owned()),
        }),
        "delivered" => Some(DeliveryStatus::Delivered),
        "expired" | "failed" | "rejected" => Some(DeliveryStatus::Failed {
            permanent: status == "rejected" || error_code.is_some_and(|c| PERMANENT.contains(&c)),
            reason: match error_code {
                Some(code) => format!("vonage: {status} (code {code})"),
                None => format!("vonage: {status}"),
            },
        }),
        _ => None,
    }
}

/// Verifies Vonage's signed delivery receipts and records them on the invite.
///
/// Ask Vonage's support to sign the account's webhooks, and set the account's *signature
/// secret* and *signature method* here. Vonage sends each receipt's parameters (in the query of a
/// `GET`, or as a form `POST`) with `sig`: over every other parameter, sorted by name, each as
/// `&name=value` with `&` and `=` in values replaced by `_`, the method's hash — hex. The receipt
/// names its invite by the `client-ref` that [`VonageSms`] sends.
///
/// ```
/// use collab_notify::vonage::{SignatureMethod, VonageReceipts};
///
/// // The example of Vonage's Python library: MD5 hash, secret "secret".
/// let receipts = VonageReceipts::new("secret".into(), SignatureMethod::Md5Hash);
/// let params = [("a", "1"), ("b", "2"), ("timestamp", "1461605396"), ("sig", "6af838ef94998832dbfc29020b564830")];
/// let params: Vec<(String, String)> = params.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
/// assert!(receipts.verify(&params).is_ok());
/// // In the host's handler: `receipts.record(&rooms, &params).await`.
/// ```
#[derive(Clone)]
pub struct VonageReceipts {
    secret: SecretString,
    method: SignatureMethod,
}

impl fmt::Debug for VonageReceipts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VonageReceipts")
            .field("secret", &"<redacted>")
            .field("method", &self.method)
            .finish()
    }
}

impl VonageReceipts {
    /// Verifies receipts signed with the account's `signature_secret` by `method`.
    pub fn new(signature_secret: SecretString, method: SignatureMethod) -> Self {
        Self {
            secret: signature_secret,
            method,
        }
    }

    /// The signature of `params` (all but `sig`), lower-case hex (for tests and tools).
    pub fn signature(&self, params: &[(String, String)]) -> Result<String, Error> {
        let mut signed: Vec<(&str, String)> = params
            .iter()
            .filter(|(name, _)| name != "sig")
            .map(|(name, value)| (name.as_str(), value.replace(['&', '='], "_")))
            .collect();
        signed.sort();
        let text: String = signed.iter().map(|(name, value)| format!("&{name}={value}")).collect();
        let key = self.secret.expose_secret().as_bytes();
        let bad_key = |_| Error::invalid("signature_secret", "not usable as an HMAC key");
        let digest = match self.method {
            SignatureMethod::Md5Hash => {
                use md5::Digest;
                let mut hash = md5::Md5::new();
                hash.update(text.as_bytes());
                hash.update(key);
                hash.finalize().to_vec()
            }
            SignatureMethod::Md5Hmac => mac::<Hmac<md5::Md5>>(key, &text).map_err(bad_key)?,
            SignatureMethod::Sha1Hmac => mac::<Hmac<sha1::Sha1>>(key, &text).map_err(bad_key)?,
            SignatureMethod::Sha256Hmac => mac::<Hmac<sha2::Sha256>>(key, &text).map_err(bad_key)?,
            SignatureMethod::Sha512Hmac => mac::<Hmac<sha2::Sha512>>(key, &text).map_err(bad_key)?,
        };
        Ok(http::hex(&digest))
    }

    /// Checks the `sig` parameter against the others (case-insensitive hex, in constant time).
    /// A missing or wrong signature is [`Error::Forbidden`].
    pub fn verify(&self, params: &[(String, String)]) -> Result<(), Error> {
        let sig = params
            .iter()
            .find(|(name, _)| name == "sig")
            .map(|(_, value)| value.trim().to_ascii_lowercase())
            .ok_or(Error::Forbidden)?;
        let expected = self.signature(params)?;
        // Constant time: every byte compared, whatever the first difference.
        let same = sig.len() == expected.len()
            && sig
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if same { Ok(()) } else { Err(Error::Forbidden) }
    }

    /// Verifies a receipt and reads it: the room and invite from `client-ref`, the message id and
    /// status. Missing or malformed fields are [`Error::Invalid`].
    pub fn status_report(&self, params: &[(String, String)]) -> Result<VonageStatusReport, Error> {
        self.verify(params)?;
        let find = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let client_ref = find("client-ref").ok_or_else(|| Error::invalid("client-ref", "missing"))?;
        let (room, invite) = client_ref
            .split_once(':')
            .ok_or_else(|| Error::invalid("client-ref", "not a room and an invite"))?;
        let (room, invite): (RoomId, InviteId) = (room.parse()?, invite.parse()?);
        let message_id = find("messageId").ok_or_else(|| Error::invalid("messageId", "missing"))?;
        let status_name = find("status").ok_or_else(|| Error::invalid("status", "missing"))?;
        let error_code = find("err-code").filter(|c| !c.is_empty() && c != "0");
        let status = delivery_status(&status_name, &message_id, error_code.as_deref());
        Ok(VonageStatusReport {
            room,
            invite,
            message_id,
            status_name,
            status,
        })
    }

    /// Verifies a receipt (all its parameters: the query of a `GET`, or the form of a `POST`,
    /// decoded with [`crate::twilio::parse_form`]) and records its news on the invite through
    /// [`Rooms::record_delivery`]. A replayed or late receipt records nothing and succeeds.
    ///
    /// Answer Vonage with 2xx on `Ok`, 403 on [`Error::Forbidden`], 400 on [`Error::Invalid`]
    /// and 404 on [`Error::NotFound`].
    pub async fn record(&self, rooms: &Rooms, params: &[(String, String)]) -> Result<VonageStatusReport, Error> {
        let report = self.status_report(params)?;
        if let Some(status) = &report.status {
            rooms
                .record_delivery(report.room, report.invite, status.clone())
                .await?;
        }
        Ok(report)
    }
}

/// The HMAC of `text` under `key`.
fn mac<M: Mac + KeyInit>(key: &[u8], text: &str) -> Result<Vec<u8>, hmac::digest::InvalidLength> {
    let mut mac = <M as KeyInit>::new_from_slice(key)?;
    mac.update(text.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}
