//! Tenant settings at run time: changed by a tenant's admins, read (through a short cache) by
//! every command of the tenant's rooms.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::{Operation, Rooms};
use crate::decide::Actor;
use crate::error::Error;
use crate::id::TenantId;
use crate::locale::Locale;
use crate::notify::InviteTemplates;
use crate::policy::Policy;
use crate::settings::{SettingsChange, TenantSettings};

/// The most changes [`Rooms::settings_history`] returns at once.
pub const MAX_SETTINGS_HISTORY: usize = 100;

/// A tenant's settings as last read (`None`: the deployment's), and when.
type Cached = (Instant, Option<Arc<SettingsChange>>);

/// Each tenant's settings as last read.
#[derive(Debug, Default)]
pub(super) struct SettingsCache {
    entries: Mutex<HashMap<TenantId, Cached>>,
}

impl SettingsCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, Cached>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Rooms {
    /// The tenant's latest settings change, read from the store now. Agents of the tenant.
    /// `None` until an admin changes them: the deployment's settings are in force.
    #[tracing::instrument(skip_all)]
    pub async fn settings(&self, actor: &Actor) -> Result<Option<SettingsChange>, Error> {
        let tenant = Self::agent_tenant(actor)?;
        self.check_hook(actor, Operation::Read, None)?;
        let latest = self.inner.store.tenant_settings(tenant).await?;
        self.remember_settings(tenant, latest.clone().map(Arc::new));
        Ok(latest)
    }

    /// Changes the tenant's settings to `settings` (the whole of them: a field left out goes
    /// back to the deployment's), recorded with the agent and the time. Agents of the tenant
    /// whom the [`AccessHook`](super::AccessHook) allows [`Operation::ChangeSettings`] (a host
    /// gives it to its admins; without a hook, every agent may).
    ///
    /// Applies from then on, on this server at once and on others within
    /// [`RoomsConfig::with_settings_refresh`](super::RoomsConfig::with_settings_refresh): the
    /// timeout to every active room of the tenant (a room idle past it counts as timed out on
    /// its next read or write, which records `timed_out`), the timed-out message to the pages,
    /// the templates and the language to the next invites.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field at fault; [`Error::Conflict`] when another admin
    /// changed them at the same moment (read them again and retry); [`Error::Unsupported`]
    /// for a store without settings.
    #[tracing::instrument(skip_all)]
    pub async fn change_settings(&self, actor: &Actor, settings: TenantSettings) -> Result<SettingsChange, Error> {
        let Actor::Agent { tenant, agent } = actor else {
            return Err(Error::Forbidden);
        };
        self.check_hook(actor, Operation::ChangeSettings, None)?;
        settings.validate()?;
        let latest = self.inner.store.tenant_settings(tenant).await?;
        let change = SettingsChange {
            tenant: tenant.clone(),
            version: latest.map_or(1, |c| c.version + 1),
            at: self.inner.clock.now(),
            by: agent.clone(),
            settings,
        };
        self.inner.store.change_settings(change.clone()).await?;
        self.remember_settings(tenant, Some(Arc::new(change.clone())));
        // Who and which version; the texts may name people or numbers.
        tracing::info!(%tenant, %agent, version = change.version, "tenant settings changed");
        Ok(change)
    }

    /// The tenant's settings changes, newest first, up to `limit` (at most
    /// [`MAX_SETTINGS_HISTORY`]). Agents of the tenant.
    #[tracing::instrument(skip_all)]
    pub async fn settings_history(&self, actor: &Actor, limit: usize) -> Result<Vec<SettingsChange>, Error> {
        let tenant = Self::agent_tenant(actor)?;
        self.check_hook(actor, Operation::Read, None)?;
        if !(1..=MAX_SETTINGS_HISTORY).contains(&limit) {
            return Err(Error::invalid("limit", "must be from 1 to 100"));
        }
        self.inner.store.settings_history(tenant, limit).await
    }

