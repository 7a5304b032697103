//! The pure heart of a room: [`decide`] what a command does, as events, without any I/O.

use crate::customer::{Channel, Customer, PersonName, Recipient};
use crate::error::{Entity, Error, Rule};
use crate::event::{DeliveryStatus, DocumentMeta, ErasureScope, Event, EventActor, EventData, Seq};
use crate::id::{AgentId, EndpointId, InviteId, ParticipantId, RoomId, TenantId};
use crate::locale::Locale;
use crate::policy::Policy;
pub use crate::state::{CLIENT_KEY_WINDOW, DEFAULT_ROOM_NAME, ERASED_ROOM_NAME};
use crate::state::{InviteStatus, RoomState, RoomStatus};
use crate::time::Timestamp;

/// The most live (not revoked) customer sessions a room may have. A link holds one live session
/// at a time (joining with it again replaces that session), so this also bounds the links in
/// use, and one link opened in a loop cannot fill the room.
pub const MAX_PARTICIPANTS: usize = 100;

/// The longest client idempotency key accepted, in bytes.
pub const MAX_CLIENT_KEY_LEN: usize = 128;

/// Who is asking. The host authenticates agents; customers hold a session from an invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// An agent the host authenticated.
    Agent {
        /// The agent's tenant: the agent reaches only its rooms.
        tenant: TenantId,
        /// The agent.
        agent: AgentId,
    },
    /// A customer, through the session they got by joining with an invite link.
    Customer {
        /// The one room the session reaches.
        room: RoomId,
        /// The participation the session belongs to.
        participant: ParticipantId,
    },
    /// The library itself: joins through a token, delivery reports, timeout sweeps.
    System,
}

impl Actor {
    /// How the timeline records this actor.
    pub fn event_actor(&self) -> EventActor {
        match self {
            Actor::Agent { agent, .. } => EventActor::Agent(agent.clone()),
            Actor::Customer { participant, .. } => EventActor::Customer(*participant),
            Actor::System => EventActor::System,
        }
    }
}

/// What an actor asks a room to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Invite (or re-invite) the customer. Agents only.
    Invite(InviteCommand),
    /// Revoke an invite: its link stops working. Agents only.
    RevokeInvite {
        /// The invite.
        invite: InviteId,
    },
    /// Join through an invite link, creating a participation. The library only.
    Join {
        /// The invite whose token was presented.
        invite: InviteId,
        /// The new participation.
        participant: ParticipantId,
    },
    /// End a customer's session. Agents only.
    RevokeSession {
        /// The participation.
        participant: ParticipantId,
    },
    /// The customer ends the session they act through (signs out). The room's customer only,
    /// on their own session; accepted in a closed or timed-out room too, as reading is.
    ///
    /// Unlike [`Command::RevokeSession`], the invite stays usable: opening its link again (the
    /// one from their SMS or email) gives the customer a new session.
    EndSession,
    /// Post a chat message. Agents and the room's customer.
    PostMessage {
        /// The text; it is trimmed and must not be empty or longer than the policy allows.
        text: String,
        /// An optional key the client chose, so that a retried post can be recognised.
        client_key: Option<String>,
    },
    /// Add a stored document to the timeline. Agents and the room's customer.
    ShareDocument(DocumentMeta),
    /// Record news about an invite's delivery. The library only.
    RecordDelivery {
        /// The invite.
        invite: InviteId,
        /// What the provider reported.
        status: DeliveryStatus,
    },
    /// Record that a webhook delivery was given up. The library only; accepted in a closed
    /// room too (the room's last events are the ones endpoints most want to hear of).
    RecordWebhookFailure {
        /// The endpoint.
        endpoint: EndpointId,
        /// The message's `webhook-id`.
        webhook_id: String,
        /// The event it was about.
        about: Seq,
        /// The last failure.
        reason: String,
    },
    /// Record that the room's agent was alerted of the customer's unread messages and documents
    /// up to `up_to`, or that the alert was given up (`failure`). The library only; an alert
    /// that covers nothing new records nothing.
    RecordAgentsAlerted {
        /// The last message or document the alert covered.
        up_to: Seq,
        /// Why it was given up, if it was.
        failure: Option<String>,
    },
    /// Remind the customer of the agents' unread messages and documents up to `up_to`: with
    /// `invite`, a new invite through that channel (to the locked identifier, in the same
    /// append); without, only the record. The library only, in an active room; a reminder that
    /// covers nothing new records nothing.
    RemindCustomer {
        /// The last message or document the reminder covers.
        up_to: Seq,
        /// The new invite's id and channel (SMS or email), if one goes out.
        invite: Option<(InviteId, Channel)>,
    },
    /// Say that the actor has seen the room up to `up_to`, an event of the room. Agents and the
    /// room's customer, in every status but erased; a horizon that does not move forward
    /// records nothing.
    MarkRead {
        /// The last event seen.
        up_to: Seq,
    },
    /// Time the room out if it has been idle for the policy's period. Agents or the library.
    TimeOut,
    /// Close the room for good. Agents only.
    Close,
    /// Erase the room's personal data: every event but the first becomes
    /// [`EventData::Redacted`], and [`EventData::RoomErased`] records the erasure. Agents only;
    /// accepted in every status, a closed room included. The store does the redaction
    /// ([`crate::store::RoomStore::erase`]).
    Erase {
        /// Asked for the room, or for its customer.
        scope: ErasureScope,
    },
}

