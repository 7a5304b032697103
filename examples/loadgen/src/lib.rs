//! A load generator for the example server (`collab-server`), on loopback.
//!
//! It sets up rooms through the server's API (agents sign in, open rooms, invite by email, take
//! a link per customer, each customer joins through theirs), opens one live stream (server-sent events) per
//! customer and one per room for its agent, then posts messages at a fixed aggregate rate,
//! open loop: post *n* is due at `n / rate` seconds whatever the answers to earlier posts, and
//! its latency counts from when it was due, so a slow server cannot hide its slowness by
//! slowing the posts down. Every listener checks that it saw every event of its room exactly
//! once and in order, and that each acknowledged post reached it (see the `live` module).
//! With the server's process id it samples the server's resident memory and CPU time from
//! `/proc`.
//!
//! `cargo run --release -p collab-loadgen -- --help` lists the settings; `scripts/load.sh` and
//! `scripts/soak.sh` run the rate search and the soak against a release server.

mod http;
mod live;
mod proc;
mod setup;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::http::Http;
use crate::live::{Listener, Run, Tally};
use crate::setup::Room;

/// The most customers a room takes (the core opens at most 100 sessions per room).
pub const MAX_CUSTOMERS_PER_ROOM: usize = 100;

/// Posts waiting for their answer at most; past this the schedule slips (and the latency of
/// the late posts shows it).
const POSTS_IN_FLIGHT: usize = 4_096;
/// How long the streams may take to open and catch up before the posts start.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the listeners may take to receive the last posts after the posting ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Streams opened between short pauses, so the server's accept queue is not flooded.
const OPEN_BATCH: usize = 50;

/// What the load generator failed at before the load could run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A request could not be sent or its answer not read.
    #[error("{what}: {reason}")]
    Request {
        /// The call.
        what: String,
        /// Why.
        reason: String,
    },
    /// No whole answer in time.
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// The call.
        what: String,
        /// The time allowed.
        after: Duration,
    },
    /// The server answered with an unexpected status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        /// The call.
        what: String,
        /// The status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer was not what the API documents.
    #[error("{what}: {reason}")]
    Answer {
        /// The call.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// A setting is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Not every live stream opened and caught up in time.
    #[error("{behind} of {listeners} live streams did not open and catch up within {READY_TIMEOUT:?}")]
    NotReady {
        /// Streams behind.
        behind: usize,
        /// Streams in all.
        listeners: usize,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's base URL, on loopback: `http://127.0.0.1:8080`.
    pub server: String,
    /// Agents as (id, password); room *i* belongs to agent *i* mod their number.
    pub agents: Vec<(String, String)>,
    /// Rooms to open.
    pub rooms: usize,
    /// Customers joined to each room, each with its own live stream.
    pub customers_per_room: usize,
    /// Posts per second, all rooms together.
    pub rate: f64,
    /// Posting before the measurement starts: not in the latency figures, not in the RSS baseline.
    pub warmup: Duration,
    /// Posting measured, after the warm-up.
    pub duration: Duration,
    /// The server's process id, for its memory and CPU time; `None` skips them.
    pub server_pid: Option<u32>,
    /// How often to sample memory and CPU time.
    pub sample_every: Duration,
    /// The run fails when the 99th percentile latency is above this.
    pub max_p99: Duration,
    /// The run fails when the server's RSS after the warm-up grows by more than this fraction
    /// of its RSS at the end of the warm-up (0.10 for 10%); `None` does not check.
    pub max_rss_growth: Option<f64>,
    /// Print a progress line on stderr at each sample.
    pub progress: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: "http://127.0.0.1:8080".to_owned(),
            agents: vec![("agent@example.com".to_owned(), "dev".to_owned())],
            rooms: 100,
            customers_per_room: 10,
            rate: 100.0,
            warmup: Duration::from_secs(10),
            duration: Duration::from_secs(60),
            server_pid: None,
            sample_every: Duration::from_secs(5),
            max_p99: Duration::from_millis(100),
            max_rss_growth: None,
            progress: false,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), LoadError> {
        let invalid = |field, reason| Err(LoadError::Invalid { field, reason });
        if self.agents.is_empty() {
            return invalid("agents", "name at least one agent");
        }
        if self.rooms == 0 {
            return invalid("rooms", "must be at least 1");
        }
        if self.customers_per_room == 0 || self.customers_per_room > MAX_CUSTOMERS_PER_ROOM {
            return invalid("customers", "must be 1 to 100 per room");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return invalid("rate", "must be a positive number of posts per second");
        }
        if self.duration.is_zero() {
            return invalid("duration", "must be more than zero");
        }
        if self.sample_every.is_zero() {
            return invalid("sample-every", "must be more than zero");
        }
        Ok(())
    }
}

