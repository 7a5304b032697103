//! Languages: an invite's text follows the invite's locale, then the tenant's, then the
//! deployment's; the locale is recorded in the invite's event, and logs from before still read.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use collab_core::notify::InviteTemplates;
use collab_core::rooms::{InviteRequest, RoomsConfig};
use collab_core::*;
use common::*;

fn locale(tag: &str) -> Locale {
    Locale::parse(tag).expect("a tag")
}

/// English by default; Spanish and Hebrew texts configured, as the example server does.
fn config() -> RoomsConfig {
    RoomsConfig::default()
        .with_templates_for(locale("es"), InviteTemplates::built_in(&locale("es")).unwrap())
        .with_templates_for(locale("he"), InviteTemplates::built_in(&locale("he")).unwrap())
}

/// Sends one email invite of `tenant()` with `request` and returns what the provider got.
async fn sent_subject_and_text(config: RoomsConfig, request: InviteRequest) -> (String, String) {
    let world = World::with(|builder| builder.config(config));
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    world.rooms.invite(&agent(), room, request).await.unwrap();
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    let sent = world.email.sent();
    (sent[0].subject.clone().unwrap(), sent[0].text.clone())
}

fn grace() -> InviteRequest {
    InviteRequest::email("Grace", "Hopper", "grace@example.com")
}

#[tokio::test]
async fn an_invite_in_spanish_is_sent_with_the_spanish_texts() {
    let (subject, text) = sent_subject_and_text(config(), grace().with_locale("es")).await;
    assert_eq!(subject, "Su sala de colaboración");
    assert!(text.starts_with("Hola, Grace:"), "{text}");
    assert!(text.contains("/join/"), "the link is in: {text}");

    // A region falls back to its language's texts.
    let (subject, _) = sent_subject_and_text(config(), grace().with_locale("es-MX")).await;
    assert_eq!(subject, "Su sala de colaboración");
}

#[tokio::test]
async fn a_tenant_in_spanish_gets_spanish_invites_unless_the_invite_names_another_locale() {
    let spanish_tenant = config().with_tenant_locale(tenant(), locale("es"));
    let (subject, _) = sent_subject_and_text(spanish_tenant.clone(), grace()).await;
    assert_eq!(subject, "Su sala de colaboración");
    let (subject, _) = sent_subject_and_text(spanish_tenant.clone(), grace().with_locale("he")).await;
    assert_eq!(subject, "חדר שיתוף הפעולה שלכם");
    // An invite's locale without texts falls back to the tenant's.
    let (subject, _) = sent_subject_and_text(spanish_tenant, grace().with_locale("fr")).await;
    assert_eq!(subject, "Su sala de colaboración");
}

#[tokio::test]
async fn without_a_matching_locale_the_default_texts_are_used() {
    let (subject, _) = sent_subject_and_text(config(), grace()).await;
    assert_eq!(subject, "Your collaboration room");
    let (subject, _) = sent_subject_and_text(config(), grace().with_locale("de")).await;
    assert_eq!(subject, "Your collaboration room");
    // Another tenant's locale does not leak into this one's invites.
    let other = config().with_tenant_locale(TenantId::new("other").unwrap(), locale("es"));
    let (subject, _) = sent_subject_and_text(other, grace()).await;
    assert_eq!(subject, "Your collaboration room");
    // The deployment's locale applies to tenants without their own.
    let spanish_default = config().with_default_locale(locale("es"));
    let (subject, _) = sent_subject_and_text(spanish_default, grace()).await;
    assert_eq!(subject, "Su sala de colaboración");
}

#[tokio::test]
async fn an_sms_invite_in_hebrew_is_sent_with_the_hebrew_text() {
    let world = World::with(|builder| builder.config(config()));
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let request = InviteRequest::sms("Grace", "Hopper", "+447911123456").with_locale("he");
    let issued = world.rooms.invite(&agent(), room, request).await.unwrap();
    // The segment count is of the text that will be sent: Hebrew is UCS-2, 67 per segment.
    assert!(issued.sms_segments.unwrap() >= 2, "{:?}", issued.sms_segments);
    world.rooms.dispatch_due().await.unwrap();
    let sent = world.sms.sent();
    assert!(sent[0].text.starts_with("שלום Grace"), "{}", sent[0].text);
}

#[tokio::test]
async fn a_bad_locale_is_refused_naming_the_field_and_changes_nothing() {
    let world = World::with(|builder| builder.config(config()));
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    for bad in ["", "english", "es_ES", "es-MX-<script>"] {
        let refused = world.rooms.invite(&agent(), room, grace().with_locale(bad)).await;
        assert!(
            matches!(refused, Err(Error::Invalid { field: "locale", .. })),
            "{bad:?}: {refused:?}"
        );
    }
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.status(), RoomStatus::Draft);
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn the_locale_is_recorded_in_the_invite_event() {
    let world = World::with(|builder| builder.config(config()));
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    world
        .rooms
        .invite(&agent(), room, grace().with_locale("ES"))
        .await
        .unwrap();
    let events = world
        .rooms
        .timeline(&agent(), room, rooms::TimelineQuery::Latest { limit: 10 })
        .await
        .unwrap();
    let recorded = events.iter().find_map(|e| match &e.data {
        EventData::CustomerInvited { locale, .. } => Some(locale.clone()),
        _ => None,
    });
    assert_eq!(recorded, Some(Some(locale("es"))));
}

#[test]
fn invite_events_without_a_locale_read_as_before() {
    // As logs written before locales existed hold them.
    let old = r#"{"type":"customer_invited","invite":"00000000-0000-0000-0000-000000000002","channel":"link",
        "customer":{"first_name":"Grace","last_name":"Hopper","phone":null,"email":null},
        "recipient":null,"expires_at":1795857000000}"#;
    let data: EventData = serde_json::from_str(old).expect("an old event reads");
    assert!(matches!(data, EventData::CustomerInvited { locale: None, .. }));
    // Written again, it has no locale key: old readers read new logs of invites without one.
    let json = serde_json::to_string(&data).unwrap();
    assert!(!json.contains("locale"), "{json}");
    let EventData::CustomerInvited {
        invite,
        channel,
        customer,
        recipient,
        expires_at,
        ..
    } = data
    else {
        unreachable!()
    };
    let with_locale = EventData::CustomerInvited {
        invite,
        channel,
        customer,
        recipient,
        expires_at,
        locale: Some(locale("he")),
    };
    let json = serde_json::to_string(&with_locale).unwrap();
    assert!(json.contains(r#""locale":"he""#), "{json}");
    assert_eq!(serde_json::from_str::<EventData>(&json).unwrap(), with_locale);
    // A stored tag that is not one is refused when read, not taken as text.
    let bad = json.replace(r#""locale":"he""#, r#""locale":"he he""#);
    assert!(serde_json::from_str::<EventData>(&bad).is_err());
}