/// An invite, as the agent filled in the invite frame.
///
/// On a re-invite the locked fields may be left out: the names once the customer is invited, and
/// the identifier of a channel used before. Given again, they must be equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCommand {
    /// The new invite's id.
    pub invite: InviteId,
    /// The channel.
    pub channel: Channel,
    /// The customer's first name.
    pub first_name: Option<PersonName>,
    /// The customer's last name.
    pub last_name: Option<PersonName>,
    /// The mobile number (SMS) or email address (email); none for a link.
    pub recipient: Option<Recipient>,
    /// The language of the invite's text, if the agent chose one.
    pub locale: Option<Locale>,
}

/// What a decision may depend on besides the room and the command.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The time of the decision.
    pub now: Timestamp,
    /// Who asks.
    pub actor: &'a Actor,
    /// The rules in force.
    pub policy: &'a Policy,
}

/// The first event of a new room, opened by an agent: a draft named [`DEFAULT_ROOM_NAME`].
pub fn create_room(room: RoomId, tenant: TenantId, agent: AgentId, now: Timestamp) -> Event {
    Event {
        room,
        seq: Seq::ZERO.next(),
        at: now,
        actor: EventActor::Agent(agent.clone()),
        data: EventData::RoomCreated {
            tenant,
            agent,
            name: DEFAULT_ROOM_NAME.to_owned(),
        },
    }
}

