//! Order: per publisher and topic, a subscriber's first receipts come in publish order (MQTT
//! 3.1.1 section 4.6). Gaps are allowed (QoS 0 loss); redelivered duplicates and retained
//! copies are not ordered.

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
