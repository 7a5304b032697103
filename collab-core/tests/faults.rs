//! Faults: stores and notifiers that fail, stall or time out on chosen calls
//! (`collab_core::testing::faults`), and what the service does then.
//!
//! - a failed append changes nothing: no event, no live news, no outbox row, no credential;
//!   the retry works;
//! - an event never names a missing blob: bytes are stored first; a failed, stalled or
//!   timed-out put records nothing; a blob left without its event is swept after the grace;
//! - a stalled provider does not block chat;
//! - a process that dies at any step of a delivery: exactly one send, except between the
//!   provider's acceptance and the record, where the send happens twice (and no more).

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use collab_core::blob::{BlobKey, BlobPrefix, StoredBlob};
use collab_core::memory::{MemoryBlobStore, MemoryRoomStore};
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{
    DeliveryConfig, EventStream, InviteRequest, Rooms, RoomsBuilder, RoomsConfig, TimelineQuery, Upload,
};
use collab_core::testing::faults::{
    Fault, Faults, FaultyBlobStore, FaultyNotifier, FaultyRoomStore, Gate, InjectedFault, Method,
};
use collab_core::testing::files::{pdf_with_pages, png};
use collab_core::time::ManualClock;
use collab_core::*;
use common::*;
use futures_util::{StreamExt, TryStreamExt, stream};

/// A service whose room store, blob store and email notifier all follow one fault script.
struct Faulty {
    rooms: Rooms,
    faults: Faults,
    /// The room store behind the faults: what a restarted process would find.
    store: Arc<MemoryRoomStore>,
    blobs: Arc<FaultyBlobStore<MemoryBlobStore>>,
    email: Arc<FaultyNotifier<RecordingNotifier>>,
    clock: Arc<ManualClock>,
}

impl Faulty {
    fn new() -> Self {
        Self::with(|b| b)
    }

    fn with(customize: impl FnOnce(RoomsBuilder) -> RoomsBuilder) -> Self {
        let faults = Faults::new();
        let clock = Arc::new(ManualClock::new(T0));
        let store = Arc::new(MemoryRoomStore::new());
        let blobs = Arc::new(FaultyBlobStore::new(
            MemoryBlobStore::with_clock(clock.clone()),
            faults.clone(),
        ));
        let email = Arc::new(FaultyNotifier::new(RecordingNotifier::new(), faults.clone()));
        let builder = Rooms::builder()
            .room_store(FaultyRoomStore::new(store.clone(), faults.clone()))
            .blob_store(blobs.clone())
            .email(email.clone())
            .clock(clock.clone());
        Self {
            rooms: customize(builder).build(),
            faults,
            store,
            blobs,
            email,
            clock,
        }
    }

    /// Everything the room's store holds, read behind the faults.
    async fn log(&self, room: RoomId) -> Vec<Event> {
        self.store.read_events(room, Seq::ZERO, usize::MAX).await.unwrap()
    }

    async fn state(&self, room: RoomId) -> RoomState {
        self.store.load_room(room).await.unwrap().unwrap()
    }

    /// The blobs the blob store holds, read behind the faults.
    async fn blobs(&self) -> Vec<StoredBlob> {
        self.blobs
            .inner()
            .list(&BlobPrefix::everything())
            .try_collect()
            .await
            .unwrap()
    }

    fn sent(&self) -> usize {
        self.email.inner().sent().len()
    }
}

fn is_injected(result: &Result<impl std::fmt::Debug, Error>) -> bool {
    match result {
        Err(Error::Backend { source, .. }) => source.downcast_ref::<InjectedFault>().is_some(),
        _ => false,
    }
}

fn upload(name: &str, bytes: &[u8]) -> Upload {
    let chunks: Vec<io::Result<Bytes>> = bytes.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Upload {
        file_name: name.to_owned(),
        data: Box::pin(stream::iter(chunks)),
    }
}