/// Decides what `command` does to the room in `state`: the events to append, in order, or the
/// reason it is refused. Pure: the same inputs always give the same answer.
///
/// An empty list means the command is accepted but changes nothing (a repeated revoke, a delivery
/// report that is not news, a timeout sweep of a room that is not due).
///
/// The crate docs hold the table of what each command does in each status; a test keeps this
/// function and that table in step.
pub fn decide(state: &RoomState, command: &Command, ctx: &Context<'_>) -> Result<Vec<Event>, Error> {
    let by = authorize(state, command, ctx)?;
    if let Command::PostMessage {
        client_key: Some(key), ..
    } = command
        && state.message_with_client_key(&by, key).is_some()
    {
        // A retried post: it is recorded already.
        return Ok(Vec::new());
    }
    if state.status() == RoomStatus::Erased {
        return match command {
            Command::Erase { .. } => Ok(Vec::new()),
            _ => Err(Error::RoomErased),
        };
    }
    // A merged room is history: its content lives on in the survivor.
    if let Some(into) = state.merged_into() {
        let merged_may = matches!(
            command,
            Command::Erase { .. } | Command::RecordWebhookFailure { .. } | Command::MarkRead { .. }
        );
        if !merged_may {
            return Err(Error::RoomMerged { into });
        }
    }
    // A closed room stays readable by its customer; so that access can still be ended, ending
    // a session (by the agent or by the customer) is the change it accepts, besides erasure.
    let closed_may = matches!(
        command,
        Command::RevokeSession { .. }
            | Command::EndSession
            | Command::Erase { .. }
            | Command::RecordWebhookFailure { .. }
            | Command::MarkRead { .. }
    );
    if state.status() == RoomStatus::Closed && !closed_may {
        return Err(Error::RoomClosed);
    }
    let due = state.is_due_for_timeout(ctx.now, ctx.policy);
    let timed_out = due || state.status() == RoomStatus::TimedOut;
    let mut out = Emitter::new(state, ctx.now, by);
    // The room has been idle past its timeout but no sweep recorded it yet: record it first,
    // so the log says why the status changed.
    let record_due_timeout = |out: &mut Emitter| {
        if due {
            out.system(EventData::TimedOut);
        }
    };

    match command {
        Command::Invite(invite) => {
            let data = invite_event(state, invite, ctx)?;
            let first_invite = state.customer().is_none();
            record_due_timeout(&mut out);
            if timed_out {
                out.push(EventData::Reactivated);
            }
            let name = match &data {
                EventData::CustomerInvited { customer, .. } if first_invite => Some(customer.full_name()),
                _ => None,
            };
            out.push(data);
            if let Some(name) = name {
                out.push(EventData::RoomRenamed { name });
            }
        }
        Command::RevokeInvite { invite } => {
            let found = state.invite(*invite).ok_or(Error::NotFound { what: Entity::Invite })?;
            if found.status != InviteStatus::Revoked {
                out.push(EventData::InviteRevoked { invite: *invite });
            }
            // The link is dead, and so is every session it opened.
            for participant in state
                .participants()
                .iter()
                .filter(|p| p.invite == *invite && !p.revoked)
            {
                out.push(EventData::SessionRevoked {
                    participant: participant.id,
                });
            }
        }
        Command::Join { invite, participant } => {
            // Wrong, revoked, expired and superseded invites are one error, so a token holder
            // learns nothing.
            let usable = state.link_opens(*invite, ctx.now, ctx.policy);
            if !usable {
                return Err(Error::NotFound { what: Entity::Invite });
            }
            if state.participant(*participant).is_some() {
                return Err(Error::conflict("participant id already in use"));
            }
            // One live session per link: a join replaces the session the link opened before.
            let (replaced, others): (Vec<_>, Vec<_>) = state
                .participants()
                .iter()
                .filter(|p| !p.revoked)
                .partition(|p| p.invite == *invite);
            if others.len() >= MAX_PARTICIPANTS {
                return Err(Error::NotAllowed {
                    reason: Rule::TooManySessions,
                });
            }
            record_due_timeout(&mut out);
            for old in replaced {
                out.system(EventData::SessionRevoked { participant: old.id });
            }
            out.by = EventActor::Customer(*participant);
            out.push(EventData::CustomerJoined {
                invite: *invite,
                participant: *participant,
            });
        }
        Command::RevokeSession { participant } => {
            let found = state.participant(*participant).ok_or(Error::NotFound {
                what: Entity::Participant,
            })?;
            if !found.revoked {
                out.push(EventData::SessionRevoked {
                    participant: *participant,
                });
            }
            // Otherwise the same link would simply open a new session.
            if state
                .invite(found.invite)
                .is_some_and(|i| i.status != InviteStatus::Revoked)
            {
                out.push(EventData::InviteRevoked { invite: found.invite });
            }
        }
        Command::EndSession => {
            // `authorize` let only the room's customer through, with a live session.
            let Actor::Customer { participant, .. } = ctx.actor else {
                return Err(Error::Forbidden);
            };
            out.push(EventData::SessionRevoked {
                participant: *participant,
            });
        }
        Command::PostMessage { text, client_key } => {
            refuse_customer_when_timed_out(ctx.actor, timed_out)?;
            let text = message_text(text, ctx.policy)?;
            let client_key = client_key.as_deref().map(checked_client_key).transpose()?;
            record_due_timeout(&mut out);
            out.push(EventData::MessagePosted { text, client_key });
        }
        Command::ShareDocument(document) => {
            refuse_customer_when_timed_out(ctx.actor, timed_out)?;
            record_due_timeout(&mut out);
            out.push(EventData::DocumentShared(document.clone()));
        }
        Command::RecordDelivery { invite, status } => {
            let found = state.invite(*invite).ok_or(Error::NotFound { what: Entity::Invite })?;
            if found.status.advances_to(InviteStatus::from(status)) {
                out.push(EventData::InviteDelivery {
                    invite: *invite,
                    status: bounded_delivery_status(status),
                });
            }
        }
        Command::RecordWebhookFailure {
            endpoint,
            webhook_id,
            about,
            reason,
        } => out.system(EventData::WebhookFailed {
            endpoint: *endpoint,
            webhook_id: webhook_id.chars().take(MAX_PROVIDER_ID_CHARS).collect(),
            about: *about,
            reason: reason.chars().take(MAX_DELIVERY_REASON_CHARS).collect(),
        }),
        Command::RecordAgentsAlerted { up_to, failure } => {
            if *up_to > state.seq() {
                return Err(Error::invalid("up_to", "after the room's last event"));
            }
            if *up_to > state.alerted_up_to() {
                out.system(EventData::AgentsAlerted {
                    up_to: *up_to,
                    failure: failure
                        .as_ref()
                        .map(|reason| reason.chars().take(MAX_DELIVERY_REASON_CHARS).collect()),
                });
            }
        }
        Command::RemindCustomer { up_to, invite } => {
            if *up_to > state.seq() {
                return Err(Error::invalid("up_to", "after the room's last event"));
            }
            // Never after the room timed out (closed rooms were refused above).
            if timed_out {
                return Err(Error::RoomTimedOut);
            }
            if *up_to > state.reminded_up_to() {
                let new_invite = invite.map(|(id, _)| id);
                if let Some((id, channel)) = invite {
                    let again = InviteCommand {
                        invite: *id,
                        channel: *channel,
                        first_name: None,
                        last_name: None,
                        recipient: None,
                        locale: None,
                    };
                    let invited = invite_event(state, &again, ctx)?;
                    out.system(invited);
                }
                out.system(EventData::CustomerReminded {
                    up_to: *up_to,
                    invite: new_invite,
                });
            }
        }
        Command::MarkRead { up_to } => {
            if *up_to > state.seq() {
                return Err(Error::invalid("seq", "after the room's last event"));
            }
            let up_to = (*up_to).min(state.last_readable());
            if up_to > state.read_horizon(&out.by) {
                out.push(EventData::ReadUpTo { seq: up_to });
            }
        }
        Command::TimeOut => record_due_timeout(&mut out),
        Command::Close => out.push(EventData::Closed),
        Command::Erase { scope } => out.push(EventData::RoomErased { scope: *scope }),
    }
    Ok(out.events)
}

