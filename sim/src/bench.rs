//! `mqsim bench`: a load generator that measures any MQTT 3.1.1 broker (ours, mosquitto, rumqttd,
//! ...) with the same clients, so that runs against different brokers compare as ratios.
//!
//! # Method
//!
//! 1. *Target.* With `--spawn "CMD ARGS"` the broker is started here (no shell) and the bench waits
//!    until its port accepts TCP connections; with `--broker-pid` an already running broker is
//!    observed. Either way its peak resident set (`VmHWM` in `/proc/<pid>/status`) is read after
//!    the run; without a pid it is reported as unknown.
//! 2. *Idle connections.* With `--idle-connections N`, N more clients (`bench-idle-{i}`) connect
//!    first, at most `--idle-concurrency` handshakes at a time, with keep alive
//!    `--idle-keep-alive` (0: never timed out), and then stay open and silent until the end. The
//!    broker's current RSS (`VmRSS`) is read once they are all open, before any other client
//!    connects; after the run the bench counts how many of them the broker has closed.
//! 3. *Subscribers first.* `S` clients (`bench-sub-{i}`) connect, subscribe to `--topic` at
//!    `--qos` and wait for their SUBACK. Then `P` publishers (`bench-pub-{i}`) connect, and only
//!    when all are connected do they start, together.
//! 4. *Publishing.* Each publisher sends `--messages` PUBLISHes at `--qos`, encoded in batches of up
//!    to 64 KiB and written with one `write_all` each. At QoS 1 and 2 at most `--inflight`
//!    messages per publisher are unacknowledged (PUBACK, or PUBREC then PUBREL then PUBCOMP, frees
//!    a slot); at QoS 0 the publisher writes as fast as the broker reads.
//! 5. *Payload.* Its first 16 bytes are the publisher index (u32 BE), the sequence number (u32 BE)
//!    and the send time in nanoseconds since the start of the bench (u64 BE), read from one
//!    [`std::time::Instant`] shared by every task; the rest is padding up to `--payload-bytes`.
//!    A batch's messages share the time it was encoded at, so latency includes time spent queued
//!    in the publisher's own socket: it is end-to-end latency as an application would see it.
//! 6. *Receiving.* Each subscriber acknowledges as the protocol requires (PUBACK; PUBREC, and
//!    PUBCOMP for PUBREL), in batches, and marks `(publisher, seq)` in one bitset per publisher:
//!    a bit already set is a duplicate, a payload that is not ours is counted as unexpected. The
//!    latency of each first delivery is kept (microseconds, one `u32` per delivery) and the exact
//!    percentiles are taken by sorting at the end. `--sub-rate-limit R` makes each subscriber
//!    process at most `R` messages per second, reading 1 KiB at a time through a small socket
//!    receive buffer, so that a slow consumer's backlog builds up in the broker, not in the kernel.
//! 7. *End.* A subscriber stops when it has every one of the `P * N` messages (and owes no
//!    PUBCOMP), or when it has waited `--end-idle-s` (2 s) for the broker after the last publisher
//!    finished, or at `--timeout-s` after the start. Waiting means: nothing arrived and the
//!    subscriber was not holding itself back for `--sub-rate-limit` (a throttled subscriber with
//!    bytes left unread in its socket is busy, not idle, however long it takes), see
//!    [`IdleClock`]. A subscriber that stops for idleness says so in a warning. Every client then
//!    sends DISCONNECT.
//!
//! *Elapsed* runs from the first PUBLISH written to the last first-time delivery to any
//! subscriber; deliveries per second is unique deliveries over that time. The publish rate is
//! messages published over the time from the first PUBLISH until the last publisher was done
//! (at QoS 1 and 2: had its last acknowledgement). At QoS 0 nothing paces the publishers, so
//! their rate says how fast the broker and the kernel's socket buffers absorb a flood, and the
//! latency is mostly time spent queued behind it.
//!
//! The bench shares the machine with the broker it measures: compare brokers in the same
//! conditions, as ratios, rather than reading absolute numbers.

mod client;
mod idle;
mod target;

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::value_parser;
use mqsim::codec::{Packet, Publish};
use mqsim::QoS;
use tokio::sync::watch;

use client::{push, Conn, KEEP_ALIVE_S};

/// Bytes of the payload header: publisher index, sequence number, send time.
pub const STAMP_BYTES: usize = 16;
/// Largest write batch a publisher encodes before `write_all`.
const BATCH_BYTES: usize = 64 * 1024;
/// How often a waiting client wakes up to check the end conditions and keep alive.
const TICK: Duration = Duration::from_millis(100);
/// Read size of a rate-limited subscriber.
const SLOW_READ_BYTES: usize = 1024;
/// Socket receive buffer asked for by a rate-limited subscriber (the kernel doubles it).
const SLOW_RECV_BUFFER_BYTES: u32 = 32 * 1024;
/// Send PINGREQ after this long without sending anything.
const PING_AFTER_NS: u64 = KEEP_ALIVE_S as u64 * 1_000_000_000 / 2;
/// Latency samples reserved up front, at most (the vector grows past it if needed).
const LATENCY_RESERVE_MAX: u64 = 16 * 1024 * 1024;

