//! Webhooks out, signed the Standard Webhooks way (<https://www.standardwebhooks.com>):
//! [`HttpWebhookSender`] posts the core's messages ([`collab_core::webhook`]) and
//! [`Verifier`] checks them on the receiving side.
//!
//! Every request carries `webhook-id` (the same on every retry of a message: deduplicate on
//! it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`: `v1,` and the
//! base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the endpoint's secret, one per secret
//! (space-separated) while a secret is being rotated. Receivers may use any Standard Webhooks
//! library, or [`Verifier`]:
//!
//! ```
//! use collab_core::webhook::WebhookSecret;
//! use collab_notify::webhook::{Verifier, sign};
//!
//! let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
//! let body = br#"{"type":"message.posted"}"#;
//! let signature = sign(&secret, "msg_1", 1_795_857_000, body);
//! // In the receiver, from the request's three headers and its raw body:
//! let verifier = Verifier::new(secret);
//! verifier.verify_at("msg_1", "1795857000", &signature, body, 1_795_857_030)?;
//! assert!(verifier.verify_at("msg_1", "1795857000", &signature, b"{}", 1_795_857_030).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use collab_core::Error;
use collab_core::notify::NotifyError;
use collab_core::webhook::{WebhookEndpoint, WebhookMessage, WebhookSecret, WebhookSender};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::ProviderError;
use crate::http;

const PROVIDER: &str = "webhook";

/// The signature of one message under one secret: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        BASE64.encode(mac(secret, id, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Hmac<sha2::Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.expose_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a received webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// `webhook-timestamp` is not a number of seconds.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance: a replay, or a wrong clock.
    #[error("webhook-timestamp is too far from now")]
    OutsideTolerance,
    /// No `v1` signature matches any secret.
    #[error("no webhook-signature matches")]
    NoMatch,
}

/// Checks received webhooks: the signature under any of its secrets, and the timestamp within a
/// tolerance (5 minutes by default) of the receiver's clock. Hides its secrets from `Debug`.
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
}

impl Verifier {
    /// A verifier for `secret`.
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secrets: vec![secret],
            tolerance: Duration::from_secs(5 * 60),
        }
    }

    /// Accepts signatures under `secret` as well (while a sender rotates its secret).
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// How far the timestamp may be from the receiver's clock.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Checks a webhook against the system clock: the `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` headers, and the raw body as received.
    pub fn verify(&self, id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> Result<(), VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(id, timestamp, signatures, body, now)
    }

    /// [`verify`](Self::verify) at `now` (Unix seconds).
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let at: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if at.abs_diff(now) > tolerance.unsigned_abs() {
            return Err(VerifyError::OutsideTolerance);
        }
        let given: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| BASE64.decode(s).ok())
            .collect();
        let matches = self.secrets.iter().any(|secret| {
            given
                .iter()
                .any(|tag| mac(secret, id, at, body).verify_slice(tag).is_ok())
        });
        if matches { Ok(()) } else { Err(VerifyError::NoMatch) }
    }
}

/// Posts webhooks over HTTPS, signed, with a timeout, following no redirect and through no
/// proxy. By default it reaches only `https` URLs on public addresses: a tenant's endpoint must
/// not become a way into the host's own network (SSRF). The name is resolved by the sender and
/// every address checked, so a name that resolves to a private address is refused too.
#[derive(Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    reach: Reach,
}

impl fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("reach", &self.reach)
            .finish_non_exhaustive()
    }
}

/// Which URLs a [`HttpWebhookSender`] may post to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Reach {
    http: bool,
    private: bool,
}

/// Resolves names and drops the addresses the sender may not reach.
struct CheckedResolver {
    reach: Reach,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| reach.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no address a webhook may reach").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl Reach {
    fn allows(self, ip: IpAddr) -> bool {
        self.private || is_public(ip)
    }
}

/// Whether `ip` is an address of the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast, broadcast or reserved; IPv4-mapped IPv6 addresses
/// are judged as the IPv4 address they carry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || first == 0x0064)
        }
    }
}

