//! What each QoS costs: MQTT packets and bytes, TCP segments and bytes on the air, and a
//! device's radio time and energy, per device group, per QoS, per subscriber and per delivered
//! message.
//!
//! Counted at the byte edge only, from the link model's packet records ([`Wire`], the same
//! records the capture writes, so a pcap of the run counts the same: `sim/tests/costs.rs`):
//! - **TCP** (per direction: `up` = sent by the client, `down` = sent to it): every segment put on
//!   the air, lost ones included (the sender's radio sent them), as IP bytes (IPv4 and TCP headers,
//!   20 bytes each, plus payload; the frames carry no options). Each segment is one of: new data,
//!   resent data (a payload entirely below the highest sequence number already sent: RTO, fast
//!   retransmit, tail-loss probe), a pure ACK, or a SYN / FIN / RST without data.
//! - **MQTT**: the packets and bytes of each direction's byte stream as it first went on the air
//!   (each byte once, however often it was resent), framed by the core's one codec
//!   ([`mqsim::codec::FrameBuffer`]). Never from the broker's or the client's insides.
//! - **Energy** ([`power`]): per device, from its frames (TX when it sent one, RX when one
//!   reached it) and its WiFi joins and drops, under its `[device.power]` model.
//!
//! A scope's figures per delivered message divide by the ledger's `delivered` for that scope
//! (first copies at subscribers whose subscription covered them).

pub mod power;
mod render;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use mqsim::codec::FrameBuffer;
use mqsim::limits;
use serde::Serialize;

use crate::check::Summary;
use crate::net::link::trace::TcpFlags;
use crate::net::link::{Dir, Wire};
use crate::net::stream::ConnId;
use crate::scenario::{FaultKind, Scenario, Scope};
pub use power::{Energy, PowerSpec};
pub use render::render;

/// IPv4 header (20, no options) and TCP header (20, no options) of every frame the model writes.
pub const IP_TCP_HEADER_BYTES: u64 = 40;

/// Tags at or above this name subscribers (their index above it), below it devices
/// (the run's convention, [`crate::run::wire::SUBSCRIBER_TAG_BASE`]).
const SUBSCRIBER_TAG_BASE: u32 = crate::run::wire::SUBSCRIBER_TAG_BASE;

/// One direction's traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// TCP segments on the air (all kinds, lost ones included).
    pub segments: u64,
    /// Their IP bytes (headers and payload).
    pub ip_bytes: u64,
    /// Of the segments: new data.
    pub data: u64,
    /// Resent data.
    pub resent: u64,
    /// Pure ACKs (no data, no SYN/FIN/RST).
    pub acks: u64,
    /// SYN, FIN or RST without data (handshakes, closes, resets).
    pub control: u64,
    /// Lost on the air (counted in `segments` too).
    pub lost: u64,
    /// MQTT packets in the byte stream.
    pub mqtt_packets: u64,
    /// MQTT bytes (the stream's bytes, each once).
    pub mqtt_bytes: u64,
}

impl Traffic {
    fn add(&mut self, o: &Traffic) {
        self.segments += o.segments;
        self.ip_bytes += o.ip_bytes;
        self.data += o.data;
        self.resent += o.resent;
        self.acks += o.acks;
        self.control += o.control;
        self.lost += o.lost;
        self.mqtt_packets += o.mqtt_packets;
        self.mqtt_bytes += o.mqtt_bytes;
    }
}

/// Both directions of one client's connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientTraffic {
    /// Sent by the client.
    pub up: Traffic,
    /// Sent to it.
    pub down: Traffic,
}

/// The radio's sums over the devices of a scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScopePower {
    pub devices: u64,
    /// Summed over devices: each device's window runs from the end of its first WiFi join to
    /// the end of the faults' phase (`duration_s`), µs.
    pub window_us: u64,
    pub radio_on_us: u64,
    pub tx_us: u64,
    /// Joins after the first, and looking for the access point during drops.
    pub join_us: u64,
    pub beacon_us: u64,
    /// Charge, µA·µs.
    pub charge_ua_us: u64,
    pub energy_nj: u64,
    /// The first join at boot, not in the window (it happens once per battery).
    pub boot_join_us: u64,
    /// The highest average current of a device of the scope, nA: the battery that empties first.
    pub max_average_na: u64,
    /// That device's battery, mAh.
    pub battery_mah: u64,
}

impl ScopePower {
    fn add(&mut self, o: &ScopePower) {
        let first = self.devices == 0;
        self.devices += o.devices;
        self.window_us += o.window_us;
        self.radio_on_us += o.radio_on_us;
        self.tx_us += o.tx_us;
        self.join_us += o.join_us;
        self.beacon_us += o.beacon_us;
        self.charge_ua_us += o.charge_ua_us;
        self.energy_nj += o.energy_nj;
        self.boot_join_us += o.boot_join_us;
        if first || o.max_average_na > self.max_average_na {
            self.max_average_na = o.max_average_na;
            self.battery_mah = o.battery_mah;
        }
    }

