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

pub(crate) mod broker_host;
pub(crate) mod connector;
pub(crate) mod devices;
pub mod explain;
pub mod log;
pub(crate) mod output;
pub mod sensor;
pub mod subscriber;
pub(crate) mod subscribers;
pub(crate) mod timeline;
pub mod wire;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, UNIX_EPOCH};

use mqsim::app::App;
use mqsim::broker;
use mqsim::device::WallClock;
use mqsim::time::Instant;
use mqsim::QoS;
use tokio::sync::mpsc;

use crate::check::{BrokerMemory, Ledger, SubscriberId};
use crate::device_io::Control;
use crate::disk::Disk;
use crate::net::link::{LinkConfig, LossModel, Stack};
use crate::net::stream::{set_outside_now, Net};
use crate::scenario::{LinkSpec, Loss, Scenario};
use crate::seed::Stream;
pub use output::{trace_tail, Line, RunOutcome, Source};
use wire::WireCheck;

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
    /// The applications the scenario's devices may name with `app = "NAME"`.
    pub apps: Apps,
    /// The `tracing` directive for the applications' events (`info`, `door_alarm=debug`); else
    /// `MQSIM_LOG`, else `info`. See [`log`].
    pub log: Option<String>,
    /// How to replay this run, when it is not `mqsim sim FILE --seed N` (an application of a
    /// test): `{seed}` stands for the seed.
    pub replay: Option<String>,
    /// `DEVICE:SEQ` of a message whose life to tell ([`explain`]): the run keeps the bytes
    /// every application received for it.
    pub explain: Option<(String, u64)>,
    /// The broker profile, over the scenario's `[broker] profile` (`--broker-profile`).
    pub broker_profile: Option<mqsim::broker::Profile>,
    /// Which engine runs the scenario.
    pub engine: Engine,
}

/// What an application factory knows of the device it makes an application for.
#[derive(Clone, Debug)]
pub struct AppDevice<'a> {
    /// The device's client id (`door-3`).
    pub client_id: &'a str,
    /// Its `[[device]]` group's name (`door`).
    pub group: &'a str,
    /// Its index in the run (payload tags, the ledger).
    pub index: u32,
    /// A seed of its own, derived from the run's seed, for an application that draws random
    /// numbers: the same run seed gives the same numbers.
    pub seed: u64,
}

