//! QoS 2: exactly once. No subscriber receives a QoS 2 message twice, and what the publisher got
//! PUBCOMP for reaches every subscriber still owed it by the end of the liveness phase.
//!
//! Exempt (counted as duplicates, not violations): messages whose session state was lost while
//! in flight (broker restart without persistence, clean-session reconnect of the publisher);
//! MQTT promises exactly once only within a session.

use super::{Ledger, Micros, MsgId, SubscriberId};

pub const NAME: &str = "qos2";

pub(super) fn on_duplicate(ledger: &mut Ledger, at: Micros, sub: SubscriberId, msg: MsgId) {
    let m = &ledger.messages[&msg];
    if m.qos != 2 || m.session_lost || m.covered.get(&sub).is_some_and(|c| c.qos < 2) {
        return;
    }
    let detail = format!(
        "{} seq {} (QoS 2) received again by {}",
        ledger.device_name(msg.device),
        msg.seq,
        ledger.subscriber_name(sub)
    );
    ledger.violate(at, NAME, Some(msg), detail);
}

pub(super) fn at_finish(ledger: &mut Ledger, at: Micros) {
    let (missing, queued) = super::qos1::missing(ledger, 2, at);
    ledger.behaviours.still_queued += queued;
    for (id, sub) in missing {
        let detail = format!(
            "{} seq {} (QoS 2) completed at the publisher, never received by {}",
            ledger.device_name(id.device),
            id.seq,
            ledger.subscriber_name(sub)
        );
        ledger.violate(at, NAME, Some(id), detail);
    }
}
