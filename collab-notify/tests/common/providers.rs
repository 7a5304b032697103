//! The HTTP SMS providers against wiremock servers: their settings pointed at a server, the
//! server's answers, the requests read back, and the conformance kit's backend.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::notify::Notifier;
use collab_notify::gateway::HttpSmsConfig;
use collab_notify::testing::{Answer, Backend, Received};
use collab_notify::twilio::{TwilioAuth, TwilioConfig, TwilioSender, parse_form};
use collab_notify::vonage::VonageConfig;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-auth-token-secret";
pub const TWILIO_FROM: &str = "+15005550006";
/// Where Twilio takes messages for `TWILIO_SID`.
pub const TWILIO_MESSAGES: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

pub const VONAGE_KEY: &str = "abcd1234";
pub const VONAGE_SECRET: &str = "vonage-api-secret";
pub const VONAGE_FROM: &str = "AcmeRooms";
/// Where Vonage takes messages.
pub const VONAGE_MESSAGES: &str = "/sms/json";

pub const GATEWAY_SECRET: &str = "gateway-shared-secret-0123456789";
/// Where the gateway's settings post, below the server's address.
pub const GATEWAY_MESSAGES: &str = "/sms/send";

/// `$config` with the address, callback and timeout of `$providers`: Twilio's and Vonage's
/// settings have the same setters, but no trait in common.
macro_rules! pointed {
    ($providers:expr, $config:expr) => {{
        let providers: &Providers = $providers;
        let mut config = $config.with_base_url(&providers.base_url).unwrap();
        if let Some(url) = &providers.status_callback {
            config = config.with_status_callback(url).unwrap();
        }
        if let Some(timeout) = providers.timeout {
            config = config.with_timeout(timeout).unwrap();
        }
        config
    }};
}

/// The settings of each HTTP provider, calling one address with the test credentials above:
/// the one place the tests build provider settings.
#[derive(Clone, Debug)]
pub struct Providers {
    base_url: String,
    status_callback: Option<String>,
    timeout: Option<Duration>,
}

impl Providers {
    /// Calling `server`.
    pub fn at(server: &MockServer) -> Self {
        Self::at_url(&server.uri())
    }

    /// Calling `base_url` (a port nothing listens on, a TLS server…).
    pub fn at_url(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            status_callback: None,
            timeout: None,
        }
    }

    /// With delivery reports asked for at `url` (Twilio and Vonage).
    pub fn status_callback(self, url: &str) -> Self {
        Self {
            status_callback: Some(url.to_owned()),
            ..self
        }
    }

    /// With this whole-call timeout instead of the default.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }

    /// Twilio with the account's auth token, from `TWILIO_FROM`.
    pub fn twilio(&self) -> TwilioConfig {
        self.twilio_as(
            TwilioAuth::AuthToken(TWILIO_TOKEN.into()),
            TwilioSender::From(TWILIO_FROM.into()),
        )
    }

    /// Twilio for `TWILIO_SID` with `auth`, from `sender`.
    pub fn twilio_as(&self, auth: TwilioAuth, sender: TwilioSender) -> TwilioConfig {
        pointed!(self, TwilioConfig::new(TWILIO_SID, auth, sender).unwrap())
    }

    /// Vonage with `VONAGE_KEY` and `VONAGE_SECRET`, from `VONAGE_FROM`.
    pub fn vonage(&self) -> VonageConfig {
        pointed!(
            self,
            VonageConfig::new(VONAGE_KEY, VONAGE_SECRET.into(), VONAGE_FROM).unwrap()
        )
    }

    /// The gateway, posting to `GATEWAY_MESSAGES` signed with `GATEWAY_SECRET`.
    pub fn gateway(&self) -> HttpSmsConfig {
        assert!(self.status_callback.is_none(), "the gateway takes no status callback");
        let url = format!("{}{GATEWAY_MESSAGES}", self.base_url);
        let config = HttpSmsConfig::new(&url, GATEWAY_SECRET.into()).unwrap();
        match self.timeout {
            Some(timeout) => config.with_timeout(timeout).unwrap(),
            None => config,
        }
    }
}

/// Answers every POST to `at` with `answer`, after any answer of [`answer_once`].
pub async fn answer(server: &MockServer, at: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(answer)
        .with_priority(10)
        .mount(server)
        .await;
}

/// Answers one POST to `at` with `answer`. Of the answers waiting, the lowest `priority` goes
/// first, then the first mounted.
pub async fn answer_once(server: &MockServer, at: &str, answer: ResponseTemplate, priority: u8) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(answer)
        .up_to_n_times(1)
        .with_priority(priority)
        .mount(server)
        .await;
}

/// A new server answering every POST to `at` with `answer`.
pub async fn server_answering(at: &str, answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    self::answer(&server, at, answer).await;
    server
}

/// The requests `server` got, in order.
pub async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("the server records requests")
}

/// The fields of a form-encoded request, in order.
pub fn form(request: &Request) -> Vec<(String, String)> {
    parse_form(&request.body)
}

/// The first value of `name` in `form`.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The conformance kit's backend for an HTTP provider: a server taking messages at `at`, which
/// accepts unless scripted otherwise.
pub struct MockBackend {
    pub server: MockServer,
    at: &'static str,
    provider: fn(&MockServer) -> Arc<dyn Notifier>,
    reply: fn(Answer) -> ResponseTemplate,
    read: fn(&Request) -> Received,
}

impl MockBackend {
    /// `provider` calling a new server that answers each send as `reply` says (`Answer::Accept`
    /// when nothing is scripted), read back by `read`.
    pub async fn start(
        at: &'static str,
        provider: fn(&MockServer) -> Arc<dyn Notifier>,
        reply: fn(Answer) -> ResponseTemplate,
        read: fn(&Request) -> Received,
    ) -> Self {
        Self {
            server: server_answering(at, reply(Answer::Accept)).await,
            at,
            provider,
            reply,
            read,
        }
    }
}

#[async_trait]
impl Backend for MockBackend {
    fn provider(&self) -> Arc<dyn Notifier> {
        (self.provider)(&self.server)
    }

    async fn script(&self, answers: &[Answer]) {
        for answer in answers {
            answer_once(&self.server, self.at, (self.reply)(*answer), 1).await;
        }
    }

    async fn received(&self) -> Vec<Received> {
        requests(&self.server).await.iter().map(self.read).collect()
    }
}
