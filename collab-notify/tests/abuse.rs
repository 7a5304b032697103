//! Abuse limits: pumping through consecutive numbers, cool-downs, countries, number types,
//! counts that survive a restart, and invites versus joins.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use collab_core::guard::MemoryCounterStore;
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{InviteRequest, Rooms};
use collab_core::time::ManualClock;
use collab_core::*;
use collab_notify::abuse::{AbuseLimits, Limit, SmsAbuseGuard};
use collab_notify::twilio::TwilioSms;
use collab_store_sqlite::SqliteRoomStore;
use common::*;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn twilio(server: &MockServer) -> TwilioSms {
    TwilioSms::new(Providers::at(server).twilio()).unwrap()
}

/// The service over the SQLite file at `path`, its guard counting in the same database.
async fn service(path: &Path, server: &MockServer, clock: &Arc<ManualClock>) -> (Rooms, Arc<SmsAbuseGuard>) {
    let store = SqliteRoomStore::open(path).await.unwrap();
    let guard = Arc::new(SmsAbuseGuard::new(store.clone()).with_clock(clock.clone()));
    let rooms = builder(clock)
        .room_store(store)
        .sms(twilio(server))
        .invite_guard(guard.clone())
        .build();
    (rooms, guard)
}

/// Consecutive mobile numbers of one block: +33 6 12 34 50 00, …01, …
fn number(i: usize) -> String {
    format!("+33612345{i:03}")
}

async fn invite_new_room(rooms: &Rooms, number: &str) -> Result<InviteId, Error> {
    let room = rooms.create_room(&agent()).await?.room;
    rooms
        .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", number))
        .await
        .map(|issued| issued.invite)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pumping_consecutive_numbers_stops_at_the_quota_and_stays_stopped_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rooms.db");
    let server = MockServer::start().await;
    let quota = AbuseLimits::default().per_block().0.count();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM1" })))
        .expect(u64::from(quota))
        .mount(&server)
        .await;
    let clock = clock();

    let (rooms, _) = service(&path, &server, &clock).await;
    let mut admitted = 0;
    let mut refusals = Vec::new();
    for i in 0..200 {
        match invite_new_room(&rooms, &number(i)).await {
            Ok(_) => admitted += 1,
            Err(e) => refusals.push((i, e)),
        }
        if i % 20 == 19 {
            rooms.dispatch_due().await.unwrap();
        }
        clock.advance(Duration::from_millis(500));
    }
    rooms.dispatch_due().await.unwrap();
    assert_eq!(admitted, quota, "the block quota, then refusals");
    assert_eq!(refusals.len(), 200 - quota as usize);
    assert_eq!(
        refusals[0].0, quota as usize,
        "refused from the first invite past the quota"
    );
    for (i, refusal) in &refusals {
        assert!(
            matches!(refusal, Error::RateLimited { retry_after } if *retry_after <= HOUR && !retry_after.is_zero()),
            "invite {i}: {refusal:?}"
        );
    }
    assert_eq!(server.received_requests().await.unwrap().len(), quota as usize);

    // A new process over the same database: the counts are still there.
    drop(rooms);
    clock.advance(Duration::from_secs(60));
    let (rooms, guard) = service(&path, &server, &clock).await;
    for i in [200, 201, 500, 999] {
        let refused = invite_new_room(&rooms, &number(i)).await;
        assert!(matches!(refused, Err(Error::RateLimited { .. })), "{i}: {refused:?}");
    }
    rooms.dispatch_due().await.unwrap();
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        quota as usize,
        "no provider call beyond the quota"
    );
    let stats = guard.stats(&TenantId::new("acme").unwrap(), T0).await.unwrap();
    assert_eq!((stats.invited, stats.sms), (quota, quota));

    // Another block is not affected; the same block is, until the hour has passed.
    assert!(invite_new_room(&rooms, "+33698765432").await.is_ok());
    clock.advance(HOUR);
    assert!(invite_new_room(&rooms, &number(300)).await.is_ok());
}

