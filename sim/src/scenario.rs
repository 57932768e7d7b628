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
//!
//! [broker]            # optional overrides of the broker's defaults
//! max_inflight_messages = 20
//! max_queued_messages = 1000
//! persistence = false # true: the broker journals to the host's modelled disk (sim/src/net/disk.rs)
//! disk_sync_ms = 2    # simulated time of one sync of that disk (default 2, at most 1000)
//!
//! [link.wifi]                 # a link profile, used by name; `ideal` exists unless redefined
//! latency_ms = 20             # one-way, default 5
//! jitter_ms = 10              # default 0
//! loss = 0.05                 # independent loss per segment, 0..=1 (or the table below, not both)
//! wifi_join_ms = [1000, 4000] # (re)join time range after a WiFi drop (default [1000, 4000])
//! [link.wifi.gilbert_elliott] # bursty loss: two-state Markov chain per segment
//! p_good_to_bad = 0.02
//! p_bad_to_good = 0.25
//! loss_good = 0.01
//! loss_bad = 0.8
//!
//! [[device]]
//! name = "sensor"        # client id; with count > 1: sensor-0, sensor-1, ...
//! count = 1              # default 1
//! profile = "esp-mqtt"   # "pubsubclient" (QoS 0 publish only) | "esp-mqtt"
//! qos = 1                # 0, 1 or 2
//! interval_ms = 2000     # default 2000
//! link = "wifi"          # default "ideal"
//! clean_session = true   # default true
//! keepalive_s = 15       # default: the profile's (pubsubclient 15, esp-mqtt 120)
//! messages = 200         # optional: stop after this many publish calls
//! topic_prefix = "ESP32/{id}" # publishes PREFIX/TEM and PREFIX/HUM; default "ESP32" for one
//!                        # device, "ESP32/{id}" for a group; {id} = the client id
//! retain = false         # default false
//! outbox_expiry_s = 30   # esp-mqtt only (default 30): unacknowledged QoS 1/2 deleted after it
//! will = { topic = "ESP32/{id}/status", payload = "offline", qos = 1, retain = true }
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
//! `latency_max_ms`, and `violations` (top level only). See [`Metric`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The name of the link profile that exists without being defined.
pub const IDEAL_LINK: &str = "ideal";

/// A validated scenario. Times are in milliseconds from here on.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file's name as given to [`Scenario::parse`] (used in messages and test names).
    pub file: String,
    pub description: String,
    pub seed: u64,
    pub duration_ms: u64,
    pub tick_ms: u64,
    pub heal_ms: u64,
    pub broker: BrokerSpec,
    pub links: BTreeMap<String, LinkSpec>,
    pub devices: Vec<DeviceSpec>,
    pub subscribers: Vec<SubscriberSpec>,
    /// Sorted by start time (stable: file order for equal starts).
    pub faults: Vec<FaultSpec>,
    pub expect: Expect,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerSpec {
    pub max_inflight_messages: Option<u16>,
    pub max_queued_messages: Option<u32>,
    pub persistence: bool,
    /// Simulated time of one disk sync, with persistence.
    pub disk_sync_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub loss: Loss,
    /// WiFi (re)join time range, inclusive.
    pub wifi_join_ms: (u64, u64),
}

impl LinkSpec {
    pub fn ideal() -> LinkSpec {
        LinkSpec {
            latency_ms: 5,
            jitter_ms: 0,
            loss: Loss::None,
            wifi_join_ms: (1000, 4000),
        }
    }

