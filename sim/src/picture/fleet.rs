//! Per-device figures of a run, read from its [`Records`]: what the timeline's worst-device lanes
//! and the report's worst-device lines of a large group are chosen by.

use std::collections::BTreeMap;

use crate::check::{Cause, ConnState, Records};

/// One device's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub name: String,
    pub published: u64,
    /// Publish calls its library refused.
    pub refused: u64,
    /// (message, subscriber) pairs that never arrived, every cause but "not subscribed yet".
    pub lost: u64,
    /// Extra copies at subscribers.
    pub duplicated: u64,
    /// Connections after its first.
    pub reconnects: u64,
    /// Publish call to first receipt, sorted.
    latencies_us: Vec<u64>,
}

impl DeviceStats {
    /// Nearest-rank 99th percentile of its latencies.
    pub fn p99_us(&self) -> Option<u64> {
        let n = self.latencies_us.len();
        (n > 0).then(|| self.latencies_us[(n * 99).div_ceil(100).clamp(1, n) - 1])
    }

    /// Worse first: most lost, then most refused, then highest p99.
    fn rank_key(
        &self,
    ) -> (
        std::cmp::Reverse<u64>,
        std::cmp::Reverse<u64>,
        std::cmp::Reverse<u64>,
    ) {
        use std::cmp::Reverse;
        (
            Reverse(self.lost),
            Reverse(self.refused),
            Reverse(self.p99_us().unwrap_or(0)),
        )
    }
}

/// Every device's figures by client id (devices that never published are absent unless they
/// connected).
pub fn device_stats(records: &Records) -> BTreeMap<String, DeviceStats> {
    let mut out: BTreeMap<String, DeviceStats> = BTreeMap::new();
    for p in &records.publishes {
        let s = out.entry(p.device.clone()).or_default();
        s.published += 1;
        if !p.accepted {
            s.refused += 1;
        }
        for d in &p.deliveries {
            s.duplicated += d.duplicates;
            s.latencies_us.push(d.first_at.saturating_sub(p.called_at));
        }
        s.lost += p
            .losses
            .iter()
            .filter(|l| l.cause != Cause::NotSubscribed)
            .count() as u64;
    }
    let mut connects: BTreeMap<&str, u64> = BTreeMap::new();
    for c in records.connections.iter().filter(|c| !c.subscriber) {
        if c.state == ConnState::Connected {
            *connects.entry(c.client.as_str()).or_default() += 1;
        }
    }
    for (name, n) in connects {
        out.entry(name.to_string()).or_default().reconnects = n.saturating_sub(1);
    }
    for (name, s) in out.iter_mut() {
        s.name = name.clone();
        s.latencies_us.sort_unstable();
    }
    out
}

/// The `n` worst of `devices` (client ids), worst first ([`DeviceStats`]'s order); a device
/// without figures counts as spotless.
pub fn worst<'a>(
    stats: &'a BTreeMap<String, DeviceStats>,
    devices: &[String],
    n: usize,
) -> Vec<&'a DeviceStats> {
    let mut v: Vec<&DeviceStats> = devices.iter().filter_map(|d| stats.get(d)).collect();
    v.sort_by_key(|s| s.rank_key()); // stable: ties keep device order
    v.truncate(n);
    v
}