/// `mqsim bench` options.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Number of publishing clients.
    #[arg(long, default_value_t = 1, value_parser = value_parser!(u32).range(1..=65_535))]
    pub publishers: u32,
    /// Number of subscribing clients (each subscribes to the topic).
    #[arg(long, default_value_t = 1, value_parser = value_parser!(u32).range(0..=65_535))]
    pub subscribers: u32,
    /// QoS of the PUBLISHes and of the subscriptions.
    #[arg(long, default_value_t = 0, value_parser = value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (at least 16: publisher, sequence number, timestamp).
    #[arg(long, default_value_t = 24, value_parser = value_parser!(u32).range(16..=64 * 1024 * 1024))]
    pub payload_bytes: u32,
    /// Messages sent by each publisher.
    #[arg(long, default_value_t = 50_000, value_parser = value_parser!(u32).range(1..))]
    pub messages: u32,
    /// Most unacknowledged QoS 1/2 PUBLISHes per publisher.
    #[arg(long, default_value_t = 100, value_parser = value_parser!(u16).range(1..))]
    pub inflight: u16,
    /// Topic to publish and subscribe to (no wildcards).
    #[arg(long, default_value = "bench/t")]
    pub topic: String,
    /// Messages per second each subscriber processes at most (0 = unlimited): a slow consumer.
    #[arg(long, value_name = "MSG_PER_S", default_value_t = 0)]
    pub sub_rate_limit: u32,
    /// Clean session flag of the subscribers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub clean_session: bool,
    /// Start the broker with this command line (split on whitespace, no shell), wait for the
    /// port, and kill it after the run.
    #[arg(long, value_name = "COMMAND LINE", conflicts_with = "broker_pid")]
    pub spawn: Option<String>,
    /// PID of an already running local broker, to report its peak RSS.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Give up this many seconds after the start.
    #[arg(long, default_value_t = 60, value_parser = value_parser!(u64).range(1..))]
    pub timeout_s: u64,
    /// A subscriber stops after waiting this long for the broker, with nothing arriving, once the
    /// publishers are done (time it spends throttling itself does not count).
    #[arg(long, value_name = "SECONDS", default_value_t = 2, value_parser = value_parser!(u64).range(1..))]
    pub end_idle_s: u64,
    /// Extra connections that CONNECT, get their CONNACK and stay silent for the whole run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub idle_connections: u32,
    /// Keep alive the idle connections announce (0 = the broker never times them out).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub idle_keep_alive: u16,
    /// Idle connection handshakes under way at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = value_parser!(u32).range(1..=10_000))]
    pub idle_concurrency: u32,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark and prints its report. Exit code 1 when it could not run, or when a client
/// failed during the run (the report is printed all the same).
pub fn run(args: BenchArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            for e in &report.errors {
                eprintln!("mqsim bench: {e}");
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("mqsim bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_inner(args: &BenchArgs) -> io::Result<Report> {
    if !mqsim::topic::valid_topic_name(&args.topic) {
        return Err(io::Error::other(format!(
            "--topic {:?} is not a valid topic name",
            args.topic
        )));
    }
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{}: no address", args.host)))?;
    let mut target_desc = addr.to_string();
    let spawned = match &args.spawn {
        Some(cmd) => {
            let s = target::Spawned::start(cmd, addr)?;
            let _ = write!(target_desc, " (spawned `{cmd}`, pid {})", s.pid());
            Some(s)
        }
        None => None,
    };
    if let Some(pid) = args.broker_pid {
        let _ = write!(target_desc, " (pid {pid})");
    }
    let pid = spawned.as_ref().map(|s| s.pid()).or(args.broker_pid);

    let clock = Clock(std::time::Instant::now());
    let plan = Arc::new(Plan {
        addr,
        topic: args.topic.clone(),
        qos: QoS::from_u8(args.qos).unwrap_or(QoS::AtMostOnce),
        payload_bytes: args.payload_bytes as usize,
        messages: args.messages,
        publishers: args.publishers,
        subscribers: args.subscribers,
        inflight: args.inflight,
        sub_rate_limit: args.sub_rate_limit,
        clean_session: args.clean_session,
        deadline_ns: args.timeout_s.saturating_mul(1_000_000_000),
        end_idle_ns: args.end_idle_s.saturating_mul(1_000_000_000),
        idle_connections: args.idle_connections,
        idle_keep_alive_s: args.idle_keep_alive,
        idle_concurrency: args.idle_concurrency,
        broker_pid: pid,
        clock,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(bench(plan.clone()));
    drop(runtime);
    let rss_kb = pid.and_then(target::peak_rss_kb);
    drop(spawned); // Kills the broker we started.
    Ok(Report::new(target_desc, args, outcome?, rss_kb))
}

/// Nanoseconds since the start of the bench, from one `Instant` shared by every task.
#[derive(Clone, Copy, Debug)]
struct Clock(std::time::Instant);

impl Clock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What every client task needs to know.
#[derive(Debug)]
struct Plan {
    addr: SocketAddr,
    topic: String,
    qos: QoS,
    payload_bytes: usize,
    messages: u32,
    publishers: u32,
    subscribers: u32,
    inflight: u16,
    sub_rate_limit: u32,
    clean_session: bool,
    deadline_ns: u64,
    end_idle_ns: u64,
    idle_connections: u32,
    idle_keep_alive_s: u16,
    idle_concurrency: u32,
    /// The broker process, when known (for its RSS once the idle connections are open).
    broker_pid: Option<u32>,
    clock: Clock,
}

// ---------------------------------------------------------------------------------------------
// Payload, accounting, percentiles (pure).

/// The payload header: who sent a message, its number, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u32,
    /// Nanoseconds since the start of the bench.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the header into the first [`STAMP_BYTES`] of `payload` (the padding is left alone).
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.publisher.to_be_bytes());
        payload[4..8].copy_from_slice(&self.seq.to_be_bytes());
        payload[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// The header of `payload`; `None` when it is too short to be one of ours.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let h = payload.get(..STAMP_BYTES)?;
        Some(Stamp {
            publisher: u32::from_be_bytes(h[0..4].try_into().ok()?),
            seq: u32::from_be_bytes(h[4..8].try_into().ok()?),
            sent_ns: u64::from_be_bytes(h[8..16].try_into().ok()?),
        })
    }
}

/// A payload of `len` bytes (at least [`STAMP_BYTES`]) carrying `stamp`, padded with `'.'`.
pub fn make_payload(stamp: Stamp, len: usize) -> Vec<u8> {
    let mut p = vec![b'.'; len.max(STAMP_BYTES)];
    stamp.write(&mut p);
    p
}

/// One bit per sequence number.
#[derive(Clone, Debug)]
struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    fn new(len: u32) -> SeqSet {
        SeqSet {
            words: vec![0; (len as usize).div_ceil(64)],
        }
    }

    /// Sets bit `i`; true if it was clear.
    fn insert(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        let fresh = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        fresh
    }
}

/// How a received message counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// First delivery of this (publisher, seq).
    New,
    /// Already delivered to this subscriber.
    Duplicate,
    /// Not a message of this run (too short, or publisher/sequence out of range).
    Unexpected,
}

