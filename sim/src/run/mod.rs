//! One simulation run: a scenario and a seed in, the interleaved output, the ledger's verdict
//! and the report out. Deterministic: the same scenario and seed give the same bytes.
//!
//! Three turmoil hosts: the broker (192.168.100.103, the real broker through the same tokio
//! adapter as `mqsim broker`), the field (192.168.100.101, every virtual ESP32, each on its own
//! TCP connection with its own modelled link) and the clients (192.168.100.102, the subscribers). Every connection goes through
//! [`crate::net::stream::Net`], which decides each segment's fate; turmoil only carries time,
//! hosts and the sockets' plumbing. Faults are applied between steps at their exact times; at
//! `duration_s` the links heal, devices stop publishing, and the liveness phase runs for
//! `heal_s`.

mod broker_host;
pub mod sensor;
pub mod subscriber;
pub mod wire;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, UNIX_EPOCH};

use mqsim::broker;
use mqsim::client::{ClientConfig, Event};
use mqsim::device::{self, parse_tag, Device, DeviceConfig, DeviceEvent, Reading, WallClock};
use mqsim::time::{Duration, Instant};
use mqsim::QoS;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tokio::sync::mpsc;

use crate::check::{DeviceId, Ledger, MsgId, SubscriberId, Violation};
use crate::device_io::{run_device, Connecting, Connector, Control, DeviceHooks};
use crate::disk::Disk;
use crate::net::link::{Dir, LinkConfig, LossModel, Side, TraceTime};
use crate::net::stream::{set_outside_now, sim_now, LinkStream, Net, Which};
use crate::report::{check_expect, Report, RunFacts};
use crate::seed::Stream;
use crate::scenario::{Direction, FaultKind, LinkSpec, Loss, Profile, Scenario};
use sensor::Sensor;
use subscriber::{run_subscriber, SubEvent, SubHooks};

/// The hosts' addresses: those of the reference tutorial's Wireshark capture (the broker's PC at
/// .103, the ESP32 at .101), so that logs and captures read like it. Every device shares the field
/// host's address, each on its own connection and port.
pub const BROKER_HOST: &str = "192.168.100.103";
pub const FIELD_HOST: &str = "192.168.100.101";
pub const CLIENTS_HOST: &str = "192.168.100.102";
pub const BROKER_PORT: u16 = 1883;
/// Simulated wall clock at t = 0: 2022-07-07 01:17:18.933 UTC, which is 10:17:18.933 in Korea
/// (UTC+9), the first line of the reference serial log.
pub const EPOCH_UNIX_MS: u64 = 1_657_156_638_933;
/// The serial monitor prints local time of day: the reference's UTC+9.
const SERIAL_UTC_OFFSET_MS: u64 = 9 * 3_600_000;
use wire::{WireCheck, SUBSCRIBER_TAG_BASE};
/// turmoil's buffer of messages per socket (listener backlog included).
const TURMOIL_SOCKET_BUFFER_MESSAGES: usize = 65_536;
/// turmoil stops a run that passes its configured duration; ours ends earlier by itself.
const SIM_DURATION_SLACK_MS: u64 = 10_000;

/// Options of one run beyond the scenario file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub seed: Option<u64>,
    pub duration_s: Option<u64>,
    /// Keep the capture (Ethernet/IPv4/TCP frames) for `--pcap`.
    pub capture: bool,
}

/// Where a line of the interleaved output comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Device(String),
    Subscriber(String),
    Broker,
    Net,
}

/// One line of the interleaved output, in simulated time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at: Instant,
    pub source: Source,
    pub text: String,
}

impl Line {
    /// `  12.345 esp32          | text`: simulated seconds, then the source, then its own line.
    pub fn render(&self) -> String {
        let us = self.at.as_micros();
        let who = match &self.source {
            Source::Device(n) | Source::Subscriber(n) => n.as_str(),
            Source::Broker => "broker",
            Source::Net => "net",
        };
        format!(
            "{:>5}.{:03} {who:<14} | {}",
            us / 1_000_000,
            (us / 1_000) % 1_000,
            self.text
        )
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The scenario as run (seed and duration overrides applied).
    pub scenario: Scenario,
    /// Every line, net decisions included, in simulated-time order.
    pub lines: Vec<Line>,
    pub report: Report,
    /// Expectations of the scenario that the report does not meet.
    pub unmet: Vec<String>,
    pub violations: Vec<Violation>,
    pub pcap: Option<Vec<u8>>,
    pub simulated_ms: u64,
    pub wall: std::time::Duration,
}

impl RunOutcome {
    /// Broke an invariant or an expectation.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || !self.unmet.is_empty()
    }

