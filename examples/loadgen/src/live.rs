//! The listening side: one server-sent-event stream per customer and agent, and the check that
//! each saw every event of its room exactly once and in order.
//!
//! Each stream must bring sequence numbers 1, 2, 3… with no gap and no repeat, also across a
//! reconnection (`Last-Event-ID`). Each load message names its post (`load <post> <µs>`); the
//! poster records which post the server put at which seq ([`RoomLog`]), and a listener counts a
//! message as delivered only when the post at that seq is the one it saw. Seq contiguity plus
//! that match means: every acknowledged post, exactly once, in the log's order.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::watch;

use crate::http::Http;

/// What the posters learnt from the server's answers: which post sits at which seq of a room.
#[derive(Debug, Default)]
pub(crate) struct RoomLog {
    /// By seq: the post acknowledged there.
    posts: Mutex<Vec<Option<u64>>>,
    acked: AtomicU64,
    /// The highest acknowledged seq.
    head: AtomicU64,
}

impl RoomLog {
    /// Notes that the server acknowledged `post` at `seq`.
    pub(crate) fn acknowledge(&self, seq: u64, post: u64) {
        let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        let at = usize::try_from(seq).unwrap_or(usize::MAX);
        if posts.len() <= at {
            posts.resize(at + 1, None);
        }
        posts[at] = Some(post);
        self.acked.fetch_add(1, Ordering::Relaxed);
        self.head.fetch_max(seq, Ordering::Relaxed);
    }

    /// How many posts were acknowledged.
    pub(crate) fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// The highest acknowledged seq.
    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Relaxed)
    }
}

/// What all listeners share.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) rooms: Vec<RoomLog>,
    /// Post times are microseconds since this instant.
    pub(crate) epoch: Instant,
    /// Latencies of posts due before this (µs after `epoch`) are warm-up, not measured.
    pub(crate) measure_from_us: AtomicU64,
}

impl Run {
    /// Microseconds since the epoch.
    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// One event of a server-sent-event stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) data: String,
}

