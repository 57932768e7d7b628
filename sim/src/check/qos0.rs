//! QoS 0: at most once. A message published at QoS 0 never reaches one subscriber twice (a
//! retained copy sent on a later subscribe is not a duplicate).

use super::{Ledger, Micros, MsgId, SubscriberId};

pub const NAME: &str = "qos0";

pub(super) fn on_duplicate(ledger: &mut Ledger, at: Micros, sub: SubscriberId, msg: MsgId) {
    if ledger.messages[&msg].qos != 0 {
        return;
    }
    let detail = format!(
        "{} seq {} (QoS 0) received again by {}",
        ledger.device_name(msg.device),
        msg.seq,
        ledger.subscriber_name(sub)
    );
    ledger.violate(at, NAME, Some(msg), detail);
}
