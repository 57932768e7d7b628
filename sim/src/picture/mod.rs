//! A picture of one run: `mqsim sim FILE --seed N --timeline out.svg` (or `out.html`).
//!
//! One lane per device and subscriber, in simulated time: the connection's state (connecting,
//! connected, down) as a band, each reading as a tick coloured by what became of it (delivered,
//! late, duplicated, or the ledger's cause of its loss: in the network with a broken
//! connection, refused at the device, expired, dropped by the broker, lost with the broker's
//! state, unexplained), reconnects marked, the scenario's faults shaded over the lanes they hit,
//! the heal marked, and a time axis. A large fleet stays legible: past [`LANES_MAX`] devices, a
//! group of more than [`GROUP_SHOWN_MAX`] devices becomes one aggregate lane (stacked counts of
//! readings per time bin, the share of the group connected) followed by its
//! [`WORST_SHOWN`] worst devices' own lanes ([`fleet::worst`]).
//!
//! Everything comes from what the run recorded ([`crate::check::Records`]: publish calls,
//! receipts, loss causes, connection changes; the scenario's faults): nothing is simulated again.
//! The SVG is written by hand, deterministic (no clock; coordinates in integer tenths of a
//! pixel), so the same run gives the same bytes.

pub mod fleet;
mod svg;
pub mod sweep;

use std::collections::BTreeMap;

use crate::check::{Cause, ConnState, Micros, PublishRecord};
use crate::run::RunOutcome;

pub use svg::{html, svg};

/// Past this many devices in a run, large groups are drawn as aggregate lanes.
pub const LANES_MAX: usize = 30;
/// A group of at most this many devices keeps one lane per device even in a large run.
pub const GROUP_SHOWN_MAX: usize = 5;
/// Devices drawn under a group's aggregate lane: its worst.
pub const WORST_SHOWN: usize = 3;
/// A reading that arrived later than this after its publish call is drawn as late: longer than
/// any link latency plus jitter the scenarios configure (tens of ms), so a late reading waited
/// for a retransmission timeout, a reconnect or a queue.
pub const LATE_US: Micros = 1_000_000;

/// What became of a reading (at a device) or of one copy (at a subscriber); the worst outcome
/// over its subscribers for a device's tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    Delivered,
    Late,
    Duplicated,
    /// Owed but not lost: still queued, ack withheld at the end, not subscribed yet, no
    /// subscriber.
    Other,
    /// Lost with a connection that broke (QoS 0 in the network, a clean session ended).
    Network,
    /// Refused at the device (not connected).
    Refused,
    /// Expired in the library's outbox.
    Expired,
    /// Dropped by the broker under a configured limit (announced).
    Dropped,
    /// Lost with the state of a broker restarted without persistence.
    BrokerState,
    /// Lost silently.
    Unexplained,
}

impl Mark {
    pub const ALL: [Mark; 10] = [
        Mark::Delivered,
        Mark::Late,
        Mark::Duplicated,
        Mark::Network,
        Mark::Refused,
        Mark::Expired,
        Mark::Dropped,
        Mark::BrokerState,
        Mark::Unexplained,
        Mark::Other,
    ];

    /// Its colour (Okabe-Ito's palette, readable by the colour-blind, plus black and grey).
    pub fn colour(self) -> &'static str {
        match self {
            Mark::Delivered => "#009e73",
            Mark::Late => "#e69f00",
            Mark::Duplicated => "#56b4e9",
            Mark::Network => "#d55e00",
            Mark::Refused => "#cc79a7",
            Mark::Expired => "#8c6d1f",
            Mark::Dropped => "#0072b2",
            Mark::BrokerState => "#7f3c8d",
            Mark::Unexplained => "#000000",
            Mark::Other => "#999999",
        }
    }

    /// The legend's words.
    pub fn label(self) -> &'static str {
        match self {
            Mark::Delivered => "delivered",
            Mark::Late => "late (> 1 s)",
            Mark::Duplicated => "duplicated",
            Mark::Network => "lost in the network",
            Mark::Refused => "refused at the device",
            Mark::Expired => "expired in the outbox",
            Mark::Dropped => "dropped by the broker",
            Mark::BrokerState => "lost with the broker",
            Mark::Unexplained => "lost silently",
            Mark::Other => "queued / not subscribed",
        }
    }

    fn of_cause(c: Cause) -> Mark {
        match c {
            Cause::Refused => Mark::Refused,
            Cause::Connection => Mark::Network,
            Cause::Expired => Mark::Expired,
            Cause::Dropped => Mark::Dropped,
            Cause::BrokerState | Cause::BrokerUnsaved => Mark::BrokerState,
            Cause::Unexplained => Mark::Unexplained,
            Cause::NotSubscribed | Cause::StillQueued | Cause::AckWithheld => Mark::Other,
        }
    }

    /// A device's tick: the worst outcome over the reading's subscribers.
    fn of_reading(p: &PublishRecord) -> Mark {
        if !p.accepted {
            return Mark::Refused;
        }
        let worst_loss = p.losses.iter().map(|l| Mark::of_cause(l.cause)).max();
        let worst_copy = p.deliveries.iter().map(|d| copy_mark(p, d)).max();
        match (worst_loss, worst_copy) {
            (Some(l), Some(c)) => l.max(c),
            (Some(m), None) | (None, Some(m)) => m,
            (None, None) => Mark::Other,
        }
    }
}

