//! Invite delivery: the [`Notifier`] trait providers implement, the invite texts, and a
//! recording fake for tests.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::customer::Recipient;
use crate::id::{InviteId, RoomId};
use crate::locale::Locale;
use crate::{BoxError, Error};

/// One invite to deliver: who to, and the rendered texts. The link inside is a secret bearer
/// token, so `Debug` hides the texts and the link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The room the invite is for.
    pub room: RoomId,
    /// The invite.
    pub invite: InviteId,
    /// Where to send it.
    pub recipient: Recipient,
    /// The customer's first name, for providers that personalise further.
    pub first_name: String,
    /// The subject line, for email.
    pub subject: Option<String>,
    /// The message text, with the link in it.
    pub text: String,
    /// The invite link on its own, for providers that build their own body (e.g. HTML email).
    pub link: String,
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("room", &self.room)
            .field("invite", &self.invite)
            .field("recipient", &self.recipient)
            .field("subject", &self.subject)
            .field("text", &"<redacted: holds the invite link>")
            .field("link", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What a provider says when it accepted a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id for the message, to match its delivery reports.
    pub provider_id: Option<String>,
}

/// Why a provider did not accept a message, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Try again later: the provider is busy, rate limiting, or briefly unreachable.
    #[error("transient delivery failure: {source}")]
    Transient {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// Trying again cannot help: an invalid number, a rejected address, bad credentials.
    #[error("permanent delivery failure: {source}")]
    Permanent {
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// The provider may or may not have sent it (a timeout after the request left). A retry may
    /// deliver the message twice; the dispatcher retries, within its attempt limit.
    #[error("ambiguous delivery failure: {source}")]
    Ambiguous {
        /// What went wrong.
        #[source]
        source: BoxError,
    },
}

impl NotifyError {
    /// A [`NotifyError::Transient`] without a provider hint.
    pub fn transient(source: impl Into<BoxError>) -> Self {
        Self::Transient {
            retry_after: None,
            source: source.into(),
        }
    }

    /// A [`NotifyError::Permanent`].
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self::Permanent { source: source.into() }
    }

    /// A [`NotifyError::Ambiguous`].
    pub fn ambiguous(source: impl Into<BoxError>) -> Self {
        Self::Ambiguous { source: source.into() }
    }
}

/// Sends invites through one channel: an SMS provider, an email server, a dev console.
///
/// # Contract
///
/// - [`send`](Notifier::send) makes **one** attempt to hand the notification to the provider and
///   says how it went. It does not retry: the dispatcher owns retries, backoff and the attempt
///   limit, and records every outcome in the room's timeline.
/// - Classify failures honestly: [`NotifyError::Permanent`] stops retries at once,
///   [`NotifyError::Transient`] is retried (after `retry_after` when given),
///   [`NotifyError::Ambiguous`] is retried within the attempt limit even though the message may
///   have gone out.
/// - Never log the notification's text or link: they hold the invite token.
///
/// # Implement your own SMS provider
///
/// ```
/// use async_trait::async_trait;
/// use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
/// use collab_core::Recipient;
///
/// /// Sends through an in-house gateway (here: pretends to).
/// #[derive(Debug)]
/// struct GatewaySms {
///     sender: String,
/// }
///
/// #[async_trait]
/// impl Notifier for GatewaySms {
///     async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
///         let Recipient::Phone(to) = &notification.recipient else {
///             return Err(NotifyError::permanent("an SMS needs a phone number"));
///         };
///         // A real provider posts `notification.text` from `self.sender` to `to` here and maps
///         // the answer: accepted -> Ok, 4xx -> Permanent, 429/5xx -> Transient, timeout -> Ambiguous.
///         let _ = (&self.sender, to);
///         Ok(Receipt { provider_id: Some("msg-1".into()) })
///     }
/// }
/// ```
#[async_trait]
pub trait Notifier: fmt::Debug + Send + Sync + 'static {
    /// Makes one attempt to deliver `notification`.
    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError>;

    /// A short, fixed name of the provider behind it (`twilio`, `smtp`…), for the delivery
    /// metrics' `provider` label: a constant, never configuration or personal data. By default
    /// `custom`.
    fn provider(&self) -> &'static str {
        "custom"
    }
}

