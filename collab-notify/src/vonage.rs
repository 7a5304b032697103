//! SMS through Vonage's (formerly Nexmo's) SMS API.

use std::time::Duration;

use async_trait::async_trait;
use collab_core::Error;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
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

    /// Asks for delivery receipts at `url` (with `room` and `invite` added to its query).
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
            .append_pair("client-ref", &notification.invite.to_string());
        if !notification.text.is_ascii() {
            form.append_pair("type", "unicode");
        }
        if let Some(callback) = &self.config.endpoint.status_callback {
            form.append_pair("status-report-req", "1").append_pair(
                "callback",
                &http::with_invite_query(callback, &notification.room, &notification.invite),
            );
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
