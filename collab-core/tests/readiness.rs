//! `Rooms::check_ready`: the store must answer, and a dispatcher this process started must keep
//! making passes.

use std::time::Duration;

use collab_core::memory::MemoryRoomStore;
use collab_core::rooms::{NotReady, Rooms};
use collab_core::testing::faults::{Fault, Faults, FaultyRoomStore, Method};

#[tokio::test]
async fn a_store_that_does_not_answer_is_not_ready() {
    let faults = Faults::new();
    let rooms = Rooms::builder()
        .room_store(FaultyRoomStore::new(MemoryRoomStore::new(), faults.clone()))
        .build();
    assert_eq!(rooms.check_ready().await, Ok(()));
    faults.plan_next(Method::RoomSummary, Fault::Fail);
    assert_eq!(rooms.check_ready().await, Err(NotReady::Store));
    assert_eq!(rooms.check_ready().await, Ok(()), "ready again once it answers");
}

#[tokio::test(start_paused = true)]
async fn a_dispatcher_that_stopped_making_passes_is_not_ready() {
    let rooms = Rooms::builder().build();
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    // Running: a pass every poll interval (1 s), however long it runs.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(rooms.check_ready().await, Ok(()));
    dispatcher.abort();
    let _ = dispatcher.await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(rooms.check_ready().await, Ok(()), "within 30 s of its last pass");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rooms.check_ready().await, Err(NotReady::Dispatcher));
}

#[tokio::test]
async fn a_process_without_a_dispatcher_is_not_judged_on_one() {
    let rooms = Rooms::builder().build();
    assert_eq!(rooms.check_ready().await, Ok(()));
}
