//! Scenario files: a simulation run as data (`scenarios/NAME.toml`), run by
//! `mqsim sim FILE [--seed N] [--duration S]` and by `cargo test` (one named test per file).
//!
//! Everything is checked before anything runs: TOML syntax, unknown keys, bad values and
//! impossible combinations are all reported as `FILE:LINE: reason`, one line per problem.
//!
//! # Timeline
//! `[0, duration_s)` is the *safety* phase: devices publish, links lose, faults happen (every fault
//! ends by `duration_s`). At `duration_s` the run *heals*: faults are over, links become lossless,
//! devices stop calling publish. The *liveness* phase then lasts `heal_s`: every eligible QoS 1/2
//! message must settle (acknowledged to its publisher, delivered to every subscriber whose session
//! covered it) before the run finishes at `duration_s + heal_s`.
//!
//! # Schema, with every key
//! ```toml
//! description = "one PubSubClient device, QoS 0, bursty WiFi"  # required
//! seed = 1            # u64, default 1; `--seed N` overrides
//! duration_s = 60     # safety phase length (> 0); `--duration S` overrides
//! tick_ms = 1         # simulation step = the model's time resolution (default 1, > 0)
//! heal_s = 30         # liveness phase length (default 30)
//! engines = ["turmoil", "direct"] # the engines `cargo test` runs it on (default both); a fleet
//!                     # too slow on turmoil names the direct engine only
//! tcp_profiles = true # default true: every end runs its TCP stack profile (each device its
//!                     # library's, see tcp_stack; the broker's end and subscribers linux).
//!                     # false: the legacy `plain` model everywhere a device names no
//!                     # tcp_stack (Linux's timers and recovery without Nagle, delayed ACK or
//!                     # congestion window), kept to compare with the model before profiles
//!
//! [broker]            # optional overrides of the broker's defaults
//! max_inflight_messages = 20
//! max_queued_messages = 1000
//! persistence = false # true: the broker journals to the host's modelled disk (sim/src/disk.rs)
//! disk_sync_ms = 2    # simulated time of one sync of that disk (default 2, at most 1000)
//! connect_timeout_s = 90 # a socket without CONNECT is closed after this (default 10; 1..=3600;
//!                     # mosquitto 2.0: 90, the 1.5 x 60 s keepalive it gives a new socket)
//! profile = "mqsim"   # whose behaviour the broker reproduces: "mqsim" (this broker, default) or
//!                     # "mosquitto-2.0" (drops past max_queued_messages, QoS 2 forwarded at
//!                     # PUBREL, keep alive on a 6 s scan, autosave every 1,801 s with
//!                     # persistence); `--broker-profile NAME` overrides (docs/simulator.md)
//!
//! [link.wifi]                 # a link profile, used by name; `ideal` exists unless redefined
//! latency_ms = 20             # one-way, default 5; a fraction allowed (0.025), resolution 1 µs
//!                             # (finer is refused, not rounded); at most 3600000
//! jitter_ms = 10              # default 0; each packet adds uniform 0..=jitter_ms (same rules)
//! loss = 0.05                 # independent loss per segment, 0..=1 (or the table below, not both)
//! wifi_join_ms = [1000, 4000] # (re)join time range after a WiFi drop (default [1000, 4000])
//! loss_at_sender = false      # true: the loss is each sender's own firewall (nftables output
//!                             # rule, as in a netns test bench): a new segment dropped there is
//!                             # kept unsent and sent at the next chance (net::link::LinkConfig)
//! [link.wifi.gilbert_elliott] # bursty loss: two-state Markov chain per segment
//! p_good_to_bad = 0.02
//! p_bad_to_good = 0.25
//! loss_good = 0.01
//! loss_bad = 0.8
//!
//! [[device]]
//! name = "sensor"        # client id; with count > 1: sensor-0, sensor-1, ...
//! count = 1              # default 1
//! profile = "esp-mqtt"   # "pubsubclient" (QoS 0 publish only) | "esp-mqtt" | "mqsim" (this
//!                        # project's client, as the firmware and a backend on a PC run it)
//! app = "door"           # optional: an application the run was given (World::app); without
//!                        # it the device runs the reference sketch, whose keys are qos, interval_ms,
//!                        # messages, topic_prefix, retain and publish_humidity
//! sketch = "app.ino"     # optional, instead of app: an Arduino sketch (C++, with its libraries),
//!                        # compiled for the host; relative to this file (docs/sketches.md)
//! libraries = ["libs"]   # optional, with sketch: Arduino libraries/ folders, searched before
//!                        # MQSIM_ARDUINO_LIBRARIES's
//! qos = 1                # 0, 1 or 2 (required for the reference sketch)
//! interval_ms = 2000     # default 2000
//! link = "wifi"          # default "ideal"
//! clean_session = true   # default true
//! keepalive_s = 15       # default: the profile's (pubsubclient 15, esp-mqtt 120)
//! messages = 200         # optional: stop after this many publish calls
//! topic_prefix = "ESP32/{id}" # publishes PREFIX/TEM and PREFIX/HUM; default "ESP32" for one
//!                        # device, "ESP32/{id}" for a group; {id} = the client id
//! retain = false         # default false
//! publish_humidity = true # default true; false: each reading publishes PREFIX/TEM only (one
//!                        # message per interval, as a bench publisher on one topic)
//! outbox_expiry_s = 30   # esp-mqtt only (default 30): unacknowledged QoS 1/2 deleted after it
//! will = { topic = "ESP32/{id}/status", payload = "offline", qos = 1, retain = true }
//! start_spread_s = 20    # default 0: each device boots at a time drawn from its own seed
//!                        # stream in [0, start_spread_s] (< duration_s); 0 = all at once
//! tcp_stack = "linux"    # optional: the device's TCP stack profile (linux | lwip-esp-idf |
//!                        # lwip-arduino | smoltcp-embassy | plain); default: its library
//!                        # profile's own (pubsubclient lwip-arduino, esp-mqtt lwip-esp-idf,
//!                        # mqsim smoltcp-embassy; an Arduino sketch's by its profile), or
//!                        # plain with the top-level `tcp_profiles = false`. The broker's end
//!                        # runs linux unless the device's stack is plain.
//! [device.power]         # optional: the device's power model and battery (docs/costs.md);
//!                        # defaults: the ESP32-C3's, each sourced in `cost::PowerSpec`
//! chip = "esp32-c3"      # or "custom": then tx_ma, rx_ma and sleep_ma are required
//! voltage_v = 3.3
//! tx_ma = 276            # transmitting (datasheet: 802.11n HT20 MCS7)
//! rx_ma = 84             # receiving, listening, joining, beacons
//! sleep_ma = 0.14        # between beacons (auto light-sleep; modem-sleep with the CPU on: 20.58)
//! dtim = 1               # beacons between wake-ups (DTIM period or listen interval)
//! beacon_interval_ms = 102.4
//! beacon_wake_ms = 1.54  # radio on per beacon
//! active_ms = 50         # radio on after each packet (ESP-IDF minimum active time)
//! phy_rate_mbps = 65     # the rate frames are sent at
//! battery_mah = 2000     # the battery the estimate is for (> 0)
//!
//! [[subscriber]]         # a mosquitto_sub-like client
//! name = "dashboard"
//! filter = "ESP32/#"
//! qos = 1
//! clean_session = true   # default true
//! link = "ideal"         # default "ideal"
//! keepalive_s = 60       # default 60
//!
//! [[fault]]
//! at_s = 10              # start, in the safety phase
//! duration_s = 30        # required for partition, half-open, wifi-drop; broker down-time for
//!                        # broker-power-cut (default 5) and broker-restart (default 1); none for reset
//! kind = "half-open"     # partition | half-open | reset | wifi-drop | broker-power-cut | broker-restart
//! direction = "up"       # half-open only: "up" (client -> broker lost) or "down"
//! target = "sensor"      # a device or subscriber (group or client id); absent = every client
//!                        # (broker faults take no target)
//!
//! [[input]]            # a board input the world sets, for the devices' applications
//! target = "door"        # a device group or client id
//! name = "door"          # the input's name, as the application sees it
//! at_s = 30              # once, at this time, to `value` (a boolean or a number) ...
//! value = true
//! # toggle_every_s = [10, 60]  # ... or flipped (first to true) after waits drawn from the seed
//!
//! [expect]               # ranges [min, max] (inclusive) the report must fall in
//! violations = [0, 0]    # implied when absent
//! delivered = [25, 30]
//! [expect.qos1]          # scopes: qos0 / qos1 / qos2, device.NAME, subscriber.NAME
//! lost = [0, 0]
//! [expect.device.sensor]
//! reconnects = [0, 2]
//! ```
//! Metrics: `published`, `refused`, `acknowledged`, `delivered` (unique per subscriber), `lost`,
//! `lost_with_broker`, `duplicated`, `reconnects`, `latency_p50_ms`, `latency_p99_ms`,
//! `latency_max_ms`, the loss causes `lost_connection`, `lost_expired`, `lost_dropped`,
//! `lost_broker_unsaved`, `lost_not_subscribed`, `lost_unexplained` (see `check::causes`),
//! `takeovers`, the costs `mqtt_packets`, `tcp_segments`, `tcp_bytes`, `bytes_per_delivered`,
//! `radio_on_ms`, `energy_mj`, `energy_uj_per_delivered`, `battery_days` (see `cost`; the last
//! four not per subscriber), and `violations` (top level only). See [`Metric`].