/// The next item of a live stream, if one comes within a moment.
async fn next_live(stream: &mut EventStream) -> Option<Arc<Event>> {
    tokio::time::timeout(Duration::from_millis(100), stream.next())
        .await
        .ok()
        .flatten()
        .map(|item| item.unwrap())
}

/// Every event the live stream delivers until it falls quiet.
async fn drain_live(stream: &mut EventStream) -> Vec<Arc<Event>> {
    // A stream that never falls quiet would keep the loop going for ever.
    let deadline = Duration::from_secs(10);
    let started = tokio::time::Instant::now();
    let mut received = Vec::new();
    while let Some(event) = next_live(stream).await {
        received.push(event);
        assert!(
            started.elapsed() < deadline,
            "the live stream did not fall quiet within {deadline:?}: {} events so far",
            received.len()
        );
    }
    received
}

// ---- a failed append changes nothing ---------------------------------------------------------

#[tokio::test]
async fn a_failed_append_changes_nothing_and_the_retry_works() {
    let world = Faulty::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let mut live = world.rooms.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    assert_eq!(next_live(&mut live).await.unwrap().seq, Seq::new(1));

    /// Runs `op` once under a failed append, checks that nothing changed, then again.
    macro_rules! fails_then_works {
        ($what:literal, $op:expr) => {{
            let log = world.log(room).await;
            let state = world.state(room).await;
            let seen = world.rooms.room(&agent(), room).await.unwrap();
            world.faults.plan_next(Method::Append, Fault::Fail);
            let failed = $op;
            assert!(is_injected(&failed), "{}: {failed:?}", $what);
            assert_eq!(world.log(room).await, log, "{}: the timeline", $what);
            assert_eq!(world.state(room).await, state, "{}: the stored state", $what);
            assert_eq!(
                world.rooms.room(&agent(), room).await.unwrap(),
                seen,
                "{}: the service's state",
                $what
            );
            assert!(next_live(&mut live).await.is_none(), "{}: no live news", $what);
            let done = $op.unwrap_or_else(|e| panic!("{}: the retry failed: {e}", $what));
            let added = world.log(room).await.split_off(log.len());
            assert!(!added.is_empty(), "{}: the retry recorded", $what);
            for event in &added {
                assert_eq!(
                    next_live(&mut live).await.as_deref(),
                    Some(event),
                    "{}: live, in order",
                    $what
                );
            }
            done
        }};
    }

    fails_then_works!(
        "post",
        world.rooms.post_message(&agent(), room, "hello", Some("k1")).await
    );
    // An invite with its outbox row: only the retry's row is there, and is sent once.
    fails_then_works!(
        "email invite",
        world
            .rooms
            .invite(
                &agent(),
                room,
                InviteRequest::email("Grace", "Hopper", "grace@example.com")
            )
            .await
    );
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    world.clock.advance(HOUR);
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
    assert_eq!(world.sent(), 1, "one invite, one send");
    drain_live(&mut live).await; // the delivery's record

    // A link invite with its credential: the failed attempt returns no link at all.
    let link = fails_then_works!("link", world.rooms.get_link(&agent(), room).await)
        .link
        .unwrap();
    // A join with its session credential.
    let session = fails_then_works!("join", world.rooms.join(link.token()).await);
    let customer = world.rooms.customer_session(session.token.expose()).await.unwrap();
    fails_then_works!(
        "customer post",
        world.rooms.post_message(&customer, room, "hi", Some("k1")).await
    );
    fails_then_works!(
        "document",
        world
            .rooms
            .share_document(&customer, room, upload("scan.png", &png(4, 4)))
            .await
    );
    assert_eq!(world.blobs().await.len(), 1, "the failed upload's bytes are gone");
    fails_then_works!(
        "revoke",
        world.rooms.revoke_session(&agent(), room, session.participant).await
    );
    fails_then_works!("close", world.rooms.close_room(&agent(), room).await);
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_recorded_once_when_retried_with_its_key() {
    let world = Faulty::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let mut live = world.rooms.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    world.faults.plan_next(Method::Append, Fault::LoseAnswer);
    let lost = world.rooms.post_message(&agent(), room, "hello", Some("k1")).await;
    assert!(is_injected(&lost), "{lost:?}");
    assert_eq!(world.log(room).await.len(), 2, "it was written all the same");
    let retried = world
        .rooms
        .post_message(&agent(), room, "hello", Some("k1"))
        .await
        .unwrap();
    assert_eq!(retried.seq, Seq::new(2), "the original, not a second message");
    // The unpublished event reaches live readers with the next one, in order.
    world.rooms.post_message(&agent(), room, "next", None).await.unwrap();
    let received: Vec<u64> = drain_live(&mut live).await.iter().map(|e| e.seq.get()).collect();
    assert_eq!(received, [1, 2, 3]);
    assert_eq!(world.log(room).await.len(), 3);
}

// ---- deliveries: failures and crashes around the send ----------------------------------------

fn sent_records(log: &[Event]) -> usize {
    log.iter()
        .filter(|e| {
            matches!(
                &e.data,
                EventData::InviteDelivery {
                    status: DeliveryStatus::Sent { .. },
                    ..
                }
            )
        })
        .count()
}

#[tokio::test]
async fn a_failed_record_is_written_again_without_sending_again() {
    for fault in [Fault::Fail, Fault::LoseAnswer] {
        let world = Faulty::new();
        let (room, invite) = email_invite(&world.rooms).await;
        // The dispatcher's first append is the record of the send.
        world.faults.plan_next(Method::Append, fault.clone());
        assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1, "{fault:?}");
        world.clock.advance(HOUR);
        assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0, "{fault:?}");
        assert_eq!(world.sent(), 1, "{fault:?}: one send");
        assert_eq!(sent_records(&world.log(room).await), 1, "{fault:?}: one record");
        assert_eq!(
            world.state(room).await.invite(invite).unwrap().status,
            InviteStatus::Sent
        );
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_written_means_one_more_send_after_the_lease() {
    let delivery = DeliveryConfig::default().with_max_attempts(3).unwrap();
    let world = Faulty::with(|b| b.config(RoomsConfig::default().with_delivery(delivery)));
    let (room, invite) = email_invite(&world.rooms).await;
    world.faults.plan_always(Method::Append, Fault::Fail);
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 0, "sent, not recorded");
    world.faults.clear();
    assert_eq!(world.sent(), 1);
    world.clock.advance(Duration::from_secs(59));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0, "the lease holds");
    world.clock.advance(Duration::from_secs(2));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    world.clock.advance(HOUR);
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
    assert_eq!(world.sent(), 2, "at least once: the provider saw it twice");
    assert_eq!(
        sent_records(&world.log(room).await),
        1,
        "the timeline records one delivery"
    );
    // Both messages' links work: the customer may open either.
    for notification in world.email.inner().sent() {
        let token = notification.link.rsplit('/').next().unwrap().to_owned();
        world.rooms.join(&token).await.unwrap();
    }
    assert_eq!(
        world.state(room).await.invite(invite).unwrap().status,
        InviteStatus::Opened
    );
}