/// The events of a merge ([`decide_merge`]): the survivor's and the absorbed room's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeEvents {
    /// The absorbed room's copied events, then [`EventData::RoomMerged`].
    pub survivor: Vec<Event>,
    /// [`EventData::MergedInto`].
    pub absorbed: Vec<Event>,
}

/// Decides a merge of `absorbed` into `survivor`: two rooms of the agent's tenant whose
/// customers share a mobile number or email address. `absorbed_log` is the absorbed room's whole
/// log, up to the state's last event.
///
/// The survivor gets a copy of the absorbed room's invites, delivery news, sessions, messages
/// and documents (their times and actors kept, in their order), then one
/// [`EventData::RoomMerged`]; the absorbed room gets [`EventData::MergedInto`]. Refused for an
/// erased or merged room on either side, a closed survivor, customers that share nothing, and
/// ids that the two rooms both use.
pub fn decide_merge(
    survivor: &RoomState,
    absorbed: &RoomState,
    absorbed_log: &[Event],
    ctx: &Context<'_>,
) -> Result<MergeEvents, Error> {
    authorize_read(survivor, ctx.actor)?;
    authorize_read(absorbed, ctx.actor)?;
    if !matches!(ctx.actor, Actor::Agent { .. }) {
        return Err(Error::Forbidden);
    }
    if survivor.room() == absorbed.room() {
        return Err(Error::invalid("into", "a room cannot be merged into itself"));
    }
    for state in [absorbed, survivor] {
        if state.status() == RoomStatus::Erased {
            return Err(Error::RoomErased);
        }
        if let Some(into) = state.merged_into() {
            return Err(Error::RoomMerged { into });
        }
    }
    if survivor.status() == RoomStatus::Closed {
        return Err(Error::RoomClosed);
    }
    let customer = match (survivor.customer(), absorbed.customer()) {
        (Some(kept), Some(other)) if same_person(kept, other) => {
            let mut merged = kept.clone();
            if merged.phone.is_none() {
                merged.phone.clone_from(&other.phone);
            }
            if merged.email.is_none() {
                merged.email.clone_from(&other.email);
            }
            merged
        }
        _ => {
            return Err(Error::invalid(
                "into",
                "the rooms' customers share no mobile number or email address",
            ));
        }
    };
    if absorbed_log.last().map(|e| e.seq) != Some(absorbed.seq()) || absorbed_log.len() as u64 != absorbed.seq().get() {
        return Err(Error::conflict("the absorbed room's log is not whole"));
    }
    let shared_id = absorbed.invites().iter().any(|i| survivor.invite(i.id).is_some())
        || absorbed
            .participants()
            .iter()
            .any(|p| survivor.participant(p.id).is_some())
        || absorbed.documents().iter().any(|d| survivor.document(d.id).is_some());
    if shared_id {
        return Err(Error::conflict("the rooms share an invite, session or document id"));
    }
    let mut out = Emitter::new(survivor, ctx.now, ctx.actor.event_actor());
    let mut copied = 0;
    for event in absorbed_log.iter().filter(|e| is_copied_by_merge(&e.data)) {
        out.at = event.at;
        out.push_as(event.actor.clone(), event.data.clone());
        copied += 1;
    }
    out.at = ctx.now;
    out.push(EventData::RoomMerged {
        absorbed: absorbed.room(),
        copied,
        customer: Some(customer),
        invites: absorbed.invites().iter().map(|i| i.id).collect(),
    });
    let mut gone = Emitter::new(absorbed, ctx.now, ctx.actor.event_actor());
    gone.push(EventData::MergedInto {
        survivor: survivor.room(),
    });
    Ok(MergeEvents {
        survivor: out.events,
        absorbed: gone.events,
    })
}

