//! The field host (192.168.100.101): every virtual ESP32 of the scenario, each on its own TCP
//! connection with its own modelled link, its own sensor and rng (seeded from the run's seed),
//! its serial lines in the output and its publishes in the ledger. A device given as an Arduino
//! sketch runs as its own process ([`crate::sketch`]), with the same link, sensor and rngs, the
//! ledger fed from its wire bytes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mqsim::app::reference::{ReferenceSketch, SketchConfig, TAG_MAX_BYTES};
use mqsim::app::App;
use mqsim::device::{self, Device, DeviceConfig, DeviceEvent, Reading, WallClock};
use mqsim::time::{Duration, Instant};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::connector::SimConnector;
use super::sensor::Sensor;
use super::{
    link_config, qos, serial_clock, AppDevice, Apps, Controls, Lines, Shared, Source, FIELD_HOST,
};
use crate::check::{DeviceId, Ledger};
use crate::device_io::{run_device, DeviceHooks};
use crate::net::link::Stack;
use crate::net::stream::sim_now;
use crate::scenario::{Profile, Scenario};
use crate::seed::Stream;
use crate::sketch::{self, SketchHooks, SketchSource};

pub(crate) struct SimDevice {
    id: DeviceId,
    pub(crate) name: String,
    clean_session: bool,
    ledger: Rc<RefCell<Ledger>>,
    lines: Lines,
    sensor: Sensor,
    rng: ChaCha8Rng,
    wifi_join_ms: (u64, u64),
    clock: WallClock,
    /// A sketch's `random()` (unused by the Rust devices).
    sketch_rng: ChaCha8Rng,
    /// Where its WiFi joins are recorded (for its radio's energy).
    joins: Rc<RefCell<crate::cost::Joins>>,
}

impl DeviceHooks for SimDevice {
    fn now(&mut self) -> Instant {
        sim_now()
    }
    fn event(&mut self, now: Instant, ev: &DeviceEvent) {
        let us = now.as_micros();
        let mut ledger = self.ledger.borrow_mut();
        match ev {
            DeviceEvent::Serial(line) => {
                self.lines.push(
                    line.at,
                    Source::Device(self.name.clone()),
                    self.clock.format_line(line),
                );
            }
            DeviceEvent::PublishCalled {
                seq,
                topic,
                payload,
                qos,
                accepted,
            } => {
                ledger.publish_called(us, self.id, *seq, topic, qos.as_u8(), *accepted);
                ledger.publish_payload(self.id, *seq, payload);
            }
            DeviceEvent::PublishCompleted { seq } => ledger.publish_completed(us, self.id, *seq),
            DeviceEvent::PublishExpired { seq } => ledger.publish_abandoned(us, self.id, *seq),
            DeviceEvent::OpenTransport => ledger.device_connecting(us, self.id),
            DeviceEvent::ConnectFailed { .. } => ledger.device_connect_failed(us, self.id),
            DeviceEvent::Connected => ledger.device_connected(us, self.id, self.clean_session),
            DeviceEvent::ConnectionLost { .. } => ledger.device_disconnected(us, self.id),
            DeviceEvent::Message { topic, payload } => {
                ledger.device_received(us, self.id, topic, payload)
            }
            _ => {}
        }
    }
    fn reading(&mut self) -> Reading {
        self.sensor.read()
    }
    fn wifi_join_delay(&mut self) -> Duration {
        let (lo, hi) = self.wifi_join_ms;
        let span = hi.saturating_sub(lo) + 1;
        let d = Duration::from_millis(lo + self.rng.next_u64() % span);
        self.joins
            .borrow_mut()
            .record(self.id.0, sim_now().as_micros(), d.as_micros());
        d
    }
}

impl SketchHooks for SimDevice {
    fn now(&mut self) -> Instant {
        sim_now()
    }
    fn serial_line(&mut self, at: Instant, text: &str) {
        let line = self.clock.prefix(at) + text;
        self.lines.push(at, Source::Device(self.name.clone()), line);
    }
    fn note(&mut self, at: Instant, text: &str) {
        self.lines
            .push(at, Source::Device(self.name.clone()), text.to_string());
    }
    fn reading(&mut self) -> Reading {
        self.sensor.read()
    }
    fn wifi_join_delay(&mut self) -> Duration {
        DeviceHooks::wifi_join_delay(self)
    }
    fn random(&mut self) -> u32 {
        self.sketch_rng.next_u32()
    }
    fn connected(&mut self, at: Instant, clean_session: bool) {
        self.ledger
            .borrow_mut()
            .device_connected(at.as_micros(), self.id, clean_session);
    }
    fn disconnected(&mut self, at: Instant) {
        self.ledger
            .borrow_mut()
            .device_disconnected(at.as_micros(), self.id);
    }
    fn received(&mut self, at: Instant, topic: &str, payload: &[u8]) {
        self.ledger
            .borrow_mut()
            .device_received(at.as_micros(), self.id, topic, payload);
    }
}