macro_rules! forward_notifier {
    ($wrapper:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: Notifier + ?Sized> Notifier for $wrapper {
            async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
                (**self).send(notification).await
            }

            fn provider(&self) -> &'static str {
                (**self).provider()
            }
        }
    };
}

forward_notifier!(Arc<T>);
forward_notifier!(Box<T>);

/// A fake [`Notifier`] that records what it is asked to send and fails when told to.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use collab_core::notify::{NotifyError, Notifier, RecordingNotifier};
///
/// let notifier = RecordingNotifier::new();
/// notifier.fail_next(NotifyError::transient("provider busy"));
/// assert_eq!(notifier.sent().len(), 0);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    state: Mutex<Recording>,
}

#[derive(Debug, Default)]
struct Recording {
    attempts: usize,
    sent: Vec<Notification>,
    failures: VecDeque<NotifyError>,
}

impl RecordingNotifier {
    /// A notifier that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the next call fail with `error` (calls queue up in order).
    pub fn fail_next(&self, error: NotifyError) {
        self.lock().failures.push_back(error);
    }

    /// The notifications accepted so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        self.lock().sent.clone()
    }

    /// How many times `send` was called, failures included.
    pub fn attempts(&self) -> usize {
        self.lock().attempts
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn provider(&self) -> &'static str {
        "recording"
    }

    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let mut state = self.lock();
        state.attempts += 1;
        if let Some(error) = state.failures.pop_front() {
            return Err(error);
        }
        state.sent.push(notification.clone());
        Ok(Receipt {
            provider_id: Some(format!("recorded-{}", state.sent.len())),
        })
    }
}

/// The texts of invites. `{link}` is replaced by the invite link (and the link is appended when
/// a template lacks it); `{first_name}` by the customer's first name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteTemplates {
    sms: String,
    email_subject: String,
    email_body: String,
}

impl Default for InviteTemplates {
    fn default() -> Self {
        Self {
            sms: "Hi {first_name}, join your collaboration room: {link}".to_owned(),
            email_subject: "Your collaboration room".to_owned(),
            email_body: "Hello {first_name},\n\nPlease join your collaboration room:\n{link}\n".to_owned(),
        }
    }
}

/// The longest template accepted, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 10_000;

fn checked_template(field: &'static str, template: String) -> Result<String, Error> {
    if template.trim().is_empty() || template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(Error::invalid(field, "must be 1 to 10000 characters"));
    }
    Ok(template)
}

impl InviteTemplates {
    /// The texts the library ships for `locale`'s language: English (the
    /// [default](InviteTemplates::default)), Spanish (`es`) and Hebrew (`he`); `None` for
    /// others. The Spanish and Hebrew SMS need characters outside GSM-7, so each SMS segment
    /// holds 70 characters (see [`sms_segments`]).
    ///
    /// ```
    /// use collab_core::Locale;
    /// use collab_core::notify::InviteTemplates;
    ///
    /// let spanish = InviteTemplates::built_in(&Locale::parse("es-MX")?).expect("shipped");
    /// assert_eq!(spanish.email_subject("Ana"), "Su sala de colaboración");
    /// assert!(InviteTemplates::built_in(&Locale::parse("fr")?).is_none());
    /// # Ok::<(), collab_core::Error>(())
    /// ```
    pub fn built_in(locale: &Locale) -> Option<Self> {
        let (sms, email_subject, email_body) = match locale.language() {
            "en" => return Some(Self::default()),
            "es" => (
                "Hola {first_name}, únase a su sala de colaboración: {link}",
                "Su sala de colaboración",
                "Hola, {first_name}:\n\nLe invitamos a unirse a su sala de colaboración:\n{link}\n",
            ),
            "he" => (
                "שלום {first_name}, הצטרפו לחדר שיתוף הפעולה שלכם: {link}",
                "חדר שיתוף הפעולה שלכם",
                "שלום {first_name},\n\nהצטרפו בבקשה לחדר שיתוף הפעולה שלכם:\n{link}\n",
            ),
            _ => return None,
        };
        Some(Self {
            sms: sms.to_owned(),
            email_subject: email_subject.to_owned(),
            email_body: email_body.to_owned(),
        })
    }