#[tokio::test]
async fn re_invites_to_one_number_cool_down_exponentially_and_stop_at_three_an_hour() {
    let clock = clock();
    let sms = Arc::new(RecordingNotifier::new());
    let guard = SmsAbuseGuard::new(MemoryCounterStore::new()).with_clock(clock.clone());
    let rooms = builder(&clock).sms(sms.clone()).invite_guard(guard).build();
    let (room, _) = sms_invite(&rooms, "+33612345678").await;
    // Each invite is sent before the next: a later one supersedes an earlier one still queued.
    rooms.dispatch_due().await.unwrap();
    let ada = agent();
    let again = || rooms.invite(&ada, room, InviteRequest::again(Channel::Sms, None));

    // One minute after the first, two after the second.
    let refused = again().await;
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == Duration::from_secs(60)),
        "{refused:?}"
    );
    clock.advance(Duration::from_secs(60));
    again().await.expect("after a minute");
    rooms.dispatch_due().await.unwrap();
    clock.advance(Duration::from_secs(90));
    let refused = again().await;
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == Duration::from_secs(30)),
        "{refused:?}"
    );
    clock.advance(Duration::from_secs(30));
    again().await.expect("after two minutes");
    rooms.dispatch_due().await.unwrap();
    // The fourth within the hour: the per-number limit, until the first leaves the window.
    clock.advance(Duration::from_secs(600));
    let refused = again().await;
    let first_leaves = HOUR - Duration::from_secs(60 + 90 + 30 + 600);
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == first_leaves),
        "{refused:?}"
    );
    clock.advance(first_leaves);
    again()
        .await
        .expect("a fresh hour, and the 4-minute cool-down long over");
    assert_eq!(rooms.dispatch_due().await.unwrap().sent, 1);
    assert_eq!(sms.attempts(), 4, "refused invites never reach the provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mailbox_in_other_letter_cases_shares_the_cool_down_and_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let counters = SqliteRoomStore::open(dir.path().join("counters.db")).await.unwrap();
    let guard = SmsAbuseGuard::new(counters).with_clock(clock.clone());
    let email = Arc::new(RecordingNotifier::new());
    let rooms = builder(&clock).email(email.clone()).invite_guard(guard).build();
    let invite_new_room = async |address: &str| {
        let room = rooms.create_room(&agent()).await?.room;
        rooms
            .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", address))
            .await
    };

    invite_new_room("Victim@x.com").await.expect("the first invite");
    clock.advance(Duration::from_secs(30));
    let refused = invite_new_room("vIctim@x.com").await;
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == Duration::from_secs(30)),
        "the same mailbox, within its cool-down: {refused:?}"
    );
    // Past each cool-down (one minute, then two), the per-recipient count of three an hour.
    clock.advance(Duration::from_secs(30));
    invite_new_room("VICTIM@X.COM").await.expect("after a minute");
    clock.advance(Duration::from_secs(120));
    invite_new_room("victim@x.com").await.expect("after two more");
    clock.advance(Duration::from_secs(240));
    let refused = invite_new_room("ViCtIm@x.com").await;
    let first_leaves = HOUR - Duration::from_secs(30 + 30 + 120 + 240);
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == first_leaves),
        "the fourth within the hour: {refused:?}"
    );
    assert_eq!(rooms.dispatch_due().await.unwrap().sent, 3);
    assert_eq!(email.attempts(), 3, "refused invites are not sent");
}

#[tokio::test]
async fn countries_outside_the_allow_list_are_not_allowed_and_nothing_is_recorded() {
    let clock = clock();
    let sms = Arc::new(RecordingNotifier::new());
    let limits = AbuseLimits::default().with_countries(["FR", "DE"]).unwrap();
    let guard = SmsAbuseGuard::new(MemoryCounterStore::new()).with_limits(limits);
    let rooms = builder(&clock).sms(sms.clone()).invite_guard(guard).build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    for abroad in ["+12025550123", "+447911123456"] {
        let refused = rooms
            .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", abroad))
            .await;
        assert!(
            matches!(refused, Err(Error::NotAllowed { .. })),
            "{abroad}: {refused:?}"
        );
    }
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.status(), RoomStatus::Draft, "nothing recorded");
    rooms
        .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", "+4915112345678"))
        .await
        .expect("Germany is allowed");
    rooms.dispatch_due().await.unwrap();
    assert_eq!(sms.attempts(), 1);
}

