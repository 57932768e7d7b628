//! What a session takeover cost: the readings of the device whose live connection the broker
//! closed for another CONNECT with the same client id (MQTT-3.1.4-2) that never reached a
//! subscriber. Fed from the outside (the report finds the takeovers in the broker's log).

use super::{DeviceId, Ledger, Micros};

impl Ledger {
    /// (message, subscriber) pairs of `device` that its subscriptions covered and that were never
    /// received (not counting those lost with a broker restart), among the readings published
    /// after the last one received by `at` and before `until`: the gap a takeover at `at` opened,
    /// up to the device's next session at `until`.
    pub fn lost_in_gap(&self, device: DeviceId, at: Micros, until: Micros) -> u64 {
        let mine = || {
            self.messages
                .iter()
                .filter(move |(id, _)| id.device == device)
        };
        let last_received = mine()
            .filter(|(_, m)| {
                m.receipts
                    .values()
                    .any(|r| r.first_at.is_some_and(|t| t <= at))
            })
            .map(|(_, m)| m.called_at)
            .max();
        mine()
            .filter(|(_, m)| last_received.is_none_or(|t| m.called_at > t) && m.called_at < until)
            .map(|(_, m)| {
                m.covered
                    .iter()
                    .filter(|(sub, c)| {
                        !c.lost_with_broker
                            && m.receipts.get(sub).is_none_or(|r| r.first_at.is_none())
                    })
                    .count() as u64
            })
            .sum()
    }
}