    /// Long-run share of segments lost.
    pub fn mean_loss(&self) -> f64 {
        self.loss.mean()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    None,
    /// Each segment lost with this probability, independently.
    Independent(f64),
    /// Gilbert-Elliott: per segment, first the state moves (good -> bad with `p_good_to_bad`,
    /// bad -> good with `p_bad_to_good`), then the segment is lost with the state's loss rate.
    GilbertElliott {
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

impl Loss {
    pub fn mean(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Independent(p) => p,
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let moving = p_good_to_bad + p_bad_to_good;
                if moving == 0.0 {
                    return loss_good;
                }
                let bad = p_good_to_bad / moving;
                bad * loss_bad + (1.0 - bad) * loss_good
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Arduino PubSubClient 2.8: QoS 0 publish only, keepalive 15 s, no reconnect of its own.
    Pubsubclient,
    /// ESP-IDF esp-mqtt: outbox, resend every second, keepalive 120 s, reconnect after 10 s.
    EspMqtt,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Pubsubclient => "pubsubclient",
            Profile::EspMqtt => "esp-mqtt",
        }
    }

    pub fn default_keepalive_s(self) -> u16 {
        match self {
            Profile::Pubsubclient => 15,
            Profile::EspMqtt => 120,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WillSpec {
    /// May contain `{id}`.
    pub topic: String,
    pub payload: String,
    pub qos: u8,
    pub retain: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    pub name: String,
    pub count: u32,
    pub profile: Profile,
    pub qos: u8,
    pub interval_ms: u64,
    pub link: String,
    pub clean_session: bool,
    pub keepalive_s: u16,
    pub messages: Option<u64>,
    /// May contain `{id}`.
    /// The device publishes `PREFIX/TEM` and `PREFIX/HUM`; `{id}` stands for the client id.
    pub topic_prefix: String,
    pub retain: bool,
    /// esp-mqtt only.
    pub outbox_expiry_s: Option<u64>,
    pub will: Option<WillSpec>,
}

impl DeviceSpec {
    /// The client ids of this group: `name` alone, or `name-0`, `name-1`, ... when count > 1.
    pub fn client_ids(&self) -> Vec<String> {
        instance_names(&self.name, self.count)
    }

    /// The temperature and humidity topics one instance publishes to.
    pub fn topics_for(&self, client_id: &str) -> (String, String) {
        let prefix = self.topic_prefix.replace("{id}", client_id);
        (format!("{prefix}/TEM"), format!("{prefix}/HUM"))
    }
}

fn instance_names(name: &str, count: u32) -> Vec<String> {
    if count == 1 {
        vec![name.to_string()]
    } else {
        (0..count).map(|i| format!("{name}-{i}")).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberSpec {
    pub name: String,
    pub filter: String,
    pub qos: u8,
    pub clean_session: bool,
    pub link: String,
    pub keepalive_s: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client -> broker segments are lost; the client does not notice.
    Up,
    /// Broker -> client segments are lost.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Partition,
    HalfOpen(Direction),
    Reset,
    WifiDrop,
    BrokerPowerCut,
    BrokerRestart,
}

impl FaultKind {
    pub fn targets_broker(self) -> bool {
        matches!(self, FaultKind::BrokerPowerCut | FaultKind::BrokerRestart)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpec {
    pub at_ms: u64,
    /// Zero for `reset`.
    pub duration_ms: u64,
    pub kind: FaultKind,
    /// A device/subscriber group or client id; `None` = every client (or the broker).
    pub target: Option<String>,
}

/// What an `[expect]` range applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    All,
    Qos(u8),
    /// A `[[device]]` group name.
    Device(String),
    Subscriber(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => write!(f, "expect"),
            Scope::Qos(q) => write!(f, "expect.qos{q}"),
            Scope::Device(d) => write!(f, "expect.device.{d}"),
            Scope::Subscriber(s) => write!(f, "expect.subscriber.{s}"),
        }
    }
}

/// A number the report gives per scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Publish calls.
    Published,
    /// Publish calls the device's client refused (not connected, outbox full, ...).
    Refused,
    /// Completed at the publisher: PUBACK (QoS 1), PUBCOMP (QoS 2), written (QoS 0).
    Acknowledged,
    /// Unique (message, subscriber) receipts.
    Delivered,
    /// (message, subscriber) pairs the subscription covered at publish time, never received,
    /// not counting `lost_with_broker`.
    Lost,
    /// Lost because a broker without persistence lost its state while it held the message.
    LostWithBroker,
    /// Receipts beyond the first (retained replays excluded).
    Duplicated,
    /// Connections after the first, per client.
    Reconnects,
    LatencyP50Ms,
    LatencyP99Ms,
    LatencyMaxMs,
    /// Invariant violations (top level only).
    Violations,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::Published,
        Metric::Refused,
        Metric::Acknowledged,
        Metric::Delivered,
        Metric::Lost,
        Metric::LostWithBroker,
        Metric::Duplicated,
        Metric::Reconnects,
        Metric::LatencyP50Ms,
        Metric::LatencyP99Ms,
        Metric::LatencyMaxMs,
        Metric::Violations,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Metric::Published => "published",
            Metric::Refused => "refused",
            Metric::Acknowledged => "acknowledged",
            Metric::Delivered => "delivered",
            Metric::Lost => "lost",
            Metric::LostWithBroker => "lost_with_broker",
            Metric::Duplicated => "duplicated",
            Metric::Reconnects => "reconnects",
            Metric::LatencyP50Ms => "latency_p50_ms",
            Metric::LatencyP99Ms => "latency_p99_ms",
            Metric::LatencyMaxMs => "latency_max_ms",
            Metric::Violations => "violations",
        }
    }
}

/// One expected range: `scope.metric` in `[min, max]`, from line `line` of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectCheck {
    pub scope: Scope,
    pub metric: Metric,
    pub min: u64,
    pub max: u64,
    pub line: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// In file order within each scope; scopes in the order all, qos, device, subscriber.
    pub checks: Vec<ExpectCheck>,
}

/// One problem found in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based; 0 when the problem has no place in the file (unreadable file).
    pub line: usize,
    pub reason: String,
}

/// Every problem found in one file, each printed as `FILE:LINE: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub problems: Vec<Diagnostic>,
}

impl ScenarioError {
    /// The first problem (there is always one).
    pub fn first(&self) -> &Diagnostic {
        &self.problems[0]
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.file, p.reason)?;
            } else {
                write!(f, "{}:{}: {}", self.file, p.line, p.reason)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

// ---------------------------------------------------------------------------------------------
// The file as written (serde), before validation.

type Sp<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: Sp<String>,
    #[serde(default)]
    seed: Option<u64>,
    duration_s: Sp<f64>,
    #[serde(default)]
    tick_ms: Option<Sp<u64>>,
    #[serde(default)]
    heal_s: Option<Sp<f64>>,
    #[serde(default)]
    broker: Option<RawBroker>,
    #[serde(default)]
    link: BTreeMap<Sp<String>, RawLink>,
    #[serde(default)]
    device: Vec<RawDevice>,
    #[serde(default)]
    subscriber: Vec<RawSubscriber>,
    #[serde(default)]
    fault: Vec<RawFault>,
    #[serde(default)]
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    max_inflight_messages: Option<Sp<u64>>,
    max_queued_messages: Option<Sp<u64>>,
    persistence: Option<Sp<bool>>,
    disk_sync_ms: Option<Sp<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    latency_ms: Option<u64>,
    jitter_ms: Option<u64>,
    loss: Option<Sp<f64>>,
    gilbert_elliott: Option<RawGilbertElliott>,
    wifi_join_ms: Option<Sp<[u64; 2]>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGilbertElliott {
    p_good_to_bad: Sp<f64>,
    p_bad_to_good: Sp<f64>,
    loss_good: Sp<f64>,
    loss_bad: Sp<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWill {
    topic: Sp<String>,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    qos: Option<Sp<u8>>,
    #[serde(default)]
    retain: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Sp<String>,
    count: Option<Sp<u32>>,
    profile: Sp<Profile>,
    qos: Sp<u8>,
    interval_ms: Option<Sp<u64>>,
    link: Option<Sp<String>>,
    clean_session: Option<bool>,
    keepalive_s: Option<Sp<u16>>,
    messages: Option<u64>,
    topic_prefix: Option<Sp<String>>,
    retain: Option<bool>,
    outbox_expiry_s: Option<Sp<u64>>,
    will: Option<RawWill>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriber {
    name: Sp<String>,
    filter: Sp<String>,
    qos: Sp<u8>,
    clean_session: Option<bool>,
    link: Option<Sp<String>>,
    keepalive_s: Option<u16>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawFaultKind {
    Partition,
    HalfOpen,
    Reset,
    WifiDrop,
    BrokerPowerCut,
    BrokerRestart,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at_s: Sp<f64>,
    duration_s: Option<Sp<f64>>,
    kind: Sp<RawFaultKind>,
    direction: Option<Sp<Direction>>,
    target: Option<Sp<String>>,
}

type RawRange = Option<Sp<[u64; 2]>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRanges {
    published: RawRange,
    refused: RawRange,
    acknowledged: RawRange,
    delivered: RawRange,
    lost: RawRange,
    lost_with_broker: RawRange,
    duplicated: RawRange,
    reconnects: RawRange,
    latency_p50_ms: RawRange,
    latency_p99_ms: RawRange,
    latency_max_ms: RawRange,
}

impl RawRanges {
    fn entries(&self) -> [(Metric, &RawRange); 11] {
        [
            (Metric::Published, &self.published),
            (Metric::Refused, &self.refused),
            (Metric::Acknowledged, &self.acknowledged),
            (Metric::Delivered, &self.delivered),
            (Metric::Lost, &self.lost),
            (Metric::LostWithBroker, &self.lost_with_broker),
            (Metric::Duplicated, &self.duplicated),
            (Metric::Reconnects, &self.reconnects),
            (Metric::LatencyP50Ms, &self.latency_p50_ms),
            (Metric::LatencyP99Ms, &self.latency_p99_ms),
            (Metric::LatencyMaxMs, &self.latency_max_ms),
        ]
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    violations: RawRange,
    published: RawRange,
    refused: RawRange,
    acknowledged: RawRange,
    delivered: RawRange,
    lost: RawRange,
    lost_with_broker: RawRange,
    duplicated: RawRange,
    reconnects: RawRange,
    latency_p50_ms: RawRange,
    latency_p99_ms: RawRange,
    latency_max_ms: RawRange,
    qos0: Option<RawRanges>,
    qos1: Option<RawRanges>,
    qos2: Option<RawRanges>,
    #[serde(default)]
    device: BTreeMap<Sp<String>, RawRanges>,
    #[serde(default)]
    subscriber: BTreeMap<Sp<String>, RawRanges>,
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Byte offsets -> 1-based lines, and the problems found so far.
struct Checker<'a> {
    text: &'a str,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    fn at<T>(&mut self, value: &Sp<T>, reason: impl Into<String>) {
        let line = self.line(value.span());
        self.problems.push(Diagnostic {
            line,
            reason: reason.into(),
        });
    }

    fn probability(&mut self, key: &str, value: &Sp<f64>) -> f64 {
        let p = *value.get_ref();
        if !(0.0..=1.0).contains(&p) {
            self.at(value, format!("{key} = {p} is not a probability (0..=1)"));
        }
        p
    }

    /// Seconds (finite, >= 0) to milliseconds.
    fn seconds(&mut self, key: &str, value: &Sp<f64>) -> u64 {
        let s = *value.get_ref();
        if !(0.0..=1.0e9).contains(&s) {
            self.at(
                value,
                format!("{key} = {s} is not a time in seconds (>= 0)"),
            );
            return 0;
        }
        (s * 1000.0).round() as u64
    }

    fn qos(&mut self, key: &str, value: &Sp<u8>) -> u8 {
        let q = *value.get_ref();
        if q > 2 {
            self.at(value, format!("{key} = {q}: QoS is 0, 1 or 2"));
        }
        q
    }
}

fn valid_topic_name(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        return Err("a topic name is not empty");
    }
    if topic.contains(['+', '#']) {
        return Err("a topic name has no wildcards (+, #)");
    }
    if topic.contains('\0') {
        return Err("a topic name has no NUL character");
    }
    Ok(())
}

fn valid_topic_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("a topic filter is not empty");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` is a whole level, and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` is a whole level");
        }
    }
    Ok(())
}

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

fn validate(c: &mut Checker<'_>, raw: RawScenario, file: &str) -> Scenario {
    let safety_ms = c.seconds("duration_s", &raw.duration_s);
    if safety_ms == 0 && c.problems.is_empty() {
        c.at(&raw.duration_s, "duration_s must be > 0");
    }
    let tick_ms = match &raw.tick_ms {
        Some(t) if *t.get_ref() == 0 => {
            c.at(t, "tick_ms must be > 0 (it is the simulation step)");
            1
        }
        Some(t) => *t.get_ref(),
        None => 1,
    };
    let heal_ms = match &raw.heal_s {
        Some(h) => c.seconds("heal_s", h),
        None => 30_000,
    };
    if raw.description.get_ref().trim().is_empty() {
        c.at(&raw.description, "description is empty");
    }

    let mut broker = BrokerSpec {
        disk_sync_ms: crate::disk::DISK_SYNC_DEFAULT_MS,
        ..BrokerSpec::default()
    };
    if let Some(b) = &raw.broker {
        if let Some(v) = &b.max_inflight_messages {
            match u16::try_from(*v.get_ref()) {
                Ok(n) if n > 0 => broker.max_inflight_messages = Some(n),
                _ => c.at(v, "max_inflight_messages must be in 1..=65535"),
            }
        }
        if let Some(v) = &b.max_queued_messages {
            match u32::try_from(*v.get_ref()) {
                Ok(n) => broker.max_queued_messages = Some(n),
                _ => c.at(v, "max_queued_messages is too large"),
            }
        }
        if let Some(p) = &b.persistence {
            broker.persistence = *p.get_ref();
        }
        if let Some(v) = &b.disk_sync_ms {
            match *v.get_ref() {
                n @ 0..=1_000 => broker.disk_sync_ms = n,
                _ => c.at(v, "disk_sync_ms must be at most 1000"),
            }
        }
    }

    // Links.
    let mut links = BTreeMap::new();
    links.insert(IDEAL_LINK.to_string(), LinkSpec::ideal());
    for (name, l) in &raw.link {
        let loss = match (&l.loss, &l.gilbert_elliott) {
            (Some(p), Some(_)) => {
                c.at(
                    p,
                    format!(
                        "link `{}`: give either loss or gilbert_elliott, not both",
                        name.get_ref()
                    ),
                );
                Loss::None
            }
            (Some(p), None) => {
                let p = c.probability("loss", p);
                if p == 0.0 {
                    Loss::None
                } else {
                    Loss::Independent(p)
                }
            }
            (None, Some(ge)) => Loss::GilbertElliott {
                p_good_to_bad: c.probability("p_good_to_bad", &ge.p_good_to_bad),
                p_bad_to_good: c.probability("p_bad_to_good", &ge.p_bad_to_good),
                loss_good: c.probability("loss_good", &ge.loss_good),
                loss_bad: c.probability("loss_bad", &ge.loss_bad),
            },
            (None, None) => Loss::None,
        };
        let wifi_join_ms = match &l.wifi_join_ms {
            Some(r) => {
                let [lo, hi] = *r.get_ref();
                if lo > hi {
                    c.at(r, format!("wifi_join_ms = [{lo}, {hi}]: min > max"));
                }
                (lo, hi)
            }
            None => (1000, 4000),
        };
        links.insert(
            name.get_ref().clone(),
            LinkSpec {
                latency_ms: l.latency_ms.unwrap_or(5),
                jitter_ms: l.jitter_ms.unwrap_or(0),
                loss,
                wifi_join_ms,
            },
        );
    }

    // Names: groups and client ids, unique across devices and subscribers.
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut name_ok = |c: &mut Checker<'_>, name: &Sp<String>, count: u32| {
        let n = name.get_ref();
        if n.is_empty()
            || n.len() > 23
            || !n
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.at(
                name,
                format!("name `{n}`: 1-23 characters of [A-Za-z0-9_-] (an MQTT 3.1.1 client id)"),
            );
        }
        if !groups.insert(n.clone()) {
            c.at(name, format!("duplicate name `{n}`"));
            return;
        }
        for id in instance_names(n, count) {
            if !ids.insert(id.clone()) {
                c.at(name, format!("client id `{id}` is used twice"));
            }
        }
    };
    let link_ok = |c: &mut Checker<'_>, link: &Option<Sp<String>>| -> String {
        match link {
            Some(l) if !links.contains_key(l.get_ref()) => {
                c.at(l, format!("link `{}` is not defined", l.get_ref()));
                IDEAL_LINK.to_string()
            }
            Some(l) => l.get_ref().clone(),
            None => IDEAL_LINK.to_string(),
        }
    };

    let mut devices = Vec::new();
    for d in &raw.device {
        let count = match &d.count {
            Some(n) if *n.get_ref() == 0 => {
                c.at(n, "count must be > 0");
                1
            }
            Some(n) => *n.get_ref(),
            None => 1,
        };
        name_ok(c, &d.name, count);
        let profile = *d.profile.get_ref();
        let qos = c.qos("qos", &d.qos);
        if profile == Profile::Pubsubclient && (1..=2).contains(&qos) {
            c.at(
                &d.qos,
                format!(
                    "qos = {qos}: the pubsubclient profile publishes QoS 0 only (use esp-mqtt)"
                ),
            );
        }
        let interval_ms = match &d.interval_ms {
            Some(i) if *i.get_ref() == 0 => {
                c.at(i, "interval_ms must be > 0");
                2000
            }
            Some(i) => *i.get_ref(),
            None => 2000,
        };
        let topic_prefix = match &d.topic_prefix {
            Some(t) => {
                if let Err(why) = valid_topic_name(&format!("{}/TEM", t.get_ref())) {
                    c.at(t, format!("topic_prefix `{}`: {why}", t.get_ref()));
                }
                t.get_ref().clone()
            }
            None if count == 1 => "ESP32".to_string(),
            None => "ESP32/{id}".to_string(),
        };
        let outbox_expiry_s = match (&d.outbox_expiry_s, profile) {
            (Some(o), Profile::Pubsubclient) => {
                c.at(o, "outbox_expiry_s: the pubsubclient profile has no outbox");
                None
            }
            (Some(o), Profile::EspMqtt) => Some(*o.get_ref()),
            (None, Profile::EspMqtt) => Some(30),
            (None, Profile::Pubsubclient) => None,
        };
        let will = d.will.as_ref().map(|w| {
            if let Err(why) = valid_topic_name(w.topic.get_ref()) {
                c.at(
                    &w.topic,
                    format!("will topic `{}`: {why}", w.topic.get_ref()),
                );
            }
            WillSpec {
                topic: w.topic.get_ref().clone(),
                payload: w.payload.clone(),
                qos: w.qos.as_ref().map_or(0, |q| c.qos("will qos", q)),
                retain: w.retain,
            }
        });
        devices.push(DeviceSpec {
            name: d.name.get_ref().clone(),
            count,
            profile,
            qos,
            interval_ms,
            link: link_ok(c, &d.link),
            clean_session: d.clean_session.unwrap_or(true),
            keepalive_s: d
                .keepalive_s
                .as_ref()
                .map_or(profile.default_keepalive_s(), |k| *k.get_ref()),
            messages: d.messages,
            topic_prefix,
            retain: d.retain.unwrap_or(false),
            outbox_expiry_s,
            will,
        });
    }
    if raw.device.is_empty() {
        c.problems.push(Diagnostic {
            line: 1,
            reason: "no [[device]]: a scenario needs at least one publisher".to_string(),
        });
    }

    let mut subscribers = Vec::new();
    for s in &raw.subscriber {
        name_ok(c, &s.name, 1);
        if let Err(why) = valid_topic_filter(s.filter.get_ref()) {
            c.at(&s.filter, format!("filter `{}`: {why}", s.filter.get_ref()));
        }
        subscribers.push(SubscriberSpec {
            name: s.name.get_ref().clone(),
            filter: s.filter.get_ref().clone(),
            qos: c.qos("qos", &s.qos),
            clean_session: s.clean_session.unwrap_or(true),
            link: link_ok(c, &s.link),
            keepalive_s: s.keepalive_s.unwrap_or(60),
        });
    }

    // Faults.
    let mut faults = Vec::new();
    for f in &raw.fault {
        let at_ms = c.seconds("at_s", &f.at_s);
        let kind = match *f.kind.get_ref() {
            RawFaultKind::Partition => FaultKind::Partition,
            RawFaultKind::HalfOpen => {
                FaultKind::HalfOpen(f.direction.as_ref().map_or(Direction::Up, |d| *d.get_ref()))
            }
            RawFaultKind::Reset => FaultKind::Reset,
            RawFaultKind::WifiDrop => FaultKind::WifiDrop,
            RawFaultKind::BrokerPowerCut => FaultKind::BrokerPowerCut,
            RawFaultKind::BrokerRestart => FaultKind::BrokerRestart,
        };
        match (kind, &f.direction) {
            (FaultKind::HalfOpen(_), None) => {
                c.at(&f.kind, "half-open needs direction = \"up\" or \"down\"")
            }
            (FaultKind::HalfOpen(_), Some(_)) | (_, None) => {}
            (_, Some(d)) => c.at(d, "direction is for half-open faults only"),
        }
        let duration_ms = match (&f.duration_s, kind) {
            (Some(d), FaultKind::Reset) => {
                c.at(d, "a reset is instantaneous: no duration_s");
                0
            }
            (None, FaultKind::Reset) => 0,
            (None, FaultKind::BrokerPowerCut) => 5000,
            (None, FaultKind::BrokerRestart) => 1000,
            (None, _) => {
                c.at(&f.kind, "this fault needs duration_s");
                0
            }
            (Some(d), _) => {
                let ms = c.seconds("duration_s", d);
                if ms == 0 && !kind.targets_broker() {
                    c.at(d, "duration_s must be > 0");
                }
                ms
            }
        };
        if at_ms.saturating_add(duration_ms) > safety_ms {
            c.at(
                &f.at_s,
                format!(
                    "fault ends at {} s, after duration_s = {} (faults happen in the safety phase)",
                    fmt_s(at_ms + duration_ms),
                    raw.duration_s.get_ref()
                ),
            );
        }
        let target = match &f.target {
            Some(t) if kind.targets_broker() => {
                c.at(t, "broker faults take no target");
                None
            }
            Some(t) => {
                if !groups.contains(t.get_ref()) && !ids.contains(t.get_ref()) {
                    c.at(
                        t,
                        format!("fault target `{}` is no device or subscriber", t.get_ref()),
                    );
                }
                Some(t.get_ref().clone())
            }
            None => None,
        };
        faults.push(FaultSpec {
            at_ms,
            duration_ms,
            kind,
            target,
        });
    }
    faults.sort_by_key(|f| f.at_ms);

    let expect = validate_expect(c, raw.expect.as_ref(), &devices, &subscribers);

    Scenario {
        file: file.to_string(),
        description: raw.description.into_inner(),
        seed: raw.seed.unwrap_or(1),
        duration_ms: safety_ms,
        tick_ms,
        heal_ms,
        broker,
        links,
        devices,
        subscribers,
        faults,
        expect,
    }
}