/// `path` of the scenario file `file`: relative to the file's folder, if it is there.
fn beside(file: &str, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_relative() {
        if let Some(dir) = Path::new(file).parent() {
            let q = dir.join(p);
            if q.exists() {
                return q;
            }
        }
    }
    p.to_path_buf()
}

/// One device of the field host: the core's, or a sketch's process.
pub(crate) enum FieldDevice {
    Core(
        DeviceConfig,
        Box<dyn App>,
        SimConnector,
        mpsc::UnboundedReceiver<crate::device_io::Control>,
        SimDevice,
    ),
    Sketch(
        PathBuf,
        SimConnector,
        mpsc::UnboundedReceiver<crate::device_io::Control>,
        SimDevice,
    ),
}

/// Adds the field host to `sim` with every device of `sc`, and each device's control channel to
/// `controls`.
pub(super) fn add(
    sim: &mut turmoil::Sim<'_>,
    sc: &Scenario,
    shared: &Shared,
    controls: &mut Controls,
    apps: &Apps,
) -> Result<(), String> {
    let devices = build(sc, shared, controls, apps)?;
    let devices = Rc::new(RefCell::new(Some(devices)));
    sim.host(FIELD_HOST, move || {
        let devices = devices.borrow_mut().take();
        async move {
            for (start_ms, device) in devices.into_iter().flatten() {
                if start_ms > 0 {
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(start_ms)).await;
                        if let Err(e) = start(device) {
                            tracing::error!("{e}");
                        }
                    });
                } else {
                    start(device)?;
                }
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    Ok(())
}

/// Every device of `sc` with its start time in ms (a staggered start), each with its application, connector, control channel (added to
/// `controls`) and hooks; a sketch compiled.
pub(crate) fn build(
    sc: &Scenario,
    shared: &Shared,
    controls: &mut Controls,
    apps: &Apps,
) -> Result<Vec<(u64, FieldDevice)>, String> {
    let mut devices = Vec::new();
    // Each sketch compiled once (before anything runs: a sketch that does not compile stops the
    // run here).
    let mut built: BTreeMap<(String, Vec<String>), PathBuf> = BTreeMap::new();
    for d in &sc.devices {
        let exe = match &d.sketch {
            None => None,
            Some(path) => {
                let key = (path.clone(), d.libraries.clone());
                if !built.contains_key(&key) {
                    let src = SketchSource {
                        sketch: beside(&sc.file, path),
                        libraries: d.libraries.iter().map(|l| beside(&sc.file, l)).collect(),
                    };
                    let exe = sketch::compile(&src)
                        .map_err(|e| format!("{}: device `{}`: {e}", sc.file, d.name))?;
                    built.insert(key.clone(), exe);
                }
                built.get(&key).cloned()
            }
        };
        for client_id in d.client_ids() {
            let id = shared
                .ledger
                .borrow()
                .device_id(&client_id)
                .ok_or_else(|| format!("device {client_id} not in the ledger"))?;
            let mut cfg = DeviceConfig::new(match d.profile {
                Profile::Pubsubclient => device::Profile::PubSubClient,
                Profile::EspMqtt => device::Profile::EspMqtt,
                Profile::Mqsim => device::Profile::Mqsim,
            });
            cfg.device_index = id.0;
            cfg.client_id = client_id.clone();
            cfg.tag_payloads = true;
            let app: Box<dyn App> = match &d.app {
                None => {
                    let (temperature_topic, humidity_topic) = d.topics_for(&client_id);
                    let sketch = SketchConfig {
                        temperature_topic,
                        humidity_topic,
                        qos: qos(d.qos),
                        interval_ms: d.interval_ms,
                        retain: d.retain,
                        publish_humidity: d.publish_humidity,
                        max_publish_calls: d.messages,
                        tag_bytes: TAG_MAX_BYTES,
                        ..SketchConfig::default()
                    };
                    Box::new(ReferenceSketch::new(sketch))
                }
                Some(name) => {
                    let make = apps.get(name).ok_or_else(|| {
                        let known: Vec<&str> = apps.names().collect();
                        format!(
                            "{}: device `{}` runs app `{name}`, which this run was not given (given: {})",
                            sc.file,
                            d.name,
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        )
                    })?;
                    make(&AppDevice {
                        client_id: &client_id,
                        group: &d.name,
                        index: id.0,
                        seed: Stream::App(id.0).seed(sc.seed),
                    })
                }
            };
            cfg.params.keep_alive_s = d.keepalive_s;
            cfg.params.clean_session = d.clean_session;
            if d.profile == Profile::EspMqtt {
                cfg.params.outbox_expiry_ms = d.outbox_expiry_s.map(|s| s * 1_000);
            }
            cfg.will = d.will.as_ref().map(|w| mqsim::client::LastWill {
                topic: w.topic.replace("{id}", &client_id),
                payload: w.payload.clone().into_bytes(),
                qos: qos(w.qos),
                retain: w.retain,
            });
            let (tx, rx) = mpsc::unbounded_channel();
            controls.by_tag.insert(id.0, tx);
            controls
                .by_name
                .entry(d.name.clone())
                .or_default()
                .push(id.0);
            if client_id != d.name {
                controls
                    .by_name
                    .entry(client_id.clone())
                    .or_default()
                    .push(id.0);
            }
            let link = sc.link(&d.link).clone();
            let hooks = SimDevice {
                id,
                name: client_id.clone(),
                clean_session: d.clean_session,
                ledger: shared.ledger.clone(),
                lines: shared.lines.clone(),
                sensor: Sensor::new(Stream::Sensor(id.0).seed(sc.seed)),
                rng: ChaCha8Rng::seed_from_u64(Stream::DeviceRng(id.0).seed(sc.seed)),
                wifi_join_ms: link.wifi_join_ms,
                clock: serial_clock(),
                sketch_rng: ChaCha8Rng::seed_from_u64(Stream::App(id.0).seed(sc.seed)),
                joins: shared.joins.clone(),
            };
            let connector = SimConnector {
                net: shared.net.clone(),
                link: link_config(
                    &link,
                    device_stack(d.profile, d.tcp_stack.as_deref(), sc.tcp_profiles),
                    sc.broker.profile,
                ),
                tag: id.0,
                healed: shared.healed.clone(),
                send_buffer_bytes: Some(cfg.params.tcp_send_buffer_bytes),
            };
            // A staggered start: drawn from the device's own stream, so adding devices or
            // changing one group's spread moves no other device.
            let start_ms = match d.start_spread_ms {
                0 => 0,
                spread => {
                    let seed = Stream::Start(id.0).seed(sc.seed);
                    ChaCha8Rng::seed_from_u64(seed).next_u64() % (spread + 1)
                }
            };
            devices.push((
                start_ms,
                match &exe {
                    None => FieldDevice::Core(cfg, app, connector, rx, hooks),
                    Some(exe) => FieldDevice::Sketch(exe.clone(), connector, rx, hooks),
                },
            ));
        }
    }
    Ok(devices)
}

/// Boots a device of the field host now: its task spawned on the host's runtime.
fn start(device: FieldDevice) -> Result<(), String> {
    match device {
        FieldDevice::Core(cfg, app, connector, rx, hooks) => {
            let dev = Device::new(cfg, app, sim_now())
                .map_err(|e| format!("device {}: {e}", hooks.name))?;
            // The device's code runs in its span: what its application logs is its own.
            let span = tracing::error_span!(super::log::DEVICE_SPAN, name = %hooks.name);
            tokio::task::spawn_local(run_device(dev, connector, rx, hooks).instrument(span));
        }
        FieldDevice::Sketch(exe, connector, rx, hooks) => {
            tokio::task::spawn_local(async move {
                sketch::run_sketch(&exe, connector, rx, hooks).await
            });
        }
    }
    Ok(())
}

/// A device's TCP stack: the scenario's `tcp_stack`, else its profile's own (PubSubClient runs on
/// Arduino-ESP32's lwIP, esp-mqtt on ESP-IDF's, this project's firmware on smoltcp under
/// embassy-net).
/// With `tcp_profiles = false` (the legacy comparison model) and no name: the plain model.
pub(super) fn device_stack(profile: Profile, name: Option<&str>, tcp_profiles: bool) -> Stack {
    if let Some(st) = name.and_then(Stack::by_name) {
        return st;
    }
    if !tcp_profiles {
        return Stack::plain();
    }
    match profile {
        Profile::Pubsubclient => Stack::lwip_arduino(),
        Profile::EspMqtt => Stack::lwip_esp_idf(),
        Profile::Mqsim => Stack::smoltcp_embassy(),
    }
}
