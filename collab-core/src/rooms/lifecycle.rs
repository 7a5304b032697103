//! The end of a room's life: erasure of its personal data, and the retention sweep that purges
//! rooms ended long ago.

use futures_util::StreamExt;

use super::thumbnails::thumbnail_key;
use super::{Operation, Rooms, no_extras};
use crate::blob::{BlobKey, BlobPrefix};
use crate::customer::Recipient;
use crate::decide::{Actor, Command};
use crate::error::Error;
use crate::event::ErasureScope;
use crate::id::RoomId;
use crate::state::RoomState;
use crate::store::{EndedRooms, MAX_ROOM_PAGE, RoomQuery};

/// What a [`Rooms::sweep_retention`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionSweep {
    /// Rooms purged: their rows and their documents are gone.
    pub purged: usize,
    /// Rooms that could not be purged this time (logged; the next pass tries again).
    pub failed: usize,
}

/// Rooms asked of the store per call of a retention sweep.
const RETENTION_BATCH: usize = 100;

impl Rooms {
    /// Erases the room's personal data. Agents of its tenant only (and the [`AccessHook`](super::AccessHook),
    /// as [`Operation::Erase`]).
    ///
    /// Every event but the first becomes [`EventData::Redacted`](crate::EventData::Redacted)
    /// (its sequence number, time and actor stay, so the log has no gap), a
    /// [`EventData::RoomErased`](crate::EventData::RoomErased) event records who erased it and
    /// when, the room's links and sessions stop working, its queued deliveries are dropped and
    /// its documents (thumbnails included) are deleted from the blob store. The room then
    /// answers every command with [`Error::RoomErased`]; it stays listed, as "erased", until
    /// retention purges it.
    ///
    /// Erasing an erased room deletes any document left behind (a process that died half way)
    /// and is otherwise no change, so a failed call can simply be repeated.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn erase_room(&self, actor: &Actor, room: RoomId) -> Result<(), Error> {
        self.erase(actor, room, ErasureScope::Room).await
    }

    /// Erases a customer: every room of the agent's tenant whose customer has this mobile number
    /// or email address (email compared ignoring the case of ASCII letters), as
    /// [`Rooms::erase_room`] erases one. Returns the rooms erased; none is no error.
    #[tracing::instrument(skip_all)]
    pub async fn erase_customer(&self, actor: &Actor, customer: &Recipient) -> Result<Vec<RoomId>, Error> {
        let Actor::Agent { tenant, .. } = actor else {
            return Err(Error::Forbidden);
        };
        self.check_hook(actor, Operation::Erase, None)?;
        let mut query = RoomQuery {
            limit: MAX_ROOM_PAGE,
            ..RoomQuery::default()
        };
        match customer {
            Recipient::Phone(number) => query.phone = Some(number.clone()),
            Recipient::Email(address) => query.email = Some(address.clone()),
        }
        // Listed first, then erased: an erased room leaves the customer index being paged.
        let mut rooms = Vec::new();
        loop {
            let page = self.inner.store.list_rooms(tenant, &query).await?;
            rooms.extend(page.rooms.iter().map(|r| r.room));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        for room in &rooms {
            self.erase(actor, *room, ErasureScope::Customer).await?;
        }
        tracing::info!(rooms = rooms.len(), "customer erased");
        Ok(rooms)
    }

    async fn erase(&self, actor: &Actor, room: RoomId, scope: ErasureScope) -> Result<(), Error> {
        let before = self.readable(actor, room, Operation::Erase).await?;
        if !matches!(actor, Actor::Agent { .. }) {
            return Err(Error::Forbidden);
        }
        // Documents go first, so that a process dying after the store's erasure leaves none;
        // and again after it, for an upload that finished meanwhile.
        self.delete_room_blobs(&before).await?;
        let done = self
            .execute(actor, room, Operation::Erase, &Command::Erase { scope }, no_extras)
            .await?;
        self.delete_room_blobs(&before).await?;
        if !done.events.is_empty() {
            // The record, without personal data: the room, who and why.
            let by = match actor {
                Actor::Agent { agent, .. } => agent.as_str(),
                _ => "",
            };
            tracing::info!(%room, agent = by, scope = scope.as_str(), "room erased");
        }
        Ok(())
    }

    /// Deletes every blob of the room: its documents and their thumbnails as `state` knows them,
    /// and whatever else the blob store lists under the room's prefix (an upload under way, one
    /// whose clean-up failed). Returns how many keys were deleted (or were gone already).
    async fn delete_room_blobs(&self, state: &RoomState) -> Result<usize, Error> {
        // A merged room's documents belong to the room it was merged into, whose log names them.
        if state.merged_into().is_some() {
            return Ok(0);
        }
        let mut keys: Vec<BlobKey> = Vec::new();
        for document in state.documents() {
            keys.push(document.blob.clone());
            keys.push(thumbnail_key(&document.blob)?);
        }
        let mut listing = self.inner.blobs.list(&BlobPrefix::room(state.tenant(), state.room()));
        while let Some(blob) = listing.next().await {
            match blob {
                Ok(blob) => keys.push(blob.key),
                // Without listing, the documents the room knows are all there is to delete.
                Err(Error::Unsupported { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        keys.sort();
        keys.dedup();
        for key in &keys {
            self.inner.blobs.delete(key).await?;
        }
        Ok(keys.len())
    }

    /// Purges the rooms whose retention ran out: those that timed out, closed or were erased
    /// longer ago than their tenant's retention ([`RoomsConfig::with_retention`](super::RoomsConfig::with_retention),
    /// [`with_tenant_retention`](super::RoomsConfig::with_tenant_retention)). A purged room is
    /// gone: its events, summary, links, sessions, queued deliveries and documents. Without a
    /// retention configured, nothing is purged.
    ///
    /// Works in batches of 100 rooms; each room's documents are deleted before its rows, so a
    /// pass that stops half way (a crash, a backend error) leaves the room listed and the next
    /// pass finishes it. Logs counts only. Schedule it (daily is plenty).
    #[tracing::instrument(skip_all)]
    pub async fn sweep_retention(&self) -> Result<RetentionSweep, Error> {
        let now = self.inner.clock.now();
        let config = &self.inner.config;
        let mut queries = Vec::new();
        for (tenant, retention) in config.tenant_retentions() {
            if let Some(retention) = retention {
                queries.push(EndedRooms {
                    tenant: Some(tenant.clone()),
                    except: Vec::new(),
                    ended_before: now.saturating_sub(retention),
                    limit: RETENTION_BATCH,
                });
            }
        }
        if let Some(retention) = config.retention() {
            queries.push(EndedRooms {
                tenant: None,
                except: config.tenant_retentions().map(|(tenant, _)| tenant.clone()).collect(),
                ended_before: now.saturating_sub(retention),
                limit: RETENTION_BATCH,
            });
        }
        let mut report = RetentionSweep::default();
        for query in &queries {
            loop {
                let rooms = self.inner.store.ended_rooms(query).await?;
                let mut progress = 0;
                for room in &rooms {
                    match self.purge(*room).await {
                        Ok(()) => progress += 1,
                        Err(e) => {
                            report.failed += 1;
                            tracing::warn!(%room, error = %e, "could not purge a room");
                        }
                    }
                }
                report.purged += progress;
                // Stop when the list ran out, or when none of it could be purged (it would come
                // back for ever).
                if rooms.len() < query.limit || progress == 0 {
                    break;
                }
            }
        }
        if report.purged > 0 || report.failed > 0 {
            tracing::info!(purged = report.purged, failed = report.failed, "retention sweep");
        }
        Ok(report)
    }

    /// Deletes a room's documents, then its rows.
    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        if let Some(state) = self.inner.store.load_room(room).await? {
            self.delete_room_blobs(&state).await?;
        }
        self.inner.store.purge(room).await?;
        self.states().remove(&room);
        Ok(())
    }
}
