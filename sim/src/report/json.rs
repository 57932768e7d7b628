//! The report as JSON (`mqsim sim FILE --json`): the same figures as the text, for tools and
//! sweeps. The types here are the stable form: a sweep embeds one [`ReportJson`] per seed.
//!
//! Numbers are as measured: counts as integers, times in ms, energy in mJ, currents in mA;
//! figures that were not measured (no latency samples, nothing delivered) are `null`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Report;
use crate::check::{Cause, Tally};
use crate::cost::{ScopeCost, ScopePower, Traffic};

/// One run's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportJson {
    pub scenario: String,
    pub seed: u64,
    pub tick_ms: u64,
    pub simulated_ms: u64,
    /// The table's rows: all, per QoS, per device group, per subscriber.
    pub scopes: Vec<ScopeJson>,
    /// What each scope cost ([`crate::cost`]).
    pub costs: Vec<CostJson>,
    /// What each device cost, on its own.
    pub devices: Vec<DeviceJson>,
    pub takeovers: usize,
    /// The violations as the text prints them.
    pub violations: Vec<String>,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScopeJson {
    pub name: String,
    pub published: u64,
    pub refused: u64,
    pub acknowledged: u64,
    pub delivered: u64,
    pub lost: u64,
    pub lost_with_broker: u64,
    pub duplicated: u64,
    pub reconnects: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// Every cause that happened, by its key (`connection`, `dropped`, ...).
    pub causes: BTreeMap<&'static str, u64>,
}

/// One scope's costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostJson {
    pub name: String,
    pub clients: u64,
    pub delivered: u64,
    /// Sent by the scope's clients.
    pub up: Traffic,
    /// Sent to them.
    pub down: Traffic,
    /// Both directions per delivered message; null when nothing was delivered.
    pub per_delivered: Option<PerDeliveredJson>,
    /// The devices' radio and energy; null for subscribers.
    pub energy: Option<EnergyJson>,
}

/// One device's traffic and energy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceJson {
    pub client_id: String,
    pub group: String,
    pub up: Traffic,
    pub down: Traffic,
    pub energy: EnergyJson,
}

/// Both directions per delivered message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerDeliveredJson {
    pub mqtt_packets: f64,
    pub mqtt_bytes: f64,
    pub tcp_segments: f64,
    pub ip_bytes: f64,
    pub energy_mj: Option<f64>,
}

/// Per device, over its window (WiFi up to the end of the faults' phase).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyJson {
    pub devices: u64,
    pub radio_on_ms: f64,
    pub tx_ms: f64,
    pub energy_mj: f64,
    pub average_ma: f64,
    /// The first battery of the scope to empty, at this rate.
    pub battery_days: Option<f64>,
    pub battery_mah: u64,
    /// The boot join (not in the window), ms per device.
    pub boot_join_ms: f64,
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|u| u as f64 / 1e3)
}

fn scope(name: String, t: &Tally) -> ScopeJson {
    ScopeJson {
        name,
        published: t.published,
        refused: t.refused,
        acknowledged: t.acknowledged,
        delivered: t.delivered,
        lost: t.lost,
        lost_with_broker: t.lost_with_broker,
        duplicated: t.duplicated,
        reconnects: t.reconnects,
        latency_p50_ms: ms(t.latency_percentile_us(50)),
        latency_p99_ms: ms(t.latency_percentile_us(99)),
        latency_max_ms: ms(t.latency_max_us()),
        causes: Cause::ALL
            .iter()
            .filter(|&&c| t.causes.get(c) > 0)
            .map(|&c| (c.key(), t.causes.get(c)))
            .collect(),
    }
}

fn cost(c: &ScopeCost) -> CostJson {
    let (u, d) = (&c.traffic.up, &c.traffic.down);
    let per = |a: u64, b: u64| c.per_delivered((a + b) as f64);
    let per_delivered = per(u.mqtt_packets, d.mqtt_packets).map(|mqtt_packets| PerDeliveredJson {
        mqtt_packets,
        mqtt_bytes: per(u.mqtt_bytes, d.mqtt_bytes).unwrap_or(0.0),
        tcp_segments: per(u.segments, d.segments).unwrap_or(0.0),
        ip_bytes: per(u.ip_bytes, d.ip_bytes).unwrap_or(0.0),
        energy_mj: c
            .power
            .as_ref()
            .and_then(|p| c.per_delivered(p.energy_nj as f64 / 1e6)),
    });
    CostJson {
        name: c.name.clone(),
        clients: c.clients,
        delivered: c.delivered,
        up: *u,
        down: *d,
        per_delivered,
        energy: c.power.as_ref().map(energy),
    }
}

fn energy(p: &ScopePower) -> EnergyJson {
    EnergyJson {
        devices: p.devices,
        radio_on_ms: p.radio_on_ms_per_device(),
        tx_ms: p.tx_ms_per_device(),
        energy_mj: p.energy_mj_per_device(),
        average_ma: p.average_ma(),
        battery_days: p.battery_days(),
        battery_mah: p.battery_mah,
        boot_join_ms: p.boot_join_us as f64 / 1e3 / p.devices.max(1) as f64,
    }
}

impl ReportJson {
    pub fn new(r: &Report) -> ReportJson {
        let s = &r.summary;
        let mut scopes = vec![scope("all".to_string(), &s.all)];
        for (q, t) in s.qos.iter().enumerate() {
            if t.published > 0 {
                scopes.push(scope(format!("qos{q}"), t));
            }
        }
        for (name, t) in &s.devices {
            scopes.push(scope(format!("device {name}"), t));
        }
        for (name, t) in &s.subscribers {
            scopes.push(scope(format!("subscriber {name}"), t));
        }
        ReportJson {
            scenario: r.facts.scenario.clone(),
            seed: r.facts.seed,
            tick_ms: r.facts.tick_ms,
            simulated_ms: r.facts.simulated_ms,
            scopes,
            costs: r
                .costs
                .as_ref()
                .map_or(Vec::new(), |c| c.scopes.iter().map(cost).collect()),
            devices: r.costs.as_ref().map_or(Vec::new(), |c| {
                c.devices
                    .iter()
                    .map(|d| DeviceJson {
                        client_id: d.client_id.clone(),
                        group: d.group.clone(),
                        up: d.traffic.up,
                        down: d.traffic.down,
                        energy: energy(&d.power),
                    })
                    .collect()
            }),
            takeovers: r.takeovers.len(),
            violations: r.violation_lines.clone(),
        }
    }
}

impl Report {
    /// The report as pretty-printed JSON ([`ReportJson`]).
    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(&ReportJson::new(self)).unwrap_or_else(|e| {
            // Serializing plain numbers and strings cannot fail; say so rather than panic.
            format!("{{\"error\": \"{e}\"}}")
        })
    }
}