fn fmt_s(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

fn validate_expect(
    c: &mut Checker<'_>,
    raw: Option<&RawExpect>,
    devices: &[DeviceSpec],
    subscribers: &[SubscriberSpec],
) -> Expect {
    let mut checks = Vec::new();
    let empty;
    let raw = match raw {
        Some(raw) => raw,
        None => {
            empty = RawExpect::default();
            &empty
        }
    };
    let mut push = |c: &mut Checker<'_>, scope: &Scope, metric: Metric, range: &RawRange| {
        let Some(r) = range else { return };
        let [min, max] = *r.get_ref();
        if min > max {
            c.at(
                r,
                format!("{scope}.{}: min {min} > max {max}", metric.key()),
            );
        }
        let bad_scope = match scope {
            Scope::Qos(_) => metric == Metric::Reconnects,
            Scope::Subscriber(_) => matches!(
                metric,
                Metric::Published | Metric::Refused | Metric::Acknowledged
            ),
            _ => false,
        };
        if bad_scope {
            c.at(
                r,
                format!("{scope}.{}: not measured per this scope", metric.key()),
            );
        }
        checks.push(ExpectCheck {
            scope: scope.clone(),
            metric,
            min,
            max,
            line: c.line(r.span()),
        });
    };
    let top = RawRanges {
        published: raw.published.clone(),
        refused: raw.refused.clone(),
        acknowledged: raw.acknowledged.clone(),
        delivered: raw.delivered.clone(),
        lost: raw.lost.clone(),
        lost_with_broker: raw.lost_with_broker.clone(),
        duplicated: raw.duplicated.clone(),
        reconnects: raw.reconnects.clone(),
        latency_p50_ms: raw.latency_p50_ms.clone(),
        latency_p99_ms: raw.latency_p99_ms.clone(),
        latency_max_ms: raw.latency_max_ms.clone(),
    };
    push(c, &Scope::All, Metric::Violations, &raw.violations);
    for (metric, range) in top.entries() {
        push(c, &Scope::All, metric, range);
    }
    for (q, ranges) in [(0u8, &raw.qos0), (1, &raw.qos1), (2, &raw.qos2)] {
        if let Some(ranges) = ranges {
            for (metric, range) in ranges.entries() {
                push(c, &Scope::Qos(q), metric, range);
            }
        }
    }
    // `[expect.device.NAME]` and `[expect.subscriber.NAME]`: the same rule for both tables.
    let device_names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    let subscriber_names: Vec<&str> = subscribers.iter().map(|s| s.name.as_str()).collect();
    let device_scope: fn(String) -> Scope = Scope::Device;
    let named_scopes = [
        ("device", &raw.device, &device_names, device_scope),
        (
            "subscriber",
            &raw.subscriber,
            &subscriber_names,
            Scope::Subscriber,
        ),
    ];
    for (kind, table, known, scope) in named_scopes {
        for (name, ranges) in table {
            if !known.contains(&name.get_ref().as_str()) {
                c.at(
                    name,
                    format!(
                        "expect.{kind}.{0}: no [[{kind}]] named `{0}`",
                        name.get_ref()
                    ),
                );
            }
            for (metric, range) in ranges.entries() {
                push(c, &scope(name.get_ref().clone()), metric, range);
            }
        }
    }
    if !checks.iter().any(|k| k.metric == Metric::Violations) {
        // Implied; line 0 = not written in the file.
        checks.insert(
            0,
            ExpectCheck {
                scope: Scope::All,
                metric: Metric::Violations,
                min: 0,
                max: 0,
                line: 0,
            },
        );
    }
    Expect { checks }
}

#[cfg(test)]
mod tests;