fn copy_mark(p: &PublishRecord, d: &crate::check::Delivery) -> Mark {
    if d.duplicates > 0 {
        Mark::Duplicated
    } else if d.first_at.saturating_sub(p.called_at) > LATE_US {
        Mark::Late
    } else {
        Mark::Delivered
    }
}

/// What one lane shows.
#[derive(Clone, Debug, Default)]
struct Lane {
    label: String,
    /// Clients drawn in it (one, or a whole group).
    clients: Vec<String>,
    /// The names faults aimed at it may use (client id, group, subscriber).
    targets: Vec<String>,
    /// An aggregate of a group (else one client).
    aggregate: bool,
    /// A worst device under its group's aggregate.
    worst: bool,
    marks: Vec<(Micros, Mark)>,
    /// Per client, its connection changes in time order.
    conn: Vec<Vec<(Micros, ConnState)>>,
    /// Connections after each client's first.
    reconnects: Vec<Micros>,
    /// Aggregate only: a summary under the label.
    note: String,
}

/// The lanes of a run, top to bottom: device groups in file order, then subscribers.
fn lanes(out: &RunOutcome) -> Vec<Lane> {
    let sc = &out.scenario;
    let rec = &out.records;
    let mut marks_by_device: BTreeMap<&str, Vec<(Micros, Mark)>> = BTreeMap::new();
    let mut marks_by_sub: BTreeMap<&str, Vec<(Micros, Mark)>> = BTreeMap::new();
    for p in &rec.publishes {
        marks_by_device
            .entry(p.device.as_str())
            .or_default()
            .push((p.called_at, Mark::of_reading(p)));
        for d in &p.deliveries {
            marks_by_sub
                .entry(d.subscriber.as_str())
                .or_default()
                .push((d.first_at, copy_mark(p, d)));
        }
        for l in &p.losses {
            marks_by_sub
                .entry(l.subscriber.as_str())
                .or_default()
                .push((p.called_at, Mark::of_cause(l.cause)));
        }
    }
    let mut conn: BTreeMap<&str, Vec<(Micros, ConnState)>> = BTreeMap::new();
    for c in &rec.connections {
        // One name space: the scenario refuses a subscriber named like a device.
        conn.entry(c.client.as_str())
            .or_default()
            .push((c.at, c.state));
    }
    let one = |name: &str, targets: Vec<String>, marks: Vec<(Micros, Mark)>| -> Lane {
        let changes = conn.get(name).cloned().unwrap_or_default();
        Lane {
            label: name.to_string(),
            clients: vec![name.to_string()],
            targets,
            marks,
            reconnects: reconnect_times(&changes),
            conn: vec![changes],
            ..Lane::default()
        }
    };
    let total: usize = sc.devices.iter().map(|d| d.count as usize).sum();
    let stats = fleet::device_stats(rec);
    let mut lanes = Vec::new();
    for g in &sc.devices {
        let ids = g.client_ids();
        let device_lane = |id: &String| {
            let marks = marks_by_device
                .get(id.as_str())
                .cloned()
                .unwrap_or_default();
            one(id, vec![id.clone(), g.name.clone()], marks)
        };
        if total <= LANES_MAX || ids.len() <= GROUP_SHOWN_MAX {
            lanes.extend(ids.iter().map(device_lane));
            continue;
        }
        let mut agg = Lane {
            label: format!("{} x{}", g.name, ids.len()),
            targets: vec![g.name.clone()],
            aggregate: true,
            ..Lane::default()
        };
        let (mut lost, mut refused, mut dup) = (0, 0, 0);
        for id in &ids {
            if let Some(m) = marks_by_device.get(id.as_str()) {
                agg.marks.extend_from_slice(m);
            }
            let changes = conn.get(id.as_str()).cloned().unwrap_or_default();
            agg.reconnects.extend(reconnect_times(&changes));
            agg.conn.push(changes);
            agg.clients.push(id.clone());
            agg.targets.push(id.clone());
            if let Some(s) = stats.get(id) {
                (lost, refused, dup) = (lost + s.lost, refused + s.refused, dup + s.duplicated);
            }
        }
        agg.marks.sort_by_key(|(t, _)| *t);
        agg.reconnects.sort_unstable();
        agg.note = format!("lost {lost} refus {refused} dup {dup}");
        lanes.push(agg);
        for s in fleet::worst(&stats, &ids, WORST_SHOWN) {
            let mut lane = device_lane(&s.name);
            lane.label = format!("> {}", s.name);
            lane.worst = true;
            lanes.push(lane);
        }
    }
    for s in &sc.subscribers {
        let mut marks = marks_by_sub
            .get(s.name.as_str())
            .cloned()
            .unwrap_or_default();
        marks.sort_by_key(|(t, _)| *t);
        lanes.push(one(&s.name, vec![s.name.clone()], marks));
    }
    lanes
}

/// The times of every connection after the first.
fn reconnect_times(changes: &[(Micros, ConnState)]) -> Vec<Micros> {
    changes
        .iter()
        .filter(|(_, s)| *s == ConnState::Connected)
        .skip(1)
        .map(|(t, _)| *t)
        .collect()
}

/// The state of a client at `at` from its changes (down before the first).
fn state_at(changes: &[(Micros, ConnState)], at: Micros) -> ConnState {
    let i = changes.partition_point(|(t, _)| *t <= at);
    if i == 0 {
        ConnState::Down
    } else {
        changes[i - 1].1
    }
}

#[cfg(test)]
mod tests;