/// Memory and CPU time at one moment of the run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the posting started.
    pub elapsed: Duration,
    /// The server's resident memory, KiB.
    pub server_rss_kib: Option<u64>,
    /// The server's CPU time so far.
    pub server_cpu: Option<Duration>,
    /// The load generator's own CPU time so far (it shares the machine's cores).
    pub loadgen_cpu: Option<Duration>,
    /// Posts acknowledged so far.
    pub acked: u64,
}

impl Sample {
    fn take(run_start: Instant, server_pid: Option<u32>, acked: u64) -> Self {
        Self {
            elapsed: run_start.elapsed(),
            server_rss_kib: server_pid.and_then(|pid| proc::rss_kib(Some(pid))),
            server_cpu: server_pid.and_then(|pid| proc::cpu_time(Some(pid))),
            loadgen_cpu: proc::cpu_time(None),
            acked,
        }
    }
}

/// Post-to-receipt latency over every delivery of a measured post.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Deliveries measured.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    fn of(mut micros: Vec<u32>) -> Option<Self> {
        micros.sort_unstable();
        let at = |quantile: f64| {
            // The smallest value with at least `quantile` of the values at or below it.
            let rank = (quantile * micros.len() as f64).ceil() as usize;
            Duration::from_micros(u64::from(micros[rank.clamp(1, micros.len()) - 1]))
        };
        let max = Duration::from_micros(u64::from(*micros.last()?));
        Some(Self {
            count: micros.len(),
            p50: at(0.50),
            p99: at(0.99),
            max,
        })
    }
}

/// Memory and CPU of a process over the measured period.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Resident memory at the end of the warm-up, KiB.
    pub rss_at_warmup_kib: u64,
    /// Highest resident memory sampled after the warm-up, KiB.
    pub rss_max_kib: u64,
    /// Resident memory when the posting ended, KiB.
    pub rss_end_kib: u64,
    /// CPU time used during the measured period.
    pub cpu: Duration,
    /// `cpu` over the measured period's length: 1.0 is one core busy.
    pub cores: f64,
}