#[tokio::test]
async fn numbers_the_plan_marks_as_not_mobile_are_refused() {
    let clock = clock();
    let sms = Arc::new(RecordingNotifier::new());
    let guard = SmsAbuseGuard::new(MemoryCounterStore::new());
    let rooms = builder(&clock).sms(sms.clone()).invite_guard(guard).build();
    // Fixed line (London, Paris), premium rate, toll free.
    for landline in ["+442071838750", "+33123456789", "+449098790123", "+448001234567"] {
        let refused = invite_new_room(&rooms, landline).await;
        assert!(
            matches!(refused, Err(Error::NotAllowed { .. })),
            "{landline}: {refused:?}"
        );
    }
    // Mobile, and "fixed line or mobile" where the plan cannot tell (North America).
    for mobile in ["+33612345678", "+12025550123"] {
        invite_new_room(&rooms, mobile).await.expect(mobile);
    }
    rooms.dispatch_due().await.unwrap();
    assert_eq!(sms.attempts(), 2);

    // Turned off, the fixed line goes through.
    let guard =
        SmsAbuseGuard::new(MemoryCounterStore::new()).with_limits(AbuseLimits::default().with_refuse_non_mobile(false));
    let rooms = builder(&clock)
        .sms(RecordingNotifier::new())
        .invite_guard(guard)
        .build();
    invite_new_room(&rooms, "+442071838750").await.unwrap();
}

#[tokio::test]
async fn agents_rooms_and_tenants_have_their_own_limits() {
    let clock = clock();
    let limits = AbuseLimits::default()
        .with_per_agent(Limit::per_hour(3).unwrap())
        .with_tenant_daily_sms(5)
        .unwrap()
        .with_per_room(Limit::per_day(2).unwrap());
    let guard = SmsAbuseGuard::new(MemoryCounterStore::new())
        .with_limits(limits)
        .with_clock(clock.clone());
    let rooms = builder(&clock)
        .sms(RecordingNotifier::new())
        .email(RecordingNotifier::new())
        .invite_guard(guard)
        .build();

    // Per agent: ada's fourth invite within the hour is refused, bob still may.
    for i in 0..3 {
        invite_new_room(&rooms, &format!("+3361111100{i}")).await.unwrap();
    }
    let refused = invite_new_room(&rooms, "+33622222200").await;
    assert!(matches!(refused, Err(Error::RateLimited { .. })), "{refused:?}");
    let bob = agent_named("bob");
    let room = rooms.create_room(&bob).await.unwrap().room;
    rooms
        .invite(&bob, room, InviteRequest::sms("Ann", "Lee", "+33633333300"))
        .await
        .unwrap();

    // Per room: a third invite in one room within the day (email this time) is refused.
    rooms
        .invite(
            &bob,
            room,
            InviteRequest::again(Channel::Email, Some("ann@example.com")),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    let refused = rooms
        .invite(&bob, room, InviteRequest::again(Channel::Email, None))
        .await;
    assert!(matches!(refused, Err(Error::RateLimited { .. })), "{refused:?}");

    // Per tenant: the sixth SMS of the day is refused, whoever sends it.
    let carol = agent_named("carol");
    let room = rooms.create_room(&carol).await.unwrap().room;
    rooms
        .invite(&carol, room, InviteRequest::sms("Bo", "Ng", "+33644444400"))
        .await
        .unwrap();
    let dave = agent_named("dave");
    let room = rooms.create_room(&dave).await.unwrap().room;
    let refused = rooms
        .invite(&dave, room, InviteRequest::sms("Cy", "Ode", "+33655555500"))
        .await;
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after > Duration::from_secs(20 * 3600)),
        "the daily cap: {refused:?}"
    );
}