impl HttpWebhookSender {
    /// A sender reaching public `https` URLs, each attempt bounded by `timeout` (at most
    /// [`http::MAX_TIMEOUT`]).
    pub fn new(timeout: Duration) -> Result<Self, Error> {
        Self::with_reach(timeout, Reach::default())
    }

    /// A sender that also reaches plain `http` URLs and private and loopback addresses: for
    /// tests, and for a host whose endpoints live on its own network on purpose.
    pub fn allowing_private_networks(timeout: Duration) -> Result<Self, Error> {
        Self::with_reach(
            timeout,
            Reach {
                http: true,
                private: true,
            },
        )
    }

    fn with_reach(timeout: Duration, reach: Reach) -> Result<Self, Error> {
        let timeout = http::checked_timeout(timeout)?;
        let client = http::client_builder(timeout)?
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver { reach }))
            .build()
            .map_err(|e| Error::backend("HTTP client set-up", e))?;
        Ok(Self { client, reach })
    }

    /// Refuses a URL this sender may not post to, before any connection.
    fn check_url(&self, url: &str) -> Result<reqwest::Url, NotifyError> {
        let refuse = |why: &str| NotifyError::permanent(ProviderError::new(PROVIDER, why));
        let parsed = reqwest::Url::parse(url).map_err(|_| refuse("the endpoint's URL does not parse"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.reach.http => {}
            _ => return Err(refuse("the endpoint's URL is not https")),
        }
        // A literal address is not resolved: check it here.
        let host = parsed
            .host_str()
            .ok_or_else(|| refuse("the endpoint's URL has no host"))?;
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if literal.is_some_and(|ip| !self.reach.allows(ip)) {
            return Err(refuse("the endpoint's address is private or loopback"));
        }
        Ok(parsed)
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, endpoint: &WebhookEndpoint, message: &WebhookMessage) -> Result<(), NotifyError> {
        let url = self.check_url(endpoint.url())?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let body = message.body.as_bytes();
        let signatures: Vec<String> = endpoint
            .secrets()
            .iter()
            .map(|secret| sign(secret, &message.id, timestamp, body))
            .collect();
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(message.body.clone());
        let reply = http::send(PROVIDER, request).await?;
        if reply.status.is_success() {
            return Ok(());
        }
        let error = ProviderError::new(PROVIDER, "the endpoint refused the message").with_status(reply.status.as_u16());
        // 410 Gone: the receiver says the endpoint is no more. Any other answer may change.
        if reply.status == StatusCode::GONE {
            return Err(NotifyError::permanent(error));
        }
        Err(NotifyError::Transient {
            retry_after: reply.retry_after,
            source: error.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The vector of the Standard Webhooks reference libraries.
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("secret");
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let signature = sign(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body);
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        let verifier = Verifier::new(secret);
        let at = 1_649_367_553;
        let check = |id: &str, now: i64| verifier.verify_at(id, "1649367553", &signature, body, now);
        assert_eq!(check("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", at + 60), Ok(()));
        assert_eq!(check("msg_other", at), Err(VerifyError::NoMatch));
        assert_eq!(
            check("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", at + 301),
            Err(VerifyError::OutsideTolerance)
        );
        assert_eq!(
            verifier.verify_at("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "soon", &signature, body, at),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn either_of_two_secrets_verifies_while_rotating() {
        let old = WebhookSecret::generate().expect("random");
        let new = WebhookSecret::generate().expect("random");
        let both = format!(
            "{} {}",
            sign(&old, "msg_1", 100, b"{}"),
            sign(&new, "msg_1", 100, b"{}")
        );
        assert_eq!(
            Verifier::new(new.clone()).verify_at("msg_1", "100", &both, b"{}", 100),
            Ok(())
        );
        assert_eq!(Verifier::new(old).verify_at("msg_1", "100", &both, b"{}", 100), Ok(()));
        let only_new = sign(&new, "msg_1", 100, b"{}");
        let stranger = WebhookSecret::generate().expect("random");
        assert_eq!(
            Verifier::new(stranger).verify_at("msg_1", "100", &only_new, b"{}", 100),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }
}