/// One subscriber's loss and duplicate accounting: a bitset per publisher.
#[derive(Clone, Debug)]
pub struct Tracker {
    seen: Vec<SeqSet>,
    messages: u32,
    /// Every PUBLISH received, duplicates and unexpected ones included.
    pub received: u64,
    /// Distinct (publisher, seq) received.
    pub unique: u64,
    /// PUBLISHes that were not messages of this run.
    pub unexpected: u64,
}

impl Tracker {
    /// Accounting for `publishers` publishers of `messages` messages each.
    pub fn new(publishers: u32, messages: u32) -> Tracker {
        Tracker {
            seen: (0..publishers).map(|_| SeqSet::new(messages)).collect(),
            messages,
            received: 0,
            unique: 0,
            unexpected: 0,
        }
    }

    /// Messages this subscriber should get: publishers x messages.
    pub fn expected(&self) -> u64 {
        self.seen.len() as u64 * u64::from(self.messages)
    }

    /// Counts one received PUBLISH, given its decoded stamp.
    pub fn record(&mut self, stamp: Option<Stamp>) -> Seen {
        self.received += 1;
        let Some(s) = stamp.filter(|s| s.seq < self.messages) else {
            self.unexpected += 1;
            return Seen::Unexpected;
        };
        let Some(set) = self.seen.get_mut(s.publisher as usize) else {
            self.unexpected += 1;
            return Seen::Unexpected;
        };
        if set.insert(s.seq) {
            self.unique += 1;
            Seen::New
        } else {
            Seen::Duplicate
        }
    }

    /// Received more than once (unexpected messages are not duplicates).
    pub fn duplicated(&self) -> u64 {
        self.received - self.unique - self.unexpected
    }
}

/// When a subscriber stops waiting for messages that may never come: `window_ns` after the later
/// of the publishers' end and the last time it was busy, that is received a PUBLISH or held
/// itself back for its rate limit. A rate-limited subscriber runs behind the broker on purpose:
/// the time it spends throttled is not the broker's silence.
#[derive(Clone, Copy, Debug)]
pub struct IdleClock {
    window_ns: u64,
    busy_ns: u64,
}

impl IdleClock {
    /// A clock that counts from `now_ns`.
    pub fn new(window_ns: u64, now_ns: u64) -> IdleClock {
        IdleClock {
            window_ns,
            busy_ns: now_ns,
        }
    }

    /// The subscriber received something, or was throttling itself, at `now_ns`.
    pub fn busy(&mut self, now_ns: u64) {
        self.busy_ns = self.busy_ns.max(now_ns);
    }

    /// Whether to give up at `now_ns`, given when the publishers finished (`None`: not yet).
    pub fn expired(&self, now_ns: u64, publishers_done_ns: Option<u64>) -> bool {
        publishers_done_ns
            .is_some_and(|done| now_ns.saturating_sub(done.max(self.busy_ns)) >= self.window_ns)
    }
}

/// Nearest-rank percentile `p` (0 to 100) of ascending `sorted`: the smallest sample with at
/// least `p`% of the samples at or below it. `None` without samples.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

// ---------------------------------------------------------------------------------------------
// The run.

/// What one subscriber saw.
#[derive(Debug)]
struct SubResult {
    who: String,
    tracker: Tracker,
    latencies_us: Vec<u32>,
    /// Time of the last first-time delivery.
    last_delivery_ns: Option<u64>,
    /// Stopped after `--end-idle-s` without news, before it had everything.
    ended_idle: bool,
    timed_out: bool,
    error: Option<String>,
}

/// What one publisher did.
#[derive(Debug)]
struct PubResult {
    published: u64,
    first_ns: Option<u64>,
    done_ns: u64,
    timed_out: bool,
    error: Option<String>,
}

#[derive(Debug)]
struct Outcome {
    subs: Vec<SubResult>,
    pubs: Vec<PubResult>,
    idle: IdleOutcome,
    warnings: Vec<String>,
}

/// What became of the `--idle-connections`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleOutcome {
    pub requested: u32,
    /// Got their CONNACK.
    pub accepted: u32,
    /// Of those, closed by the broker by the end of the run.
    pub closed: u32,
    /// The broker's `VmRSS` once they were open, before the other clients connected.
    pub broker_rss_kb: Option<u64>,
}