#[tokio::test]
async fn a_process_that_dies_at_any_step_of_a_delivery_sends_once_but_between_send_and_record() {
    // The calls a delivery makes, in order: claim the row, read the room, store the token,
    // send, record. The process dies while each is held; a new one takes over.
    let steps = [
        (Method::ClaimOutbox, 1, "before the claim"),
        (Method::ReadEvents, 1, "after the claim"),
        (Method::AddCredential, 1, "after the room was read"),
        (Method::Send, 1, "while sending: the provider never got it"),
        (Method::Append, 2, "after the provider accepted it, before the record"),
    ];
    for (method, sends, moment) in steps {
        let world = Faulty::new();
        let (room, invite) = email_invite(&world.rooms).await;
        let gate = Gate::new();
        world.faults.plan_next(method, Fault::Stall(gate.clone()));
        let pass = tokio::spawn({
            let rooms = world.rooms.clone();
            async move { rooms.dispatch_due().await }
        });
        gate.arrivals(1).await;
        pass.abort(); // the process dies here
        assert!(pass.await.unwrap_err().is_cancelled());

        let provider = Arc::new(RecordingNotifier::new());
        let restarted = Rooms::builder()
            .room_store(world.store.clone())
            .clock(world.clock.clone())
            .email(provider.clone())
            .build();
        for _ in 0..3 {
            restarted.dispatch_due().await.unwrap();
            world.clock.advance(Duration::from_secs(61)); // past any dead dispatcher's lease
        }
        let total = world.sent() + provider.sent().len();
        assert_eq!(total, sends, "dies {moment}: {total} sends");
        assert_eq!(sent_records(&world.log(room).await), 1, "dies {moment}: one record");
        let status = world.state(room).await.invite(invite).unwrap().status;
        assert_eq!(status, InviteStatus::Sent, "dies {moment}");
    }
}