    /// The whole deterministic record of the run: every line and the report. Two runs of the
    /// same scenario and seed give the same bytes.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(&l.render());
            out.push('\n');
        }
        out.push_str(&self.report.render());
        out
    }

    /// The printed stream: without the net lines unless asked.
    pub fn visible_lines(&self, show_net: bool) -> impl Iterator<Item = &Line> {
        self.lines
            .iter()
            .filter(move |l| show_net || l.source != Source::Net)
    }

    /// What broke, when, the report, the trace's tail and the replay line: what a failing run
    /// prints, on the command line and in `cargo test`.
    pub fn failure_text(&self, tail_lines: usize) -> String {
        let mut msg = format!(
            "FAILED: {} with seed {}\n",
            self.scenario.file, self.scenario.seed
        );
        for v in &self.violations {
            let _ = writeln!(
                msg,
                "  invariant {} broken at {}.{:03} s: {}",
                v.invariant,
                v.at / 1_000_000,
                (v.at / 1_000) % 1_000,
                v.detail
            );
        }
        for u in &self.unmet {
            let _ = writeln!(msg, "  expectation not met: {u}");
        }
        msg.push_str("last lines of the trace:\n");
        msg.push_str(&trace_tail(self, tail_lines));
        let _ = writeln!(msg, "replay: {}", self.replay_line());
        msg
    }

    /// The command that replays this run.
    pub fn replay_line(&self) -> String {
        self.report.facts.replay_command()
    }
}

/// Lines from every host, in the order they happened (turmoil runs hosts on one thread).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<RawLine>>>);

/// A line as written: time, write order, source, text.
type RawLine = (Instant, u64, Source, String);

impl Lines {
    fn push(&self, at: Instant, source: Source, text: String) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.len() as u64;
        g.push((at, n, source, text));
    }
    fn take(&self) -> Vec<RawLine> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn serial_clock() -> WallClock {
    WallClock::from_ms_of_day(EPOCH_UNIX_MS + SERIAL_UTC_OFFSET_MS)
}

pub fn link_config(spec: &LinkSpec) -> LinkConfig {
    LinkConfig {
        latency_ms: spec.latency_ms,
        jitter_ms: spec.jitter_ms,
        loss: match spec.loss {
            Loss::None => LossModel::None,
            Loss::Independent(p) => LossModel::Bernoulli { loss: p },
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            },
        },
        ..LinkConfig::default()
    }
}

fn qos(n: u8) -> QoS {
    QoS::from_u8(n).unwrap_or(QoS::AtMostOnce)
}

/// Connects a device or a subscriber to the broker through its modelled link.
#[derive(Clone)]
struct SimConnector {
    net: Net,
    link: LinkConfig,
    tag: u32,
    /// Set at heal time: new connections are lossless too.
    healed: Rc<Cell<bool>>,
    /// The client's TCP send buffer (a device's lwIP stack); `None` = unbounded (a PC).
    send_buffer_bytes: Option<usize>,
}

impl SimConnector {
    fn open(&self) -> Connecting<LinkStream> {
        let net = self.net.clone();
        let mut cfg = self.link.clone();
        if self.healed.get() {
            cfg.loss = LossModel::None;
        }
        let (tag, send_buffer) = (self.tag, self.send_buffer_bytes);
        Box::pin(async move {
            let stream = net
                .connect_tagged((BROKER_HOST, BROKER_PORT), cfg, tag)
                .await?;
            if let Some(bytes) = send_buffer {
                stream.set_send_buffer(bytes);
            }
            Ok(stream)
        })
    }
}

impl Connector for SimConnector {
    type Stream = LinkStream;
    fn connect(&mut self) -> Connecting<LinkStream> {
        self.open()
    }
}

