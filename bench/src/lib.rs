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
//!    `end_idle::IdleClock`. A subscriber that stops for idleness says so in a warning. Every
//!    client then sends DISCONNECT.
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
//!
//! # Files
//!
//! `args` the command line; `target` the broker under test; `idle` the idle connections;
//! `client` the connection (codec, buffers); `qos` the bench's own, deliberately independent
//! model of the QoS 1/2 exchanges; `publisher` and `subscriber` the client tasks; `stamp` the
//! payload header; `tracker` loss and duplicate accounting; `end_idle` when a subscriber stops
//! waiting; `report` the figures, as text or JSON. This file runs them in order.

mod args;
mod client;
mod end_idle;
mod idle;
mod publisher;
mod qos;
mod report;
mod stamp;
mod subscriber;
mod target;
mod tracker;

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mqsim::QoS;
use tokio::sync::watch;

pub use args::BenchArgs;
use client::{Conn, Session, KEEP_ALIVE_S};
use idle::IdleOutcome;
use publisher::{run_publisher, PubResult};
use report::Report;
use subscriber::{run_subscriber, SubResult, SLOW_RECV_BUFFER_BYTES};

/// How often a waiting client wakes up to check the end conditions and keep alive.
const TICK: Duration = Duration::from_millis(100);
/// Send PINGREQ after this long without sending anything.
const PING_AFTER_NS: u64 = KEEP_ALIVE_S as u64 * 1_000_000_000 / 2;

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
        subscriber_session: if args.clean_session {
            Session::Clean
        } else {
            Session::Kept
        },
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
    /// The subscribers' `--clean-session` (publishers always start clean).
    subscriber_session: Session,
    deadline_ns: u64,
    end_idle_ns: u64,
    idle_connections: u32,
    idle_keep_alive_s: u16,
    idle_concurrency: u32,
    /// The broker process, when known (for its RSS once the idle connections are open).
    broker_pid: Option<u32>,
    clock: Clock,
}

/// What the clients did, for the report.
#[derive(Debug)]
struct Outcome {
    subs: Vec<SubResult>,
    pubs: Vec<PubResult>,
    idle: IdleOutcome,
    warnings: Vec<String>,
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
            let mut c = Conn::connect(plan.addr, &id, plan.subscriber_session, recv_buffer).await?;
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
            Conn::connect(plan.addr, &id, Session::Clean, None).await
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

/// How a client's run ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct End {
    /// `--timeout-s` passed before it was done.
    pub timed_out: bool,
    /// The connection failed or the broker broke the protocol.
    pub error: Option<String>,
}

/// Sends DISCONNECT where the connection is still usable.
async fn finish(conn: Conn, stop: Option<Stop>) -> End {
    if matches!(stop, None | Some(Stop::Deadline)) {
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.disconnect()).await;
    }
    match stop {
        None => End::default(),
        Some(Stop::Deadline | Stop::WriteCut) => End {
            timed_out: true,
            error: None,
        },
        Some(Stop::Failed(e)) => End {
            timed_out: false,
            error: Some(e),
        },
    }
}