    /// The texts of reminders ([`crate::alert`]) the library ships for `locale`'s language:
    /// English for languages it has no text for. The same placeholders as invites.
    ///
    /// ```
    /// use collab_core::Locale;
    /// use collab_core::notify::InviteTemplates;
    ///
    /// let reminder = InviteTemplates::reminder(&Locale::parse("en")?);
    /// assert_eq!(
    ///     reminder.sms_text("Grace", "https://x/join/t"),
    ///     "Hi Grace, you have a new message in your collaboration room: https://x/join/t"
    /// );
    /// # Ok::<(), collab_core::Error>(())
    /// ```
    pub fn reminder(locale: &Locale) -> Self {
        let (sms, email_subject, email_body) = match locale.language() {
            "es" => (
                "Hola {first_name}, tiene un mensaje nuevo en su sala de colaboración: {link}",
                "Mensaje nuevo en su sala de colaboración",
                "Hola, {first_name}:\n\nTiene un mensaje nuevo en su sala de colaboración:\n{link}\n",
            ),
            "he" => (
                "שלום {first_name}, יש לכם הודעה חדשה בחדר שיתוף הפעולה: {link}",
                "הודעה חדשה בחדר שיתוף הפעולה שלכם",
                "שלום {first_name},\n\nיש לכם הודעה חדשה בחדר שיתוף הפעולה:\n{link}\n",
            ),
            _ => (
                "Hi {first_name}, you have a new message in your collaboration room: {link}",
                "New message in your collaboration room",
                "Hello {first_name},\n\nYou have a new message in your collaboration room:\n{link}\n",
            ),
        };
        Self {
            sms: sms.to_owned(),
            email_subject: email_subject.to_owned(),
            email_body: email_body.to_owned(),
        }
    }

    /// The SMS text.
    pub fn with_sms(mut self, template: impl Into<String>) -> Result<Self, Error> {
        self.sms = checked_template("sms_template", template.into())?;
        Ok(self)
    }

    /// The email subject (`{link}` is not appended here).
    pub fn with_email_subject(mut self, template: impl Into<String>) -> Result<Self, Error> {
        let subject = checked_template("email_subject_template", template.into())?;
        if subject.contains(['\r', '\n']) {
            return Err(Error::invalid("email_subject_template", "must be one line"));
        }
        self.email_subject = subject;
        Ok(self)
    }

    /// The email body.
    pub fn with_email_body(mut self, template: impl Into<String>) -> Result<Self, Error> {
        self.email_body = checked_template("email_body_template", template.into())?;
        Ok(self)
    }

    /// The SMS text for `first_name` and `link`.
    pub fn sms_text(&self, first_name: &str, link: &str) -> String {
        render(&self.sms, first_name, link, true)
    }

    /// The email subject for `first_name`.
    pub fn email_subject(&self, first_name: &str) -> String {
        render(&self.email_subject, first_name, "", false)
    }

    /// The email body for `first_name` and `link`.
    pub fn email_text(&self, first_name: &str, link: &str) -> String {
        render(&self.email_body, first_name, link, true)
    }
}

fn render(template: &str, first_name: &str, link: &str, needs_link: bool) -> String {
    // One pass from the left: what replaces a placeholder is never read again, so a name or a
    // link that spells a placeholder stays text.
    let mut text = String::with_capacity(template.len() + first_name.len() + link.len());
    let mut has_link = false;
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("{link}") {
            text.push_str(link);
            has_link = true;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{first_name}") {
            text.push_str(first_name);
            rest = after;
        } else {
            text.push('{');
            rest = &rest[1..];
        }
    }
    text.push_str(rest);
    if needs_link && !has_link {
        if !text.ends_with(char::is_whitespace) {
            text.push(' ');
        }
        text.push_str(link);
    }
    text
}