/// Whether two customers are one person by a mobile number or an email address.
fn same_person(a: &Customer, b: &Customer) -> bool {
    let phone = matches!((&a.phone, &b.phone), (Some(x), Some(y)) if x == y);
    let email = matches!((&a.email, &b.email), (Some(x), Some(y)) if x.match_key() == y.match_key());
    phone || email
}

/// The events a merge copies into the survivor: what the customer and the agents did and
/// shared. The rest (names, statuses, horizons, alerts, webhook records) speaks of the absorbed
/// room itself, or of its sequence numbers.
fn is_copied_by_merge(data: &EventData) -> bool {
    matches!(
        data,
        EventData::CustomerInvited { .. }
            | EventData::InviteDelivery { .. }
            | EventData::InviteRevoked { .. }
            | EventData::CustomerJoined { .. }
            | EventData::SessionRevoked { .. }
            | EventData::MessagePosted { .. }
            | EventData::DocumentShared(_)
    )
}

/// Checks that the actor may send this command to this room, and says how events record it.
///
/// An agent of another tenant and a customer of another room get the same error as for a room
/// that does not exist, so that nothing leaks about other rooms.
fn authorize(state: &RoomState, command: &Command, ctx: &Context<'_>) -> Result<EventActor, Error> {
    authorize_read(state, ctx.actor)?;
    let agents_only = matches!(
        command,
        Command::Invite(_)
            | Command::RevokeInvite { .. }
            | Command::RevokeSession { .. }
            | Command::Close
            | Command::Erase { .. }
    );
    let library_only = matches!(
        command,
        Command::Join { .. }
            | Command::RecordDelivery { .. }
            | Command::RecordWebhookFailure { .. }
            | Command::RecordAgentsAlerted { .. }
            | Command::RemindCustomer { .. }
    );
    let customers_only = *command == Command::EndSession;
    let allowed = match ctx.actor {
        Actor::Agent { .. } => !(library_only || customers_only),
        Actor::Customer { .. } => !(agents_only || library_only || *command == Command::TimeOut),
        Actor::System => library_only || *command == Command::TimeOut,
    };
    if allowed {
        Ok(ctx.actor.event_actor())
    } else {
        Err(Error::Forbidden)
    }
}