/// Makes a device's application. Shared by the threads of a sweep, so `Send + Sync`; the
/// application it makes lives in one run's thread only.
pub type AppFactory = Arc<dyn Fn(&AppDevice<'_>) -> Box<dyn App> + Send + Sync>;

/// The applications a run can give its devices, by name.
#[derive(Clone, Default)]
pub struct Apps(BTreeMap<String, AppFactory>);

impl Apps {
    /// Registers `make` under `name` (replacing one of the same name).
    pub fn insert(&mut self, name: &str, make: AppFactory) {
        self.0.insert(name.to_string(), make);
    }

    /// The factory registered under `name`.
    pub fn get(&self, name: &str) -> Option<&AppFactory> {
        self.0.get(name)
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for Apps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Lines from every host, in the order they happened (turmoil runs hosts on one thread).
#[derive(Clone, Default)]
pub(crate) struct Lines(Arc<Mutex<Vec<RawLine>>>);

/// A line as written: time, write order, source, text.
type RawLine = (Instant, u64, Source, String);

impl Lines {
    pub(crate) fn push(&self, at: Instant, source: Source, text: String) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.len() as u64;
        g.push((at, n, source, text));
    }
    /// Every broker line so far, in order, to `f`.
    fn each_broker_line(&self, mut f: impl FnMut(Instant, &str)) {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (at, _, source, text) in g.iter() {
            if *source == Source::Broker {
                f(*at, text);
            }
        }
    }
    fn take(&self) -> Vec<RawLine> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The serial monitor's clock (local time of day) at simulated zero.
pub(crate) fn serial_clock() -> WallClock {
    WallClock::from_ms_of_day(EPOCH_UNIX_MS + SERIAL_UTC_OFFSET_MS)
}

/// The broker host's end of every connection: Linux, with Nagle as the broker leaves it. This
/// broker's adapter sets `TCP_NODELAY` on every accepted socket (broker/src/start.rs,
/// `accept_loop`: `stream.set_nodelay(true)`), so its end sends each write at once; mosquitto 2.0
/// sets it only with `set_tcp_nodelay true`, false by default (mosquitto src/conf.c:204,
/// src/net.c:174-184), so its end runs Nagle.
pub fn broker_stack(profile: mqsim::broker::Profile) -> Stack {
    match profile {
        mqsim::broker::Profile::Mqsim => Stack {
            nagle: false,
            ..Stack::linux()
        },
        mqsim::broker::Profile::Mosquitto20 => Stack::linux(),
    }
}

/// The link of one client: the path from `spec`, the client's stack `client` and the broker's
/// ([`broker_stack`] for the broker's `profile`).
pub fn link_config(spec: &LinkSpec, client: Stack, profile: mqsim::broker::Profile) -> LinkConfig {
    // A plain client keeps the plain broker end: the model before stack profiles.
    let server = if client.name == "plain" {
        Stack::plain()
    } else {
        broker_stack(profile)
    };
    LinkConfig {
        client,
        server,
        latency_us: spec.latency_us,
        jitter_us: spec.jitter_us,
        loss_at_sender: spec.loss_at_sender,
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
    }
}

pub(crate) fn qos(n: u8) -> QoS {
    QoS::from_u8(n).unwrap_or(QoS::AtMostOnce)
}

/// What the parts of a run share: the network, the output lines, the ledger, and whether the
/// links have healed (new connections are lossless then).
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) net: Net,
    pub(crate) lines: Lines,
    pub(crate) ledger: Rc<RefCell<Ledger>>,
    pub(crate) healed: Rc<Cell<bool>>,
    /// Each device's WiFi joins, for its radio's energy ([`crate::cost`]).
    pub(crate) joins: Rc<RefCell<crate::cost::Joins>>,
}

impl Shared {
    /// What a run of `sc` starts with, on either engine: the network from the seed's network
    /// stream, no lines yet, the scenario's ledger.
    pub(crate) fn new(sc: &Scenario) -> Shared {
        Shared {
            net: Net::new(Stream::Network.seed(sc.seed)),
            lines: Lines::default(),
            ledger: Rc::new(RefCell::new(Ledger::for_scenario(sc))),
            healed: Rc::new(Cell::new(false)),
            joins: Rc::new(RefCell::new(crate::cost::Joins::default())),
        }
    }
}

/// The clients' control channels by tag, and the tags each name a fault may target stands for.
#[derive(Default)]
pub(crate) struct Controls {
    pub(crate) by_tag: BTreeMap<u32, mpsc::UnboundedSender<Control>>,
    pub(crate) by_name: BTreeMap<String, Vec<u32>>,
}

/// The scenario as run: `opts`' seed and duration applied.
pub(crate) fn as_run(scenario: &Scenario, opts: &RunOptions) -> Scenario {
    let mut sc = scenario.clone();
    if let Some(seed) = opts.seed {
        sc = sc.with_seed(seed);
    }
    if let Some(d) = opts.duration_s {
        sc = sc.with_duration_ms(d.saturating_mul(1_000));
    }
    if let Some(p) = opts.broker_profile {
        sc.broker.profile = p;
    }
    sc
}

/// The turmoil simulation of `sc`, which ends at `end_ms` (and a slack).
fn simulation(sc: &Scenario, end_ms: u64) -> turmoil::Sim<'static> {
    let tick = StdDuration::from_millis(sc.tick_ms.max(1));
    turmoil::Builder::new()
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
        .rng_seed(Stream::Turmoil.seed(sc.seed))
        .build()
}

/// The broker's configuration for `sc`: verbose, as `mosquitto -v`, with the scenario's limits.
pub(crate) fn broker_config(sc: &Scenario) -> Result<broker::Config, String> {
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
    sc.broker.profile.apply(&mut bcfg);
    if let Some(s) = sc.broker.connect_timeout_s {
        bcfg.connect_timeout = mqsim::time::Duration::from_millis(s * 1_000);
    }
    bcfg.validate().map_err(|e| format!("broker: {e}"))?;
    Ok(bcfg)
}

/// turmoil's ephemeral port range, the same for every simulated host.
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// One step of the simulation. turmoil panics ("Host: '...' ports exhausted") when a host has
/// every ephemeral port in use at once: every device shares one host (and every subscriber
/// another), so a fleet holding about 16,000 connections open at once (reconnect storms whose old
/// connections are not yet closed) hits it. That ends the run with an error naming the limit.
fn step(sim: &mut turmoil::Sim<'_>) -> Result<(), String> {
    let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step()));
    match stepped {
        Ok(r) => r
            .map(|_| ())
            .map_err(|e| format!("simulation stopped: {e}")),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if text.contains("ports exhausted") {
                let n = usize::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
                Err(format!(
                    "simulation stopped: {text}: more than {n} connections open at once from \
                     one simulated host (ephemeral ports {}-{}); every device shares one host and \
                     every subscriber another, so a run is limited to {n} connections open at \
                     once per host: use fewer devices or fewer reconnects",
                    EPHEMERAL_PORTS.start(),
                    EPHEMERAL_PORTS.end()
                ))
            } else {
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// Runs `scenario` once, on the engine `opts` names. `Err` only when the simulation itself
/// could not run.
///
/// A scenario with an Arduino sketch device runs on turmoil whatever `opts.engine` says: a
/// sketch is a process of its own, talking through a socket, which only turmoil's hosts carry.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome, String> {
    match Engine::for_scenario(opts.engine, scenario) {
        Engine::Turmoil => run_turmoil(scenario, opts),
        Engine::Direct => crate::engine::run(scenario, opts),
    }
}

/// The engine that runs a scenario: see docs/simulator.md, "Engines".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// turmoil: the real tokio adapters (broker, devices, subscribers) on simulated hosts,
    /// one tick at a time. The reference for the whole stack.
    Turmoil,
    /// The sans-IO state machines driven directly by an event queue that jumps to the next
    /// timer or delivery ([`crate::engine`]). The default: its outcomes' distributions agree
    /// with turmoil's (sim/tests/engines.rs) and it is a few hundred times faster.
    #[default]
    Direct,
}