    fn per_device(&self, v: u64) -> f64 {
        v as f64 / self.devices.max(1) as f64
    }

    /// Mean energy per device, mJ.
    pub fn energy_mj_per_device(&self) -> f64 {
        self.per_device(self.energy_nj) / 1e6
    }

    /// Mean radio-on time per device, ms.
    pub fn radio_on_ms_per_device(&self) -> f64 {
        self.per_device(self.radio_on_us) / 1e3
    }

    /// Mean transmit time per device, ms.
    pub fn tx_ms_per_device(&self) -> f64 {
        self.per_device(self.tx_us) / 1e3
    }

    /// The devices' mean current over their windows, mA.
    pub fn average_ma(&self) -> f64 {
        if self.window_us == 0 {
            return 0.0;
        }
        self.charge_ua_us as f64 / self.window_us as f64 / 1e3
    }

    /// Days the battery of the device that empties first lasts, at this run's rate.
    pub fn battery_days(&self) -> Option<f64> {
        (self.max_average_na > 0)
            .then(|| self.battery_mah as f64 / (self.max_average_na as f64 / 1e6) / 24.0)
    }
}

/// One scope's costs: the report's row and its `--json` form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeCost {
    /// As the report's table names it: `all`, `qos1`, `device esp32`, `subscriber sub`.
    pub name: String,
    #[serde(skip)]
    pub scope: Scope,
    /// Clients (devices, subscribers) in the scope.
    pub clients: u64,
    /// The ledger's `delivered` for the scope: what "per delivered" divides by.
    pub delivered: u64,
    pub traffic: ClientTraffic,
    /// Devices only (subscribers are not ESP32s).
    pub power: Option<ScopePower>,
}

impl ScopeCost {
    /// TCP segments both ways.
    pub fn segments(&self) -> u64 {
        self.traffic.up.segments + self.traffic.down.segments
    }
    /// IP bytes both ways.
    pub fn ip_bytes(&self) -> u64 {
        self.traffic.up.ip_bytes + self.traffic.down.ip_bytes
    }
    /// MQTT packets both ways.
    pub fn mqtt_packets(&self) -> u64 {
        self.traffic.up.mqtt_packets + self.traffic.down.mqtt_packets
    }
    /// `v` per delivered message; None when nothing was delivered.
    pub fn per_delivered(&self, v: f64) -> Option<f64> {
        (self.delivered > 0).then(|| v / self.delivered as f64)
    }
}

/// Every scope's costs, in the report's order: all, each QoS devices publish at, each device
/// group, each subscriber.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Costs {
    pub scopes: Vec<ScopeCost>,
    /// Each device on its own (the report's text shows groups; `--json` lists these too).
    pub devices: Vec<DeviceCost>,
}

/// One device's costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceCost {
    pub client_id: String,
    /// Its `[[device]]` group.
    pub group: String,
    pub traffic: ClientTraffic,
    pub power: ScopePower,
}

impl Costs {
    pub fn get(&self, scope: &Scope) -> Option<&ScopeCost> {
        self.scopes.iter().find(|s| &s.scope == scope)
    }
}

/// The WiFi joins each device went through, as its WiFi driver started them (the world's
/// edge: [`crate::device_io::DeviceHooks::wifi_join_delay`]): by device tag, (start µs,
/// duration µs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Joins(pub BTreeMap<u32, Vec<(u64, u64)>>);

impl Joins {
    pub fn record(&mut self, tag: u32, start_us: u64, duration_us: u64) {
        self.0.entry(tag).or_default().push((start_us, duration_us));
    }
}

/// One packet record with the connection and client it belongs to.
pub struct Record<'a> {
    pub conn: ConnId,
    pub tag: Option<u32>,
    pub wire: &'a Wire,
}

/// The byte stream of one connection direction as it first went on the air.
#[derive(Default)]
struct Stream {
    /// The next new sequence number (after the highest sent).
    next: Option<u32>,
    frames: FrameBuffer,
    framing: bool,
}

/// What each frame was, by the rules in the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data,
    Resent,
    Ack,
    Control,
}