async fn bench(plan: Arc<Plan>) -> io::Result<Outcome> {
    let mut warnings = Vec::new();
    let idle_set = if plan.idle_connections > 0 {
        let set = idle::IdleSet::open(
            plan.addr,
            plan.idle_connections,
            plan.idle_keep_alive_s,
            plan.idle_concurrency,
        )
        .await;
        if let Some(e) = &set.first_error {
            warnings.push(format!(
                "{} of {} idle connections failed, the first with: {e}",
                set.failed, plan.idle_connections
            ));
        }
        Some(set)
    } else {
        None
    };
    let mut idle = IdleOutcome {
        requested: plan.idle_connections,
        accepted: idle_set.as_ref().map_or(0, |s| s.accepted()),
        closed: 0,
        broker_rss_kb: None,
    };
    if idle_set.is_some() {
        idle.broker_rss_kb = plan.broker_pid.and_then(target::current_rss_kb);
    }
    // Subscribers connect and subscribe concurrently; all must have their SUBACK before anyone
    // publishes.
    let recv_buffer = (plan.sub_rate_limit > 0).then_some(SLOW_RECV_BUFFER_BYTES);
    let mut joins = Vec::new();
    for i in 0..plan.subscribers {
        let plan = plan.clone();
        joins.push(tokio::spawn(async move {
            let id = format!("bench-sub-{i}");
            let mut c = Conn::connect(plan.addr, &id, plan.clean_session, recv_buffer).await?;
            let granted = c.subscribe(&id, &plan.topic, plan.qos).await?;
            Ok::<_, io::Error>((c, id, granted))
        }));
    }
    let mut subs = Vec::new();
    for j in joins {
        let (c, id, granted) = j.await.map_err(io::Error::other)??;
        if granted != plan.qos {
            warnings.push(format!(
                "{id}: broker granted QoS {} instead of {}",
                granted.as_u8(),
                plan.qos.as_u8()
            ));
        }
        subs.push((c, id));
    }
    let (done_tx, done_rx) = watch::channel(None::<u64>);
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|(c, id)| tokio::spawn(run_subscriber(c, id, plan.clone(), done_rx.clone())))
        .collect();

    // Publishers connect, then start together.
    let mut joins = Vec::new();
    for i in 0..plan.publishers {
        let plan = plan.clone();
        joins.push(tokio::spawn(async move {
            let id = format!("bench-pub-{i}");
            Conn::connect(plan.addr, &id, true, None).await
        }));
    }
    let mut pub_conns = Vec::new();
    for j in joins {
        pub_conns.push(j.await.map_err(io::Error::other)??);
    }
    let pub_tasks: Vec<_> = pub_conns
        .into_iter()
        .zip(0u32..)
        .map(|(c, i)| tokio::spawn(run_publisher(c, i, plan.clone())))
        .collect();

    let mut pubs = Vec::new();
    for t in pub_tasks {
        pubs.push(t.await.map_err(io::Error::other)?);
    }
    let done = pubs.iter().map(|p| p.done_ns).max().unwrap_or(0);
    let _ = done_tx.send(Some(done));
    let mut subs = Vec::new();
    for t in sub_tasks {
        subs.push(t.await.map_err(io::Error::other)?);
    }
    if let Some(set) = &idle_set {
        idle.closed = set.closed_by_broker();
    }
    Ok(Outcome {
        subs,
        pubs,
        idle,
        warnings,
    })
}

/// Why a client stopped early.
#[derive(Debug)]
enum Stop {
    /// `--timeout-s` passed between writes.
    Deadline,
    /// `--timeout-s` passed in the middle of a write: a partial packet is on the wire.
    WriteCut,
    /// The connection failed or the broker broke the protocol.
    Failed(String),
}

/// Writes the batch, giving up at the deadline.
async fn flush_by(conn: &mut Conn, plan: &Plan, who: &str) -> Result<(), Stop> {
    let left = Duration::from_nanos(plan.deadline_ns.saturating_sub(plan.clock.now_ns()));
    match tokio::time::timeout(left, conn.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Stop::Failed(client::err(who, e).to_string())),
        Err(_) => Err(Stop::WriteCut),
    }
}

/// Sends DISCONNECT where the connection is still usable; returns (timed out, error).
async fn finish(conn: Conn, stop: Option<Stop>) -> (bool, Option<String>) {
    if matches!(stop, None | Some(Stop::Deadline)) {
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.disconnect()).await;
    }
    match stop {
        None => (false, None),
        Some(Stop::Deadline | Stop::WriteCut) => (true, None),
        Some(Stop::Failed(e)) => (false, Some(e)),
    }
}

/// Packet-id slot states of a publisher.
const FREE: u8 = 0;
/// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
const SENT: u8 = 1;
/// PUBREL sent, waiting for PUBCOMP.
const RELEASED: u8 = 2;

async fn run_publisher(mut conn: Conn, index: u32, plan: Arc<Plan>) -> PubResult {
    let clock = plan.clock;
    let qos = plan.qos;
    let window = usize::from(plan.inflight);
    let who = format!("bench-pub-{index}");
    let mut payload = make_payload(
        Stamp {
            publisher: index,
            seq: 0,
            sent_ns: 0,
        },
        plan.payload_bytes,
    );
    let mut slots = vec![FREE; 1 << 16];
    let mut next_id: u16 = 0;
    let mut inflight = 0usize;
    let mut sent: u32 = 0;
    let mut first_ns = None;
    let mut last_tx_ns = clock.now_ns();
    let mut stop = None;

    'run: loop {
        let now = clock.now_ns();
        if sent == plan.messages && inflight == 0 {
            break;
        }
        if now >= plan.deadline_ns {
            stop = Some(Stop::Deadline);
            break;
        }
        // Fill the window (or, at QoS 0, one batch).
        while sent < plan.messages
            && (qos == QoS::AtMostOnce || inflight < window)
            && conn.out.len() < BATCH_BYTES
        {
            let pkid = if qos == QoS::AtMostOnce {
                0
            } else {
                // A free id exists: inflight < window <= 65535 of the 65535 usable ids.
                loop {
                    next_id = next_id.wrapping_add(1);
                    if next_id != 0 && slots[usize::from(next_id)] == FREE {
                        break;
                    }
                }
                slots[usize::from(next_id)] = SENT;
                inflight += 1;
                next_id
            };
            Stamp {
                publisher: index,
                seq: sent,
                sent_ns: now,
            }
            .write(&mut payload);
            let publish = Packet::Publish(Publish {
                dup: false,
                qos,
                retain: false,
                topic: &plan.topic,
                pkid,
                payload: &payload,
            });
            if let Err(e) = conn.push(&publish) {
                stop = Some(Stop::Failed(client::err(&who, e).to_string()));
                break 'run;
            }
            sent += 1;
            first_ns.get_or_insert(now);
        }
        if now.saturating_sub(last_tx_ns) >= PING_AFTER_NS && conn.out.is_empty() {
            let _ = conn.push(&Packet::PingReq);
        }
        if !conn.out.is_empty() {
            last_tx_ns = now;
            if let Err(s) = flush_by(&mut conn, &plan, &who).await {
                stop = Some(s);
                break;
            }
        }
        if qos == QoS::AtMostOnce || (sent == plan.messages && inflight == 0) {
            continue;
        }
        // Acknowledgements.
        match tokio::time::timeout(TICK, conn.read_some(usize::MAX)).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                stop = Some(Stop::Failed(client::err(&who, e).to_string()));
                break;
            }
            Ok(Ok(_)) => {}
        }
        let drained = conn.drain(|p, out| {
            match (p, qos) {
                (Packet::PubAck(id), QoS::AtLeastOnce) if slots[usize::from(id)] == SENT => {
                    slots[usize::from(id)] = FREE;
                    inflight -= 1;
                }
                (Packet::PubRec(id), QoS::ExactlyOnce) if slots[usize::from(id)] != FREE => {
                    slots[usize::from(id)] = RELEASED;
                    push(out, &Packet::PubRel(id))?;
                }
                (Packet::PubComp(id), QoS::ExactlyOnce) if slots[usize::from(id)] == RELEASED => {
                    slots[usize::from(id)] = FREE;
                    inflight -= 1;
                }
                (Packet::PingResp, _) => {}
                (other, _) => {
                    return Err(io::Error::other(format!("unexpected {}", other.name())));
                }
            }
            Ok(true)
        });
        if let Err(e) = drained {
            stop = Some(Stop::Failed(client::err(&who, e).to_string()));
            break;
        }
    }
    let done_ns = clock.now_ns();
    let (timed_out, error) = finish(conn, stop).await;
    PubResult {
        published: u64::from(sent),
        first_ns,
        done_ns,
        timed_out,
        error,
    }
}