/// Checks that `actor` may read the room: an agent of its tenant, its customer with a session
/// that is not revoked, or the library. A closed or timed-out room stays readable by its
/// customer (the timeline, the room's details, the documents); [`decide`] refuses their writes.
///
/// An agent of another tenant and a customer of another room get the same error as for a room
/// that does not exist; a revoked session gets [`Error::Forbidden`].
pub fn authorize_read(state: &RoomState, actor: &Actor) -> Result<(), Error> {
    match actor {
        Actor::Agent { tenant, .. } if tenant != state.tenant() => Err(Error::NotFound { what: Entity::Room }),
        Actor::Customer { room, .. } if *room != state.room() => Err(Error::NotFound { what: Entity::Room }),
        Actor::Customer { participant, .. } if state.participant(*participant).is_none_or(|p| p.revoked) => {
            Err(Error::Forbidden)
        }
        _ => Ok(()),
    }
}

fn refuse_customer_when_timed_out(actor: &Actor, timed_out: bool) -> Result<(), Error> {
    if timed_out && matches!(actor, Actor::Customer { .. }) {
        Err(Error::RoomTimedOut)
    } else {
        Ok(())
    }
}

/// The `CustomerInvited` event for an invite, after checking the re-invite rules.
fn invite_event(state: &RoomState, cmd: &InviteCommand, ctx: &Context<'_>) -> Result<EventData, Error> {
    if cmd.channel == Channel::Sms && !ctx.policy.sms_activated() {
        return Err(Error::SmsNotActivated);
    }
    if state.invite(cmd.invite).is_some() {
        return Err(Error::conflict("invite id already in use"));
    }
    if cmd.channel == Channel::Link && ctx.policy.link_requires_prior_invite() {
        let gone_out = state.invites().iter().any(|i| {
            i.channel != Channel::Link
                && !matches!(
                    i.status,
                    InviteStatus::Revoked | InviteStatus::Failed { permanent: true }
                )
        });
        if !gone_out {
            return Err(Error::NotAllowed {
                reason: Rule::LinkBeforeInvite,
            });
        }
    }
    let first_name = locked_or_given("first_name", state.customer().map(|c| &c.first_name), &cmd.first_name)?;
    let last_name = locked_or_given("last_name", state.customer().map(|c| &c.last_name), &cmd.last_name)?;
    let mut customer = state.customer().cloned().unwrap_or(Customer {
        first_name,
        last_name,
        phone: None,
        email: None,
    });

    let recipient = match cmd.channel {
        Channel::Link => {
            if cmd.recipient.is_some() {
                return Err(Error::invalid("recipient", "a link invite has no recipient"));
            }
            None
        }
        Channel::Sms | Channel::Email => {
            let field = if cmd.channel == Channel::Sms { "phone" } else { "email" };
            if cmd.recipient.as_ref().is_some_and(|r| r.channel() != cmd.channel) {
                return Err(Error::invalid(
                    field,
                    format!("a {} invite needs a {field}", cmd.channel),
                ));
            }
            let recipient = match (customer.recipient_for(cmd.channel), &cmd.recipient) {
                (Some(locked), Some(given)) if !locked.same_as(given) => {
                    return Err(Error::invalid(
                        field,
                        format!("this channel was used with {locked}; re-invites through it keep that {field}"),
                    ));
                }
                (Some(locked), _) => locked,
                (None, Some(given)) => given.clone(),
                (None, None) => return Err(Error::invalid(field, "required for this channel")),
            };
            match &recipient {
                Recipient::Phone(number) => customer.phone = Some(number.clone()),
                Recipient::Email(address) => customer.email = Some(address.clone()),
            }
            Some(recipient)
        }
    };
    Ok(EventData::CustomerInvited {
        invite: cmd.invite,
        channel: cmd.channel,
        customer,
        recipient,
        expires_at: ctx.now.saturating_add(ctx.policy.invite_ttl()),
        locale: cmd.locale.clone(),
    })
}