/// Counts one frame into `t`, advancing `stream`.
fn count_frame(t: &mut Traffic, stream: &mut Stream, w: &Wire) {
    let len = w.payload.len() as u64;
    t.segments += 1;
    t.ip_bytes += IP_TCP_HEADER_BYTES + len;
    if w.lost {
        t.lost += 1;
    }
    let syn = w.flags.has(TcpFlags::SYN);
    if syn && stream.next.is_none() {
        stream.next = Some(w.seq.wrapping_add(1));
        stream.framing = true;
    }
    let kind = classify(stream, w);
    match kind {
        Kind::Data => {
            t.data += 1;
            let next = stream.next.unwrap_or(w.seq);
            let end = w.seq.wrapping_add(len as u32);
            let new = u64::from(end.wrapping_sub(next)).min(len) as usize;
            let fresh = &w.payload[w.payload.len() - new..];
            stream.next = Some(end);
            t.mqtt_bytes += new as u64;
            if stream.framing {
                let mut n = 0;
                let fed =
                    stream
                        .frames
                        .feed::<()>(fresh, limits::REMAINING_LENGTH_MAX_BYTES, |_| {
                            n += 1;
                            ControlFlow::Continue(())
                        });
                t.mqtt_packets += n;
                if fed.is_err() {
                    stream.framing = false;
                }
            }
        }
        Kind::Resent => t.resent += 1,
        Kind::Ack => t.acks += 1,
        Kind::Control => t.control += 1,
    }
}

/// New data, resent data, a pure ACK or a SYN/FIN/RST, given the stream so far.
fn classify(stream: &Stream, w: &Wire) -> Kind {
    if w.payload.is_empty() {
        let ctl = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST;
        return if w.flags.0 & ctl != 0 {
            Kind::Control
        } else {
            Kind::Ack
        };
    }
    let Some(next) = stream.next else {
        return Kind::Data;
    };
    let end = w.seq.wrapping_add(w.payload.len() as u32);
    // Past the highest byte sent (serial-number arithmetic, RFC 1982).
    if (end.wrapping_sub(next) as i32) > 0 {
        Kind::Data
    } else {
        Kind::Resent
    }
}

/// Per client tag, both directions' traffic, from the packet records in time order.
pub fn traffic<'a>(records: impl IntoIterator<Item = Record<'a>>) -> BTreeMap<u32, ClientTraffic> {
    let mut out: BTreeMap<u32, ClientTraffic> = BTreeMap::new();
    let mut streams: BTreeMap<(ConnId, bool), Stream> = BTreeMap::new();
    for r in records {
        let Some(tag) = r.tag else { continue };
        let up = r.wire.dir == Dir::Up;
        let c = out.entry(tag).or_default();
        let t = if up { &mut c.up } else { &mut c.down };
        count_frame(t, streams.entry((r.conn, up)).or_default(), r.wire);
    }
    out
}

/// The frames one device's radio handled: sent (instant, IP bytes) and received (instant of
/// arrival: the record's instant plus the link's one-way latency, IP bytes; lost ones never
/// arrive).
#[derive(Default)]
struct Radio {
    tx: Vec<power::Span>,
    rx: Vec<power::Span>,
}

/// Everything the report's cost section needs, from the run's records.
pub struct Inputs<'a> {
    pub scenario: &'a Scenario,
    pub summary: &'a Summary,
    /// Every packet record, in time order.
    pub records: Vec<Record<'a>>,
    pub joins: &'a Joins,
}