#[tokio::test]
async fn hammering_one_number_does_not_use_up_the_tenant_s_quota() {
    let clock = clock();
    let limits = AbuseLimits::default().with_tenant_daily_sms(4).unwrap();
    let guard = SmsAbuseGuard::new(MemoryCounterStore::new())
        .with_limits(limits)
        .with_clock(clock.clone());
    let rooms = builder(&clock)
        .sms(RecordingNotifier::new())
        .invite_guard(guard)
        .build();
    let (room, _) = sms_invite(&rooms, "+33612345678").await;
    for _ in 0..50 {
        let refused = rooms
            .invite(&agent(), room, InviteRequest::again(Channel::Sms, None))
            .await;
        assert!(matches!(refused, Err(Error::RateLimited { .. })));
    }
    for i in 0..3 {
        let agent = agent_named(&format!("agent-{i}"));
        let room = rooms.create_room(&agent).await.unwrap().room;
        rooms
            .invite(
                &agent,
                room,
                InviteRequest::sms("Ann", "Lee", &format!("+3369876540{i}")),
            )
            .await
            .expect("the tenant's quota is intact");
    }
}

#[tokio::test]
async fn invites_and_joins_are_counted_per_tenant() {
    let clock = clock();
    let guard = Arc::new(SmsAbuseGuard::new(MemoryCounterStore::new()).with_clock(clock.clone()));
    let sms = Arc::new(RecordingNotifier::new());
    let rooms = builder(&clock)
        .sms(sms.clone())
        .email(RecordingNotifier::new())
        .invite_guard(guard.clone())
        .build();
    for i in 0..4 {
        sms_invite(&rooms, &format!("+3361234560{i}")).await;
    }
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap();
    rooms.dispatch_due().await.unwrap();
    // One customer opens the SMS link.
    let text = &sms.sent()[0].text;
    let token = text.rsplit('/').next().unwrap();
    rooms.join(token).await.unwrap();

    let stats = guard.stats(&TenantId::new("acme").unwrap(), T0).await.unwrap();
    assert_eq!((stats.invited, stats.sms, stats.joined), (5, 4, 1));
    assert_eq!(stats.join_rate(), Some(0.2));
    let other = guard.stats(&TenantId::new("other").unwrap(), T0).await.unwrap();
    assert_eq!(other.join_rate(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_hold_no_phone_number() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM1" })))
        .mount(&server)
        .await;
    let clock = clock();
    // The guard counts in a database of its own, so that its file holds nothing else.
    let counters_path = dir.path().join("counters.db");
    let counters = SqliteRoomStore::open(&counters_path).await.unwrap();
    let guard = Arc::new(SmsAbuseGuard::new(counters.clone()).with_clock(clock.clone()));
    let rooms = builder(&clock)
        .room_store(SqliteRoomStore::open(dir.path().join("rooms.db")).await.unwrap())
        .sms(twilio(&server))
        .invite_guard(guard)
        .build();
    for i in 0..3 {
        invite_new_room(&rooms, &number(i)).await.unwrap();
        clock.advance(Duration::from_secs(600));
    }
    rooms.dispatch_due().await.unwrap();
    // Read while the stores are open: the rows are in the database file or its log.
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let mut path = counters_path.clone().into_os_string();
        path.push(suffix);
        bytes.extend(std::fs::read(&path).unwrap_or_default());
    }
    let key = b"collab-notify:to:";
    assert!(
        bytes.windows(key.len()).any(|w| w == key),
        "the guard counted the invites"
    );
    let digits = b"612345";
    assert!(
        !bytes.windows(digits.len()).any(|w| w == digits),
        "a phone number's digits are in the counter store"
    );
}

#[tokio::test]
async fn counts_older_than_any_window_are_forgotten_on_request() {
    let clock = clock();
    let store = Arc::new(MemoryCounterStore::new());
    let guard = Arc::new(SmsAbuseGuard::new(store.clone()).with_clock(clock.clone()));
    let rooms = builder(&clock)
        .sms(RecordingNotifier::new())
        .invite_guard(guard.clone())
        .build();
    sms_invite(&rooms, "+33612345678").await;
    let tenant = TenantId::new("acme").unwrap();
    let epoch = Timestamp::from_unix_millis(0);
    assert_eq!(guard.stats(&tenant, epoch).await.unwrap().invited, 1);
    assert_eq!(guard.forget_old_hits().await.unwrap(), 0, "nothing old yet");

    clock.advance(Duration::from_secs(32 * 24 * 3600));
    assert!(guard.forget_old_hits().await.unwrap() >= 1);
    assert_eq!(guard.stats(&tenant, epoch).await.unwrap().invited, 0);
}