async fn run_subscriber(
    mut conn: Conn,
    who: String,
    plan: Arc<Plan>,
    publishers_done: watch::Receiver<Option<u64>>,
) -> SubResult {
    let clock = plan.clock;
    let mut tracker = Tracker::new(plan.publishers, plan.messages);
    let expected = tracker.expected();
    let mut latencies_us = Vec::with_capacity(expected.min(LATENCY_RESERVE_MAX) as usize);
    let mut last_delivery_ns = None;
    let start_ns = clock.now_ns();
    let mut idle_clock = IdleClock::new(plan.end_idle_ns, start_ns);
    let mut ended_idle = false;
    let mut last_tx_ns = start_ns;
    // QoS 2 packet ids PUBREC'd and not yet PUBREL'd.
    let mut awaiting_rel = vec![false; 1 << 16];
    let mut awaiting_rel_count = 0usize;
    let rate = u64::from(plan.sub_rate_limit);
    let chunk = if rate > 0 {
        SLOW_READ_BYTES
    } else {
        usize::MAX
    };
    let mut processed: u64 = 0;
    let mut stop = None;

    loop {
        let now = clock.now_ns();
        if tracker.unique == expected && awaiting_rel_count == 0 {
            break;
        }
        if now >= plan.deadline_ns {
            stop = Some(Stop::Deadline);
            break;
        }
        // Rate limit: processed messages may not run ahead of `rate` per second since the start.
        // Holding back is being busy: the idle clock does not run meanwhile.
        if let Some(offset) = processed.saturating_mul(1_000_000_000).checked_div(rate) {
            let due = start_ns + offset;
            if due > now {
                tokio::time::sleep(Duration::from_nanos(due - now).min(TICK)).await;
                idle_clock.busy(clock.now_ns());
                continue;
            }
        }
        if idle_clock.expired(now, *publishers_done.borrow()) {
            ended_idle = true;
            break;
        }
        if now.saturating_sub(last_tx_ns) >= PING_AFTER_NS {
            let _ = conn.push(&Packet::PingReq);
            last_tx_ns = now;
            if let Err(s) = flush_by(&mut conn, &plan, &who).await {
                stop = Some(s);
                break;
            }
        }
        match tokio::time::timeout(TICK, conn.read_some(chunk)).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                stop = Some(Stop::Failed(client::err(&who, e).to_string()));
                break;
            }
            Ok(Ok(_)) => {}
        }
        let now = clock.now_ns();
        let drained = conn.drain(|p, out| {
            match p {
                Packet::Publish(msg) => {
                    processed += 1;
                    idle_clock.busy(now);
                    let stamp = Stamp::read(msg.payload);
                    if tracker.record(stamp) == Seen::New {
                        let sent = stamp.map_or(now, |s| s.sent_ns);
                        let us = now.saturating_sub(sent) / 1_000;
                        latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                        last_delivery_ns = Some(now);
                    }
                    match msg.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => push(out, &Packet::PubAck(msg.pkid))?,
                        QoS::ExactlyOnce => {
                            push(out, &Packet::PubRec(msg.pkid))?;
                            let slot = &mut awaiting_rel[usize::from(msg.pkid)];
                            if !*slot {
                                *slot = true;
                                awaiting_rel_count += 1;
                            }
                        }
                    }
                }
                Packet::PubRel(id) => {
                    push(out, &Packet::PubComp(id))?;
                    let slot = &mut awaiting_rel[usize::from(id)];
                    if *slot {
                        *slot = false;
                        awaiting_rel_count -= 1;
                    }
                }
                Packet::PingResp => {}
                other => return Err(io::Error::other(format!("unexpected {}", other.name()))),
            }
            Ok(true)
        });
        if let Err(e) = drained {
            stop = Some(Stop::Failed(client::err(&who, e).to_string()));
            break;
        }
        if !conn.out.is_empty() {
            last_tx_ns = now;
            if let Err(s) = flush_by(&mut conn, &plan, &who).await {
                stop = Some(s);
                break;
            }
        }
    }
    let (timed_out, error) = finish(conn, stop).await;
    SubResult {
        who,
        tracker,
        latencies_us,
        last_delivery_ns,
        ended_idle,
        timed_out,
        error,
    }
}