impl Engine {
    /// The engine that runs `scenario` when `asked` is: turmoil for a scenario with an Arduino
    /// sketch device (a process of its own), else `asked`.
    pub fn for_scenario(asked: Engine, scenario: &Scenario) -> Engine {
        if scenario.devices.iter().any(|d| d.sketch.is_some()) {
            Engine::Turmoil
        } else {
            asked
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Turmoil => "turmoil",
            Engine::Direct => "direct",
        }
    }

    /// The engine named `name` (`turmoil`, `direct`).
    pub fn by_name(name: &str) -> Option<Engine> {
        match name {
            "turmoil" => Some(Engine::Turmoil),
            "direct" => Some(Engine::Direct),
            _ => None,
        }
    }
}

/// What the broker keeps over a restart, as its settings say: the ledger's view of it.
pub(crate) fn broker_memory(bcfg: &mqsim::broker::Config) -> BrokerMemory {
    match (bcfg.persistence, bcfg.autosave_interval) {
        (false, _) => BrokerMemory::Volatile,
        (true, mqsim::time::Duration::ZERO) => BrokerMemory::Journal,
        (true, _) => BrokerMemory::Autosave,
    }
}

fn run_turmoil(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome, String> {
    let started = std::time::Instant::now();
    let sc = as_run(scenario, opts);
    let end_ms = sc.duration_ms + sc.heal_ms;
    let mut sim = simulation(&sc, end_ms);
    let shared = Shared::new(&sc);
    shared.net.enable_taps();
    let _capture = log::capture(shared.lines.clone(), log::targets(opts.log.as_deref())?);
    let mut wire = WireCheck::default();
    let mut kept_taps = Vec::new();

    // The broker host: the real broker, through the real tokio adapter. Its disk outlives its
    // incarnations.
    let bcfg = broker_config(&sc)?;
    let memory = broker_memory(&bcfg);
    let disk = sc
        .broker
        .persistence
        .then(|| Disk::new(Stream::Disk.seed(sc.seed), sc.broker.disk_sync_ms));
    let (net, lines) = (shared.net.clone(), shared.lines.clone());
    let stop = broker_host::StopSignal::default();
    broker_host::add(
        &mut sim,
        bcfg,
        BROKER_PORT,
        net.clone(),
        lines.clone(),
        disk.clone(),
        stop.clone(),
    );

    // The devices and the subscribers, each on its own connection and link.
    let mut controls = Controls::default();
    devices::add(&mut sim, &sc, &shared, &mut controls, &opts.apps)?;
    subscribers::add(&mut sim, &sc, &shared, &mut controls)?;
    let subscriber_ids: Vec<SubscriberId> = sc
        .subscribers
        .iter()
        .filter_map(|s| shared.ledger.borrow().subscriber_id(&s.name))
        .collect();

    // The timeline: faults, then the heal; between steps, the ledger reads the wire.
    let mut timeline = timeline::timeline(&sc, &controls);
    loop {
        let now_ms = sim.elapsed().as_millis() as u64;
        let mut power = broker_host::TurmoilBroker {
            sim: &mut sim,
            stop: &stop,
        };
        timeline.apply_due(
            now_ms,
            &mut power,
            &shared,
            &controls,
            disk.as_ref(),
            memory,
        );
        if now_ms >= end_ms {
            break;
        }
        step(&mut sim)?;
        let taps = shared.net.take_taps();
        if !taps.is_empty() {
            let mut l = shared.ledger.borrow_mut();
            for tap in taps {
                if opts.explain.is_some() {
                    kept_taps.push(tap.clone());
                }
                wire.feed(&mut l, &subscriber_ids, tap);
            }
        }
    }
    let simulated_ms = sim.elapsed().as_millis() as u64;
    finish(&shared, simulated_ms);
    drop(sim);

    // The output: every line in order, the capture, the verdict and the report.
    output::outcome(sc, opts, &shared, simulated_ms, started, &kept_taps)
}

/// The end of a run at `simulated_ms`: the ledger reads what the broker said publicly of
/// messages it did not forward (its notices) and closes its books; the network records nothing
/// more.
pub(crate) fn finish(shared: &Shared, simulated_ms: u64) {
    {
        let mut l = shared.ledger.borrow_mut();
        shared
            .lines
            .each_broker_line(|at, text| l.broker_said(at.as_micros(), text));
        l.finish(Instant::from_millis(simulated_ms).as_micros());
    }
    set_outside_now(Instant::from_millis(simulated_ms));
    shared.net.freeze();
}