/// A name field: required before the customer is invited, locked after.
fn locked_or_given(
    field: &'static str,
    locked: Option<&PersonName>,
    given: &Option<PersonName>,
) -> Result<PersonName, Error> {
    match (locked, given) {
        (Some(locked), Some(given)) if locked != given => {
            Err(Error::invalid(field, "the customer's name is locked once invited"))
        }
        (Some(locked), _) => Ok(locked.clone()),
        (None, Some(given)) => Ok(given.clone()),
        (None, None) => Err(Error::invalid(field, "required for the first invite")),
    }
}

fn message_text(text: &str, policy: &Policy) -> Result<String, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid("text", "must not be empty"));
    }
    if text.chars().count() > policy.max_message_chars() {
        return Err(Error::invalid(
            "text",
            format!("must be at most {} characters", policy.max_message_chars()),
        ));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::invalid("text", "must not contain control characters"));
    }
    Ok(text.to_owned())
}

fn checked_client_key(key: &str) -> Result<String, Error> {
    if key.is_empty() || key.len() > MAX_CLIENT_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "client_key",
            "must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

/// The longest provider reason kept in the timeline, in characters.
const MAX_DELIVERY_REASON_CHARS: usize = 500;
/// The longest provider message id kept, in characters.
const MAX_PROVIDER_ID_CHARS: usize = 200;

fn bounded_delivery_status(status: &DeliveryStatus) -> DeliveryStatus {
    match status {
        DeliveryStatus::Failed { permanent, reason } => DeliveryStatus::Failed {
            permanent: *permanent,
            reason: reason.chars().take(MAX_DELIVERY_REASON_CHARS).collect(),
        },
        DeliveryStatus::Sent { provider_id } => DeliveryStatus::Sent {
            provider_id: provider_id
                .as_ref()
                .map(|id| id.chars().take(MAX_PROVIDER_ID_CHARS).collect()),
        },
        DeliveryStatus::Delivered => DeliveryStatus::Delivered,
    }
}

/// Builds the events of one decision with consecutive sequence numbers.
struct Emitter {
    room: RoomId,
    next: Seq,
    at: Timestamp,
    by: EventActor,
    events: Vec<Event>,
}

impl Emitter {
    fn new(state: &RoomState, at: Timestamp, by: EventActor) -> Self {
        Self {
            room: state.room(),
            next: state.seq().next(),
            at,
            by,
            events: Vec::new(),
        }
    }

    fn push(&mut self, data: EventData) {
        let actor = self.by.clone();
        self.push_as(actor, data);
    }

    fn system(&mut self, data: EventData) {
        self.push_as(EventActor::System, data);
    }

    fn push_as(&mut self, actor: EventActor, data: EventData) {
        self.events.push(Event {
            room: self.room,
            seq: self.next,
            at: self.at,
            actor,
            data,
        });
        self.next = self.next.next();
    }
}
