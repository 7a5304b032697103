//! The tenant's settings: read by its agents, changed by its admins, with their history.

use axum::Json;
use axum::extract::State;
use collab_core::settings::{SettingsChange, TenantSettings};
use collab_core::{Actor, Error, Locale};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, JsonBody, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ErrorBody;

/// A tenant's settings. A field left out, `null` or blank is the deployment's.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// The rooms' inactivity timeout, in days (3 to 3650).
    #[schema(minimum = 3, maximum = 3650)]
    pub timeout_days: Option<u32>,
    /// What the customer sees in a timed-out room (up to 500 characters).
    #[schema(max_length = 500)]
    pub timed_out_message: Option<String>,
    /// The SMS invite's text: `{first_name}`, `{link}` (appended when missing).
    #[schema(max_length = 1000)]
    pub sms_template: Option<String>,
    /// The email invite's body, with the same placeholders.
    #[schema(max_length = 3000)]
    pub email_template: Option<String>,
    /// The tenant's language (`es`, `he`, `pt-BR`…): of its invites and customer pages.
    #[schema(max_length = 35)]
    pub locale: Option<String>,
}

/// The settings in force, and what stands where they leave a field out.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// The number of changes so far (0: the deployment's settings, never changed).
    pub version: u64,
    /// When the last change was made (RFC 3339).
    pub changed_at: Option<String>,
    /// The admin who made it.
    pub changed_by: Option<String>,
    /// The tenant's settings.
    pub settings: SettingsBody,
    /// The deployment's timeout, in days, where the tenant sets none.
    pub default_timeout_days: u64,
    /// The deployment's language for the tenant, where it sets none.
    pub default_locale: String,
    /// Whether the caller may change them (an admin).
    pub can_change: bool,
}

/// One change, as the history lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsChangeView {
    /// 1 for the first change, then one more each time.
    pub version: u64,
    /// When it was made (RFC 3339).
    pub at: String,
    /// The admin who made it.
    pub by: String,
    /// The settings from then on.
    pub settings: SettingsBody,
}

/// The changes, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsHistory {
    /// The changes.
    pub changes: Vec<SettingsChangeView>,
}

/// How much history to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// At most this many changes (1 to 100, 20 by default).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

impl From<&TenantSettings> for SettingsBody {
    fn from(s: &TenantSettings) -> Self {
        Self {
            timeout_days: s.timeout_days,
            timed_out_message: s.timed_out_message.clone(),
            sms_template: s.sms_template.clone(),
            email_template: s.email_template.clone(),
            locale: s.locale.as_ref().map(ToString::to_string),
        }
    }
}

impl TryFrom<SettingsBody> for TenantSettings {
    type Error = Error;

    fn try_from(body: SettingsBody) -> Result<Self, Error> {
        let given = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
        Ok(Self {
            timeout_days: body.timeout_days,
            timed_out_message: given(body.timed_out_message),
            sms_template: given(body.sms_template),
            email_template: given(body.email_template),
            locale: given(body.locale).as_deref().map(Locale::parse).transpose()?,
        })
    }
}

impl From<&SettingsChange> for SettingsChangeView {
    fn from(c: &SettingsChange) -> Self {
        Self {
            version: c.version,
            at: c.at.to_string(),
            by: c.by.to_string(),
            settings: SettingsBody::from(&c.settings),
        }
    }
}

async fn view(state: &AppState, actor: &Actor, latest: Option<SettingsChange>) -> ApiResult<SettingsView> {
    let Actor::Agent { tenant, agent } = actor else {
        return Err(Error::Forbidden.into());
    };
    let config = state.rooms.config();
    let days = config.policy().inactivity_timeout().as_secs() / (24 * 3600);
    Ok(SettingsView {
        version: latest.as_ref().map_or(0, |c| c.version),
        changed_at: latest.as_ref().map(|c| c.at.to_string()),
        changed_by: latest.as_ref().map(|c| c.by.to_string()),
        settings: latest
            .as_ref()
            .map(|c| SettingsBody::from(&c.settings))
            .unwrap_or_default(),
        default_timeout_days: days,
        default_locale: config.tenant_locale(tenant).to_string(),
        can_change: state.agents.is_admin(tenant, agent),
    })
}

/// The tenant's settings. Its agents.
#[utoipa::path(get, path = "/api/settings", params(Caller), tag = "settings", security(("agent_session" = [])),
    responses((status = 200, body = SettingsView), (status = 403, body = ErrorBody)))]
pub async fn get_settings(State(state): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<SettingsView>> {
    let latest = state.rooms.settings(&actor).await?;
    Ok(Json(view(&state, &actor, latest).await?))
}

/// Changes the tenant's settings: the whole of them (a field left out goes back to the
/// deployment's), recorded with the admin and the time. The tenant's admins. The timeout applies
/// at once to every active room of the tenant, the message to the customer pages, the templates
/// and the language to the next invites.
#[utoipa::path(put, path = "/api/settings", params(Caller), request_body = SettingsBody, tag = "settings",
    security(("agent_session" = [])),
    responses((status = 200, body = SettingsView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
pub async fn change_settings(
    State(state): State<AppState>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<SettingsBody>,
) -> ApiResult<Json<SettingsView>> {
    let settings = TenantSettings::try_from(body)?;
    let change = state.rooms.change_settings(&actor, settings).await?;
    Ok(Json(view(&state, &actor, Some(change)).await?))
}

/// The changes of the tenant's settings, newest first: who changed what, and when. Its agents.
#[utoipa::path(get, path = "/api/settings/history", params(Caller, HistoryQuery), tag = "settings",
    security(("agent_session" = [])),
    responses((status = 200, body = SettingsHistory), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn settings_history(
    State(state): State<AppState>,
    Caller(actor): Caller,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> ApiResult<Json<SettingsHistory>> {
    let changes = state.rooms.settings_history(&actor, query.limit.unwrap_or(20)).await?;
    Ok(Json(SettingsHistory {
        changes: changes.iter().map(SettingsChangeView::from).collect(),
    }))
}