struct SimDevice {
    id: DeviceId,
    name: String,
    clean_session: bool,
    ledger: Rc<RefCell<Ledger>>,
    lines: Lines,
    sensor: Sensor,
    rng: ChaCha8Rng,
    wifi_join_ms: (u64, u64),
    clock: WallClock,
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
                qos,
                accepted,
            } => ledger.publish_called(us, self.id, *seq, topic, qos.as_u8(), *accepted),
            DeviceEvent::PublishCompleted { seq } => ledger.publish_completed(us, self.id, *seq),
            DeviceEvent::PublishExpired { seq } => ledger.publish_abandoned(us, self.id, *seq),
            DeviceEvent::Connected => ledger.device_connected(us, self.id, self.clean_session),
            DeviceEvent::ConnectionLost { .. } => ledger.device_disconnected(us, self.id),
            _ => {}
        }
    }
    fn reading(&mut self) -> Reading {
        self.sensor.read()
    }
    fn wifi_join_delay(&mut self) -> Duration {
        let (lo, hi) = self.wifi_join_ms;
        let span = hi.saturating_sub(lo) + 1;
        Duration::from_millis(lo + self.rng.next_u64() % span)
    }
}

struct SimSubscriber {
    id: SubscriberId,
    name: String,
    filter: String,
    clean_session: bool,
    ledger: Rc<RefCell<Ledger>>,
    lines: Lines,
}

impl SubHooks for SimSubscriber {
    fn now(&mut self) -> Instant {
        sim_now()
    }
    fn event(&mut self, now: Instant, ev: SubEvent<'_>) {
        let us = now.as_micros();
        let mut ledger = self.ledger.borrow_mut();
        match ev {
            SubEvent::Connected { session_present } => {
                ledger.subscriber_connected(us, self.id, session_present)
            }
            SubEvent::Subscribed { granted } => ledger.subscribed(
                us,
                self.id,
                &self.filter,
                granted.map_or(0x80, QoS::as_u8),
                self.clean_session,
            ),
            SubEvent::Disconnected => ledger.subscriber_disconnected(us, self.id),
            SubEvent::Message(Event::Message {
                topic,
                payload,
                qos,
                retain,
                dup,
            }) => {
                // What `mosquitto_sub -v` prints: the topic and the payload (its visible part).
                let visible = match parse_tag(payload) {
                    Some((visible, device, seq)) => {
                        let msg = MsgId {
                            device: DeviceId(device),
                            seq,
                        };
                        ledger.received(us, self.id, topic, msg, qos.as_u8(), *dup, *retain);
                        visible
                    }
                    None => {
                        ledger.received_untagged(us, self.id, topic);
                        &payload[..]
                    }
                };
                let text = format!("{topic} {}", String::from_utf8_lossy(visible));
                self.lines
                    .push(now, Source::Subscriber(self.name.clone()), text);
            }
            SubEvent::Message(_) => {}
        }
    }
}

/// A fault or phase change at a point in simulated time.
#[derive(Debug, Clone)]
enum Action {
    Partition(Vec<u32>, bool),
    HalfOpen(Vec<u32>, Dir, bool),
    Reset(Vec<u32>),
    Wifi(Vec<u32>, bool),
    BrokerPowerCut,
    BrokerRestart { down: bool },
    Heal,
}

