//! Counts for the report, per scope: everything, per QoS (the publish QoS), per device group,
//! per subscriber. Not an invariant: numbers the `[expect]` ranges are checked against.

use std::collections::BTreeMap;

use super::{Causes, Ledger};

/// One scope's counts. Delivery counts are per (message, subscriber) pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Publish calls.
    pub published: u64,
    /// Publish calls the client refused.
    pub refused: u64,
    /// Completed at the publisher (PUBACK, PUBCOMP; QoS 0: written).
    pub acknowledged: u64,
    /// Unique receipts.
    pub delivered: u64,
    /// Pairs covered at publish time and never received (not counting `lost_with_broker`).
    pub lost: u64,
    /// Acknowledged, undelivered, held only by a broker that lost its state.
    pub lost_with_broker: u64,
    /// Receipts beyond the first (retained copies excluded).
    pub duplicated: u64,
    /// Connections after each client's first.
    pub reconnects: u64,
    /// Publish call -> first receipt, sorted (retained first receipts excluded).
    pub latencies_us: Vec<u64>,
    /// Why what did not arrive did not ([`super::causes`]).
    pub causes: Causes,
}

impl Tally {
    /// Nearest-rank percentile (`pct` in 1..=100).
    pub fn latency_percentile_us(&self, pct: u32) -> Option<u64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = (n * pct as usize).div_ceil(100).max(1);
        Some(self.latencies_us[rank.min(n) - 1])
    }

    pub fn latency_max_us(&self) -> Option<u64> {
        self.latencies_us.last().copied()
    }
}

/// What clients (and the run) did that MQTT does not forbid, counted instead of blamed on the
/// broker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Behaviours {
    /// First receipts that came after a newer message of the same publisher and topic because the
    /// publisher re-sent them after sending the newer one (esp-mqtt re-sends its outbox behind
    /// newer messages, also on a new clean session): reordered by the client, not the broker.
    pub reordered_by_client: u64,
    /// Subscribers that gave up on their first connect (`mosquitto_sub` exits).
    pub subscribers_gave_up: u64,
    /// (message, subscriber) pairs owed at the end and still queued behind a backlog that was
    /// still draining: nothing later of their stream had arrived, the subscriber still receiving.
    pub still_queued: u64,
    /// QoS 1/2 publishes still in flight at the end, their acknowledgement withheld by the
    /// broker's backpressure while it was still forwarding its backlog to subscribers (overload
    /// by configuration, [`super::liveness`]): late, not lost.
    pub ack_withheld: u64,
}

impl Behaviours {
    pub fn is_empty(&self) -> bool {
        *self == Behaviours::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub all: Tally,
    /// Indexed by the publish QoS.
    pub qos: [Tally; 3],
    /// By `[[device]]` group name.
    pub devices: BTreeMap<String, Tally>,
    /// By subscriber name (publisher-side counts stay 0 here).
    pub subscribers: BTreeMap<String, Tally>,
    /// Receipts without a payload tag (wills, foreign publishers).
    pub untagged: u64,
    pub violations: u64,
    pub behaviours: Behaviours,
}

impl Ledger {
    /// The counts so far (complete after `finish`).
    pub fn summary(&self) -> Summary {
        let mut sum = Summary {
            violations: self.violations.len() as u64,
            untagged: self.untagged.values().sum(),
            behaviours: self.behaviours.clone(),
            ..Summary::default()
        };
        for d in &self.devices {
            sum.devices.entry(d.group.clone()).or_default();
        }
        for s in &self.subscribers {
            sum.subscribers.entry(s.name.clone()).or_default();
        }
        for (id, m) in &self.messages {
            let group = self.devices[id.device.0 as usize].group.clone();
            let q = usize::from(m.qos.min(2));
            let add = |sum: &mut Summary, sub: Option<&str>, f: &dyn Fn(&mut Tally)| {
                f(&mut sum.all);
                f(&mut sum.qos[q]);
                f(sum.devices.entry(group.clone()).or_default());
                if let Some(s) = sub {
                    f(sum.subscribers.entry(s.to_string()).or_default());
                }
            };
            add(&mut sum, None, &|t| t.published += 1);
            if !m.accepted {
                add(&mut sum, None, &|t| t.refused += 1);
            }
            if m.completed_at.is_some() {
                add(&mut sum, None, &|t| t.acknowledged += 1);
            }
            for (sub, r) in &m.receipts {
                let Some(first) = r.first_at else { continue };
                let name = self.subscriber_name(*sub);
                let dups = r.duplicates;
                add(&mut sum, Some(name), &|t| {
                    t.delivered += 1;
                    t.duplicated += dups;
                });
                if !r.first_retained {
                    let latency = first.saturating_sub(m.called_at);
                    add(&mut sum, Some(name), &|t| t.latencies_us.push(latency));
                }
            }
            for (sub, c) in &m.covered {
                if m.receipts.get(sub).is_some_and(|r| r.first_at.is_some()) {
                    continue;
                }
                let name = self.subscriber_name(*sub);
                if c.lost_with_broker {
                    add(&mut sum, Some(name), &|t| t.lost_with_broker += 1);
                } else {
                    add(&mut sum, Some(name), &|t| t.lost += 1);
                }
            }
        }
        for ((id, sub), cause) in self.loss_causes() {
            let group = self.devices[id.device.0 as usize].group.clone();
            let q = usize::from(self.messages[&id].qos.min(2));
            sum.all.causes.add(cause);
            sum.qos[q].causes.add(cause);
            sum.devices.entry(group).or_default().causes.add(cause);
            if let Some(s) = sub {
                let name = self.subscriber_name(s).to_string();
                sum.subscribers.entry(name).or_default().causes.add(cause);
            }
        }
        for d in &self.devices {
            let n = d.connects.saturating_sub(1);
            sum.all.reconnects += n;
            sum.devices.entry(d.group.clone()).or_default().reconnects += n;
        }
        for s in &self.subscribers {
            let n = s.connects.saturating_sub(1);
            sum.all.reconnects += n;
            sum.subscribers
                .entry(s.name.clone())
                .or_default()
                .reconnects += n;
        }
        let mut tallies: Vec<&mut Tally> = vec![&mut sum.all];
        tallies.extend(sum.qos.iter_mut());
        tallies.extend(sum.devices.values_mut());
        tallies.extend(sum.subscribers.values_mut());
        for t in tallies {
            t.latencies_us.sort_unstable();
        }
        sum
    }
}
