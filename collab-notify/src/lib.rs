#![doc = include_str!("../README.md")]

pub mod abuse;
mod dev;
mod error;
#[cfg(feature = "http")]
pub mod gateway;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "http")]
pub mod twilio;
#[cfg(feature = "http")]
pub mod vonage;
#[cfg(feature = "http")]
pub mod webhook;

pub use abuse::{AbuseLimits, InviteStats, Limit, SmsAbuseGuard};
pub use dev::{DevInbox, DevMessage};
pub use error::ProviderError;
#[cfg(feature = "http")]
pub use gateway::{HttpSms, HttpSmsConfig};
pub use secrecy::{ExposeSecret, SecretString};
#[cfg(feature = "smtp")]
pub use smtp::{SmtpConfig, SmtpEmail, SmtpSecurity};
#[cfg(feature = "http")]
pub use twilio::{TwilioAuth, TwilioConfig, TwilioSender, TwilioSms, TwilioWebhook};
#[cfg(feature = "http")]
pub use vonage::{VonageConfig, VonageReceipts, VonageSms};
