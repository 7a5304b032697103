//! The conformance kit for SMS providers: checks that a [`Notifier`] keeps its contract when the
//! service drives it.
//!
//! **Not a stable API**: checks are added as the contract is sharpened.
//!
//! A check gets the provider under test and a [`Backend`]: a handle on whatever the provider
//! talks to (an in-process HTTP server speaking its API, a fake), which the check tells how to
//! answer and asks what it got. [`sms_provider_conformance!`](crate::sms_provider_conformance)
//! turns the list into one `#[tokio::test]` per check. Your crate needs `tokio` (features
//! `macros`, `rt`) as a dev-dependency.
//!
//! ```
//! // The kit on the core's recording fake, the reference every provider is held to.
//! use collab_notify::testing::RecordingBackend;
//!
//! async fn reference() -> RecordingBackend {
//!     RecordingBackend::new()
//! }
//!
//! collab_notify::sms_provider_conformance!(reference);
//! # fn main() {}
//! ```

// A test kit reports a broken contract by panicking, like `assert!`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::notify::{Notification, Notifier, NotifyError, RecordingNotifier};
use collab_core::rooms::{InviteRequest, Rooms, TimelineQuery};
use collab_core::time::ManualClock;
use collab_core::*;

/// How the backend answers one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Takes the message.
    Accept,
    /// Busy: a rate limit or a server error, worth another try (HTTP 429/503, SMTP 4xx…).
    Busy,
    /// Refuses for good: the number is invalid (HTTP 400 with the provider's code…).
    InvalidNumber,
}

/// A message the backend received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The number, as the provider sent it (with or without `+`).
    pub to: String,
    /// The text.
    pub text: String,
}

/// The provider under test and its backend.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The provider, talking to this backend.
    fn provider(&self) -> Arc<dyn Notifier>;

    /// Makes the next sends get `answers`, in order; after them, every send is accepted.
    async fn script(&self, answers: &[Answer]);

    /// Every send the backend got, accepted or not, in order.
    async fn received(&self) -> Vec<Received>;
}

/// The core's [`RecordingNotifier`] as a backend: the reference the kit is checked against.
/// Clones share the recording.
#[derive(Clone, Debug, Default)]
pub struct RecordingBackend {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    notifier: RecordingNotifier,
    seen: std::sync::Mutex<Vec<Received>>,
}

impl RecordingBackend {
    /// A fresh fake.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Records every attempt, then lets the recording fake answer.
#[derive(Debug)]
struct Seeing(Arc<Shared>);

#[async_trait]
impl Notifier for Seeing {
    async fn send(&self, notification: &Notification) -> Result<collab_core::notify::Receipt, NotifyError> {
        let Recipient::Phone(to) = &notification.recipient else {
            return Err(NotifyError::permanent("an SMS needs a phone number"));
        };
        self.0.seen.lock().unwrap().push(Received {
            to: to.to_string(),
            text: notification.text.clone(),
        });
        self.0.notifier.send(notification).await
    }
}

#[async_trait]
impl Backend for RecordingBackend {
    fn provider(&self) -> Arc<dyn Notifier> {
        Arc::new(Seeing(self.shared.clone()))
    }

    async fn script(&self, answers: &[Answer]) {
        for answer in answers {
            match answer {
                Answer::Accept => break,
                Answer::Busy => self.shared.notifier.fail_next(NotifyError::Transient {
                    retry_after: Some(Duration::from_secs(30)),
                    source: "busy".into(),
                }),
                Answer::InvalidNumber => self.shared.notifier.fail_next(NotifyError::permanent("invalid number")),
            }
        }
    }