// ---------------------------------------------------------------------------------------------
// The report.

/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub target: String,
    pub publishers: u32,
    pub subscribers: u32,
    pub qos: u8,
    pub payload_bytes: u32,
    pub messages: u32,
    /// PUBLISHes the publishers wrote (less than P x N only after a timeout or an error).
    pub published: u64,
    /// P x N x S.
    pub expected: u64,
    /// Unique deliveries, summed over subscribers.
    pub delivered: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    pub elapsed_s: f64,
    pub deliveries_per_s: f64,
    pub publish_per_s: f64,
    /// p50, p99, max in milliseconds; `None` without deliveries.
    pub latency_ms: Option<(f64, f64, f64)>,
    pub broker_peak_rss_kb: Option<u64>,
    /// The `--idle-connections`, when asked for.
    pub idle: IdleOutcome,
    pub timed_out: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    fn new(target: String, args: &BenchArgs, outcome: Outcome, rss_kb: Option<u64>) -> Report {
        let Outcome {
            subs,
            pubs,
            idle,
            mut warnings,
        } = outcome;
        for s in subs.iter().filter(|s| s.ended_idle) {
            warnings.push(format!(
                "{}: stopped after {} s without news from the broker, with {} of {} messages",
                s.who,
                args.end_idle_s,
                s.tracker.unique,
                s.tracker.expected()
            ));
        }
        let published = pubs.iter().map(|p| p.published).sum();
        let first = pubs.iter().filter_map(|p| p.first_ns).min();
        let pubs_done = pubs.iter().map(|p| p.done_ns).max().unwrap_or(0);
        let last_delivery = subs.iter().filter_map(|s| s.last_delivery_ns).max();
        let secs =
            |from: Option<u64>, to: u64| from.map_or(0.0, |f| to.saturating_sub(f) as f64 / 1e9);
        let elapsed_s = secs(first, last_delivery.unwrap_or(pubs_done));
        let publish_s = secs(first, pubs_done);
        let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };

        let mut all: Vec<u32> = Vec::with_capacity(subs.iter().map(|s| s.latencies_us.len()).sum());
        for s in &subs {
            all.extend_from_slice(&s.latencies_us);
        }
        all.sort_unstable();
        let ms = |p: f64| percentile(&all, p).map_or(0.0, |us| f64::from(us) / 1e3);
        let latency_ms = (!all.is_empty()).then(|| (ms(50.0), ms(99.0), ms(100.0)));

        let delivered = subs.iter().map(|s| s.tracker.unique).sum();
        let errors = pubs
            .iter()
            .filter_map(|p| p.error.clone())
            .chain(subs.iter().filter_map(|s| s.error.clone()))
            .collect();
        Report {
            target,
            publishers: args.publishers,
            subscribers: args.subscribers,
            qos: args.qos,
            payload_bytes: args.payload_bytes,
            messages: args.messages,
            published,
            expected: u64::from(args.publishers)
                * u64::from(args.messages)
                * u64::from(args.subscribers),
            delivered,
            duplicated: subs.iter().map(|s| s.tracker.duplicated()).sum(),
            unexpected: subs.iter().map(|s| s.tracker.unexpected).sum(),
            elapsed_s,
            deliveries_per_s: rate(delivered, elapsed_s),
            publish_per_s: rate(published, publish_s),
            latency_ms,
            broker_peak_rss_kb: rss_kb,
            idle,
            timed_out: pubs.iter().any(|p| p.timed_out) || subs.iter().any(|s| s.timed_out),
            errors,
            warnings,
        }
    }

    /// Expected deliveries that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    fn rss_mb(&self) -> Option<f64> {
        self.broker_peak_rss_kb.map(|kb| kb as f64 / 1024.0)
    }

    /// The human-readable block.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let _ = writeln!(s, "mqsim bench: {}", self.target);
        let _ = writeln!(
            s,
            "  clients     {} -> {}, QoS {}, {}-byte payload, {} messages per publisher",
            plural(self.publishers, "publisher"),
            plural(self.subscribers, "subscriber"),
            self.qos,
            self.payload_bytes,
            self.messages
        );
        let _ = writeln!(
            s,
            "  deliveries  {} expected, {} delivered, {} lost, {} duplicated{}",
            self.expected,
            self.delivered,
            self.lost(),
            self.duplicated,
            if self.unexpected > 0 {
                format!(", {} unexpected", self.unexpected)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  throughput  {:.0} deliveries/s over {:.3} s; {} published at {:.0}/s",
            self.deliveries_per_s, self.elapsed_s, self.published, self.publish_per_s
        );
        match self.latency_ms {
            Some((p50, p99, max)) => {
                let _ = writeln!(
                    s,
                    "  latency     p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms"
                );
            }
            None => {
                let _ = writeln!(s, "  latency     no deliveries");
            }
        }
        match self.rss_mb() {
            Some(mb) => {
                let _ = writeln!(s, "  broker RSS  {mb:.1} MB peak");
            }
            None => {
                let _ = writeln!(s, "  broker RSS  unknown (use --spawn or --broker-pid)");
            }
        }
        if self.idle.requested > 0 {
            let _ = writeln!(
                s,
                "  idle conns  {} requested, {} accepted, {} closed by the broker during the run{}",
                self.idle.requested,
                self.idle.accepted,
                self.idle.closed,
                match self.idle.broker_rss_kb {
                    Some(kb) => format!("; broker RSS {:.1} MB once open", kb as f64 / 1024.0),
                    None => String::new(),
                }
            );
        }
        if self.timed_out {
            let _ = writeln!(s, "  timed out   yes");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning     {w}");
        }
        s
    }

    /// One line of JSON (numbers unquoted; `null` for unknown values).
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        let _ = write!(s, "\"target\":{}", json_str(&self.target));
        let ints = [
            ("publishers", u64::from(self.publishers)),
            ("subscribers", u64::from(self.subscribers)),
            ("qos", u64::from(self.qos)),
            ("payload_bytes", u64::from(self.payload_bytes)),
            ("messages_per_publisher", u64::from(self.messages)),
            ("published", self.published),
            ("expected", self.expected),
            ("delivered", self.delivered),
            ("lost", self.lost()),
            ("duplicated", self.duplicated),
            ("unexpected", self.unexpected),
            ("idle_connections", u64::from(self.idle.requested)),
            ("idle_accepted", u64::from(self.idle.accepted)),
            ("idle_closed", u64::from(self.idle.closed)),
        ];
        for (k, v) in ints {
            let _ = write!(s, ",\"{k}\":{v}");
        }
        let _ = write!(
            s,
            ",\"elapsed_s\":{:.6},\"deliveries_per_s\":{:.1},\"publish_per_s\":{:.1}",
            self.elapsed_s, self.deliveries_per_s, self.publish_per_s
        );
        let (p50, p99, max) = match self.latency_ms {
            Some((a, b, c)) => (format!("{a:.3}"), format!("{b:.3}"), format!("{c:.3}")),
            None => ("null".into(), "null".into(), "null".into()),
        };
        let _ = write!(
            s,
            ",\"latency_p50_ms\":{p50},\"latency_p99_ms\":{p99},\"latency_max_ms\":{max}"
        );
        match self.rss_mb() {
            Some(mb) => {
                let _ = write!(s, ",\"broker_peak_rss_mb\":{mb:.1}");
            }
            None => s.push_str(",\"broker_peak_rss_mb\":null"),
        }
        match self.idle.broker_rss_kb {
            Some(kb) => {
                let _ = write!(s, ",\"broker_rss_after_idle_mb\":{:.1}", kb as f64 / 1024.0);
            }
            None => s.push_str(",\"broker_rss_after_idle_mb\":null"),
        }
        let _ = write!(s, ",\"timed_out\":{}", self.timed_out);
        for (key, list) in [("errors", &self.errors), ("warnings", &self.warnings)] {
            let items: Vec<String> = list.iter().map(|e| json_str(e)).collect();
            let _ = write!(s, ",\"{key}\":[{}]", items.join(","));
        }
        s.push('}');
        s
    }
}