/// How many SMS segments `text` takes: 160 GSM-7 characters in one segment (153 per segment
/// when split), or 70 UCS-2 characters (67 when split) as soon as one character is outside
/// GSM-7.
pub fn sms_segments(text: &str) -> usize {
    const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";
    let mut gsm_units = 0usize;
    let mut ucs2_units = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        ucs2_units += c.len_utf16();
        if GSM7.contains(c) {
            gsm_units += 1;
        } else if GSM7_EXTENDED.contains(c) {
            gsm_units += 2;
        } else {
            gsm = false;
        }
    }
    let (units, single, multi) = if gsm {
        (gsm_units, 160, 153)
    } else {
        (ucs2_units, 70, 67)
    };
    if units <= single { 1 } else { units.div_ceil(multi) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_and_append_the_link() {
        let t = InviteTemplates::default();
        assert_eq!(
            t.sms_text("Grace", "https://x/join/t"),
            "Hi Grace, join your collaboration room: https://x/join/t"
        );
        let t = t.with_sms("Hello {first_name}!").expect("valid");
        assert_eq!(t.sms_text("Grace", "https://x/join/t"), "Hello Grace! https://x/join/t");
        assert_eq!(
            t.sms_text("{link}", "L"),
            "Hello {link}! L",
            "a name is never a placeholder"
        );
        assert!(InviteTemplates::default().with_email_subject("a\nb").is_err());
        assert!(InviteTemplates::default().with_sms("  ").is_err());
    }

    #[test]
    fn only_the_placeholders_are_replaced() {
        // Found by fuzzing (fuzz/seeds/templates/crash-nul-marker): `{link}` used to be marked
        // with a NUL-delimited word first, so a template or a name holding that word got the link.
        let t = InviteTemplates::default()
            .with_sms("a \u{0}link\u{0} b {link} {")
            .expect("valid");
        assert_eq!(t.sms_text("Ada", "L"), "a \u{0}link\u{0} b L {");
        assert_eq!(
            InviteTemplates::default().sms_text("\u{0}link\u{0}", "L"),
            "Hi \u{0}link\u{0}, join your collaboration room: L"
        );
    }

    #[test]
    fn built_in_templates_are_valid_and_fill_in() {
        for tag in ["en", "es", "he"] {
            let locale = Locale::parse(tag).expect("a tag");
            let t = InviteTemplates::built_in(&locale).expect("shipped");
            // What the setters accept: a built-in set passes its own checks.
            let checked = InviteTemplates::default()
                .with_sms(t.sms.clone())
                .and_then(|c| c.with_email_subject(t.email_subject.clone()))
                .and_then(|c| c.with_email_body(t.email_body.clone()))
                .expect("valid templates");
            assert_eq!(checked, t, "{tag}");
            let text = t.sms_text("Ana", "https://x/join/t");
            assert!(
                text.contains("Ana") && text.ends_with("https://x/join/t"),
                "{tag}: {text}"
            );
            assert!(!t.email_text("Ana", "L").contains('{'), "{tag}");
        }
        let es = InviteTemplates::built_in(&Locale::parse("es").expect("a tag")).expect("shipped");
        assert!(es.sms_text("Ana", "L").starts_with("Hola Ana"));
        assert_ne!(es, InviteTemplates::default());
        assert!(InviteTemplates::built_in(&Locale::parse("de").expect("a tag")).is_none());
    }

    #[test]
    fn sms_segments_follow_gsm7_and_ucs2() {
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
        assert_eq!(sms_segments(&"€".repeat(80)), 1, "extended characters count twice");
        assert_eq!(sms_segments(&"€".repeat(81)), 2);
        assert_eq!(sms_segments(&"ł".repeat(70)), 1, "outside GSM-7: UCS-2");
        assert_eq!(sms_segments(&"ł".repeat(71)), 2);
    }

    #[test]
    fn debug_hides_the_link() {
        let n = Notification {
            room: RoomId::from_u128(1),
            invite: InviteId::from_u128(2),
            recipient: Recipient::Email(crate::EmailAddress::parse("a@example.com").expect("valid")),
            first_name: "Ada".into(),
            subject: None,
            text: "join https://x/join/secret-token".into(),
            link: "https://x/join/secret-token".into(),
        };
        assert!(!format!("{n:?}").contains("secret-token"));
    }
}
