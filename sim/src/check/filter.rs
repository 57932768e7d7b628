//! Filter: nothing reaches a subscriber whose filters (in its current session) do not match the
//! topic. The matching is written here again from MQTT 3.1.1 section 4.7, deliberately apart
//! from the code under test. A SUBSCRIBE not yet acknowledged already counts (MQTT-3.8.4), and
//! so, until its connection ends, does a filter the broker held when it restarted without
//! persistence: what it sent before the restart may still be on its way.

use super::{Ledger, Micros, MsgId, SubscriberId};

pub const NAME: &str = "filter";

/// MQTT 3.1.1 topic matching: `+` one level, `#` this level and all below (also the parent:
/// `a/#` matches `a`), and topics starting with `$` are not matched by a filter starting with a
/// wildcard (section 4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

pub(super) fn on_receipt(
    ledger: &mut Ledger,
    at: Micros,
    sub: SubscriberId,
    topic: &str,
    msg: Option<MsgId>,
) {
    if let Some(m) = msg {
        super::published::on_topic(ledger, at, sub, topic, m);
    }
    let s = &ledger.subscribers[sub.0 as usize];
    if s.filters.keys().any(|f| matches(f, topic)) {
        return;
    }
    // A SUBSCRIBE sent and not yet acknowledged (in this connection or re-sent after a
    // reconnect): the broker may deliver what it covers before its SUBACK (MQTT-3.8.4).
    if s.requested.iter().any(|f| matches(f, topic)) {
        return;
    }
    // Sent on this connection before a broker restart without persistence, under a filter the
    // broker held then, and still arriving (the old connection's bytes outlive the process).
    if s.before_restart.iter().any(|f| matches(f, topic)) {
        return;
    }
    let filters: Vec<&str> = s.filters.keys().map(|f| f.as_str()).collect();
    let detail = format!(
        "{} received {topic}, which none of its filters [{}] match",
        s.name,
        filters.join(", ")
    );
    ledger.violate(at, NAME, msg, detail);
}

#[cfg(test)]
mod tests;