/// A JSON string literal.
fn json_str(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", u32::from(c));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_pads() {
        let stamp = Stamp {
            publisher: 7,
            seq: 0xDEAD_BEEF,
            sent_ns: 0x0102_0304_0506_0708,
        };
        let p = make_payload(stamp, 24);
        assert_eq!(p.len(), 24);
        assert_eq!(
            &p[..16],
            &[0, 0, 0, 7, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(&p[16..], b"........");
        assert_eq!(Stamp::read(&p), Some(stamp));
        // Exactly the header, and a request below the minimum, are both 16 bytes.
        assert_eq!(make_payload(stamp, 16).len(), 16);
        assert_eq!(make_payload(stamp, 3).len(), 16);
        assert_eq!(Stamp::read(&make_payload(stamp, 16)), Some(stamp));
    }

    #[test]
    fn short_payload_is_not_a_stamp() {
        assert_eq!(Stamp::read(&[0; 15]), None);
        assert_eq!(Stamp::read(b""), None);
    }

    #[test]
    fn rewriting_a_stamp_keeps_the_padding() {
        let mut p = make_payload(
            Stamp {
                publisher: 1,
                seq: 1,
                sent_ns: 1,
            },
            20,
        );
        let next = Stamp {
            publisher: 1,
            seq: 2,
            sent_ns: 99,
        };
        next.write(&mut p);
        assert_eq!(Stamp::read(&p), Some(next));
        assert_eq!(&p[16..], b"....");
    }

    fn stamp(publisher: u32, seq: u32) -> Option<Stamp> {
        Some(Stamp {
            publisher,
            seq,
            sent_ns: 0,
        })
    }

    #[test]
    fn tracker_counts_unique_duplicates_and_strangers() {
        let mut t = Tracker::new(2, 100);
        assert_eq!(t.expected(), 200);
        assert_eq!(t.record(stamp(0, 0)), Seen::New);
        assert_eq!(t.record(stamp(1, 0)), Seen::New); // Same seq, other publisher.
        assert_eq!(t.record(stamp(0, 99)), Seen::New); // Last seq.
        assert_eq!(t.record(stamp(0, 63)), Seen::New);
        assert_eq!(t.record(stamp(0, 64)), Seen::New); // Word boundary.
        assert_eq!(t.record(stamp(0, 0)), Seen::Duplicate);
        assert_eq!(t.record(stamp(0, 64)), Seen::Duplicate);
        assert_eq!(t.record(stamp(0, 64)), Seen::Duplicate);
        assert_eq!(t.record(stamp(2, 0)), Seen::Unexpected); // No such publisher.
        assert_eq!(t.record(stamp(0, 100)), Seen::Unexpected); // Beyond N.
        assert_eq!(t.record(None), Seen::Unexpected); // Too short.
        assert_eq!(t.received, 11);
        assert_eq!(t.unique, 5);
        assert_eq!(t.duplicated(), 3);
        assert_eq!(t.unexpected, 3);
    }

    #[test]
    fn tracker_complete_when_every_message_seen_once() {
        let mut t = Tracker::new(3, 1000);
        for seq in (0..1000).rev() {
            for p in 0..3 {
                assert_eq!(t.record(stamp(p, seq)), Seen::New);
            }
        }
        assert_eq!(t.unique, t.expected());
        assert_eq!(t.duplicated(), 0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[5], 0.0), Some(5));
        assert_eq!(percentile(&[5], 99.0), Some(5));
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 90.0), Some(9));
    }

    fn sample_report() -> Report {
        Report {
            target: "127.0.0.1:1883 (spawned `x \"y\"`)".into(),
            publishers: 2,
            subscribers: 2,
            qos: 1,
            payload_bytes: 24,
            messages: 10,
            published: 20,
            expected: 40,
            delivered: 38,
            duplicated: 1,
            unexpected: 0,
            elapsed_s: 0.5,
            deliveries_per_s: 76.0,
            publish_per_s: 40.0,
            latency_ms: Some((0.25, 1.5, 2.0)),
            broker_peak_rss_kb: Some(2048),
            idle: IdleOutcome::default(),
            timed_out: false,
            errors: vec![],
            warnings: vec!["w\n".into()],
        }
    }

    #[test]
    fn report_lists_loss_and_formats_json() {
        let r = sample_report();
        assert_eq!(r.lost(), 2);
        let j = r.to_json();
        assert!(j.starts_with("{\"target\":\"127.0.0.1:1883 (spawned `x \\\"y\\\"`)\","));
        for part in [
            "\"delivered\":38,",
            "\"lost\":2,",
            "\"duplicated\":1,",
            "\"expected\":40,",
            "\"latency_p99_ms\":1.500,",
            "\"broker_peak_rss_mb\":2.0,",
            "\"errors\":[]",
            "\"warnings\":[\"w\\n\"]",
        ] {
            assert!(j.contains(part), "{part} in {j}");
        }
        assert!(!j.contains('\n'));
        let t = r.to_text();
        assert!(
            t.contains("40 expected, 38 delivered, 2 lost, 1 duplicated"),
            "{t}"
        );
        assert!(
            t.contains("p50 0.250 ms, p99 1.500 ms, max 2.000 ms"),
            "{t}"
        );
        assert!(t.contains("2.0 MB peak"), "{t}");
        // No idle connections asked for: zeros in JSON, nothing in the text.
        assert!(j.contains("\"idle_connections\":0,\"idle_accepted\":0,\"idle_closed\":0"));
        assert!(j.contains("\"broker_rss_after_idle_mb\":null"));
        assert!(!t.contains("idle conns"), "{t}");
    }

    #[test]
    fn report_shows_idle_connections() {
        let mut r = sample_report();
        r.idle = IdleOutcome {
            requested: 10_000,
            accepted: 9_990,
            closed: 3,
            broker_rss_kb: Some(10 * 1024),
        };
        let j = r.to_json();
        for part in [
            "\"idle_connections\":10000,",
            "\"idle_accepted\":9990,",
            "\"idle_closed\":3,",
            "\"broker_rss_after_idle_mb\":10.0,",
        ] {
            assert!(j.contains(part), "{part} in {j}");
        }
        let t = r.to_text();
        assert!(
            t.contains("10000 requested, 9990 accepted, 3 closed by the broker during the run; broker RSS 10.0 MB once open"),
            "{t}"
        );
    }

    #[test]
    fn idle_clock_waits_for_the_publishers_then_the_window() {
        const S: u64 = 1_000_000_000;
        let mut c = IdleClock::new(2 * S, 0);
        // Publishers still running: never idle, however quiet.
        assert!(!c.expired(100 * S, None));
        // Publishers done at 10 s, last message at 5 s: counts from 10 s.
        c.busy(5 * S);
        assert!(!c.expired(11 * S, Some(10 * S)));
        assert!(c.expired(12 * S, Some(10 * S)));
        // A message after the publishers finished restarts the window.
        c.busy(13 * S);
        assert!(!c.expired(14 * S, Some(10 * S)));
        assert!(c.expired(15 * S, Some(10 * S)));
        // Busy never goes back in time.
        c.busy(S);
        assert!(!c.expired(14 * S, Some(10 * S)));
    }

    #[test]
    fn idle_clock_does_not_run_while_a_slow_subscriber_throttles() {
        // 10 msg/s, 40 small messages read at once: the subscriber holds itself back for 4 s. It
        // is busy each time it wakes from its rate-limit sleep (every 100 ms), so a 2 s window
        // after publishers done at 0 never expires during the throttling.
        const MS: u64 = 1_000_000;
        let mut c = IdleClock::new(2_000 * MS, 0);
        c.busy(0);
        let mut now = 0;
        while now < 4_000 * MS {
            assert!(!c.expired(now, Some(0)), "at {now}");
            now += 100 * MS;
            c.busy(now);
        }
        // Then the broker has nothing more: 2 s later it gives up.
        assert!(!c.expired(now + 1_999 * MS, Some(0)));
        assert!(c.expired(now + 2_000 * MS, Some(0)));
    }

    #[test]
    fn report_without_rss_or_deliveries_says_unknown() {
        let mut r = sample_report();
        r.broker_peak_rss_kb = None;
        r.latency_ms = None;
        assert!(r.to_json().contains("\"broker_peak_rss_mb\":null"));
        assert!(r.to_json().contains("\"latency_p50_ms\":null"));
        assert!(r.to_text().contains("unknown"));
        assert!(r.to_text().contains("no deliveries"));
    }

    #[test]
    fn vm_hwm_is_parsed_in_kb() {
        let status =
            "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(target::parse_status_kb(status, "VmHWM"), Some(5120));
        assert_eq!(target::parse_status_kb(status, "VmRSS"), Some(4000));
        // A key is matched whole, not as a prefix of another.
        assert_eq!(target::parse_status_kb(status, "VmH"), None);
        assert_eq!(target::parse_status_kb("Name: x\n", "VmHWM"), None);
        assert_eq!(target::parse_status_kb("VmHWM:\t12 MB\n", "VmHWM"), None);
        // Our own process has both.
        assert!(target::peak_rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
        assert!(target::current_rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }
}
