//! A tenant's settings, changed at run time by its admins, each change recorded with who made
//! it and when ([`Rooms::change_settings`](crate::rooms::Rooms::change_settings)).
//!
//! A setting left out (`None`) is the deployment's ([`RoomsConfig`](crate::rooms::RoomsConfig)).
//! A change applies from then on: the timeout to every active room of the tenant (a room idle
//! past it counts as timed out at once), the timed-out message to every page that shows one,
//! the templates and the language to the next invites.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::{AgentId, TenantId};
use crate::locale::Locale;
use crate::notify::InviteTemplates;
use crate::time::Timestamp;

/// What a tenant's admins may change. Every field is optional: `None` is the deployment's.
///
/// ```
/// use collab_core::settings::TenantSettings;
///
/// let settings = TenantSettings {
///     timeout_days: Some(3),
///     timed_out_message: Some("This room closed after 3 quiet days. Call us on 555-0100.".into()),
///     ..TenantSettings::default()
/// };
/// settings.validate()?;
/// assert!(TenantSettings { timeout_days: Some(2), ..TenantSettings::default() }.validate().is_err());
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// The inactivity timeout of the tenant's rooms, in days: at least 3, at most 3,650.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_days: Option<u32>,
    /// What the customer sees in a timed-out room, instead of the page's own words: 1 to 500
    /// characters, no control characters but line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_message: Option<String>,
    /// The SMS invite's text: `{first_name}` and `{link}` (the link is appended when it is
    /// missing), up to 1,000 characters. Used for invites whose agent chose no other language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_template: Option<String>,
    /// The email invite's body, with the same placeholders, up to 3,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_template: Option<String>,
    /// The tenant's language: of its invites (when the agent chooses none) and of its customers'
    /// pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
}

/// The longest timed-out message, in characters.
pub const MAX_TIMED_OUT_MESSAGE_CHARS: usize = 500;

/// The longest timeout a tenant may set, in days (ten years).
pub const MAX_TIMEOUT_DAYS: u32 = 3_650;

/// The longest SMS template a tenant may set, in characters (a few segments; an invite's SMS
/// had better take one).
pub const MAX_SMS_TEMPLATE_CHARS: usize = 1_000;

/// The longest email template a tenant may set, in characters.
pub const MAX_EMAIL_TEMPLATE_CHARS: usize = 3_000;

impl TenantSettings {
    /// Checks every field; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(days) = self.timeout_days
            && !(3..=MAX_TIMEOUT_DAYS).contains(&days)
        {
            return Err(Error::invalid("timeout_days", "must be from 3 to 3650 days"));
        }
        if let Some(message) = &self.timed_out_message {
            let chars = message.trim().chars().count();
            if chars == 0 || chars > MAX_TIMED_OUT_MESSAGE_CHARS {
                return Err(Error::invalid("timed_out_message", "must be 1 to 500 characters"));
            }
            if message
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Err(Error::invalid(
                    "timed_out_message",
                    "must not contain control characters",
                ));
            }
        }
        for (field, template, max) in [
            ("sms_template", &self.sms_template, MAX_SMS_TEMPLATE_CHARS),
            ("email_template", &self.email_template, MAX_EMAIL_TEMPLATE_CHARS),
        ] {
            if let Some(template) = template
                && (template.trim().is_empty() || template.chars().count() > max)
            {
                return Err(Error::invalid(field, format!("must be 1 to {max} characters")));
            }
        }
        Ok(())
    }

    /// The inactivity timeout, if the tenant set one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_days
            .map(|days| Duration::from_secs(u64::from(days) * 24 * 3600))
    }

    /// `base` with the tenant's templates in place of its SMS text and email body.
    pub fn templates_over(&self, base: &InviteTemplates) -> InviteTemplates {
        let mut templates = base.clone();
        // Validated when the settings were changed: the checks cannot fail here.
        if let Some(sms) = &self.sms_template
            && let Ok(with) = templates.clone().with_sms(sms.clone())
        {
            templates = with;
        }
        if let Some(body) = &self.email_template
            && let Ok(with) = templates.clone().with_email_body(body.clone())
        {
            templates = with;
        }
        templates
    }
}

/// One change of a tenant's settings: the whole settings after it, who made it and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// The tenant.
    pub tenant: TenantId,
    /// 1 for the first change, then one more each time.
    pub version: u64,
    /// When it was made.
    pub at: Timestamp,
    /// The admin who made it.
    pub by: AgentId,
    /// The settings from then on.
    pub settings: TenantSettings,
}
