//! QoS 1: at least once. Nothing the publisher got PUBACK for is missing, by the end of the
//! liveness phase, at a subscriber whose session covered it at publish time and still exists
//! (a clean session: the same connection, still up; a persistent one: the same session,
//! connected again once healed). Duplicates are allowed and counted.

use super::{Ledger, Micros, MsgId, SubscriberId};

/// A subscriber that first-received something this close to the end was still being delivered
/// to: what it is still owed may be queued behind that backlog.
pub const STILL_DRAINING_US: Micros = 10_000_000;

pub const NAME: &str = "qos1";

pub(super) fn at_finish(ledger: &mut Ledger, at: Micros) {
    let (missing, queued) = missing(ledger, 1, at);
    ledger.behaviours.still_queued += queued;
    for (id, sub) in missing {
        let detail = format!(
            "{} seq {} (QoS 1) acknowledged to the publisher, never received by {}",
            ledger.device_name(id.device),
            id.seq,
            ledger.subscriber_name(sub)
        );
        ledger.violate(at, NAME, Some(id), detail);
    }
}

/// (message, subscriber) pairs of messages published at `qos`, owed and never received; and how
/// many more owed pairs are still queued behind a backlog that was draining at `at` (the end):
/// the subscriber first-received something within [`STILL_DRAINING_US`] of the end, and nothing
/// later of the message's stream (publisher and topic), which per-topic order would have put
/// behind it.
pub(super) fn missing(ledger: &Ledger, qos: u8, at: Micros) -> (Vec<(MsgId, SubscriberId)>, u64) {
    let mut out = Vec::new();
    let mut queued = 0;
    for (id, m) in &ledger.messages {
        if m.qos != qos {
            continue;
        }
        for (sub, c) in &m.covered {
            let got = m.receipts.get(sub).is_some_and(|r| r.first_at.is_some());
            // Dropped under a configured limit, and the broker said so: counted, not violated.
            if !got && ledger.owed(m, *sub, c) && !ledger.history.is_announced(*id, *sub) {
                let s = &ledger.subscribers[sub.0 as usize];
                let draining = s
                    .last_receipt_at
                    .is_some_and(|t| t + STILL_DRAINING_US >= at);
                let later_arrived = ledger
                    .order
                    .get(&(*sub, id.device, m.topic.clone()))
                    .is_some_and(|&last| last > id.seq);
                if draining && !later_arrived {
                    queued += 1;
                } else {
                    out.push((*id, *sub));
                }
            }
        }
    }
    (out, queued)
}
