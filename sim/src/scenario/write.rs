//! The scenario back to a file: [`Scenario::to_toml`] writes the text that
//! [`Scenario::parse`] reads back into the same scenario (every default written out, times in
//! seconds with millisecond precision). `mqsim sim --shrink` writes its minimal scenario with it.
//!
//! Kept in step with the parser (`raw.rs`, `validate.rs`) by a round-trip test over every
//! `scenarios/*.toml` and the random scenarios' generator: parse, write, parse again, same
//! scenario.

use std::fmt::Write as _;

use super::model::*;

impl Scenario {
    /// The scenario as a file that parses back to it (only [`Scenario::file`] and the
    /// `[expect]` checks' line numbers differ).
    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "description = {}", string(&self.description));
        let _ = writeln!(t, "seed = {}", self.seed);
        let _ = writeln!(t, "duration_s = {}", seconds(self.duration_ms));
        let _ = writeln!(t, "tick_ms = {}", self.tick_ms);
        let _ = writeln!(t, "heal_s = {}", seconds(self.heal_ms));
        if !self.tcp_profiles {
            let _ = writeln!(t, "tcp_profiles = false");
        }
        if self.engines.len() != ENGINES.len() {
            let names: Vec<String> = self.engines.iter().map(|e| string(e)).collect();
            let _ = writeln!(t, "engines = [{}]", names.join(", "));
        }
        broker(&mut t, &self.broker);
        for (name, l) in &self.links {
            if name == IDEAL_LINK && *l == LinkSpec::ideal() {
                continue;
            }
            link(&mut t, name, l);
        }
        for d in &self.devices {
            device(&mut t, d);
        }
        for s in &self.subscribers {
            let _ = writeln!(t, "\n[[subscriber]]");
            let _ = writeln!(t, "name = {}", string(&s.name));
            let _ = writeln!(t, "filter = {}", string(&s.filter));
            let _ = writeln!(t, "qos = {}", s.qos);
            let _ = writeln!(t, "clean_session = {}", s.clean_session);
            let _ = writeln!(t, "link = {}", string(&s.link));
            let _ = writeln!(t, "keepalive_s = {}", s.keepalive_s);
        }
        for f in &self.faults {
            t.push('\n');
            t.push_str(&crate::world::fault_toml(f));
        }
        for i in &self.inputs {
            let _ = writeln!(t, "\n[[input]]");
            let _ = writeln!(t, "target = {}", string(&i.target));
            let _ = writeln!(t, "name = {}", string(&i.name));
            match &i.schedule {
                InputSchedule::At { at_ms, value } => {
                    let _ = writeln!(t, "at_s = {}", seconds(*at_ms));
                    match value {
                        mqsim::app::Value::Bool(b) => {
                            let _ = writeln!(t, "value = {b}");
                        }
                        // Through f64, whose shortest form reads back as the same f32.
                        mqsim::app::Value::Number(n) => {
                            let _ = writeln!(t, "value = {:?}", f64::from(*n));
                        }
                    }
                }
                InputSchedule::Toggle { min_ms, max_ms } => {
                    let _ = writeln!(
                        t,
                        "toggle_every_s = [{}, {}]",
                        seconds(*min_ms),
                        seconds(*max_ms)
                    );
                }
            }
        }
        expect(&mut t, &self.expect);
        t
    }
}

fn broker(t: &mut String, b: &BrokerSpec) {
    let mut keys = String::new();
    if let Some(n) = b.max_inflight_messages {
        let _ = writeln!(keys, "max_inflight_messages = {n}");
    }
    if let Some(n) = b.max_queued_messages {
        let _ = writeln!(keys, "max_queued_messages = {n}");
    }
    if b.persistence {
        let _ = writeln!(keys, "persistence = true");
    }
    if b.disk_sync_ms != crate::disk::DISK_SYNC_DEFAULT_MS {
        let _ = writeln!(keys, "disk_sync_ms = {}", b.disk_sync_ms);
    }
    if let Some(s) = b.connect_timeout_s {
        let _ = writeln!(keys, "connect_timeout_s = {s}");
    }
    if b.profile != mqsim::broker::Profile::default() {
        let _ = writeln!(keys, "profile = {}", string(b.profile.name()));
    }
    if !keys.is_empty() {
        let _ = write!(t, "\n[broker]\n{keys}");
    }
}

fn link(t: &mut String, name: &str, l: &LinkSpec) {
    let _ = writeln!(t, "\n[link.{}]", key(name));
    let _ = writeln!(t, "latency_ms = {}", millis(l.latency_us));
    let _ = writeln!(t, "jitter_ms = {}", millis(l.jitter_us));
    let _ = writeln!(
        t,
        "wifi_join_ms = [{}, {}]",
        l.wifi_join_ms.0, l.wifi_join_ms.1
    );
    if l.loss_at_sender {
        let _ = writeln!(t, "loss_at_sender = true");
    }
    match l.loss {
        Loss::None => {}
        Loss::Independent(p) => {
            let _ = writeln!(t, "loss = {}", float(p));
        }
        Loss::GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_good,
            loss_bad,
        } => {
            let _ = writeln!(t, "[link.{}.gilbert_elliott]", key(name));
            let _ = writeln!(t, "p_good_to_bad = {}", float(p_good_to_bad));
            let _ = writeln!(t, "p_bad_to_good = {}", float(p_bad_to_good));
            let _ = writeln!(t, "loss_good = {}", float(loss_good));
            let _ = writeln!(t, "loss_bad = {}", float(loss_bad));
        }
    }
}

