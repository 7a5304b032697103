//! What the HTTP providers share, public for your own HTTP provider: a client with timeouts,
//! one request sent and its answer read within a bound ([`send`]), and the mapping of HTTP
//! failures onto [`NotifyError`].
//! `examples/custom-sms-provider` builds a provider from these in under 100 lines.
//!
//! [`reqwest`] is re-exported so that your provider uses the same version.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use collab_core::notify::{Notification, NotifyError};
use collab_core::{Error, PhoneNumber, Recipient};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::ProviderError;

pub use reqwest;

/// The longest answer body read from a provider; the rest is ignored.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The default time for a whole provider call (connect, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest timeout accepted: the dispatcher's send timeout is ¾ of its lease (45 s by
/// default), and a provider call must end before it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(40);

/// Checks a provider timeout.
pub(crate) fn checked_timeout(timeout: Duration) -> Result<Duration, Error> {
    if timeout < Duration::from_millis(100) || timeout > MAX_TIMEOUT {
        return Err(Error::invalid("timeout", "must be from 100 ms to 40 s"));
    }
    Ok(timeout)
}

/// Checks a base URL (`http://` or `https://`, no query or fragment) and drops a trailing `/`.
pub(crate) fn checked_url(field: &'static str, url: &str) -> Result<String, Error> {
    let url = url.trim();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let valid = rest
        .is_some_and(|r| !r.is_empty() && !r.starts_with('/') && r.chars().all(|c| c.is_ascii_graphic() && c != '#'));
    if !valid {
        return Err(Error::invalid(
            field,
            "must be an http:// or https:// URL without fragment",
        ));
    }
    Ok(url.to_owned())
}

/// Where and how long an SMS provider is called, and where its delivery reports go: what the
/// Twilio and Vonage settings share, each setting checked once here.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// The API's address, without a trailing `/`.
    pub(crate) base_url: String,
    /// Where the provider posts delivery reports, if anywhere.
    pub(crate) status_callback: Option<String>,
    /// The whole call's timeout.
    pub(crate) timeout: Duration,
}

impl Endpoint {
    /// Calls `base_url` (a constant, not checked) with the default timeout; no callback.
    pub(crate) fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            status_callback: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub(crate) fn with_status_callback(self, url: &str) -> Result<Self, Error> {
        let status_callback = Some(checked_url("status_callback", url)?);
        Ok(Self {
            status_callback,
            ..self
        })
    }

    pub(crate) fn with_base_url(self, url: &str) -> Result<Self, Error> {
        let base_url = checked_url("base_url", url)?.trim_end_matches('/').to_owned();
        Ok(Self { base_url, ..self })
    }

    pub(crate) fn with_timeout(self, timeout: Duration) -> Result<Self, Error> {
        let timeout = checked_timeout(timeout)?;
        Ok(Self { timeout, ..self })
    }
}

/// `url` with `room` and `invite` added to its query, so that a delivery report can name them.
pub(crate) fn with_invite_query(url: &str, room: &collab_core::RoomId, invite: &collab_core::InviteId) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}room={room}&invite={invite}")
}

/// An HTTP/1.1 client over rustls (ring, the platform's certificate verifier), with a connect
/// timeout, a whole-call timeout, and no redirects: a provider that redirects a POST is
/// misconfigured, and following it could resend the message elsewhere.
///
/// `timeout` bounds the whole call; keep it under [`MAX_TIMEOUT`].
pub fn client(timeout: Duration) -> Result<reqwest::Client, Error> {
    client_builder(timeout)?
        .build()
        .map_err(|e| Error::backend("HTTP client set-up", e))
}

/// [`client`]'s settings, for a caller that adds its own.
pub(crate) fn client_builder(timeout: Duration) -> Result<reqwest::ClientBuilder, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| Error::backend("TLS set-up", e))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend("TLS set-up", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("collab-notify/", env!("CARGO_PKG_VERSION"))))
}

/// The notification's phone number; any other recipient is a permanent failure of `provider`,
/// as no attempt could send an SMS to it.
pub fn phone_number<'n>(
    provider: &'static str,
    notification: &'n Notification,
) -> Result<&'n PhoneNumber, NotifyError> {
    match &notification.recipient {
        Recipient::Phone(number) => Ok(number),
        _ => Err(NotifyError::permanent(ProviderError::new(
            provider,
            "an SMS needs a phone number",
        ))),
    }
}

/// A provider's answer to one request: its status, its `Retry-After` and its body.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The provider's `Retry-After`, read by [`retry_after`].
    pub retry_after: Option<Duration>,
    /// The body as text, at most 64 KiB of it (see [`body_text`]).
    pub body: String,
}

impl Reply {
    /// The body read as JSON, or `None` when it is not that JSON: an answer we cannot read
    /// must not hide what its status says.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.body).ok()
    }

    /// The failure this answer means, by the usual reading of its status ([`classify_status`]),
    /// with `error` given the status.
    pub fn failure(&self, error: ProviderError) -> NotifyError {
        classify_status(self.status, self.retry_after, error.with_status(self.status.as_u16()))
    }
}

/// Sends `request` for `provider` and reads the answer, whatever its status. A request that got
/// no answer fails as [`request_failed`] says.
pub async fn send(provider: &'static str, request: RequestBuilder) -> Result<Reply, NotifyError> {
    let response = request.send().await.map_err(|e| request_failed(provider, e))?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = body_text(response).await;
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}

/// A request that got no usable answer. A request that could not connect never left: trying
/// again is safe. Anything later (a timeout, a connection cut mid-answer) may have reached the
/// provider: ambiguous.
pub fn request_failed(provider: &'static str, error: reqwest::Error) -> NotifyError {
    let connect = error.is_connect();
    let message = if error.is_timeout() {
        "no answer in time"
    } else if connect {
        "could not connect"
    } else {
        "the request failed"
    };
    let error = ProviderError::new(provider, message).with_source(error.without_url());
    if connect {
        NotifyError::transient(error)
    } else {
        NotifyError::ambiguous(error)
    }
}

/// The provider's `Retry-After`, in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Reads at most 64 KiB of the answer, as text (lossy). A body cut off by an error
/// is returned as far as it came.
pub async fn body_text(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_BODY_BYTES);
    String::from_utf8_lossy(&body).into_owned()
}

/// The usual reading of an HTTP status, for an answer that is not a success: 408, 429 and 5xx
/// are worth another try (after the provider's `Retry-After`); any other status is permanent
/// (bad credentials, a refused number, a misconfigured URL).
pub fn classify_status(status: StatusCode, retry_after: Option<Duration>, error: ProviderError) -> NotifyError {
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        NotifyError::Transient {
            retry_after,
            source: error.into(),
        }
    } else {
        NotifyError::permanent(error)
    }
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The bytes of lower- or upper-case hex `text`; `None` if it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "30".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO), "a past date: at once");
        headers.insert(RETRY_AFTER, "soon".parse().expect("header"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn urls_and_timeouts_are_checked() {
        assert!(checked_url("url", "https://api.example.com/x?y=1").is_ok());
        for bad in ["", "ftp://x", "https://", "https:///x", "https://a b", "https://x#f"] {
            assert!(checked_url("url", bad).is_err(), "{bad:?}");
        }
        assert!(checked_timeout(Duration::from_secs(41)).is_err());
        assert!(checked_timeout(Duration::from_millis(10)).is_err());
        assert!(checked_timeout(DEFAULT_TIMEOUT).is_ok());
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
