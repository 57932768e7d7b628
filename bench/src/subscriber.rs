//! A subscriber task: receives and acknowledges (through [`SubscriberIds`]), counts each message
//! in its [`Tracker`], keeps the latency of first deliveries, and stops when it has everything,
//! at `--end-idle-s` of silence after the publishers, or at the deadline. With `--sub-rate-limit`
//! it reads slowly on purpose.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use mqsim::codec::Packet;
use tokio::sync::watch;

use super::client::{self, push, Conn, Drain};
use super::end_idle::IdleClock;
use super::qos::SubscriberIds;
use super::stamp::Stamp;
use super::tracker::{Seen, Tracker};
use super::{finish, flush_by, End, Plan, Stop, PING_AFTER_NS, TICK};

/// Read size of a rate-limited subscriber.
const SLOW_READ_BYTES: usize = 1024;
/// Socket receive buffer asked for by a rate-limited subscriber (the kernel doubles it).
pub const SLOW_RECV_BUFFER_BYTES: u32 = 32 * 1024;
/// Latency samples reserved up front, at most (the vector grows past it if needed).
const LATENCY_RESERVE_MAX: u64 = 16 * 1024 * 1024;

/// Whether a subscriber stopped because the broker went quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It had everything, or hit the deadline, or failed.
    Normal,
    /// It stopped after `--end-idle-s` without news, before it had everything.
    Idle,
}

/// What one subscriber saw.
#[derive(Debug)]
pub struct SubResult {
    pub who: String,
    pub tracker: Tracker,
    pub latencies_us: Vec<u32>,
    /// Time of the last first-time delivery.
    pub last_delivery_ns: Option<u64>,
    pub ending: Ending,
    pub end: End,
}

/// Receives on `conn` (already subscribed, as `who`) until the end conditions, then disconnects.
/// `publishers_done` turns to the time the last publisher finished.
pub async fn run_subscriber(
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
    let mut ending = Ending::Normal;
    let mut last_tx_ns = start_ns;
    let mut ids = SubscriberIds::default();
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
        if tracker.unique == expected && ids.awaiting_rel() == 0 {
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
            ending = Ending::Idle;
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
                    if let Some(ack) = ids.on_publish(msg.qos, msg.pkid) {
                        push(out, &ack)?;
                    }
                }
                Packet::PubRel(id) => push(out, &ids.on_pubrel(id))?,
                Packet::PingResp => {}
                other => return Err(io::Error::other(format!("unexpected {}", other.name()))),
            }
            Ok(Drain::More)
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
    let end = finish(conn, stop).await;
    SubResult {
        who,
        tracker,
        latencies_us,
        last_delivery_ns,
        ending,
        end,
    }
}
