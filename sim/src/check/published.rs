//! Published: everything a subscriber receives was published (a payload tag naming an unknown
//! message means corruption or a mix-up), on the topic it was published to.

use super::{Ledger, Micros, MsgId, SubscriberId};

pub const NAME: &str = "published";

pub(super) fn on_unknown(
    ledger: &mut Ledger,
    at: Micros,
    sub: SubscriberId,
    topic: &str,
    msg: MsgId,
) {
    let detail = format!(
        "{} received {} seq {} on {topic}, never published",
        ledger.subscriber_name(sub),
        ledger.device_name(msg.device),
        msg.seq
    );
    ledger.violate(at, NAME, Some(msg), detail);
}

pub(super) fn on_topic(
    ledger: &mut Ledger,
    at: Micros,
    sub: SubscriberId,
    topic: &str,
    msg: MsgId,
) {
    let Some(m) = ledger.messages.get(&msg) else {
        return;
    };
    if m.topic == topic {
        return;
    }
    let detail = format!(
        "{} received {} seq {} on {topic}, published on {}",
        ledger.subscriber_name(sub),
        ledger.device_name(msg.device),
        msg.seq,
        m.topic
    );
    ledger.violate(at, NAME, Some(msg), detail);
}
