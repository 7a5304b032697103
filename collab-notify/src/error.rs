//! The source carried by every [`NotifyError`](collab_core::notify::NotifyError) of this crate.

use std::fmt;

use collab_core::BoxError;

/// What a provider answered, or how the exchange with it failed: the source of the
/// [`NotifyError`](collab_core::notify::NotifyError)s this crate returns. Its text becomes the
/// reason recorded on a failed invite, so it names the provider, its status and its code.
///
/// Custom providers may use it too:
///
/// ```
/// use collab_core::notify::NotifyError;
/// use collab_notify::ProviderError;
///
/// let refused = ProviderError::new("acme-sms", "unknown subscriber").with_status(400).with_code("E17");
/// assert_eq!(refused.to_string(), "acme-sms: unknown subscriber (status 400, code E17)");
/// let error = NotifyError::permanent(refused);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ProviderError {
    /// The provider: `"twilio"`, `"vonage"`, `"http-sms"`, `"smtp"`…
    pub provider: &'static str,
    /// The HTTP status or SMTP reply code, when there was an answer.
    pub status: Option<u16>,
    /// The provider's own error code (Twilio's `21211`, Vonage's status `"3"`…).
    pub code: Option<String>,
    /// The provider's message, or what went wrong.
    pub message: String,
    source: Option<BoxError>,
}

/// The longest provider message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

impl ProviderError {
    /// An error of `provider` saying `message` (cut to 500 characters).
    pub fn new(provider: &'static str, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        Self {
            provider,
            status: None,
            code: None,
            message,
            source: None,
        }
    }

    /// An error of `provider` whose `message` comes from the provider's answer, with each of
    /// `secrets` (the credentials the request carried, in every form it carried them) blanked
    /// out before the message is cut: an answer may quote the request back, and this text goes
    /// to logs and onto the timeline.
    ///
    /// ```
    /// use collab_notify::ProviderError;
    ///
    /// let echoed = "bad request: api_key=k1&api_secret=s3cr3t&to=447911123456";
    /// let error = ProviderError::quoting("acme-sms", echoed, &["s3cr3t"]);
    /// assert_eq!(error.message, "bad request: api_key=k1&api_secret=<redacted>&to=447911123456");
    /// ```
    pub fn quoting(provider: &'static str, message: impl Into<String>, secrets: &[&str]) -> Self {
        let mut message: String = message.into();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            message = message.replace(secret, "<redacted>");
        }
        Self::new(provider, message)
    }

    /// With the HTTP status or SMTP reply code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// With the provider's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// With the underlying error (an I/O or protocol error), kept as [`source`](std::error::Error::source)
    /// and not repeated in the text.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.message)?;
        match (self.status, &self.code) {
            (Some(status), Some(code)) => write!(f, " (status {status}, code {code})")?,
            (Some(status), None) => write!(f, " (status {status})")?,
            (None, Some(code)) => write!(f, " (code {code})")?,
            (None, None) => {}
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
