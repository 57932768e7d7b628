//! The cost breakdown under the report's table: two small tables that fit 80 columns, traffic
//! (both directions, then per delivered message) and the devices' radio and energy.

use std::fmt::Write as _;

use super::{Costs, ScopeCost, Traffic};

/// Both tables and their legend.
pub fn render(out: &mut String, costs: &Costs) {
    if costs.scopes.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "cost on the air (segments incl. lost ones, IP bytes; MQTT as first sent):"
    );
    let _ = writeln!(
        out,
        "{:<20} {:<4} {:>6} {:>8} {:>6} {:>6} {:>6} {:>4} {:>9}",
        "scope", "dir", "mqtt", "mqtt B", "segs", "resent", "ack", "ctl", "IP B"
    );
    for s in &costs.scopes {
        let name = fit(out, &s.name);
        traffic_row(out, name, "up", &s.traffic.up);
        traffic_row(out, "", "down", &s.traffic.down);
        per_delivered_row(out, s);
    }
    let with_power: Vec<&ScopeCost> = costs.scopes.iter().filter(|s| s.power.is_some()).collect();
    if with_power.is_empty() {
        out.push_str(LEGEND);
        return;
    }
    let _ = writeln!(
        out,
        "energy per device (ESP32-C3 model; from its WiFi join to the end of the faults):"
    );
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>7} {:>8} {:>9} {:>7} {:>8}",
        "scope", "radio s", "tx ms", "mJ", "mJ/deliv", "avg mA", "days"
    );
    let mut batteries: Vec<u64> = Vec::new();
    for s in with_power {
        let Some(p) = &s.power else { continue };
        let per = s
            .per_delivered(p.energy_nj as f64 / 1e6)
            .map_or("-".to_string(), |v| format!("{v:.2}"));
        let days = p
            .battery_days()
            .map_or("-".to_string(), |d| format!("{d:.1}"));
        let name = fit(out, &s.name);
        let _ = writeln!(
            out,
            "{:<20} {:>8.3} {:>7.1} {:>8.1} {:>9} {:>7.3} {:>8}",
            name,
            p.radio_on_ms_per_device() / 1e3,
            p.tx_ms_per_device(),
            p.energy_mj_per_device(),
            per,
            p.average_ma(),
            days
        );
        if !batteries.contains(&p.battery_mah) {
            batteries.push(p.battery_mah);
        }
    }
    let mah: Vec<String> = batteries.iter().map(|b| format!("{b} mAh")).collect();
    let _ = writeln!(
        out,
        "  days: first battery to empty ({}) at this rate; boot join not counted",
        mah.join(", ")
    );
    out.push_str(LEGEND);
}

/// A scope name that fits the first column is written in it; a longer one gets a line of its own
/// above the row (so the table stays within 80 columns).
fn fit<'a>(out: &mut String, name: &'a str) -> &'a str {
    if name.chars().count() <= SCOPE_COLUMN {
        return name;
    }
    let _ = writeln!(out, "{name}");
    ""
}

/// The first column's width.
const SCOPE_COLUMN: usize = 20;

fn traffic_row(out: &mut String, name: &str, dir: &str, t: &Traffic) {
    let _ = writeln!(
        out,
        "{:<20} {:<4} {:>6} {:>8} {:>6} {:>6} {:>6} {:>4} {:>9}",
        name,
        dir,
        t.mqtt_packets,
        t.mqtt_bytes,
        t.segments,
        t.resent,
        t.acks,
        t.control,
        t.ip_bytes
    );
}

fn per_delivered_row(out: &mut String, s: &ScopeCost) {
    if s.delivered == 0 {
        return;
    }
    let (u, d) = (&s.traffic.up, &s.traffic.down);
    let n = s.delivered as f64;
    let f = |a: u64, b: u64| (a + b) as f64 / n;
    let _ = writeln!(
        out,
        "{:<20} {:<4} {:>6.2} {:>8.1} {:>6.2} {:>6.2} {:>6.2} {:>4.2} {:>9.1}",
        format!("  per deliv. ({})", s.delivered),
        "both",
        f(u.mqtt_packets, d.mqtt_packets),
        f(u.mqtt_bytes, d.mqtt_bytes),
        f(u.segments, d.segments),
        f(u.resent, d.resent),
        f(u.acks, d.acks),
        f(u.control, d.control),
        f(u.ip_bytes, d.ip_bytes),
    );
}

/// What the cost columns mean.
const LEGEND: &str = "  up: sent by the scope's clients; down: to them; mqtt: MQTT packets; resent:
  data sent again; ack: pure ACKs; ctl: SYN/FIN/RST; IP B: IPv4+TCP bytes;
  radio s: TX, RX, listening after traffic, joins, beacons (docs/costs.md).
";