fn device(t: &mut String, d: &DeviceSpec) {
    let _ = writeln!(t, "\n[[device]]");
    let _ = writeln!(t, "name = {}", string(&d.name));
    let _ = writeln!(t, "count = {}", d.count);
    let _ = writeln!(t, "profile = {}", string(d.profile.name()));
    if let Some(a) = &d.app {
        let _ = writeln!(t, "app = {}", string(a));
    }
    if let Some(k) = &d.sketch {
        let _ = writeln!(t, "sketch = {}", string(k));
        if !d.libraries.is_empty() {
            let libs: Vec<String> = d.libraries.iter().map(|l| string(l)).collect();
            let _ = writeln!(t, "libraries = [{}]", libs.join(", "));
        }
    }
    // The reference sketch's own keys; an application or a sketch decides these itself.
    if d.app.is_none() && d.sketch.is_none() {
        let _ = writeln!(t, "qos = {}", d.qos);
        let _ = writeln!(t, "interval_ms = {}", d.interval_ms);
        if let Some(m) = d.messages {
            let _ = writeln!(t, "messages = {m}");
        }
        let _ = writeln!(t, "topic_prefix = {}", string(&d.topic_prefix));
        let _ = writeln!(t, "retain = {}", d.retain);
        if !d.publish_humidity {
            let _ = writeln!(t, "publish_humidity = false");
        }
    }
    let _ = writeln!(t, "link = {}", string(&d.link));
    let _ = writeln!(t, "clean_session = {}", d.clean_session);
    if let Some(s) = &d.tcp_stack {
        let _ = writeln!(t, "tcp_stack = {}", string(s));
    }
    if d.start_spread_ms > 0 {
        let _ = writeln!(t, "start_spread_s = {}", seconds(d.start_spread_ms));
    }
    // A sketch sets what its MQTT library is told through the library's own calls.
    if d.sketch.is_none() {
        let _ = writeln!(t, "keepalive_s = {}", d.keepalive_s);
        if let (Some(o), Profile::EspMqtt) = (d.outbox_expiry_s, d.profile) {
            let _ = writeln!(t, "outbox_expiry_s = {o}");
        }
        if let Some(w) = &d.will {
            let _ = writeln!(
                t,
                "will = {{ topic = {}, payload = {}, qos = {}, retain = {} }}",
                string(&w.topic),
                string(&w.payload),
                w.qos,
                w.retain
            );
        }
    }
    power(t, &d.power);
}

/// `[device.power]`, when it is not the ESP32-C3's defaults: every key, in the file's units.
fn power(t: &mut String, p: &crate::cost::PowerSpec) {
    if *p == crate::cost::PowerSpec::ESP32_C3 {
        return;
    }
    let milli = |v: u64| float(v as f64 / 1e3);
    let _ = writeln!(t, "[device.power]");
    let _ = writeln!(t, "voltage_v = {}", milli(p.voltage_mv));
    let _ = writeln!(t, "tx_ma = {}", milli(p.tx_ua));
    let _ = writeln!(t, "rx_ma = {}", milli(p.rx_ua));
    let _ = writeln!(t, "sleep_ma = {}", milli(p.sleep_ua));
    let _ = writeln!(t, "dtim = {}", p.dtim);
    let _ = writeln!(t, "beacon_interval_ms = {}", milli(p.beacon_interval_us));
    let _ = writeln!(t, "beacon_wake_ms = {}", milli(p.beacon_wake_us));
    let _ = writeln!(t, "active_ms = {}", milli(p.active_us));
    let _ = writeln!(t, "phy_rate_mbps = {}", milli(p.phy_rate_kbps));
    let _ = writeln!(t, "battery_mah = {}", p.battery_mah);
}

fn expect(t: &mut String, e: &Expect) {
    let mut tables: Vec<(String, String)> = Vec::new();
    for c in &e.checks {
        let table = match &c.scope {
            Scope::All => "expect".to_string(),
            Scope::Qos(q) => format!("expect.qos{q}"),
            Scope::Device(d) => format!("expect.device.{}", key(d)),
            Scope::Subscriber(s) => format!("expect.subscriber.{}", key(s)),
        };
        let line = format!("{} = [{}, {}]\n", c.metric.key(), c.min, c.max);
        match tables.iter_mut().find(|(name, _)| *name == table) {
            Some((_, body)) => body.push_str(&line),
            None => tables.push((table, line)),
        }
    }
    for (name, body) in tables {
        let _ = write!(t, "\n[{name}]\n{body}");
    }
}