impl Usage {
    /// How much the resident memory grew after the warm-up at its highest, as a fraction.
    pub fn rss_growth(&self) -> f64 {
        self.rss_max_kib as f64 / self.rss_at_warmup_kib.max(1) as f64 - 1.0
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Rooms under load.
    pub rooms: usize,
    /// Live streams: customers and agents.
    pub listeners: usize,
    /// Posts per second asked for.
    pub rate: f64,
    /// The warm-up.
    pub warmup: Duration,
    /// The measured period.
    pub duration: Duration,
    /// Posts sent.
    pub posted: u64,
    /// Posts the server acknowledged (201 with the event).
    pub acked: u64,
    /// Posts that failed or timed out.
    pub post_errors: u64,
    /// Of those, posts without a whole answer in time (the server may still have stored them).
    pub post_timeouts: u64,
    /// Of those, posts refused with 409 Conflict (the room changed under every retry).
    pub post_conflicts: u64,
    /// The first few post failures.
    pub post_error_examples: Vec<String>,
    /// Deliveries owed: each acknowledged post once to every listener of its room.
    pub expected_deliveries: u64,
    /// Deliveries received and matched to their acknowledgement.
    pub delivered: u64,
    /// Deliveries owed but never received.
    pub lost: u64,
    /// Events received twice.
    pub duplicates: u64,
    /// Seqs skipped by a stream.
    pub gaps: u64,
    /// Load messages received in another room's stream.
    pub misrouted: u64,
    /// Load messages at a seq where the server acknowledged another post.
    pub misdelivered: u64,
    /// Events that were not well-formed.
    pub malformed: u64,
    /// Load messages received that no acknowledgement accounts for.
    pub unacknowledged: u64,
    /// Streams opened again after ending (resumed with `Last-Event-ID`).
    pub reconnects: u64,
    /// Failed attempts to open a stream.
    pub failed_connects: u64,
    /// Streams that had not received their room's last post when the drain timed out.
    pub behind: usize,
    /// Post-to-receipt latency of posts due after the warm-up.
    pub latency: Option<Latency>,
    /// The server's memory and CPU, when its process id was given.
    pub server: Option<Usage>,
    /// The load generator's own CPU (its memory is not the point).
    pub loadgen_cores: Option<f64>,
    /// Memory and CPU over time.
    pub samples: Vec<Sample>,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
}

impl Report {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn judge(&mut self, config: &Config) {
        let mut fail = |what: String| self.failures.push(what);
        if self.post_errors > 0 {
            fail(format!(
                "{} posts failed, e.g. {:?}",
                self.post_errors, self.post_error_examples
            ));
        }
        let counts = [
            ("lost deliveries", self.lost),
            ("duplicate events", self.duplicates),
            ("skipped seqs", self.gaps),
            ("misrouted messages", self.misrouted),
            ("misdelivered messages", self.misdelivered),
            ("malformed events", self.malformed),
            ("unacknowledged messages", self.unacknowledged),
        ];
        for (what, count) in counts {
            if count > 0 {
                fail(format!("{count} {what}"));
            }
        }
        if self.behind > 0 {
            fail(format!("{} streams still behind after {DRAIN_TIMEOUT:?}", self.behind));
        }
        match self.latency {
            None => fail("no latency measured: no post due after the warm-up was received".to_owned()),
            Some(latency) if latency.p99 > config.max_p99 => fail(format!(
                "p99 latency {:.1} ms is above {:.1} ms",
                ms(latency.p99),
                ms(config.max_p99)
            )),
            Some(_) => {}
        }
        if let (Some(limit), Some(server)) = (config.max_rss_growth, self.server)
            && server.rss_growth() > limit
        {
            fail(format!(
                "server RSS grew {:.1}% after the warm-up (limit {:.1}%)",
                server.rss_growth() * 100.0,
                limit * 100.0
            ));
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One line, `key=value` words, for people and scripts.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let result = if self.passed() { "PASS" } else { "FAIL" };
        write!(
            f,
            "result={result} rooms={} listeners={} rate={}/s warmup={}s duration={}s posted={} acked={} \
             post_errors={} post_timeouts={} post_conflicts={} delivered={}/{} lost={} duplicates={} gaps={} misrouted={} misdelivered={} \
             malformed={} unacknowledged={} reconnects={} behind={}",
            self.rooms,
            self.listeners,
            self.rate,
            self.warmup.as_secs_f64(),
            self.duration.as_secs_f64(),
            self.posted,
            self.acked,
            self.post_errors,
            self.post_timeouts,
            self.post_conflicts,
            self.delivered,
            self.expected_deliveries,
            self.lost,
            self.duplicates,
            self.gaps,
            self.misrouted,
            self.misdelivered,
            self.malformed,
            self.unacknowledged,
            self.reconnects,
            self.behind,
        )?;
        if let Some(latency) = self.latency {
            write!(
                f,
                " p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
                ms(latency.p50),
                ms(latency.p99),
                ms(latency.max)
            )?;
        }
        if let Some(server) = self.server {
            let mib = |kib: u64| kib as f64 / 1024.0;
            write!(
                f,
                " server_rss_mib={:.1}..{:.1} server_rss_max_mib={:.1} server_rss_growth={:.1}% server_cpu_cores={:.2}",
                mib(server.rss_at_warmup_kib),
                mib(server.rss_end_kib),
                mib(server.rss_max_kib),
                server.rss_growth() * 100.0,
                server.cores
            )?;
        }
        if let Some(cores) = self.loadgen_cores {
            write!(f, " loadgen_cpu_cores={cores:.2}")?;
        }
        Ok(())
    }
}

/// Post counters.
#[derive(Debug, Default)]
struct Posts {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    conflicts: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Posts {
    fn failed(&self, error: &LoadError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        match error {
            LoadError::Timeout { .. } => self.timeouts.fetch_add(1, Ordering::Relaxed),
            LoadError::Status { status: 409, .. } => self.conflicts.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if examples.len() < 5 {
            examples.push(error.to_string());
        }
    }
}

/// Sets up the rooms, runs the load and checks what every listener received.
pub async fn run(config: &Config) -> Result<Report, LoadError> {
    config.check()?;
    let http = Http::new(&config.server);
    let mut agents = Vec::with_capacity(config.agents.len());
    for (agent, password) in &config.agents {
        agents.push(setup::sign_in(&http, agent, password).await?);
    }
    let rooms = setup::open_rooms(&http, &agents, config.rooms, config.customers_per_room).await?;
    let mut ready_at = Vec::with_capacity(rooms.len());
    for room in &rooms {
        let reply = http
            .call(Method::GET, &format!("/api/rooms/{}", room.id), Some(&room.agent), None)
            .await?;
        ready_at.push(reply.json("room", StatusCode::OK)?["seq"].as_u64().unwrap_or(0));
    }

    let run = Arc::new(Run {
        rooms: rooms.iter().map(|_| live::RoomLog::default()).collect(),
        epoch: Instant::now(),
        measure_from_us: AtomicU64::new(u64::MAX),
    });
    let (stop, stopped) = watch::channel(false);
    let mut listening = Vec::new();
    for (index, room) in rooms.iter().enumerate() {
        let customers = room.customers.iter().map(|cookie| (cookie, true));
        for (cookie, customer) in std::iter::once((&room.agent, false)).chain(customers) {
            let progress = Arc::new(AtomicU64::new(0));
            let listener = Listener {
                room: index,
                rooms: rooms.len(),
                room_id: room.id.clone(),
                cookie: cookie.clone(),
                customer,
                progress: progress.clone(),
            };
            let task = tokio::spawn(listener.follow(http.clone(), run.clone(), stopped.clone()));
            listening.push((index, progress, task));
            if listening.len() % OPEN_BATCH == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let behind = |target: &dyn Fn(usize) -> u64| {
        listening
            .iter()
            .filter(|(room, progress, _)| progress.load(Ordering::Relaxed) < target(*room))
            .count()
    };
    let ready_by = Instant::now() + READY_TIMEOUT;
    while behind(&|room| ready_at[room]) > 0 {
        if Instant::now() > ready_by {
            let _ = stop.send(true);
            return Err(LoadError::NotReady {
                behind: behind(&|room| ready_at[room]),
                listeners: listening.len(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let posts = Arc::new(Posts::default());
    let sampling = tokio::spawn(sample(config.clone(), posts.clone(), stopped.clone()));
    post(&http, config, &rooms, &run, &posts).await;

    let drain_by = Instant::now() + DRAIN_TIMEOUT;
    while behind(&|room| run.rooms[room].head()) > 0 && Instant::now() < drain_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let behind = behind(&|room| run.rooms[room].head());
    let _ = stop.send(true);
    let samples = sampling.await.unwrap_or_default();

    let mut report = Report {
        rooms: rooms.len(),
        listeners: listening.len(),
        rate: config.rate,
        warmup: config.warmup,
        duration: config.duration,
        posted: posts.sent.load(Ordering::Relaxed),
        acked: posts.acked.load(Ordering::Relaxed),
        post_errors: posts.errors.load(Ordering::Relaxed),
        post_timeouts: posts.timeouts.load(Ordering::Relaxed),
        post_conflicts: posts.conflicts.load(Ordering::Relaxed),
        post_error_examples: posts.examples.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        expected_deliveries: 0,
        delivered: 0,
        lost: 0,
        duplicates: 0,
        gaps: 0,
        misrouted: 0,
        misdelivered: 0,
        malformed: 0,
        unacknowledged: 0,
        reconnects: 0,
        failed_connects: 0,
        behind,
        latency: None,
        server: usage(&samples, config, |s| s.server_rss_kib, |s| s.server_cpu),
        loadgen_cores: usage(&samples, config, |_| Some(0), |s| s.loadgen_cpu).map(|u| u.cores),
        samples,
        failures: Vec::new(),
    };
    let mut latencies = Vec::new();
    for (room, _, task) in listening {
        let tally: Tally = task.await.unwrap_or_default();
        let owed = run.rooms[room].acked();
        report.expected_deliveries += owed;
        report.delivered += tally.confirmed;
        report.lost += owed.saturating_sub(tally.confirmed);
        report.duplicates += tally.duplicates;
        report.gaps += tally.gaps;
        report.misrouted += tally.misrouted;
        report.misdelivered += tally.misdelivered;
        report.malformed += tally.malformed;
        report.unacknowledged += tally.unmatched.len() as u64;
        report.reconnects += tally.connections.saturating_sub(1);
        report.failed_connects += tally.failed_connects;
        latencies.extend(tally.latencies_us);
    }
    report.latency = Latency::of(latencies);
    report.judge(config);
    Ok(report)
}

/// The usage over the measured period, from the samples at the end of the warm-up and at the
/// end of the posting.
fn usage(
    samples: &[Sample],
    config: &Config,
    rss: impl Fn(&Sample) -> Option<u64>,
    cpu: impl Fn(&Sample) -> Option<Duration>,
) -> Option<Usage> {
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.elapsed >= config.warmup).collect();
    let (first, last) = (measured.first()?, measured.last()?);
    let cpu_used = cpu(last)?.saturating_sub(cpu(first)?);
    let span = last.elapsed.saturating_sub(first.elapsed).as_secs_f64();
    Some(Usage {
        rss_at_warmup_kib: rss(first)?,
        rss_max_kib: measured.iter().filter_map(|s| rss(s)).max()?,
        rss_end_kib: rss(last)?,
        cpu: cpu_used,
        cores: if span > 0.0 { cpu_used.as_secs_f64() / span } else { 0.0 },
    })
}

/// Samples memory and CPU every `sample_every`, at the end of the warm-up and at the end of the
/// posting (`stopped`, or the end of the schedule).
async fn sample(config: Config, posts: Arc<Posts>, mut stopped: watch::Receiver<bool>) -> Vec<Sample> {
    let start = Instant::now();
    let end = start + config.warmup + config.duration;
    let mut marks: Vec<Instant> = (0..)
        .map(|n| start + config.sample_every * n)
        .take_while(|at| *at < end)
        .chain([start + config.warmup, end])
        .collect();
    marks.sort();
    marks.dedup();
    let mut samples = Vec::with_capacity(marks.len());
    for mark in marks {
        tokio::select! {
            _ = tokio::time::sleep_until(mark.into()) => {}
            _ = stopped.wait_for(|stopped| *stopped) => break,
        }
        let sample = Sample::take(start, config.server_pid, posts.acked.load(Ordering::Relaxed));
        if config.progress {
            let rss = sample
                .server_rss_kib
                .map_or("-".to_owned(), |kib| format!("{:.1}", kib as f64 / 1024.0));
            let cpu = sample
                .server_cpu
                .map_or("-".to_owned(), |cpu| format!("{:.1}", cpu.as_secs_f64()));
            eprintln!(
                "t={:.0}s acked={} server_rss_mib={rss} server_cpu_s={cpu}",
                sample.elapsed.as_secs_f64(),
                sample.acked
            );
        }
        samples.push(sample);
    }
    samples
}

/// Posts at `config.rate` for the warm-up and the measured period, each post due at its own
/// time whatever the answers to the earlier ones. Post *n* goes to room *n* mod the rooms, by
/// the room's agent and customers in turn.
async fn post(http: &Http, config: &Config, rooms: &[Room], run: &Arc<Run>, posts: &Arc<Posts>) {
    let start_us = run.now_us();
    let period_us = 1e6 / config.rate;
    let measure_from_us = start_us + u64::try_from(config.warmup.as_micros()).unwrap_or(u64::MAX);
    run.measure_from_us.store(measure_from_us, Ordering::Relaxed);
    let total = (config.rate * (config.warmup + config.duration).as_secs_f64()).round() as u64;
    let in_flight = Arc::new(Semaphore::new(POSTS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for n in 0..total {
        let due_us = start_us + (n as f64 * period_us) as u64;
        tokio::time::sleep_until((run.epoch + Duration::from_micros(due_us)).into()).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let index = usize::try_from(n).unwrap_or(usize::MAX) % rooms.len();
        let room = &rooms[index];
        let speaker = (usize::try_from(n).unwrap_or(usize::MAX) / rooms.len()) % (room.customers.len() + 1);
        let cookie = match speaker {
            0 => room.agent.clone(),
            customer => room.customers[customer - 1].clone(),
        };
        let path = format!("/api/rooms/{}/messages", room.id);
        let (http, run, posts) = (http.clone(), run.clone(), posts.clone());
        posts.sent.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let body = json!({ "text": live::message_text(n, due_us) });
            let answer = http.call(Method::POST, &path, Some(&cookie), Some(&body)).await;
            let seq = answer.and_then(|reply| {
                let view = reply.json("post", StatusCode::CREATED)?;
                view["seq"].as_u64().ok_or_else(|| LoadError::Answer {
                    what: "post".to_owned(),
                    reason: "no seq".to_owned(),
                })
            });
            match seq {
                Ok(seq) => {
                    run.rooms[index].acknowledge(seq, n);
                    posts.acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => posts.failed(&e),
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}