/// Runs `scenario` once. `Err` only when the simulation itself could not run.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome, String> {
    let started = std::time::Instant::now();
    let mut sc = scenario.clone();
    if let Some(seed) = opts.seed {
        sc = sc.with_seed(seed);
    }
    if let Some(d) = opts.duration_s {
        sc = sc.with_duration_ms(d.saturating_mul(1_000));
    }
    let seed = sc.seed;
    let end_ms = sc.duration_ms + sc.heal_ms;
    let tick = StdDuration::from_millis(sc.tick_ms.max(1));
    let mut sim = turmoil::Builder::new()
        .tick_duration(tick)
        // turmoil's own network only carries bytes between hosts; the modelled link decides
        // their timing. Fixed, never its random default of 0-100 ms.
        .min_message_latency(tick)
        .max_message_latency(tick)
        .simulation_duration(StdDuration::from_millis(end_ms + SIM_DURATION_SLACK_MS))
        // turmoil's per-socket message buffer (its default, 64, overflows with a fleet of
        // devices connecting at once; turmoil then panics rather than refusing).
        .tcp_capacity(TURMOIL_SOCKET_BUFFER_MESSAGES)
        .epoch(UNIX_EPOCH + StdDuration::from_millis(EPOCH_UNIX_MS))
        .rng_seed(Stream::Turmoil.seed(seed))
        .build();
    let net = Net::new(Stream::Network.seed(seed));
    net.enable_taps();
    let mut wire = WireCheck::default();
    let lines = Lines::default();
    let ledger = Rc::new(RefCell::new(Ledger::for_scenario(&sc)));
    let healed = Rc::new(Cell::new(false));

    // The broker: the real one, through the real tokio adapter.
    let mut bcfg = broker::Config {
        verbose: true,
        ..broker::Config::default()
    };
    if let Some(n) = sc.broker.max_inflight_messages {
        bcfg.max_inflight_messages = usize::from(n);
    }
    if let Some(n) = sc.broker.max_queued_messages {
        bcfg.max_queued_messages = n as usize;
    }
    bcfg.persistence = sc.broker.persistence;
    bcfg.validate().map_err(|e| format!("broker: {e}"))?;
    // The broker host's disk outlives its incarnations.
    let disk = sc
        .broker
        .persistence
        .then(|| Disk::new(Stream::Disk.seed(seed), sc.broker.disk_sync_ms));
    broker_host::add(&mut sim, bcfg, net.clone(), lines.clone(), disk.clone());

    // The devices, on one host, each with its own connection and link.
    let mut controls: BTreeMap<u32, mpsc::UnboundedSender<Control>> = BTreeMap::new();
    let mut tags_by_name: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut devices = Vec::new();
    for d in &sc.devices {
        for client_id in d.client_ids() {
            let id = ledger
                .borrow()
                .device_id(&client_id)
                .ok_or_else(|| format!("device {client_id} not in the ledger"))?;
            let mut cfg = DeviceConfig::new(match d.profile {
                Profile::Pubsubclient => device::Profile::PubSubClient,
                Profile::EspMqtt => device::Profile::EspMqtt,
            });
            cfg.device_index = id.0;
            cfg.client_id = client_id.clone();
            (cfg.temperature_topic, cfg.humidity_topic) = d.topics_for(&client_id);
            cfg.qos = qos(d.qos);
            cfg.interval_ms = d.interval_ms;
            cfg.tag_payloads = true;
            cfg.retain = d.retain;
            cfg.max_publish_calls = d.messages;
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
            controls.insert(id.0, tx);
            tags_by_name.entry(d.name.clone()).or_default().push(id.0);
            if client_id != d.name {
                tags_by_name
                    .entry(client_id.clone())
                    .or_default()
                    .push(id.0);
            }
            let link = sc.link(&d.link).clone();
            let hooks = SimDevice {
                id,
                name: client_id.clone(),
                clean_session: d.clean_session,
                ledger: ledger.clone(),
                lines: lines.clone(),
                sensor: Sensor::new(Stream::Sensor(id.0).seed(seed)),
                rng: ChaCha8Rng::seed_from_u64(Stream::DeviceRng(id.0).seed(seed)),
                wifi_join_ms: link.wifi_join_ms,
                clock: serial_clock(),
            };
            let connector = SimConnector {
                net: net.clone(),
                link: link_config(&link),
                tag: id.0,
                healed: healed.clone(),
                send_buffer_bytes: Some(cfg.params.tcp_send_buffer_bytes),
            };
            devices.push((cfg, connector, rx, hooks));
        }
    }
    let devices = Rc::new(RefCell::new(Some(devices)));
    sim.host(FIELD_HOST, move || {
        let devices = devices.borrow_mut().take();
        async move {
            for (cfg, connector, rx, hooks) in devices.into_iter().flatten() {
                let dev = Device::new(cfg, sim_now())
                    .map_err(|e| format!("device {}: {e}", hooks.name))?;
                tokio::task::spawn_local(run_device(dev, connector, rx, hooks));
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });

    // The subscribers.
    let mut subs = Vec::new();
    for (i, s) in sc.subscribers.iter().enumerate() {
        let id = ledger
            .borrow()
            .subscriber_id(&s.name)
            .ok_or_else(|| format!("subscriber {} not in the ledger", s.name))?;
        let tag = SUBSCRIBER_TAG_BASE + i as u32;
        let (tx, rx) = mpsc::unbounded_channel();
        controls.insert(tag, tx);
        tags_by_name.entry(s.name.clone()).or_default().push(tag);
        let config = ClientConfig {
            keep_alive_s: s.keepalive_s,
            clean_session: s.clean_session,
            ..ClientConfig::new(s.name.clone())
        };
        let connector = SimConnector {
            net: net.clone(),
            link: link_config(sc.link(&s.link)),
            tag,
            healed: healed.clone(),
            send_buffer_bytes: None,
        };
        let hooks = SimSubscriber {
            id,
            name: s.name.clone(),
            filter: s.filter.clone(),
            clean_session: s.clean_session,
            ledger: ledger.clone(),
            lines: lines.clone(),
        };
        subs.push((config, s.filter.clone(), qos(s.qos), connector, rx, hooks));
    }
    let subs = Rc::new(RefCell::new(Some(subs)));
    sim.host(CLIENTS_HOST, move || {
        let subs = subs.borrow_mut().take();
        async move {
            for (config, filter, q, connector, rx, hooks) in subs.into_iter().flatten() {
                let connect: subscriber::Connect<LinkStream> = Box::new(move || connector.open());
                tokio::task::spawn_local(run_subscriber(config, filter, q, connect, rx, hooks));
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });

    let subscriber_ids: Vec<SubscriberId> = sc
        .subscribers
        .iter()
        .filter_map(|s| ledger.borrow().subscriber_id(&s.name))
        .collect();

    // The timeline: faults, then the heal.
    let all_tags: Vec<u32> = controls.keys().copied().collect();
    let targets = |t: &Option<String>| -> Vec<u32> {
        match t {
            None => all_tags.clone(),
            Some(name) => tags_by_name.get(name).cloned().unwrap_or_default(),
        }
    };
    let mut timeline: Vec<(u64, Action)> = Vec::new();
    for f in &sc.faults {
        let end = f.at_ms + f.duration_ms;
        match f.kind {
            FaultKind::Partition => {
                timeline.push((f.at_ms, Action::Partition(targets(&f.target), true)));
                timeline.push((end, Action::Partition(targets(&f.target), false)));
            }
            FaultKind::HalfOpen(d) => {
                let dir = match d {
                    Direction::Up => Dir::Up,
                    Direction::Down => Dir::Down,
                };
                timeline.push((f.at_ms, Action::HalfOpen(targets(&f.target), dir, true)));
                timeline.push((end, Action::HalfOpen(targets(&f.target), dir, false)));
            }
            FaultKind::Reset => timeline.push((f.at_ms, Action::Reset(targets(&f.target)))),
            FaultKind::WifiDrop => {
                timeline.push((f.at_ms, Action::Wifi(targets(&f.target), false)));
                timeline.push((end, Action::Wifi(targets(&f.target), true)));
            }
            FaultKind::BrokerPowerCut => {
                timeline.push((f.at_ms, Action::BrokerPowerCut));
                timeline.push((end, Action::BrokerRestart { down: false }));
            }
            FaultKind::BrokerRestart => {
                timeline.push((f.at_ms, Action::BrokerRestart { down: true }));
                timeline.push((end, Action::BrokerRestart { down: false }));
            }
        }
    }
    timeline.push((sc.duration_ms, Action::Heal));
    timeline.sort_by_key(|(at, _)| *at); // stable: file order within one instant

    let mut next = 0;
    let mut broker_down = false;
    loop {
        let now_ms = sim.elapsed().as_millis() as u64;
        while let Some((at, action)) = timeline.get(next) {
            if *at > now_ms {
                break;
            }
            let us = Instant::from_millis(*at).as_micros();
            // Outside every host: the links stamp what this causes with its scheduled time.
            set_outside_now(Instant::from_millis(*at));
            match action {
                Action::Partition(tags, on) => {
                    for &t in tags {
                        net.partition(Which::Tag(t), *on);
                    }
                }
                Action::HalfOpen(tags, dir, on) => {
                    for &t in tags {
                        net.half_open(Which::Tag(t), *dir, *on);
                    }
                }
                Action::Reset(tags) => {
                    for &t in tags {
                        net.reset(Which::Tag(t));
                    }
                }
                Action::Wifi(tags, up) => {
                    for &t in tags {
                        if !up {
                            // The radio is gone: nothing more leaves or reaches the client.
                            net.power_cut(Which::Tag(t), Side::Client);
                        }
                        if let Some(c) = controls.get(&t) {
                            let _ = c.send(if *up {
                                Control::WifiUp
                            } else {
                                Control::WifiDown
                            });
                        }
                    }
                }
                Action::BrokerPowerCut => {
                    // No FIN, no RST: the broker's sockets fall silent, and SYNs go unanswered
                    // until it is back.
                    net.power_cut(Which::All, Side::Server);
                    net.partition(Which::All, true);
                    sim.crash(BROKER_HOST);
                    if let Some(d) = &disk {
                        let lost = d.power_cut();
                        let line = format!(
                            "{} disk power cut: {lost} journal bytes written and not yet synced are lost",
                            TraceTime(Instant::from_micros(us))
                        );
                        lines.push(Instant::from_micros(us), Source::Net, line);
                    }
                    broker_down = true;
                }
                Action::BrokerRestart { down: true } => {
                    // A clean stop: sockets closed with FIN (in connection order, not in the
                    // order the runtime happens to drop them); connecting meanwhile is refused.
                    net.close(Which::All, Side::Server);
                    sim.crash(BROKER_HOST);
                    if let Some(d) = &disk {
                        d.flush();
                    }
                    broker_down = true;
                }
                Action::BrokerRestart { down: false } => {
                    if broker_down {
                        // A host that lost power answers its old connections' next segments
                        // with RST (a clean stop had closed them already).
                        net.reboot(Which::All, Side::Server);
                        net.partition(Which::All, false);
                        sim.bounce(BROKER_HOST);
                        broker_down = false;
                        ledger
                            .borrow_mut()
                            .broker_restarted(us, sc.broker.persistence);
                    }
                }
                Action::Heal => {
                    healed.set(true);
                    net.partition(Which::All, false);
                    net.half_open(Which::All, Dir::Up, false);
                    net.half_open(Which::All, Dir::Down, false);
                    net.set_loss(Which::All, LossModel::None);
                    for c in controls.values() {
                        let _ = c.send(Control::WifiUp);
                        let _ = c.send(Control::Quiet);
                    }
                    ledger.borrow_mut().heal(us);
                }
            }
            next += 1;
        }
        if now_ms >= end_ms {
            break;
        }
        sim.step().map_err(|e| format!("simulation stopped: {e}"))?;
        let taps = net.take_taps();
        if !taps.is_empty() {
            let mut l = ledger.borrow_mut();
            for tap in taps {
                wire.feed(&mut l, &subscriber_ids, tap);
            }
        }
    }
    let simulated_ms = sim.elapsed().as_millis() as u64;
    ledger
        .borrow_mut()
        .finish(Instant::from_millis(simulated_ms).as_micros());
    set_outside_now(Instant::from_millis(simulated_ms));
    net.freeze();
    drop(sim);

    let mut raw = lines.take();
    for line in net.trace_lines() {
        raw.push((line.at, u64::MAX, Source::Net, line.text));
    }
    // Stable: lines of one instant keep the order they were written in; net lines go last.
    raw.sort_by_key(|(at, n, _, _)| (*at, *n));
    let lines: Vec<Line> = raw
        .into_iter()
        .map(|(at, _, source, text)| Line { at, source, text })
        .collect();
    let pcap = if opts.capture {
        Some(net.pcap_bytes(StdDuration::from_millis(EPOCH_UNIX_MS))?)
    } else {
        None
    };
    let ledger = ledger.borrow();
    let wall = started.elapsed();
    let mut facts = RunFacts::for_scenario(&sc, simulated_ms, wall);
    facts.duration_override_s = opts.duration_s;
    let report = Report::new(&ledger, facts);
    let unmet = check_expect(&sc.expect, &report);
    let violations = ledger.violations().to_vec();
    Ok(RunOutcome {
        scenario: sc,
        lines,
        report,
        unmet,
        violations,
        pcap,
        simulated_ms,
        wall,
    })
}

/// The end of a failed run's trace, for the failure message.
pub fn trace_tail(outcome: &RunOutcome, lines: usize) -> String {
    let mut out = String::new();
    let n = outcome.lines.len();
    for l in &outcome.lines[n.saturating_sub(lines)..] {
        let _ = writeln!(out, "{}", l.render());
    }
    out
}