// ---- blobs: stored before their event, swept when orphaned -----------------------------------

fn documents(log: &[Event]) -> Vec<&DocumentMeta> {
    log.iter()
        .filter_map(|e| match &e.data {
            EventData::DocumentShared(meta) => Some(meta),
            _ => None,
        })
        .collect()
}

async fn bytes_of(world: &Faulty, key: &BlobKey) -> Option<Bytes> {
    let download = world.blobs.inner().get(key, None).await.unwrap()?;
    let chunks: Vec<Bytes> = download.stream.try_collect().await.unwrap();
    let mut all = BytesMut::new();
    for chunk in chunks {
        all.extend_from_slice(&chunk);
    }
    Some(all.freeze())
}

#[tokio::test]
async fn a_failed_or_timed_out_put_records_nothing() {
    let world = Faulty::new();
    let (room, customer, _) = room_with_customer(&world.rooms).await;
    let log = world.log(room).await;
    for fault in [
        Fault::Fail,
        Fault::TimeOut(Duration::from_millis(20)),
        Fault::LoseAnswer,
    ] {
        world.faults.plan_next(Method::Put, fault.clone());
        let result = world
            .rooms
            .share_document(&customer, room, upload("scan.png", &png(4, 4)))
            .await;
        assert!(is_injected(&result), "{fault:?}: {result:?}");
        assert_eq!(world.log(room).await, log, "{fault:?}: no event");
        assert!(world.blobs().await.is_empty(), "{fault:?}: no bytes left");
    }
}

#[tokio::test]
async fn a_stalled_upload_records_nothing_until_its_bytes_are_stored_and_chat_goes_on() {
    let world = Faulty::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let mut live = world.rooms.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    next_live(&mut live).await.unwrap();
    let gate = Gate::new();
    world.faults.plan_next(Method::Put, Fault::Stall(gate.clone()));
    let image = png(8, 8);
    let sharing = tokio::spawn({
        let rooms = world.rooms.clone();
        let image = image.clone();
        async move { rooms.share_document(&agent(), room, upload("a.png", &image)).await }
    });
    gate.arrivals(1).await;
    for i in 0..20 {
        let posted = world
            .rooms
            .post_message(&agent(), room, &format!("while uploading {i}"), None)
            .await
            .unwrap();
        assert_eq!(next_live(&mut live).await.as_deref(), Some(&posted));
    }
    assert!(
        documents(&world.log(room).await).is_empty(),
        "no event before the bytes"
    );
    assert!(world.blobs().await.is_empty());
    gate.release();
    let event = sharing.await.unwrap().unwrap();
    assert_eq!(next_live(&mut live).await.as_deref(), Some(&event));
    let log = world.log(room).await;
    let shared = documents(&log);
    assert_eq!(shared.len(), 1);
    assert_eq!(bytes_of(&world, &shared[0].blob).await.as_deref(), Some(&image[..]));
    assert_eq!(shared[0].sha256, blob::Sha256Digest::of(&image));
}