//!
//! The module's parts: the scenario as the simulator uses it (`model`, re-exported here), the file
//! as written (`raw`, serde), the checks from one to the other (`validate`), and the way back to a file
//! (`write`, [`Scenario::to_toml`]).

use std::path::Path;

mod model;
mod raw;
mod validate;
mod write;

pub use model::*;
use raw::RawScenario;
use validate::{validate, Checker};
pub(crate) use write::millis;

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Scenario::parse(&text, &file),
            Err(e) => Err(ScenarioError {
                file,
                problems: vec![Diagnostic {
                    line: 0,
                    reason: format!("cannot read: {e}"),
                }],
            }),
        }
    }

    /// Checks a scenario's text; `file_name` is used in messages and as [`Scenario::file`].
    pub fn parse(text: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
        let mut c = Checker {
            text,
            problems: Vec::new(),
        };
        let raw: RawScenario = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.span().map_or(1, |s| c.line(s));
                return Err(ScenarioError {
                    file: file_name.to_string(),
                    problems: vec![Diagnostic {
                        line,
                        reason: e.message().trim().replace('\n', " "),
                    }],
                });
            }
        };
        let scenario = validate(&mut c, raw, file_name);
        if c.problems.is_empty() {
            Ok(scenario)
        } else {
            c.problems.sort_by_key(|p| p.line);
            Err(ScenarioError {
                file: file_name.to_string(),
                problems: c.problems,
            })
        }
    }

    /// `--seed N`.
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// `--duration S`: a new safety phase length; faults starting after it are dropped and those
    /// running past it are cut short.
    pub fn with_duration_ms(mut self, duration_ms: u64) -> Scenario {
        self.duration_ms = duration_ms;
        self.faults.retain(|f| f.at_ms < duration_ms);
        for f in &mut self.faults {
            f.duration_ms = f.duration_ms.min(duration_ms - f.at_ms);
        }
        self
    }

    /// Every client id, devices first, in file order.
    pub fn client_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.devices.iter().flat_map(|d| d.client_ids()).collect();
        ids.extend(self.subscribers.iter().map(|s| s.name.clone()));
        ids
    }

    pub fn link(&self, name: &str) -> &LinkSpec {
        &self.links[name]
    }
}

#[cfg(test)]
mod tests;
