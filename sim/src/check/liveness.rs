//! Liveness: once healed, every QoS 1/2 message published before the heal settles at its
//! publisher (PUBACK / PUBCOMP) within the heal window, unless its client gave it up (outbox
//! expiry), and every subscriber is connected again by the end of it: delivery of settled
//! messages is checked by [`super::qos1`] and [`super::qos2`] for connected subscribers only, so a
//! subscriber that never comes back must not excuse what it was owed. A subscriber that gave up
//! on its first connect (`mosquitto_sub` exits) is not expected back: a named behaviour.
//!
//! A publish whose acknowledgement the broker still withholds at the end while it keeps forwarding
//! its backlog is a behaviour of the run too (overload by configuration, e.g. a small
//! `max_inflight_messages` on a long round trip): the publish was accepted by the library and is
//! still in flight (not completed, not given up), its publisher is connected, and a connected
//! subscriber first-received something within [`super::qos1::STILL_DRAINING_US`] of the end.
//! Counted as [`super::Behaviours::ack_withheld`]; when nothing is moving it stays a violation.

use super::{Ledger, Message, Micros, MsgId};

pub const NAME: &str = "liveness";

/// Is `m`, a QoS 1/2 publish still in flight at `at` (the end), waiting for an acknowledgement
/// the broker withholds while it keeps forwarding its backlog? Accepted by the library, neither
/// completed nor given up, its publisher connected, and a connected subscriber first-received
/// something within [`super::qos1::STILL_DRAINING_US`] of the end.
pub(super) fn ack_withheld(ledger: &Ledger, id: MsgId, m: &Message, at: Micros) -> bool {
    let draining = ledger.subscribers.iter().any(|s| {
        s.connected
            && s.last_receipt_at
                .is_some_and(|t| t + super::qos1::STILL_DRAINING_US >= at)
    });
    m.qos > 0
        && m.accepted
        && !m.abandoned
        && m.completed_at.is_none()
        && ledger.devices[id.device.0 as usize].connected
        && draining
}

pub(super) fn at_finish(ledger: &mut Ledger, at: Micros) {
    let Some(heal) = ledger.heal_at else { return };
    let mut found = Vec::new();
    let mut withheld = 0;
    for (id, m) in &ledger.messages {
        if m.qos == 0 || !m.accepted || m.abandoned || m.called_at >= heal {
            continue;
        }
        if m.completed_at.is_none() {
            if ack_withheld(ledger, *id, m, at) {
                withheld += 1;
                continue;
            }
            found.push((
                *id,
                format!(
                    "{} seq {} (QoS {}) published at {} ms, still unacknowledged {} ms after the heal",
                    ledger.device_name(id.device),
                    id.seq,
                    m.qos,
                    m.called_at / 1000,
                    at.saturating_sub(heal) / 1000
                ),
            ));
        }
    }
    ledger.behaviours.ack_withheld += withheld;
    for (id, detail) in found {
        ledger.violate(at, NAME, Some(id), detail);
    }
    let away: Vec<String> = ledger
        .subscribers
        .iter()
        .filter(|s| !s.connected && !s.gave_up)
        .map(|s| s.name.clone())
        .collect();
    for name in away {
        ledger.violate(
            at,
            NAME,
            None,
            format!(
                "subscriber {name} still disconnected {} ms after the heal",
                at.saturating_sub(heal) / 1000
            ),
        );
    }
}