#[tokio::test]
async fn a_blob_left_without_its_event_is_swept_after_the_grace() {
    let world = Faulty::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let kept = world
        .rooms
        .share_document(&agent(), room, upload("kept.png", &png(2, 2)))
        .await
        .unwrap();
    // The append fails, and so does the clean-up's delete: the bytes stay behind.
    world.faults.plan_next(Method::Append, Fault::Fail);
    world.faults.plan_next(Method::Delete, Fault::Fail);
    let failed = world
        .rooms
        .share_document(&agent(), room, upload("lost.png", &png(3, 3)))
        .await;
    assert!(is_injected(&failed), "{failed:?}");
    assert_eq!(world.blobs().await.len(), 2, "an orphan");
    // Not ours to judge: a room this service does not know, a key of another shape.
    let foreign = [
        BlobKey::for_document(&tenant(), RoomId::from_u128(77), DocumentId::from_u128(78)),
        BlobKey::parse("backups/rooms.db").unwrap(),
    ];
    for key in &foreign {
        world
            .blobs
            .inner()
            .put(key, Box::pin(stream::iter([Ok(Bytes::from_static(b"x"))])), 10)
            .await
            .unwrap();
    }

    world.clock.advance(Duration::from_secs(59 * 60));
    let early = world.rooms.sweep_orphan_documents().await.unwrap();
    assert_eq!(
        (early.examined, early.orphans),
        (4, 0),
        "young blobs may be uploads under way"
    );
    world.clock.advance(Duration::from_secs(61));
    // The first delete fails too: logged, tried again next time.
    world.faults.plan_next(Method::Delete, Fault::Fail);
    let sweep = world.rooms.sweep_orphan_documents().await.unwrap();
    assert_eq!((sweep.orphans, sweep.deleted), (1, 0));
    let sweep = world.rooms.sweep_orphan_documents().await.unwrap();
    assert_eq!((sweep.examined, sweep.orphans, sweep.deleted), (4, 1, 1));
    let mut left: Vec<BlobKey> = world.blobs().await.into_iter().map(|b| b.key).collect();
    left.sort();
    let mut expected = vec![
        documents(std::slice::from_ref(&kept))[0].blob.clone(),
        foreign[0].clone(),
        foreign[1].clone(),
    ];
    expected.sort();
    assert_eq!(left, expected, "only the orphan went");
    let again = world.rooms.sweep_orphan_documents().await.unwrap();
    assert_eq!(again.orphans, 0);

    // A listing that fails fails the sweep, and deletes nothing.
    world.faults.plan_next(Method::List, Fault::Fail);
    assert!(is_injected(&world.rooms.sweep_orphan_documents().await));
}

#[tokio::test]
async fn an_upload_that_waits_past_half_the_grace_is_not_recorded() {
    let world = Faulty::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    // A PDF is read back whole for its page count: hold that read.
    let gate = Gate::new();
    world.faults.plan_next(Method::Get, Fault::Stall(gate.clone()));
    let sharing = tokio::spawn({
        let rooms = world.rooms.clone();
        async move {
            rooms
                .share_document(&agent(), room, upload("slow.pdf", &pdf_with_pages(2)))
                .await
        }
    });
    gate.arrivals(1).await;
    world.clock.advance(Duration::from_secs(31 * 60));
    gate.release();
    let result = sharing.await.unwrap();
    assert!(matches!(result, Err(Error::Backend { .. })), "{result:?}");
    assert!(documents(&world.log(room).await).is_empty());
    assert!(world.blobs().await.is_empty(), "its bytes were deleted");
}