    /// The settings in force for `tenant` (its admins', or the deployment's where they set
    /// none), for showing them: the timed-out message on a customer's page, say. Read through
    /// the cache; no access check, as they hold nothing of a room.
    pub async fn tenant_settings(&self, tenant: &TenantId) -> TenantSettings {
        self.current_settings(tenant)
            .await
            .map(|change| change.settings.clone())
            .unwrap_or_default()
    }

    /// The language of `tenant`'s invites and customer pages: its admins' choice, else the
    /// deployment's for it ([`RoomsConfig::tenant_locale`](super::RoomsConfig::tenant_locale)).
    pub async fn tenant_locale(&self, tenant: &TenantId) -> Locale {
        let chosen = self
            .current_settings(tenant)
            .await
            .and_then(|change| change.settings.locale.clone());
        chosen.unwrap_or_else(|| self.inner.config.tenant_locale(tenant).clone())
    }

    fn agent_tenant(actor: &Actor) -> Result<&TenantId, Error> {
        match actor {
            Actor::Agent { tenant, .. } => Ok(tenant),
            _ => Err(Error::Forbidden),
        }
    }

    fn remember_settings(&self, tenant: &TenantId, change: Option<Arc<SettingsChange>>) {
        self.inner
            .settings
            .lock()
            .insert(tenant.clone(), (Instant::now(), change));
    }

    /// The tenant's latest settings change, from the cache while it is fresh. A store that
    /// cannot say (no settings support, or failing) leaves the deployment's settings in force,
    /// or the last ones read: rooms keep working.
    pub(super) async fn current_settings(&self, tenant: &TenantId) -> Option<Arc<SettingsChange>> {
        let refresh = self.inner.config.settings_refresh;
        if let Some((read, change)) = self.inner.settings.lock().get(tenant)
            && read.elapsed() < refresh
        {
            return change.clone();
        }
        match self.inner.store.tenant_settings(tenant).await {
            Ok(latest) => {
                let latest = latest.map(Arc::new);
                self.remember_settings(tenant, latest.clone());
                latest
            }
            Err(Error::Unsupported { .. }) => {
                self.remember_settings(tenant, None);
                None
            }
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "could not read the tenant's settings; using the last known");
                self.inner
                    .settings
                    .lock()
                    .get(tenant)
                    .and_then(|(_, change)| change.clone())
            }
        }
    }

    /// The tenant's settings as last read, without waiting for the store.
    pub(super) fn cached_settings(&self, tenant: &TenantId) -> Option<Arc<SettingsChange>> {
        self.inner
            .settings
            .lock()
            .get(tenant)
            .and_then(|(_, change)| change.clone())
    }

    /// The deployment's policy with the tenant's timeout, if it set one.
    pub(super) fn policy_with(&self, change: Option<&SettingsChange>) -> Policy {
        let policy = self.inner.config.policy.clone();
        match change.and_then(|c| c.settings.timeout()) {
            // Validated to 3 days or more when changed: the deployment's stays if not.
            Some(timeout) => policy.clone().with_inactivity_timeout(timeout).unwrap_or(policy),
            None => policy,
        }
    }

    /// The policy in force for `tenant`'s rooms.
    pub(super) async fn policy_for(&self, tenant: &TenantId) -> Policy {
        let change = self.current_settings(tenant).await;
        self.policy_with(change.as_deref())
    }

    /// The invite texts for an invite of `tenant` whose agent chose `locale` (or none): the
    /// tenant's own templates when the agent chose no language, over the deployment's texts
    /// for the tenant's language.
    pub(super) fn invite_templates_with<'a>(
        &'a self,
        locale: Option<&Locale>,
        tenant: &TenantId,
        change: Option<&SettingsChange>,
    ) -> Cow<'a, InviteTemplates> {
        let settings = change.map(|c| &c.settings);
        let language = locale.or_else(|| settings.and_then(|s| s.locale.as_ref()));
        let base = self.inner.config.invite_templates(language, tenant);
        match settings {
            Some(s) if locale.is_none() && (s.sms_template.is_some() || s.email_template.is_some()) => {
                Cow::Owned(s.templates_over(base))
            }
            _ => Cow::Borrowed(base),
        }
    }
}