/// The costs of a run.
pub fn costs(inp: Inputs<'_>) -> Costs {
    let sc = inp.scenario;
    // Device tags in the ledger's order: file order, group by group.
    let mut device_group: BTreeMap<u32, usize> = BTreeMap::new();
    let mut client_ids: BTreeMap<u32, String> = BTreeMap::new();
    let mut tag = 0u32;
    for (g, d) in sc.devices.iter().enumerate() {
        for id in d.client_ids() {
            device_group.insert(tag, g);
            client_ids.insert(tag, id);
            tag += 1;
        }
    }
    let mut radios: BTreeMap<u32, Radio> = BTreeMap::new();
    for r in &inp.records {
        let Some(tag) = r.tag else { continue };
        let Some(&g) = device_group.get(&tag) else {
            continue;
        };
        let bytes = IP_TCP_HEADER_BYTES + r.wire.payload.len() as u64;
        let at = r.wire.at.as_micros();
        let radio = radios.entry(tag).or_default();
        if r.wire.dir == Dir::Up {
            radio.tx.push((at, bytes));
        } else if !r.wire.lost {
            let latency_us = sc.link(&sc.devices[g].link).latency_us;
            radio.rx.push((at + latency_us, bytes));
        }
    }
    let per_client = traffic(inp.records);
    let end_us = sc.duration_ms * 1_000;

    // Per device: its power over its window.
    let mut device_power: BTreeMap<u32, ScopePower> = BTreeMap::new();
    for (&tag, &g) in &device_group {
        let d = &sc.devices[g];
        let p = &d.power;
        let joins = inp.joins.0.get(&tag).map(Vec::as_slice).unwrap_or(&[]);
        let (boot_start, boot_us) = joins.first().copied().unwrap_or((0, 0));
        let from = (boot_start + boot_us).min(end_us);
        let mut spans: Vec<power::Span> = joins.iter().skip(1).map(|&(s, d)| (s, s + d)).collect();
        // While the access point is gone the station keeps scanning for it.
        let id = &client_ids[&tag];
        for f in &sc.faults {
            let hits = match &f.target {
                None => true,
                Some(t) => t == &d.name || t == id,
            };
            if f.kind == FaultKind::WifiDrop && hits {
                spans.push((f.at_ms * 1_000, (f.at_ms + f.duration_ms) * 1_000));
            }
        }
        let empty = Radio::default();
        let radio = radios.get(&tag).unwrap_or(&empty);
        let e = power::energy(p, from, end_us, &radio.tx, &radio.rx, &spans);
        let average_na = if e.window_us > 0 {
            u64::try_from(e.charge_ua_us * 1_000 / u128::from(e.window_us)).unwrap_or(u64::MAX)
        } else {
            0
        };
        device_power.insert(
            tag,
            ScopePower {
                devices: 1,
                window_us: e.window_us,
                radio_on_us: e.radio_on_us,
                tx_us: e.tx_us,
                join_us: e.join_us,
                beacon_us: e.beacon_us,
                charge_ua_us: u64::try_from(e.charge_ua_us).unwrap_or(u64::MAX),
                energy_nj: u64::try_from(e.energy_nj).unwrap_or(u64::MAX),
                boot_join_us: boot_us,
                max_average_na: average_na,
                battery_mah: p.battery_mah,
            },
        );
    }

    let mut scopes = Vec::new();
    let zero = ClientTraffic::default();
    let sum = |tags: &mut dyn Iterator<Item = u32>| -> (u64, ClientTraffic, Option<ScopePower>) {
        let (mut n, mut t, mut p) = (0, ClientTraffic::default(), None::<ScopePower>);
        for tag in tags {
            n += 1;
            let c = per_client.get(&tag).unwrap_or(&zero);
            t.up.add(&c.up);
            t.down.add(&c.down);
            if let Some(dp) = device_power.get(&tag) {
                p.get_or_insert_with(ScopePower::default).add(dp);
            }
        }
        (n, t, p)
    };
    let summary = inp.summary;
    let subscriber_tags = || (0..sc.subscribers.len() as u32).map(|i| SUBSCRIBER_TAG_BASE + i);
    let (n, t, p) = sum(&mut device_group.keys().copied().chain(subscriber_tags()));
    scopes.push(ScopeCost {
        name: "all".to_string(),
        scope: Scope::All,
        clients: n,
        delivered: summary.all.delivered,
        traffic: t,
        power: p,
    });
    for q in 0..3u8 {
        let mut tags = device_group
            .iter()
            .filter(|(_, &g)| sc.devices[g].qos == q)
            .map(|(&t, _)| t);
        let (n, t, p) = sum(&mut tags);
        let delivered = summary.qos[usize::from(q)].delivered;
        if n > 0 && summary.qos[usize::from(q)].published > 0 {
            scopes.push(ScopeCost {
                name: format!("qos{q}"),
                scope: Scope::Qos(q),
                clients: n,
                delivered,
                traffic: t,
                power: p,
            });
        }
    }
    // Groups in the table's order (by name).
    let mut groups: Vec<(usize, &str)> = sc
        .devices
        .iter()
        .enumerate()
        .map(|(g, d)| (g, d.name.as_str()))
        .collect();
    groups.sort_by_key(|&(_, name)| name);
    for (g, name) in groups {
        let mut tags = device_group
            .iter()
            .filter(|(_, &dg)| dg == g)
            .map(|(&t, _)| t);
        let (n, t, p) = sum(&mut tags);
        scopes.push(ScopeCost {
            name: format!("device {name}"),
            scope: Scope::Device(name.to_string()),
            clients: n,
            delivered: summary.devices.get(name).map_or(0, |t| t.delivered),
            traffic: t,
            power: p,
        });
    }
    let mut subs: Vec<(u32, &str)> = sc
        .subscribers
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32, s.name.as_str()))
        .collect();
    subs.sort_by_key(|&(_, name)| name);
    for (i, name) in subs {
        let (n, t, _) = sum(&mut std::iter::once(SUBSCRIBER_TAG_BASE + i));
        scopes.push(ScopeCost {
            name: format!("subscriber {name}"),
            scope: Scope::Subscriber(name.to_string()),
            clients: n,
            delivered: summary.subscribers.get(name).map_or(0, |t| t.delivered),
            traffic: t,
            power: None,
        });
    }
    let devices = device_group
        .iter()
        .map(|(tag, &g)| DeviceCost {
            client_id: client_ids[tag].clone(),
            group: sc.devices[g].name.clone(),
            traffic: per_client.get(tag).copied().unwrap_or_default(),
            power: device_power.get(tag).cloned().unwrap_or_default(),
        })
        .collect();
    Costs { scopes, devices }
}

#[cfg(test)]
mod tests;