#[tokio::test]
async fn no_event_names_a_missing_blob_under_random_faults() {
    let world = Faulty::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    // A fixed seed: the same faults on every run.
    let mut seed: u64 = 0x5eed_f0fa;
    let mut random = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let methods = [Method::Put, Method::Append, Method::Delete, Method::Get];
    let mut outcomes = [0usize; 2];
    for i in 0..60 {
        for method in methods {
            let fault = match random(6) {
                0 => Some(Fault::Fail),
                1 => Some(Fault::LoseAnswer),
                2 => Some(Fault::TimeOut(Duration::from_millis(1))),
                _ => None,
            };
            if let Some(fault) = fault {
                world.faults.plan_next(method, fault);
            }
        }
        let file = if i % 3 == 0 {
            upload("doc.pdf", &pdf_with_pages(1))
        } else {
            upload("image.png", &png(2, 2 + i))
        };
        let shared = world.rooms.share_document(&agent(), room, file).await;
        outcomes[usize::from(shared.is_ok())] += 1;
        world.faults.clear();
        world.clock.advance(Duration::from_secs(1));
        // Whatever failed: every event names stored bytes, of the recorded size.
        for meta in documents(&world.log(room).await) {
            let bytes = bytes_of(&world, &meta.blob).await;
            assert_eq!(bytes.map(|b| b.len() as u64), Some(meta.size), "upload {i}: {meta:?}");
        }
    }
    assert!(
        outcomes[0] > 5 && outcomes[1] > 5,
        "both outcomes happened: {outcomes:?}"
    );
    world.clock.advance(HOUR);
    world.rooms.sweep_orphan_documents().await.unwrap();
    let log = world.log(room).await;
    let named: Vec<&BlobKey> = documents(&log).iter().map(|m| &m.blob).collect();
    let stored = world.blobs().await;
    assert_eq!(stored.len(), named.len(), "after the sweep, every stored blob is named");
    assert!(stored.iter().all(|b| named.contains(&&b.key)));
}