/// Splits a byte stream into events; chunks may end anywhere.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    pending: Vec<u8>,
    id: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds `chunk` and appends the events it completes to `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start += end + 1;
            self.line(&line, out);
        }
        self.pending.drain(..start);
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    id: self.id.take(),
                    data,
                });
            }
            self.id = None;
            return;
        }
        if line.starts_with(':') {
            return; // a comment: the keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
}

/// The parts of the server's event view the check reads.
#[derive(Debug, Deserialize)]
struct EventView {
    seq: u64,
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

/// A load message's text: the post's number and when it was scheduled (µs after the epoch).
pub(crate) fn message_text(post: u64, scheduled_us: u64) -> String {
    format!("load {post} {scheduled_us}")
}

fn parse_message(text: &str) -> Option<(u64, u64)> {
    let mut words = text.strip_prefix("load ")?.split(' ');
    let post = words.next()?.parse().ok()?;
    let scheduled_us = words.next()?.parse().ok()?;
    words.next().is_none().then_some((post, scheduled_us))
}

/// What one listener saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// The last seq received.
    pub(crate) last: u64,
    /// Events received again (seq not above the last).
    pub(crate) duplicates: u64,
    /// Seqs skipped.
    pub(crate) gaps: u64,
    /// Load messages of another room.
    pub(crate) misrouted: u64,
    /// Load messages at a seq where the server acknowledged another post.
    pub(crate) misdelivered: u64,
    /// Events that are not well-formed (no id, not the server's JSON, id and seq differ).
    pub(crate) malformed: u64,
    /// Load messages matched to their acknowledgement.
    pub(crate) confirmed: u64,
    /// Load messages (seq, post) whose acknowledgement has not come back yet.
    pub(crate) unmatched: Vec<(u64, u64)>,
    /// Post-to-receipt latencies after the warm-up, in µs.
    pub(crate) latencies_us: Vec<u32>,
    /// Times the stream was opened.
    pub(crate) connections: u64,
    /// Failed attempts to open the stream.
    pub(crate) failed_connects: u64,
}

impl Tally {
    /// Checks one event of room `room` (index `room`, of `rooms` rooms).
    pub(crate) fn on_event(&mut self, event: &SseEvent, room: usize, rooms: usize, run: &Run) {
        let Some(seq) = event.id.as_deref().and_then(|id| id.parse::<u64>().ok()) else {
            self.malformed += 1;
            return;
        };
        if seq <= self.last {
            self.duplicates += 1;
            return;
        }
        self.gaps += seq - self.last - 1;
        self.last = seq;
        let Ok(view) = serde_json::from_str::<EventView>(&event.data) else {
            self.malformed += 1;
            return;
        };
        if view.seq != seq {
            self.malformed += 1;
            return;
        }
        let load = (view.kind == "message_posted")
            .then(|| view.text.as_deref().and_then(parse_message))
            .flatten();
        let Some((post, scheduled_us)) = load else {
            return;
        };
        if usize::try_from(post).ok().is_none_or(|post| post % rooms != room) {
            self.misrouted += 1;
            return;
        }
        if scheduled_us >= run.measure_from_us.load(Ordering::Relaxed) {
            let latency = run.now_us().saturating_sub(scheduled_us);
            self.latencies_us.push(u32::try_from(latency).unwrap_or(u32::MAX));
        }
        self.unmatched.push((seq, post));
        self.match_acknowledged(&run.rooms[room]);
    }

    /// Matches the load messages seen against the posts the server acknowledged.
    pub(crate) fn match_acknowledged(&mut self, log: &RoomLog) {
        if self.unmatched.is_empty() {
            return;
        }
        let posts = log.posts.lock().unwrap_or_else(|p| p.into_inner());
        let (mut confirmed, mut misdelivered) = (0, 0);
        self.unmatched.retain(|&(seq, post)| {
            let acked = usize::try_from(seq)
                .ok()
                .and_then(|at| posts.get(at).copied().flatten());
            match acked {
                Some(acked) if acked == post => confirmed += 1,
                Some(_) => misdelivered += 1,
                None => return true,
            }
            false
        });
        self.confirmed += confirmed;
        self.misdelivered += misdelivered;
    }
}

/// One listener: a customer (`as=customer`) or the room's agent.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) room: usize,
    pub(crate) rooms: usize,
    pub(crate) room_id: String,
    pub(crate) cookie: Arc<str>,
    pub(crate) customer: bool,
    /// The last seq received, for the run to see progress.
    pub(crate) progress: Arc<AtomicU64>,
}

/// How long to wait before opening a failed stream again.
const RECONNECT_DELAY: Duration = Duration::from_millis(200);

impl Listener {
    /// Follows the room's live events from its first event until `stop` turns true, opening
    /// the stream again after `Last-Event-ID` when it ends.
    pub(crate) async fn follow(self, http: Http, run: Arc<Run>, mut stop: watch::Receiver<bool>) -> Tally {
        let mut tally = Tally::default();
        let path = if self.customer {
            format!("/api/rooms/{}/live?as=customer", self.room_id)
        } else {
            format!("/api/rooms/{}/live", self.room_id)
        };
        let mut events = Vec::new();
        'connect: while !*stop.borrow() {
            let resume: Vec<(&str, String)> = match tally.last {
                0 => Vec::new(),
                last => vec![("last-event-id", last.to_string())],
            };
            let opened = tokio::select! {
                opened = http.open(Method::GET, &path, Some(&self.cookie), &resume, None) => opened,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let mut body = match opened {
                Ok(response) if response.status() == StatusCode::OK => response.into_body(),
                _ => {
                    tally.failed_connects += 1;
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    continue;
                }
            };
            tally.connections += 1;
            let mut parser = SseParser::default();
            loop {
                let frame = tokio::select! {
                    frame = body.frame() => frame,
                    _ = stop.wait_for(|stopped| *stopped) => break 'connect,
                };
                let Some(Ok(frame)) = frame else {
                    continue 'connect; // the stream ended: resume after the last event
                };
                if let Some(data) = frame.data_ref() {
                    parser.feed(data, &mut events);
                    for event in events.drain(..) {
                        tally.on_event(&event, self.room, self.rooms, &run);
                    }
                    self.progress.store(tally.last, Ordering::Relaxed);
                }
            }
        }
        tally.match_acknowledged(&run.rooms[self.room]);
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rooms: usize) -> Run {
        Run {
            rooms: (0..rooms).map(|_| RoomLog::default()).collect(),
            epoch: Instant::now(),
            measure_from_us: AtomicU64::new(0),
        }
    }

    fn event(seq: u64, data: &str) -> SseEvent {
        SseEvent {
            id: Some(seq.to_string()),
            data: data.to_owned(),
        }
    }

    fn message(seq: u64, post: u64) -> SseEvent {
        let text = message_text(post, 0);
        event(
            seq,
            &format!(r#"{{"seq":{seq},"type":"message_posted","text":"{text}","by":"agent"}}"#),
        )
    }

    fn joined(seq: u64) -> SseEvent {
        event(seq, &format!(r#"{{"seq":{seq},"type":"customer_joined","text":null}}"#))
    }

    #[test]
    fn the_parser_reads_events_split_anywhere() {
        let stream = b": keep-alive\n\nevent: timeline\ndata: {\"a\":1}\nid: 7\n\r\nid: 8\ndata: x\ndata: y\n\n";
        for cut in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut out = Vec::new();
            parser.feed(&stream[..cut], &mut out);
            parser.feed(&stream[cut..], &mut out);
            assert_eq!(
                out,
                vec![
                    SseEvent {
                        id: Some("7".into()),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        id: Some("8".into()),
                        data: "x\ny".into()
                    },
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_clean_stream_confirms_every_acknowledged_post() {
        let run = run(2);
        run.rooms[1].acknowledge(2, 1);
        run.rooms[1].acknowledge(3, 3);
        let mut tally = Tally::default();
        for event in [joined(1), message(2, 1), message(3, 3)] {
            tally.on_event(&event, 1, 2, &run);
        }
        assert_eq!(
            (tally.confirmed, tally.gaps, tally.duplicates, tally.last),
            (2, 0, 0, 3)
        );
        assert_eq!(tally.latencies_us.len(), 2);
    }

    #[test]
    fn gaps_repeats_strangers_and_swaps_are_caught() {
        let run = run(2);
        run.rooms[0].acknowledge(2, 0);
        run.rooms[0].acknowledge(3, 2);
        let mut tally = Tally::default();
        tally.on_event(&joined(1), 0, 2, &run);
        tally.on_event(&joined(1), 0, 2, &run);
        assert_eq!(tally.duplicates, 1);
        tally.on_event(&message(3, 0), 0, 2, &run);
        assert_eq!(
            (tally.gaps, tally.misdelivered),
            (1, 1),
            "seq 2 skipped; post 0 is not at seq 3"
        );
        tally.on_event(&message(4, 1), 0, 2, &run);
        assert_eq!(tally.misrouted, 1, "post 1 belongs to room 1");
        tally.on_event(&event(5, "not json"), 0, 2, &run);
        assert_eq!(tally.malformed, 1);
        assert_eq!(tally.confirmed, 0);
    }

    #[test]
    fn a_message_seen_before_its_acknowledgement_is_matched_later() {
        let run = run(1);
        let mut tally = Tally::default();
        tally.on_event(&message(1, 0), 0, 1, &run);
        assert_eq!((tally.confirmed, tally.unmatched.len()), (0, 1));
        run.rooms[0].acknowledge(1, 0);
        tally.match_acknowledged(&run.rooms[0]);
        assert_eq!((tally.confirmed, tally.unmatched.len()), (1, 0));
    }
}