    async fn received(&self) -> Vec<Received> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// Emits one `#[tokio::test]` per [`sms_provider`] check, each on a backend from `$make().await`.
#[macro_export]
macro_rules! sms_provider_conformance {
    ($make:path) => {
        $crate::__sms_conformance_tests!(
            $make,
            [
                an_invite_reaches_the_number_with_a_working_link,
                an_email_recipient_is_refused_without_a_call,
                busy_twice_then_sent_exactly_once,
                an_invalid_number_fails_the_invite_with_the_reason,
                answers_classify_as_the_contract_says,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sms_conformance_tests {
    ($make:path, [$($check:ident),* $(,)?]) => {
        $(
            #[tokio::test]
            async fn $check() {
                let backend = $make().await;
                $crate::testing::sms_provider::$check(&backend).await;
            }
        )*
    };
}

/// Checks for SMS providers.
pub mod sms_provider {
    use super::*;

    /// A fixed start for the kit's clocks: 2026-11-28.
    pub const T0: Timestamp = Timestamp::from_unix_millis(1_795_857_000_000);

    /// The number the kit invites.
    pub const NUMBER: &str = "+447911123456";

    /// A service on the memory stores with `provider` for SMS and a manual clock.
    pub fn service(provider: Arc<dyn Notifier>) -> (Rooms, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        let rooms = Rooms::builder().sms(provider).clock(clock.clone()).build();
        (rooms, clock)
    }

    /// The agent the kit acts as.
    pub fn agent() -> Actor {
        Actor::Agent {
            tenant: TenantId::new("conformance").unwrap(),
            agent: AgentId::new("agent").unwrap(),
        }
    }

    async fn invite(rooms: &Rooms) -> (RoomId, InviteId) {
        let room = rooms.create_room(&agent()).await.unwrap().room;
        let issued = rooms
            .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", NUMBER))
            .await
            .unwrap();
        (room, issued.invite)
    }

    /// The delivery news recorded for `invite`, in order.
    pub async fn deliveries(rooms: &Rooms, room: RoomId, invite: InviteId) -> Vec<DeliveryStatus> {
        rooms
            .timeline(
                &agent(),
                room,
                TimelineQuery::After {
                    seq: Seq::ZERO,
                    limit: 1_000,
                },
            )
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.data {
                EventData::InviteDelivery { invite: i, status } if i == invite => Some(status),
                _ => None,
            })
            .collect()
    }

    fn digits(number: &str) -> String {
        number.chars().filter(char::is_ascii_digit).collect()
    }

    /// One invite, one send: to the invited number, with a text holding a link that lets the
    /// customer in; the invite is recorded as sent with the provider's id.
    pub async fn an_invite_reaches_the_number_with_a_working_link(backend: &dyn Backend) {
        let (rooms, _) = service(backend.provider());
        let (room, invite) = invite(&rooms).await;
        let report = rooms.dispatch_due().await.unwrap();
        assert_eq!(report.sent, 1, "{report:?}");
        let received = backend.received().await;
        assert_eq!(received.len(), 1, "one invite, one send: {received:?}");
        assert_eq!(digits(&received[0].to), digits(NUMBER));
        let token = received[0]
            .text
            .split_whitespace()
            .find_map(|word| word.split("/join/").nth(1))
            .expect("the text holds the invite link");
        rooms.join(token).await.expect("the link lets the customer in");
        let news = deliveries(&rooms, room, invite).await;
        assert!(
            matches!(&news[..], [DeliveryStatus::Sent { provider_id: Some(id) }] if !id.is_empty()),
            "sent, with the provider's id: {news:?}"
        );
    }

    /// An SMS provider given an email address refuses it for good, without calling anyone.
    pub async fn an_email_recipient_is_refused_without_a_call(backend: &dyn Backend) {
        let notification = Notification {
            room: RoomId::from_u128(1),
            invite: InviteId::from_u128(2),
            recipient: Recipient::Email(EmailAddress::parse("grace@example.com").unwrap()),
            first_name: "Grace".into(),
            subject: None,
            text: "join https://rooms.example.com/join/abc".into(),
            link: "https://rooms.example.com/join/abc".into(),
        };
        let result = backend.provider().send(&notification).await;
        assert!(matches!(result, Err(NotifyError::Permanent { .. })), "{result:?}");
        assert!(backend.received().await.is_empty(), "no call was made");
    }

    /// Busy twice, then accepted: three sends, one delivered message, and the timeline records
    /// exactly one "sent".
    pub async fn busy_twice_then_sent_exactly_once(backend: &dyn Backend) {
        backend.script(&[Answer::Busy, Answer::Busy]).await;
        let (rooms, clock) = service(backend.provider());
        let (room, invite) = invite(&rooms).await;
        let mut sent = 0;
        for _ in 0..3 {
            let report = rooms.dispatch_due().await.unwrap();
            sent += report.sent;
            // Past any backoff and retry-after.
            clock.advance(Duration::from_secs(2 * 3600));
        }
        assert_eq!(sent, 1);
        assert_eq!(backend.received().await.len(), 3, "two busy answers, then the send");
        let news = deliveries(&rooms, room, invite).await;
        assert!(matches!(&news[..], [DeliveryStatus::Sent { .. }]), "{news:?}");
        assert_eq!(rooms.dispatch_due().await.unwrap().claimed, 0, "nothing left to send");
        let state = rooms.room(&agent(), room).await.unwrap();
        assert_eq!(state.invite(invite).unwrap().status, InviteStatus::Sent);
    }

    /// An invalid number fails the invite at once, for good, with the provider's reason, and is
    /// not tried again.
    pub async fn an_invalid_number_fails_the_invite_with_the_reason(backend: &dyn Backend) {
        backend.script(&[Answer::InvalidNumber]).await;
        let (rooms, clock) = service(backend.provider());
        let (room, invite) = invite(&rooms).await;
        assert_eq!(rooms.dispatch_due().await.unwrap().failed, 1);
        let news = deliveries(&rooms, room, invite).await;
        let [
            DeliveryStatus::Failed {
                permanent: true,
                reason,
            },
        ] = &news[..]
        else {
            panic!("one permanent failure: {news:?}");
        };
        assert!(!reason.is_empty());
        assert!(
            !reason.contains("/join/") || reason.contains("<token>"),
            "no token in {reason}"
        );
        clock.advance(Duration::from_secs(86_400));
        assert_eq!(rooms.dispatch_due().await.unwrap().claimed, 0, "never retried");
        assert_eq!(backend.received().await.len(), 1);
    }

    /// Straight from the provider: accepted → a receipt, busy → transient, an invalid number →
    /// permanent.
    pub async fn answers_classify_as_the_contract_says(backend: &dyn Backend) {
        backend
            .script(&[Answer::Busy, Answer::InvalidNumber, Answer::Accept])
            .await;
        let provider = backend.provider();
        let notification = Notification {
            room: RoomId::from_u128(1),
            invite: InviteId::from_u128(2),
            recipient: Recipient::Phone(PhoneNumber::parse(NUMBER).unwrap()),
            first_name: "Grace".into(),
            subject: None,
            text: "Hi Grace, join https://rooms.example.com/join/abc".into(),
            link: "https://rooms.example.com/join/abc".into(),
        };
        let busy = provider.send(&notification).await;
        assert!(matches!(busy, Err(NotifyError::Transient { .. })), "busy: {busy:?}");
        let invalid = provider.send(&notification).await;
        assert!(
            matches!(invalid, Err(NotifyError::Permanent { .. })),
            "invalid: {invalid:?}"
        );
        let accepted = provider.send(&notification).await;
        assert!(accepted.is_ok(), "accepted: {accepted:?}");
        let received = backend.received().await;
        assert_eq!(received.len(), 3);
        assert!(
            received.iter().all(|r| r.text == notification.text),
            "the text is sent as is"
        );
    }
}