/// Milliseconds as seconds, exactly (`1.5`, `60`).
fn seconds(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// An f64 in its shortest form that reads back as the same number (`0.05`, `1.0`, `1e-7`).
fn float(x: f64) -> String {
    format!("{x:?}")
}

/// A TOML basic string.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A table key: bare when it can be, else quoted.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        s.to_string()
    } else {
        string(s)
    }
}

/// Microseconds as the milliseconds of a scenario file: a whole number as an integer (`20`, as
/// files wrote it before fractions), else the shortest decimal that parses back to the same
/// microseconds (`0.05`, `1.5`, `0.001`).
pub(crate) fn millis(us: u64) -> String {
    let (whole, frac) = (us / 1_000, us % 1_000);
    if frac == 0 {
        format!("{whole}")
    } else {
        let digits = format!("{frac:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenario with what a file cannot carry (its name, the lines of its checks) blanked.
    fn comparable(mut s: Scenario) -> Scenario {
        s.file = String::new();
        for c in &mut s.expect.checks {
            c.line = 0;
        }
        s
    }

    fn round_trip(text: &str, name: &str) {
        let s = Scenario::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
        let written = s.to_toml();
        let again = Scenario::parse(&written, name)
            .unwrap_or_else(|e| panic!("{name} written back is refused: {e}\n{written}"));
        assert_eq!(
            comparable(again),
            comparable(s),
            "{name} does not read back the same:\n{written}"
        );
    }

    #[test]
    fn every_scenario_file_reads_back_the_same_after_writing() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                round_trip(&text, &path.display().to_string());
                n += 1;
            }
        }
        assert!(n >= 30, "only {n} scenario files found in {dir}");
    }

    #[test]
    fn fractional_latencies_read_back_the_same_after_writing() {
        let text = r#"description = "fractions"
duration_s = 10
[link.veth]
latency_ms = 0.05
jitter_ms = 1.5
[link.slow]
latency_ms = 3600000
jitter_ms = 0.001
[[device]]
name = "sensor"
profile = "esp-mqtt"
qos = 1
link = "veth"
"#;
        round_trip(text, "fractions.toml");
        let s = Scenario::parse(text, "fractions.toml").unwrap();
        let written = s.to_toml();
        assert!(
            written.contains("latency_ms = 0.05\njitter_ms = 1.5\n"),
            "{written}"
        );
        assert!(
            written.contains("latency_ms = 3600000\njitter_ms = 0.001\n"),
            "{written}"
        );
    }

    #[test]
    fn millis_writes_whole_ms_as_integers_and_fractions_shortest() {
        let cases = [
            (0, "0"),
            (5_000, "5"),
            (50, "0.05"),
            (1, "0.001"),
            (1_500, "1.5"),
        ];
        for (us, text) in cases {
            assert_eq!(millis(us), text, "{us} µs");
        }
        assert_eq!(millis(1_234_567), "1234.567");
    }

    #[test]
    fn random_scenarios_read_back_the_same_after_writing() {
        for i in 0..200 {
            round_trip(
                &crate::random::scenario_text(i, "r"),
                &format!("random-{i}"),
            );
        }
    }

    #[test]
    fn keys_an_application_or_a_sketch_refuses_are_not_written() {
        let text = r#"
description = "apps, sketches, wills, inputs, odd strings"
duration_s = 20.5
engines = ["direct"]
tcp_profiles = false
[broker]
max_inflight_messages = 3
persistence = true
disk_sync_ms = 7
connect_timeout_s = 90
profile = "mosquitto-2.0"
[link."odd name"]
loss = 0.000001
loss_at_sender = true
[[device]]
name = "door"
profile = "mqsim"
app = "door"
[[device]]
name = "ino"
profile = "pubsubclient"
sketch = "app.ino"
libraries = ["libs", "more"]
[[device]]
name = "esp"
count = 3
profile = "esp-mqtt"
qos = 2
link = "odd name"
outbox_expiry_s = 5
start_spread_s = 2.5
tcp_stack = "lwip-arduino"
will = { topic = "W/{id}", payload = "say \"bye\"\n", qos = 1, retain = true }
[device.power]
sleep_ma = 20.58
dtim = 3
battery_mah = 2500
[[subscriber]]
name = "s"
filter = "+/#"
qos = 1
[[fault]]
kind = "broker-restart"
at_s = 1
duration_s = 0
[[fault]]
kind = "half-open"
direction = "down"
at_s = 2.25
duration_s = 3
target = "esp-1"
[[input]]
target = "door"
name = "door"
at_s = 4
value = 2.7
[[input]]
target = "door"
name = "bell"
toggle_every_s = [1.5, 9]
[expect.device.esp]
reconnects = [0, 4]
[expect.qos2]
lost = [0, 0]
"#;
        round_trip(text, "all-keys.toml");
    }
}
