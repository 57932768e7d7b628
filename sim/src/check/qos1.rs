//! QoS 1: at least once. Nothing the publisher got PUBACK for is missing, by the end of the
//! liveness phase, at a subscriber whose session covered it at publish time and still exists
//! (a clean session: the same connection, still up; a persistent one: the same session,
//! connected again once healed). Duplicates are allowed and counted.

use super::{Ledger, Micros, MsgId, SubscriberId};

pub const NAME: &str = "qos1";

pub(super) fn at_finish(ledger: &mut Ledger, at: Micros) {
    for (id, sub) in missing(ledger, 1) {
        let detail = format!(
            "{} seq {} (QoS 1) acknowledged to the publisher, never received by {}",
            ledger.device_name(id.device),
            id.seq,
            ledger.subscriber_name(sub)
        );
        ledger.violate(at, NAME, Some(id), detail);
    }
}

/// (message, subscriber) pairs of messages published at `qos`, owed and never received.
pub(super) fn missing(ledger: &Ledger, qos: u8) -> Vec<(MsgId, SubscriberId)> {
    let mut out = Vec::new();
    for (id, m) in &ledger.messages {
        if m.qos != qos {
            continue;
        }
        for (sub, c) in &m.covered {
            let got = m.receipts.get(sub).is_some_and(|r| r.first_at.is_some());
            if !got && ledger.owed(m, *sub, c) {
                out.push((*id, *sub));
            }
        }
    }
    out
}
