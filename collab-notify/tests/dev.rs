//! The dev inbox: keeps the last N invites, newest first, and logs instead of sending.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use collab_core::notify::Notifier;
use collab_core::rooms::InviteRequest;
use collab_core::time::ManualClock;
use collab_core::*;
use collab_notify::DevInbox;
use common::*;

#[tokio::test]
async fn it_keeps_the_last_n_newest_first() {
    let inbox = DevInbox::with_clock(2, ManualClock::new(T0));
    for number in ["+33612345601", "+33612345602", "+33612345603"] {
        inbox.send(&sms(number)).await.unwrap();
    }
    let held: Vec<String> = inbox.messages().iter().map(|m| m.recipient.to_string()).collect();
    assert_eq!(held, ["+33612345603", "+33612345602"]);
    assert!(inbox.latest_for("+33612345601").is_none(), "the oldest went");
    let latest = inbox.latest_for("+33612345602").unwrap();
    assert_eq!(latest.at, T0);
    assert!(
        !format!("{latest:?} {inbox:?}").contains("t0k3n"),
        "Debug hides the link"
    );
    inbox.clear();
    assert!(inbox.messages().is_empty());
}

#[tokio::test]
async fn sms_and_email_invites_land_with_working_links() {
    let clock = clock();
    let inbox = DevInbox::new(10);
    let rooms = builder(&clock).sms(inbox.clone()).email(inbox.clone()).build();
    let (room, _) = sms_invite(&rooms, "+33612345678").await;
    rooms
        .invite(
            &agent(),
            room,
            InviteRequest::again(Channel::Email, Some("grace@example.com")),
        )
        .await
        .unwrap();
    assert_eq!(rooms.dispatch_due().await.unwrap().sent, 2);
    let email = inbox.latest_for("grace@example.com").unwrap();
    assert_eq!(email.subject.as_deref(), Some("Your collaboration room"));
    let sms = inbox.latest_for("+33612345678").unwrap();
    for message in [&email, &sms] {
        assert!(message.text.contains(&message.link));
        let token = message.link.rsplit('/').next().unwrap();
        rooms.join(token).await.expect("each link lets the customer in");
    }
}