// ---- a stalled provider ----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_stalled_provider_does_not_block_chat_and_is_given_up_in_time() {
    let faults = Faults::new();
    let gate = Gate::new(); // never released: the provider hangs
    faults.plan(Method::Send, 1, Fault::Stall(gate.clone()));
    let sms = Arc::new(FaultyNotifier::new(RecordingNotifier::new(), faults.clone()));
    let rooms = Rooms::builder()
        .clock(TokioClock {
            start: tokio::time::Instant::now(),
        })
        .sms(sms.clone())
        .build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    let invite = rooms
        .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", "+447911123456"))
        .await
        .unwrap()
        .invite;
    let mut live = rooms.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    gate.arrivals(1).await;
    let stalled_at = tokio::time::Instant::now();
    // Chat flows while the provider hangs.
    let mut posted = Vec::new();
    for i in 0..50 {
        posted.push(
            rooms
                .post_message(&agent(), room, &format!("m{i}"), None)
                .await
                .unwrap(),
        );
    }
    let last = posted.last().unwrap().seq;
    let mut seen = Vec::new();
    while seen.last().is_none_or(|e: &Event| e.seq < last) {
        // Time is paused: if nothing comes, the deadline passes at once and fails the test.
        let next = tokio::time::timeout(Duration::from_secs(60), live.next())
            .await
            .unwrap_or_else(|_| panic!("post {last} never came live; the last seen: {:?}", seen.last()));
        seen.push(Event::clone(&next.unwrap().unwrap()));
    }
    assert!(seen.ends_with(&posted), "every post, live and in order");
    assert_eq!(stalled_at.elapsed(), Duration::ZERO, "no waiting on the provider");

    // The hung call is given up before the lease ends, and retried: the second call goes through.
    tokio::time::sleep(Duration::from_secs(120)).await;
    dispatcher.abort();
    assert_eq!(faults.calls(Method::Send), 2);
    assert_eq!(sms.inner().sent().len(), 1);
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.invite(invite).unwrap().status, InviteStatus::Sent);
    let log = rooms
        .timeline(
            &agent(),
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 1000,
            },
        )
        .await
        .unwrap();
    assert_eq!(sent_records(&log), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_provider_holds_up_only_its_own_invites() {
    let faults = Faults::new();
    let gate = Gate::new(); // never released: the SMS provider hangs
    faults.plan(Method::Send, 1, Fault::Stall(gate.clone()));
    let sms = Arc::new(FaultyNotifier::new(RecordingNotifier::new(), faults.clone()));
    let email = Arc::new(RecordingNotifier::new());
    let rooms = Rooms::builder()
        .clock(TokioClock {
            start: tokio::time::Instant::now(),
        })
        .sms(sms.clone())
        .email(email.clone())
        .build();
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    let first = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(&agent(), first, InviteRequest::sms("Grace", "Hopper", "+447911123456"))
        .await
        .unwrap();
    gate.arrivals(1).await;
    let queued = tokio::time::Instant::now();
    let second = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            second,
            InviteRequest::email("Ada", "Lovelace", "ada@example.com"),
        )
        .await
        .unwrap();
    // Time is paused: the polling costs nothing, and once the limit has passed the test fails
    // instead of polling for ever.
    let limit = Duration::from_secs(1);
    while email.sent().is_empty() {
        assert!(
            queued.elapsed() <= limit,
            "the email invite was not sent within {limit:?} of the hung SMS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        queued.elapsed() <= limit,
        "the email waited {:?} for the hung SMS",
        queued.elapsed()
    );
    dispatcher.abort();
}

/// The blobs stored under `prefix`, read behind the faults.
async fn blobs_under(world: &Faulty, prefix: &BlobPrefix) -> usize {
    world
        .blobs
        .inner()
        .list(prefix)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn an_erasure_that_failed_is_finished_by_asking_again() {
    let world = Faulty::new();
    let rooms = &world.rooms;
    let (room, customer, _) = room_with_customer(rooms).await;
    rooms
        .share_document(&customer, room, upload("scan.png", &png(8, 8)))
        .await
        .unwrap();
    let prefix = BlobPrefix::room(&tenant(), room);
    assert!(blobs_under(&world, &prefix).await > 0);

    world.faults.plan_next(Method::Erase, Fault::Fail);
    rooms.erase_room(&agent(), room).await.expect_err("the store failed");
    // The documents went first; the log is as it was, and the room is not erased yet.
    assert_eq!(blobs_under(&world, &prefix).await, 0);
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_ne!(state.status(), RoomStatus::Erased);

    rooms.erase_room(&agent(), room).await.expect("asked again");
    assert_eq!(rooms.room(&agent(), room).await.unwrap().status(), RoomStatus::Erased);
    assert!(
        world
            .log(room)
            .await
            .iter()
            .all(|e| !matches!(e.data, EventData::MessagePosted { .. }))
    );
}

#[tokio::test]
async fn a_retention_sweep_stopped_half_way_is_finished_by_the_next() {
    let world = Faulty::with(|builder| {
        builder.config(
            RoomsConfig::default()
                .with_retention(Duration::from_secs(86_400))
                .unwrap(),
        )
    });
    let rooms = &world.rooms;
    let mut closed = Vec::new();
    for _ in 0..5 {
        let (room, customer, _) = room_with_customer(rooms).await;
        rooms
            .share_document(&customer, room, upload("scan.png", &png(8, 8)))
            .await
            .unwrap();
        rooms.close_room(&agent(), room).await.unwrap();
        closed.push(room);
    }
    world.clock.advance(Duration::from_secs(2 * 86_400));

    // The third purge fails after the room's documents went: it is counted, not lost.
    world.faults.plan(Method::Purge, 3, Fault::Fail);
    let first = rooms.sweep_retention().await.unwrap();
    assert_eq!((first.purged, first.failed), (4, 1));
    let mut left = 0;
    for room in &closed {
        left += usize::from(world.store.room_summary(*room).await.unwrap().is_some());
    }
    assert_eq!(left, 1, "the room whose purge failed is still listed");

    let second = rooms.sweep_retention().await.unwrap();
    assert_eq!((second.purged, second.failed), (1, 0));
    for room in &closed {
        assert!(matches!(rooms.room(&agent(), *room).await, Err(Error::NotFound { .. })));
        assert_eq!(blobs_under(&world, &BlobPrefix::room(&tenant(), *room)).await, 0);
    }
}
