//! Order: per publisher and topic, a subscriber's first receipts come in publish order (MQTT
//! 3.1.1 section 4.6). Gaps are allowed (QoS 0 loss); redelivered duplicates and retained
//! copies are not ordered.
//!
//! The broker owes the order in which it received the copies: a message whose publisher re-sent
//! it after sending the newer one (its latest copy reached the broker after the newer one's first)
//! may legitimately come after it. That is the client's reordering (esp-mqtt re-sends its outbox
//! behind newer messages, also on a new clean session), counted as
//! [`super::Behaviours::reordered_by_client`], not a violation.

use super::{Ledger, Micros, MsgId, SubscriberId};

pub const NAME: &str = "order";

pub(super) fn on_first_receipt(
    ledger: &mut Ledger,
    at: Micros,
    sub: SubscriberId,
    topic: &str,
    msg: MsgId,
) {
    let key = (sub, msg.device, topic.to_string());
    match ledger.order.get(&key).copied() {
        Some(last) if msg.seq < last => {
            let newer = MsgId {
                device: msg.device,
                seq: last,
            };
            let resent_after = match (
                ledger.messages.get(&msg).and_then(|m| m.last_arrival),
                ledger.messages.get(&newer).and_then(|m| m.first_arrival),
            ) {
                (Some(old_latest), Some(new_first)) => old_latest > new_first,
                _ => false,
            };
            if resent_after {
                ledger.behaviours.reordered_by_client += 1;
                return;
            }
            let detail = format!(
                "{} received {} seq {} on {topic} after seq {last}",
                ledger.subscriber_name(sub),
                ledger.device_name(msg.device),
                msg.seq
            );
            ledger.violate(at, NAME, Some(msg), detail);
        }
        _ => {
            ledger.order.insert(key, msg.seq);
        }
    }
}
