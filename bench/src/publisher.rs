//! A publisher task: `--messages` stamped PUBLISHes at `--qos`, written in batches, at most
//! `--inflight` unacknowledged at QoS 1 and 2 (the ids are kept by [`PublisherIds`]).

use std::io;
use std::sync::Arc;

use mqsim::codec::{Packet, Publish};
use mqsim::QoS;

use super::client::{self, push, Conn, Drain};
use super::qos::{PublisherIds, PublisherReply, Unexpected};
use super::stamp::{make_payload, Stamp};
use super::{finish, flush_by, End, Plan, Stop, PING_AFTER_NS, TICK};

/// Largest write batch a publisher encodes before `write_all`.
const BATCH_BYTES: usize = 64 * 1024;

/// What one publisher did.
#[derive(Debug)]
pub struct PubResult {
    pub published: u64,
    pub first_ns: Option<u64>,
    pub done_ns: u64,
    pub end: End,
}

/// Publishes `plan.messages` messages as publisher `index` on `conn`, then disconnects.
pub async fn run_publisher(mut conn: Conn, index: u32, plan: Arc<Plan>) -> PubResult {
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
    let mut ids = PublisherIds::new(qos);
    let mut sent: u32 = 0;
    let mut first_ns = None;
    let mut last_tx_ns = clock.now_ns();
    let mut stop = None;

    'run: loop {
        let now = clock.now_ns();
        if sent == plan.messages && ids.in_flight() == 0 {
            break;
        }
        if now >= plan.deadline_ns {
            stop = Some(Stop::Deadline);
            break;
        }
        // Fill the window (or, at QoS 0, one batch).
        while sent < plan.messages
            && (qos == QoS::AtMostOnce || ids.in_flight() < window)
            && conn.out.len() < BATCH_BYTES
        {
            // A free id exists at QoS 1 and 2: in flight < window <= 65535 of the 65535 ids.
            let pkid = if qos == QoS::AtMostOnce {
                0
            } else {
                ids.take()
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
        if qos == QoS::AtMostOnce || (sent == plan.messages && ids.in_flight() == 0) {
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
            match ids.on_packet(&p) {
                Ok(PublisherReply::Nothing) => {}
                Ok(PublisherReply::PubRel(id)) => push(out, &Packet::PubRel(id))?,
                Err(Unexpected) => {
                    return Err(io::Error::other(format!("unexpected {}", p.name())));
                }
            }
            Ok(Drain::More)
        });
        if let Err(e) = drained {
            stop = Some(Stop::Failed(client::err(&who, e).to_string()));
            break;
        }
    }
    let done_ns = clock.now_ns();
    let end = finish(conn, stop).await;
    PubResult {
        published: u64::from(sent),
        first_ns,
        done_ns,
        end,
    }
}
